"""Through the real `mcpls serve`, an editor that sends what it should not: every request
gets an answer, errors say what to do, nothing floods, nothing pops up."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE
from collections.abc import Callable
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from lsp_client import error_data
from peers.oauth.browser import authorize_in_browser

Factory = Callable[..., Any]


async def raw_exchange(messages: list[dict[str, Any]], wanted: set[int]) -> dict[int, Any]:
    """Speak LSP to a real `mcpls serve` byte by byte (no client library that fills in
    `params`); the answers to the requests with ids in `wanted`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mcpls", "serve", stdin=PIPE, stdout=PIPE, env=dict(os.environ)
    )
    assert process.stdin is not None
    assert process.stdout is not None
    for message in messages:
        body = json.dumps(message).encode()
        process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    await process.stdin.drain()
    answers: dict[int, Any] = {}
    try:
        async with asyncio.timeout(20):
            while not wanted <= set(answers):
                length = 0
                while (line := await process.stdout.readline()).strip():
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                reply = json.loads(await process.stdout.readexactly(length))
                if reply.get("id") in wanted:
                    answers[reply["id"]] = reply
    finally:
        process.kill()
        await process.wait()
    return answers


async def test_requests_without_params_are_answered() -> None:
    # JSON-RPC 2.0 §4: params MAY be omitted; such requests were never answered.
    answers = await raw_exchange(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
            {"jsonrpc": "2.0", "method": "initialized", "params": {}},
            {"jsonrpc": "2.0", "id": 2, "method": "mcp/status"},
            {"jsonrpc": "2.0", "id": 3, "method": "mcp/callTool"},
        ],
        {2, 3},
    )
    assert answers[2]["result"] == {"servers": []}
    assert answers[3]["error"]["data"]["kind"] == "invalidParams"
    assert "params.server must be" in answers[3]["error"]["message"]


async def test_a_server_that_never_asked_for_a_sign_in_shows_no_auth(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    # schemas/server-status: `auth` is "present when the server uses OAuth".
    editor = await editor_factory({"servers": {"svc": {"url": py_mcp_server.url}}})
    status = await editor.wait_for_state("svc", "connected")
    assert "auth" not in status


async def test_objects_inside_params_that_look_like_messages_are_data(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    # pygls structured every nested object with a "jsonrpc" key as a message of its own:
    # the first request was lost without an answer (found by test_lsp_fuzz), the second
    # sent the server an argument mcpls could not write.
    editor = await editor_factory(
        {"servers": {"svc": {"url": py_mcp_server.url}}, "allowInsecureLoopback": True}
    )
    await editor.wait_for_state("svc", "connected")
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wait_for(
            editor.raw_request(
                "mcp/authenticate", {"server": "nope", "workDoneToken": {"jsonrpc": 0}}
            ),
            15,
        )
    assert error_data(caught.value)["kind"] == "invalidParams"  # "nope" is not configured
    lookalike = {"jsonrpc": "2.0", "id": 1, "result": {"jsonrpc": "2.0", "method": "x"}}
    result = await asyncio.wait_for(
        editor.raw_request(
            "mcp/callTool",
            {"server": "svc", "name": "echo", "arguments": {"text": "hi", "extra": lookalike}},
        ),
        15,
    )
    assert result["content"][0]["text"] == "hi"


async def test_authenticate_on_invalid_settings_says_what_is_wrong_with_them(
    editor_factory: Factory,
) -> None:
    editor = await editor_factory(
        {"servers": {"bad": {"url": "https://x.example", "timeoutMs": -1}}}
    )
    await editor.wait_for_state("bad", "error")
    with pytest.raises(JsonRpcException, match=r"servers\.bad\.timeoutMs") as caught:
        await editor.request("mcp/authenticate", {"server": "bad"})
    assert "Authorization header" not in str(caught.value)


async def test_a_huge_server_name_is_not_echoed_back(editor_factory: Factory) -> None:
    editor = await editor_factory({"servers": {}})
    name = "n" * 5_000_000
    with pytest.raises(JsonRpcException) as caught:
        await editor.raw_request("mcp/status", {"server": name})
    assert len(str(caught.value)) < 1000
    assert "server" not in error_data(caught.value)


async def test_malformed_json_gets_a_parse_error_not_a_pop_up(editor_factory: Factory) -> None:
    editor = await editor_factory({"servers": {}})
    writer = editor.client.protocol.writer
    body = b'{"jsonrpc": "2.0", "id": 7, "method": "mcp/status", "params": {'
    writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    status = await editor.request("mcp/status", {})
    assert status == {"servers": []}  # still serving
    assert editor.messages == []  # no window/showMessage "Error in server"
    assert editor.log_file is not None
    assert "not JSON; answered with a parse error" in editor.log_file.read_text()


async def test_the_sign_in_prompt_answered_after_a_sign_in_opens_no_second_page(
    editor_factory: Factory, py_oauth_server: Any
) -> None:
    # Issue 6, also: the one-time prompt arrived after the person had already started the
    # sign-in; answering it then started another one.
    editor = await editor_factory(
        {
            "servers": {"svc": {"url": py_oauth_server.mcp_url}},
            "allowInsecureLoopback": True,
            "tokenStorage": "file",
        }
    )

    async def browser(url: str) -> bool:
        return (await authorize_in_browser(url)).status == 200

    editor.browse = browser
    editor.prompt_gate = asyncio.Event()
    editor.prompt_answer = "Authenticate"
    await editor.wait_until(lambda: editor.prompts == ["svc needs you to sign in"])
    status = await editor.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected"
    editor.prompt_gate.set()  # the person now clicks "Authenticate" on the old prompt
    await editor.wait_for_log("[svc] already connected: not asked again")
    status = (await editor.request("mcp/status", {"server": "svc"}))["servers"][0]
    assert status["state"] == "connected"
    assert len(editor.shown_documents) == 1
    assert (await py_oauth_server.stats())["authorizations"] == 1
