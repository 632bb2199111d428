"""Through the real `mcpls serve`: signing in to OAuth-protected MCP servers, as a person
in an editor would, with the test acting as the person's browser."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from lsp_client import error_data
from peers.oauth.browser import signs_in
from secret_scan import read_ledger

Factory = Callable[..., Any]


def settings(url: str, **entry: Any) -> dict[str, Any]:
    return {
        "servers": {"svc": {"url": url, **entry}},
        "allowInsecureLoopback": True,  # every peer runs on this machine over plain http
        "tokenStorage": "file",
    }


async def signed_in_editor(editor_factory: Factory, url: str, **entry: Any) -> Any:
    editor = await editor_factory(settings(url, **entry))
    editor.browse = signs_in
    await editor.wait_for_state("svc", "authRequired")
    status = await editor.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected", status
    return editor


async def test_sign_in_reuse_across_restarts_and_logout(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    editor = await editor_factory(settings(py_oauth_server.mcp_url))
    editor.browse = signs_in
    status = await editor.wait_for_state("svc", "authRequired")
    assert status["error"]["kind"] == "authRequired"
    assert status["auth"] == {"authenticated": False}
    # The person is asked once; no browser opens by itself.
    await editor.wait_until(lambda: editor.prompts == ["svc needs you to sign in"])
    assert editor.shown_documents == []

    status = await editor.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected"
    assert status["auth"]["authenticated"] is True
    assert status["auth"]["issuer"] == py_oauth_server.issuer
    assert "mcp:read" in status["auth"]["scopes"]
    assert status["auth"]["expiresAt"] > 0
    assert len(editor.shown_documents) == 1
    result = await editor.request(
        "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": "hi"}}
    )
    assert result["content"][0]["text"] == "hi"
    stats = await py_oauth_server.stats()
    assert {r["resource"] for r in stats["resources"]} == {py_oauth_server.mcp_url}
    await editor.client.shutdown_session()

    # A new editor window (or a restart): connected from the store, no browser, no prompt.
    again = await editor_factory(settings(py_oauth_server.mcp_url))
    status = await again.wait_for_state("svc", "connected", "authRequired")
    assert status["state"] == "connected"
    assert again.shown_documents == []
    assert again.prompts == []
    assert (await py_oauth_server.stats())["authorizations"] == 1

    status = await again.request("mcp/logout", {"server": "svc"})
    assert status["state"] == "disabled"
    assert status["auth"]["authenticated"] is False
    assert "scopes" not in status["auth"]
    assert (await py_oauth_server.stats())["revocations"] >= 1
    await again.client.shutdown_session()

    # Signed out: the next start needs a sign-in, and the prompt never nags twice.
    third = await editor_factory(settings(py_oauth_server.mcp_url))
    await third.wait_for_state("svc", "authRequired")
    status = await third.request("mcp/status", {"server": "svc"})
    assert status["servers"][0]["state"] == "authRequired"
    assert third.prompts == []


async def test_choosing_authenticate_in_the_prompt_signs_in(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    editor = await editor_factory(settings(py_oauth_server.mcp_url))
    editor.browse = signs_in
    editor.prompt_answer = "Authenticate"
    status = await editor.wait_for_state("svc", "connected")
    assert status["auth"]["authenticated"] is True
    assert len(editor.shown_documents) == 1


async def test_expired_token_is_refreshed_silently(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    editor = await signed_in_editor(editor_factory, py_oauth_server.mcp_url)
    await py_oauth_server.expire_access()  # the server no longer takes it; mcpls does not know
    result = await editor.request(
        "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": "after"}}
    )
    assert result["content"][0]["text"] == "after"
    assert (await py_oauth_server.stats())["token_requests"].get("refresh_token") == 1
    assert len(editor.shown_documents) == 1
    assert editor.latest("svc")["state"] == "connected"


async def test_short_lived_tokens_are_refreshed_at_half_life_before_use(
    editor_factory: Factory, py_oauth_server_factory: Factory
) -> None:
    server = py_oauth_server_factory(access_ttl=4)  # shorter than the usual 30 s lead
    editor = await signed_in_editor(editor_factory, server.mcp_url)

    async def echo(text: str) -> None:
        result = await editor.request(
            "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": text}}
        )
        assert result["content"][0]["text"] == text

    def refreshes(stats: dict[str, Any]) -> int:
        return int(stats["token_requests"].get("refresh_token", 0))

    await echo("fresh")  # a new token is used as it is, not refreshed on every call
    assert refreshes(await server.stats()) == 0
    expires_at = editor.latest("svc")["auth"]["expiresAt"]
    # expiresAt is whole seconds, rounded down: a second before it, between one and two
    # seconds are left: past half its life, still good at the server. mcpls must refresh
    # before sending it (waiting on the clock is the condition here).
    await asyncio.sleep(max(0.0, expires_at - 1 - time.time()))
    await echo("due")
    stats = await server.stats()
    assert refreshes(stats) == 1
    assert stats["token_requests"].get("authorization_code") == 1
    assert len(editor.shown_documents) == 1


async def test_revoked_refresh_token_means_sign_in_again(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    editor = await signed_in_editor(editor_factory, py_oauth_server.mcp_url)
    await py_oauth_server.revoke_refresh()
    await py_oauth_server.expire_access()
    with pytest.raises(JsonRpcException) as caught:
        await editor.request(
            "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": "x"}}
        )
    assert error_data(caught.value)["kind"] == "authRequired"
    status = await editor.wait_for_state("svc", "authRequired")
    assert status["auth"]["authenticated"] is False
    assert "expired or was revoked" in status["error"]["message"]
    assert len(editor.shown_documents) == 1  # no browser without the person
    status = await editor.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected"


async def test_step_up_asks_for_the_union_of_scopes(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    editor = await signed_in_editor(editor_factory, py_oauth_server.mcp_url)
    granted = set(editor.latest("svc")["auth"]["scopes"])
    with pytest.raises(JsonRpcException) as caught:
        await editor.request(
            "mcp/callTool", {"server": "svc", "name": "admin_echo", "arguments": {"text": "x"}}
        )
    assert error_data(caught.value)["kind"] == "authRequired"
    assert "mcp:admin" in str(caught.value)
    # Only that call failed: the server stays connected, its session and other tools too.
    await editor.wait_until(lambda: "requiredScopes" in editor.latest("svc")["auth"])
    status = editor.latest("svc")
    assert status["state"] == "connected"
    assert "mcp:admin" in status["auth"]["requiredScopes"]
    sessions = (await py_oauth_server.stats())["sessions"]
    result = await editor.request(
        "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": "still"}}
    )
    assert result["content"][0]["text"] == "still"
    assert (await py_oauth_server.stats())["sessions"] == sessions
    status = await editor.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected"
    assert set(status["auth"]["scopes"]) >= granted | {"mcp:admin"}
    result = await editor.request(
        "mcp/callTool", {"server": "svc", "name": "admin_echo", "arguments": {"text": "root"}}
    )
    assert result["content"][0]["text"] == "root"


async def test_step_up_by_itself_when_allowed(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    editor = await signed_in_editor(
        editor_factory, py_oauth_server.mcp_url, allowAutoReauthentication=True
    )
    result = await editor.request(
        "mcp/callTool", {"server": "svc", "name": "admin_echo", "arguments": {"text": "auto"}}
    )
    assert result["content"][0]["text"] == "auto"
    assert len(editor.shown_documents) == 2


async def test_second_authenticate_joins_the_first(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    editor = await editor_factory(settings(py_oauth_server.mcp_url))
    gate = asyncio.Event()

    async def slow_person(url: str) -> bool:
        await gate.wait()
        return await signs_in(url)

    editor.browse = slow_person
    await editor.wait_for_state("svc", "authRequired")
    first = asyncio.ensure_future(editor.request("mcp/authenticate", {"server": "svc"}))
    await editor.wait_until(lambda: len(editor.shown_documents) == 1)
    second = asyncio.ensure_future(editor.request("mcp/authenticate", {"server": "svc"}))
    gate.set()
    statuses = await asyncio.gather(first, second)
    assert [s["state"] for s in statuses] == ["connected", "connected"]
    assert len(editor.shown_documents) == 1


async def test_cancelled_sign_in_goes_back_to_auth_required(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    editor = await editor_factory(settings(py_oauth_server.mcp_url))
    await editor.wait_for_state("svc", "authRequired")
    protocol = editor.client.protocol
    pending = protocol.send_request("mcp/authenticate", {"server": "svc"}, msg_id="login-1")
    await editor.wait_until(lambda: len(editor.shown_documents) == 1)
    from lsprotocol import types

    protocol.notify("$/cancelRequest", types.CancelParams(id="login-1"))
    with pytest.raises(JsonRpcException):
        await asyncio.wrap_future(pending)
    status = await editor.wait_for_state("svc", "authRequired")
    assert "cancelled" in status["error"]["message"]


async def test_paste_back_when_no_loopback_callback_is_reachable(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    relay = "https://relay.invalid/mcpls/callback"  # never contacted: the person copies it
    editor = await editor_factory(settings(py_oauth_server.mcp_url, oauth={"redirectUri": relay}))
    await editor.wait_for_state("svc", "authRequired")
    login = asyncio.ensure_future(editor.request("mcp/authenticate", {"server": "svc"}))
    await editor.wait_until(lambda: len(editor.shown_documents) == 1)
    import httpx

    async with httpx.AsyncClient(follow_redirects=False) as page:
        answer = await page.get(editor.shown_documents[0])
    final_url = answer.headers["location"]
    assert final_url.startswith(relay)
    status = await editor.request(
        "mcp/completeAuthentication", {"server": "svc", "redirectUrl": final_url}
    )
    assert status["state"] == "connected"
    assert (await login)["state"] == "connected"


def kinds_recorded_by(ledger: Path, script: str) -> set[str]:
    """What the secret scan learned from one peer (kinds only: a failing assert prints no
    value)."""
    return {s.kind for s in read_ledger(ledger) if s.peer.startswith(script)}


async def test_typescript_sdk_demo_authorization_server(
    editor_factory: Factory, ts_oauth_server: Any, secret_ledger: Path
) -> None:
    editor = await signed_in_editor(editor_factory, ts_oauth_server.mcp_url)
    tools = await editor.request("mcp/listTools", {"server": "svc"})
    assert tools["tools"]
    # The Node preload (tests/peers/ledger.cjs) told the secret scan what to look for.
    recorded = kinds_recorded_by(secret_ledger, "simpleStreamableHttp.js")
    assert {"access token", "authorization code", "PKCE code verifier"} <= recorded
    assert "MCP session id" in recorded


async def test_oidc_provider_with_login_and_consent(
    editor_factory: Factory, oidc_provider: Any, secret_ledger: Path
) -> None:
    editor = await signed_in_editor(editor_factory, oidc_provider.mcp_url)
    status = editor.latest("svc")
    assert status["auth"]["issuer"] == oidc_provider.issuer
    tools = await editor.request("mcp/listTools", {"server": "svc"})
    assert tools["tools"]
    recorded = kinds_recorded_by(secret_ledger, "provider.mjs")
    assert {"access token", "refresh token", "authorization code"} <= recorded
    assert "PKCE code verifier" in recorded


async def test_no_secret_reaches_errors_or_the_debug_log(
    editor_factory: Factory, py_oauth_server: Any, tmp_path: Path, secret_ledger: Path
) -> None:
    # Sign-in, refresh and a refused refresh at debug level; the editor_factory fixture
    # scans every log line and status of every test for what mcpls stored.
    log_file = tmp_path / "debug.log"
    editor = await editor_factory(
        settings(py_oauth_server.mcp_url), log_level="debug", log_file=log_file
    )
    editor.browse = signs_in
    await editor.wait_for_state("svc", "authRequired")
    await editor.request("mcp/authenticate", {"server": "svc"})
    await py_oauth_server.expire_access()
    await editor.request(
        "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": "x"}}
    )
    await py_oauth_server.revoke_refresh()
    await py_oauth_server.expire_access()
    with pytest.raises(JsonRpcException) as caught:
        await editor.request("mcp/callTool", {"server": "svc", "name": "echo"})
    # The suite's scan (tests/secret_scan.py) reads this error, the debug log and the
    # editor's messages for every secret the peer issued or received.
    assert str(caught.value) in editor.errors[-1]
    kinds = {secret.kind for secret in read_ledger(secret_ledger)}  # kinds only: no values
    assert {"access token", "refresh token", "authorization code"} <= kinds
    assert "DEBUG" in log_file.read_text()  # the debug log was really written


async def test_busy_callback_port_falls_back_and_registers_again(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    import socket
    from urllib.parse import parse_qs, urlsplit

    from mcpls.auth.discovery import canonical_resource
    from mcpls.auth.flow import stable_callback_port

    port = stable_callback_port(canonical_resource(py_oauth_server.mcp_url))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        editor = await signed_in_editor(editor_factory, py_oauth_server.mcp_url)
    redirect = parse_qs(urlsplit(editor.shown_documents[0]).query)["redirect_uri"][0]
    assert urlsplit(redirect).port not in (None, port)


async def test_configured_callback_port_busy_is_a_clear_error(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        editor = await editor_factory(
            settings(py_oauth_server.mcp_url, oauth={"callbackPort": port})
        )
        editor.browse = signs_in
        await editor.wait_for_state("svc", "authRequired")
        busy = rf"callback port {port} on 127\.0\.0\.1 is in use"
        with pytest.raises(JsonRpcException, match=busy):
            await editor.request("mcp/authenticate", {"server": "svc"})
    assert editor.shown_documents == []


async def test_logout_forgetting_the_client_registers_again(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    editor = await signed_in_editor(editor_factory, py_oauth_server.mcp_url)
    await editor.request("mcp/logout", {"server": "svc", "forgetClient": True})
    status = await editor.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected"
    assert (await py_oauth_server.stats())["registrations"] == 2


async def test_escape_hatches_metadata_url_and_trusted_issuers(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    metadata = f"{py_oauth_server.issuer}/.well-known/oauth-authorization-server"
    editor = await signed_in_editor(
        editor_factory, py_oauth_server.mcp_url, oauth={"authServerMetadataUrl": metadata}
    )
    assert editor.latest("svc")["auth"]["issuer"] == py_oauth_server.issuer

    untrusted = await editor_factory(
        {
            "servers": {
                "other": {
                    "url": py_oauth_server.mcp_url,
                    "oauth": {"trustedIssuers": ["https://login.example.com"]},
                }
            },
            "allowInsecureLoopback": True,
            "tokenStorage": "file",
        }
    )
    await untrusted.wait_for_state("other", "authRequired", "connected")
    with pytest.raises(JsonRpcException, match=r"none of which is in oauth\.trustedIssuers"):
        await untrusted.request("mcp/authenticate", {"server": "other"})
    assert untrusted.shown_documents == []


async def test_step_up_adds_required_scopes_to_configured_ones(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    editor = await signed_in_editor(
        editor_factory, py_oauth_server.mcp_url, oauth={"scopes": ["mcp:read"]}
    )
    assert editor.latest("svc")["auth"]["scopes"] == ["mcp:read"]
    with pytest.raises(JsonRpcException):
        await editor.request(
            "mcp/callTool", {"server": "svc", "name": "admin_echo", "arguments": {"text": "x"}}
        )
    status = await editor.request("mcp/authenticate", {"server": "svc"})
    assert {"mcp:read", "mcp:admin"} <= set(status["auth"]["scopes"])
