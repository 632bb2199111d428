"""Through the real `mcpls serve`, against real authorization servers: the defects of the
core hardening issue (issue 6), each as a person would meet it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pygls.exceptions import JsonRpcException

from lsp_client import error_data
from peers.managed import free_port
from peers.oauth.browser import signs_in
from secret_scan import plant

Factory = Callable[..., Any]
# Needs form-encoding before Basic (RFC 6749 §2.3.1): "+", "/", "=", "%", a space and a
# colon. (A non-Latin-1 secret is a unit test: oidc-provider allows VSCHAR only.)
AWKWARD_SECRET = "a+b/c=%2 x:y&z"


def settings(**servers: dict[str, Any]) -> dict[str, Any]:
    return {"servers": servers, "allowInsecureLoopback": True, "tokenStorage": "file"}


async def sign_in(editor: Any, name: str) -> dict[str, Any]:
    await editor.wait_for_state(name, "authRequired")
    status: dict[str, Any] = await editor.request("mcp/authenticate", {"server": name})
    assert status["state"] == "connected", status
    return status


async def echo(editor: Any, name: str, text: str) -> None:
    result = await editor.request(
        "mcp/callTool", {"server": name, "name": "echo", "arguments": {"text": text}}
    )
    assert result["content"][0]["text"] == text


def confidential_client(method: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A client an administrator registered at oidc-provider, and the same client in
    mcpls's settings (`oauth`), with a fixed callback port as its redirect URI needs."""
    port = free_port()
    registered = {
        "client_id": "acme-editor",
        "client_secret": AWKWARD_SECRET,
        "redirect_uris": [f"http://127.0.0.1:{port}/callback"],
        "token_endpoint_auth_method": method,
    }
    oauth = {
        "clientId": "acme-editor",
        "clientSecret": AWKWARD_SECRET,
        "tokenEndpointAuthMethod": method,
        "callbackPort": port,
    }
    return registered, oauth


async def until_due(editor: Any, *names: str, lead: float) -> None:
    """Wait (on the clock: that is the condition) until every named token is due."""
    due = max(editor.latest(name)["auth"]["expiresAt"] for name in names) - lead
    await asyncio.sleep(max(0.0, due - time.time()))


async def test_two_servers_behind_one_authorization_server_stay_independent(
    editor_factory: Factory, oidc_provider_factory: Factory
) -> None:
    # Issue 6 #1: registrations were keyed by issuer alone, so signing in to B replaced
    # A's client and A's next refresh failed with invalid_grant.
    peers = oidc_provider_factory(servers=2, access_ttl=6)
    url_a, url_b = peers.mcp_urls
    config = settings(a={"url": url_a}, b={"url": url_b})
    editor = await editor_factory(config)
    editor.browse = signs_in
    await sign_in(editor, "a")
    await sign_in(editor, "b")
    await until_due(editor, "a", "b", lead=2.5)  # past half of a 6 s life: both refresh
    await echo(editor, "a", "after A's refresh")
    await echo(editor, "b", "after B's refresh")
    assert editor.latest("a")["state"] == editor.latest("b")["state"] == "connected"

    status = await editor.request("mcp/logout", {"server": "a", "forgetClient": True})
    assert status["state"] == "disabled"
    await echo(editor, "b", "B is untouched by A's logout")
    await editor.client.shutdown_session()

    again = await editor_factory(config)
    await again.wait_for_state("a", "authRequired")
    await again.wait_for_state("b", "connected")
    await echo(again, "b", "and by a restart")
    assert len(editor.shown_documents) == 2
    assert again.shown_documents == []


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_a_confidential_client_on_a_strict_server(
    editor_factory: Factory, oidc_provider_factory: Factory, method: str
) -> None:
    # Issue 6 #2 and #3: oidc-provider refuses a parameter sent twice and credentials sent
    # two ways; the secret must be form-encoded before Basic.
    client, oauth = confidential_client(method)
    peers = oidc_provider_factory(static_clients=[client], access_ttl=6)
    editor = await editor_factory(settings(svc={"url": peers.mcp_url, "oauth": oauth}))
    plant("client secret", AWKWARD_SECRET)  # the leak scan looks for it too
    editor.browse = signs_in
    await sign_in(editor, "svc")
    await until_due(editor, "svc", lead=2.5)
    await echo(editor, "svc", "refreshed with the same client authentication")
    status = await editor.request("mcp/logout", {"server": "svc"})
    assert status["auth"]["authenticated"] is False
    assert not any("could not revoke" in line for line in editor.log)


