"""Through the real `mcpls serve`: hostile authorization metadata never reaches the
person's browser, and the error says why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pygls.exceptions import JsonRpcException

from lsp_client import error_data

Factory = Callable[..., Any]


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("javascript", "refusing the authorization_endpoint javascript"),
        ("file", "refusing the authorization_endpoint file"),
        ("foreign", "https://evil.example/mcp"),
        ("issuer", "issuer"),
        ("nopkce", "does not advertise PKCE"),
        # Issue 6 #6: issuer and every endpoint https (loopback http only when allowed).
        ("httpissuer", "refusing the issuer 'http://auth.example.test/as' (only https"),
        ("httpendpoint", "refusing the token_endpoint 'http://auth.example.test/token'"),
        # Issue 6 #8: what an untrusted server sends is read with a cap.
        ("huge", "more than the 1048576"),
    ],
)
async def test_hostile_metadata_opens_no_browser(
    editor_factory: Factory, hostile_server: str, kind: str, words: str
) -> None:
    url = f"{hostile_server}/evil/{kind}/mcp"
    editor = await editor_factory(
        {"servers": {"evil": {"url": url}}, "allowInsecureLoopback": True, "tokenStorage": "file"}
    )
    await editor.wait_for_state("evil", "authRequired")
    with pytest.raises(JsonRpcException) as caught:
        await editor.request("mcp/authenticate", {"server": "evil"})
    assert words in str(caught.value)
    assert error_data(caught.value)["server"] == "evil"
    assert editor.shown_documents == []
    status = await editor.wait_for_state("evil", "authRequired")
    assert words in status["error"]["message"]
    async with httpx.AsyncClient() as http:
        seen = (await http.get(f"{hostile_server}/_requests")).json()
    assert not any(r["path"].endswith(("/register", "/authorize", "/token")) for r in seen)


async def test_plain_http_issuer_needs_the_loopback_setting(
    editor_factory: Factory, hostile_server: str
) -> None:
    editor = await editor_factory({"servers": {"evil": {"url": f"{hostile_server}/evil/x/mcp"}}})
    await editor.wait_for_state("evil", "authRequired")
    with pytest.raises(JsonRpcException, match="allowInsecureLoopback"):
        await editor.request("mcp/authenticate", {"server": "evil"})
    assert editor.shown_documents == []


async def test_stdio_and_header_servers_do_not_use_oauth(
    editor_factory: Factory, hostile_server: str, stdio_server_command: list[str]
) -> None:
    editor = await editor_factory(
        {
            "servers": {
                "local": {"command": stdio_server_command[0], "args": stdio_server_command[1:]},
                "pat": {
                    "url": f"{hostile_server}/unauthorized",
                    "headers": {"Authorization": "Bearer pat"},
                },
            }
        }
    )
    await editor.wait_for_state("local", "connected")
    status = await editor.wait_for_state("pat", "authRequired")
    assert "auth" not in status
    for name, reason in (("local", r"local \(stdio\)"), ("pat", "Authorization header")):
        with pytest.raises(JsonRpcException, match=reason):
            await editor.request("mcp/authenticate", {"server": name})
    assert editor.shown_documents == []


async def hostile_requests(hostile_server: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        seen: list[dict[str, Any]] = (await http.get(f"{hostile_server}/_requests")).json()
    return seen


async def test_a_server_error_on_one_metadata_url_tries_the_next(
    editor_factory: Factory, hostile_server: str
) -> None:
    # Issue 6 #11: the challenge's metadata URL answers 503; the well-known one works, so
    # discovery goes on to the authorization server and its registration endpoint.
    editor = await editor_factory(
        {
            "servers": {"evil": {"url": f"{hostile_server}/evil/flaky/mcp"}},
            "allowInsecureLoopback": True,
            "tokenStorage": "file",
        }
    )
    await editor.wait_for_state("evil", "authRequired")
    with pytest.raises(JsonRpcException, match=r"refused to register mcpls \(HTTP 404"):
        await editor.request("mcp/authenticate", {"server": "evil"})
    paths = [r["path"] for r in await hostile_requests(hostile_server)]
    assert "/.well-known/oauth-protected-resource/evil/flaky/mcp" in paths
    assert paths.index("/evil/flaky/prm") < paths.index("/evil/flaky/as/register")
    assert editor.shown_documents == []


async def test_a_redirected_metadata_url_is_not_followed_and_the_error_says_so(
    editor_factory: Factory, hostile_server: str
) -> None:
    # Issue 6 #11: a 3xx is "absent", and when nothing else works the error names it.
    editor = await editor_factory(
        {
            "servers": {
                "evil": {
                    "url": f"{hostile_server}/evil/moved/mcp",
                    "oauth": {"authServerMetadataUrl": f"{hostile_server}/evil/moved/prm"},
                }
            },
            "allowInsecureLoopback": True,
            "tokenStorage": "file",
        }
    )
    await editor.wait_for_state("evil", "authRequired")
    with pytest.raises(JsonRpcException, match=r"HTTP 302 redirect, not followed"):
        await editor.request("mcp/authenticate", {"server": "evil"})
    assert editor.shown_documents == []


async def test_a_registration_for_an_unsupported_client_authentication_is_refused(
    editor_factory: Factory, hostile_server: str
) -> None:
    # Issue 6 #15: private_key_jwt in a registration answer: a clear refusal, no crash.
    editor = await editor_factory(
        {
            "servers": {"evil": {"url": f"{hostile_server}/evil/pkjwt/mcp"}},
            "allowInsecureLoopback": True,
            "tokenStorage": "file",
        }
    )
    await editor.wait_for_state("evil", "authRequired")
    with pytest.raises(JsonRpcException, match="private_key_jwt") as caught:
        await editor.request("mcp/authenticate", {"server": "evil"})
    assert "mcpls does not do" in str(caught.value)
    assert editor.shown_documents == []
    status = await editor.wait_for_state("evil", "authRequired")
    assert "private_key_jwt" in status["error"]["message"]


async def test_an_endless_answer_ends_at_the_call_deadline(hostile_server: str) -> None:
    # Issue 6 #8: a peer trickling a byte every half second cannot outlive one deadline.
    import time

    from mcpls.errors import RequestTimeout
    from mcpls.net import fetch

    async with httpx.AsyncClient(timeout=30) as http:
        started = time.monotonic()
        with pytest.raises(RequestTimeout, match=r"did not finish answering within 1\.5 s"):
            await fetch(http, "GET", f"{hostile_server}/trickle", deadline_s=1.5)
    assert time.monotonic() - started < 10


async def test_a_server_that_forgets_every_session_causes_no_storm(
    editor_factory: Factory, hostile_server: str
) -> None:
    # Issue 10: every request answered 404 for its session: one new session per request
    # at most, then a clear error; never a loop of re-initializations.
    editor = await editor_factory({"servers": {"svc": {"url": f"{hostile_server}/forgetful"}}})
    status = await editor.wait_for_state("svc", "error")
    assert "forgot the session" in status["error"]["message"]
    assert status["error"]["kind"] == "protocol"
    with pytest.raises(JsonRpcException, match="not connected"):
        await editor.request("mcp/listTools", {"server": "svc"})
    posts = [
        r
        for r in await hostile_requests(hostile_server)
        if r["path"] == "/forgetful" and r["method"] == "POST"
    ]
    initializes = [r for r in posts if '"initialize"' in r["body"]]
    assert len(initializes) == 2  # the handshake, and one new session for tools/list
    assert len(posts) == 6  # each with its notifications/initialized and one tools/list
