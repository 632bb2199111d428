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