async def test_configured_credentials_never_go_to_another_authorization_server(
    editor_factory: Factory, oidc_provider_factory: Factory, py_oauth_server: Any
) -> None:
    # Issue 6 #5: a configured client is bound to the first authorization server it was
    # used with; a server naming another one does not get to see its secret.
    client, oauth = confidential_client("client_secret_basic")
    peers = oidc_provider_factory(static_clients=[client])
    editor = await editor_factory(
        settings(
            good={"url": peers.mcp_url, "oauth": oauth},
            other={"url": py_oauth_server.mcp_url, "oauth": oauth},
        )
    )
    plant("client secret", AWKWARD_SECRET)
    editor.browse = signs_in
    await sign_in(editor, "good")
    await editor.wait_for_state("other", "authRequired")
    with pytest.raises(JsonRpcException, match="will not send the client's credentials") as caught:
        await editor.request("mcp/authenticate", {"server": "other"})
    assert peers.issuer in str(caught.value)
    assert error_data(caught.value)["kind"] == "other"
    assert len(editor.shown_documents) == 1
    stats = await py_oauth_server.stats()
    assert stats["authorizations"] == 0
    assert stats["token_requests"] == {}


async def test_the_callback_ignores_answers_that_are_not_for_this_sign_in(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    # Issue 6 #4: a request with a wrong or missing state used to end the sign-in, so the
    # person's real browser then met "connection refused".
    answers: list[int] = []

    async def probe_then_sign_in(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        async with httpx.AsyncClient() as http:
            for query in ("?code=stolen&state=forged", "?code=stolen", "?error=access_denied"):
                answers.append((await http.get(redirect + query)).status_code)
        return await signs_in(url)

    editor = await editor_factory(settings(svc={"url": py_oauth_server.mcp_url}))
    editor.browse = probe_then_sign_in
    await sign_in(editor, "svc")
    assert answers == [400, 400, 400]


async def test_a_configured_redirect_uri_is_served_on_its_own_path(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    # Issue 6 #10: the listener served /callback whatever the configured redirect URI said.
    redirect = f"http://127.0.0.1:{free_port()}/oauth/done"
    editor = await editor_factory(
        settings(svc={"url": py_oauth_server.mcp_url, "oauth": {"redirectUri": redirect}})
    )
    editor.browse = signs_in
    await sign_in(editor, "svc")
    sent = parse_qs(urlsplit(editor.shown_documents[0]).query)["redirect_uri"][0]
    assert sent == redirect


async def test_a_callback_host_that_is_not_this_machine_is_a_settings_error(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    # Issue 6 #10: mcpls listens on loopback only, whatever callbackHost says.
    oauth = {"callbackHost": "0.0.0.0"}  # noqa: S104 - the setting under test
    editor = await editor_factory(settings(svc={"url": py_oauth_server.mcp_url, "oauth": oauth}))
    status = await editor.wait_for_state("svc", "error")
    assert "callbackHost" in status["error"]["message"]
    with pytest.raises(JsonRpcException, match="callbackHost"):
        await editor.request("mcp/authenticate", {"server": "svc"})
    assert editor.shown_documents == []


async def test_the_session_ends_with_the_bearer_before_the_tokens_are_revoked(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    # Issue 6 #9: the DELETE went without the bearer (401), and logout revoked first.
    editor = await editor_factory(settings(svc={"url": py_oauth_server.mcp_url}))
    editor.browse = signs_in
    await sign_in(editor, "svc")
    await editor.request("mcp/restart", {"server": "svc"})  # ends one session, starts one
    await editor.request("mcp/logout", {"server": "svc"})
    stats = await py_oauth_server.stats()
    assert stats["deletes"] == [200, 200]
    assert stats["revocations"] >= 1


async def test_a_dropped_registration_means_one_sign_in_that_registers_anew(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    # Issue 6 #12: invalid_client on refresh was retried on every request and the next
    # sign-in reused the dead client id.
    editor = await editor_factory(settings(svc={"url": py_oauth_server.mcp_url}))
    editor.browse = signs_in
    await sign_in(editor, "svc")
    await py_oauth_server.forget_clients()
    await py_oauth_server.expire_access()
    for _ in range(2):
        with pytest.raises(JsonRpcException) as caught:
            await echo(editor, "svc", "x")
        assert error_data(caught.value)["kind"] == "authRequired"
    status = await editor.wait_for_state("svc", "authRequired")
    assert "no longer accepts mcpls's client" in status["error"]["message"]
    assert status["auth"]["authenticated"] is False
    assert (await py_oauth_server.stats())["token_requests"]["refresh_token"] == 1
    status = await editor.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected"
    assert (await py_oauth_server.stats())["registrations"] == 2
    await echo(editor, "svc", "signed in again")


async def test_a_store_that_fails_leaves_the_server_needing_a_sign_in_not_stuck(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    # Issue 6 #7: a StoreError was not an McplsError: the server stayed "authenticating"
    # and the editor got a bare internal error.
    config = {**settings(svc={"url": py_oauth_server.mcp_url}), "tokenStorage": "keyring"}
    editor = await editor_factory(config, env={"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nowhere"})
    editor.browse = signs_in
    await editor.wait_for_state("svc", "authRequired")
    with pytest.raises(JsonRpcException, match="keychain") as caught:
        await editor.request("mcp/authenticate", {"server": "svc"})
    assert error_data(caught.value)["kind"] == "other"
    status = await editor.wait_for_state("svc", "authRequired")
    assert "keychain" in status["error"]["message"]


async def test_changing_a_global_setting_reaches_running_servers(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    # Issue 6, also: tokenStorage, callbackHost and allowInsecureLoopback changes left
    # running servers on the old values.
    servers = {"servers": {"svc": {"url": py_oauth_server.mcp_url}}, "tokenStorage": "file"}
    editor = await editor_factory(servers)
    editor.browse = signs_in
    await editor.wait_for_state("svc", "authRequired")
    with pytest.raises(JsonRpcException, match="allowInsecureLoopback"):
        await editor.request("mcp/authenticate", {"server": "svc"})
    await editor.configure({"mcpls": {**servers, "allowInsecureLoopback": True}})
    await editor.wait_for_state("svc", "connecting")
    await sign_in(editor, "svc")


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_a_failing_token_endpoint_keeps_the_sign_in(
    editor_factory: Factory, py_oauth_server: Any, status: int
) -> None:
    # Issue 10: a refresh that meets a server error or "too many requests" is not a lost
    # login: the call fails as a connection problem, mcpls reconnects by itself once the
    # authorization server answers again, and no new sign-in is needed.
    editor = await editor_factory(settings(svc={"url": py_oauth_server.mcp_url}))
    editor.browse = signs_in
    await sign_in(editor, "svc")
    await py_oauth_server.expire_access()
    await py_oauth_server.fail_token_requests(status, count=1)
    with pytest.raises(JsonRpcException) as caught:
        await echo(editor, "svc", "x")
    assert error_data(caught.value)["kind"] == "connection"
    assert f"HTTP {status}" in str(caught.value)
    status_now = editor.latest("svc")
    assert status_now["auth"]["authenticated"] is True
    await editor.wait_for_state("svc", "connected")  # the retry refreshed
    await echo(editor, "svc", "back")
    assert len(editor.shown_documents) == 1
    assert (await py_oauth_server.stats())["token_requests"]["refresh_token"] == 2
