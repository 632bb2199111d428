"""Issue 10, through the real `mcpls serve`: hostile metadata whose OAuth URLs point at the
cloud metadata address, a private network or a link-local IPv6 address, in spellings that
try to slip past a check, is refused before any connection and before any browser, with a
message saying why; so are vbscript: and data: authorization endpoints.

To prove "before any connection" without ever letting a connection leave this machine,
mcpls runs with the hostile server as its HTTP(S) proxy for every host but this one: an
attempt would arrive there as a request and be recorded, never reach the address."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pygls.exceptions import JsonRpcException

Factory = Callable[..., Any]

CASES = {
    "ssrf-metadata": "its host is a link-local address",
    "ssrf-decimal": "'https://2852039166/token': its host is a link-local address",
    "ssrf-hex": "refusing the authorization_endpoint 'https://0xA9.0xFE.0xA9.0xFE/authorize'",
    "ssrf-mapped": "'https://[::ffff:169.254.169.254]/token': its host is a link-local",
    "ssrf-dot": "refusing the revocation_endpoint 'https://169.254.169.254./revoke'",
    "ssrf-ipv6": "refusing the registration_endpoint 'https://[fe80::1]/register'",
    "ssrf-private": "its host is a private-network address",
    "ssrf-issuer": "refusing the issuer 'https://10.0.0.1/as': its host is a private",
    "ssrf-prm": "refusing the resource metadata URL 'https://169.254.169.254/latest/meta-data",
    "vbscript": "refusing the authorization_endpoint vbscript:… (only https is allowed)",
    "data": "refusing the authorization_endpoint data:… (only https is allowed)",
}


async def test_oauth_urls_into_internal_networks_are_refused_before_any_connection(
    editor_factory: Factory, hostile_server: str
) -> None:
    servers = {kind: {"url": f"{hostile_server}/evil/{kind}/mcp"} for kind in CASES}
    proxy = {
        "HTTP_PROXY": hostile_server,
        "HTTPS_PROXY": hostile_server,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    editor = await editor_factory(
        {"servers": servers, "allowInsecureLoopback": True, "tokenStorage": "file"}, env=proxy
    )
    for kind, words in CASES.items():
        await editor.wait_for_state(kind, "authRequired")
        with pytest.raises(JsonRpcException) as caught:
            await editor.request("mcp/authenticate", {"server": kind})
        assert words in str(caught.value), (kind, str(caught.value))
        status = await editor.wait_for_state(kind, "authRequired")
        assert words in status["error"]["message"]
    assert editor.shown_documents == []

    async with httpx.AsyncClient() as http:
        seen = (await http.get(f"{hostile_server}/_requests")).json()
    # Only the hostile server's own documents were asked for: nothing went to the proxy
    # (an absolute-form target or CONNECT), no registration, authorization or token call.
    assert seen, "the test must have reached the server"
    for request in seen:
        assert request["path"].startswith(("/evil/", "/.well-known/")), request["path"]
        assert not request["path"].endswith(("/register", "/authorize", "/token")), request
