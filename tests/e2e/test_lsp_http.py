"""Through the real `mcpls serve`: what an editor sees with real HTTP MCP servers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_client import error_data

Factory = Callable[..., Any]


async def test_connect_list_and_call_on_python_sdk_server(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}})
    status = await editor.wait_for_state("py", "connected")
    assert [s["state"] for s in editor.statuses] == ["connecting", "connected"]
    assert status["serverInfo"]["name"]
    assert status["protocolVersion"] == "2025-11-25"
    tools = await editor.request("mcp/listTools", {"server": "py"})
    names = {tool["name"] for tool in tools["tools"]}
    assert {"echo", "add", "big", "slow"} <= names
    assert status["toolCount"] == len(tools["tools"])
    result = await editor.request(
        "mcp/callTool", {"server": "py", "name": "echo", "arguments": {"text": "héllo"}}
    )
    assert result["content"][0]["text"] == "héllo"
    listed = await editor.request("mcp/status", {})
    assert listed["servers"] == [editor.latest("py")]


async def test_stateless_and_json_response_servers(
    editor_factory: Factory, py_mcp_server_stateless: Any, py_mcp_server_json: Any
) -> None:
    editor = await editor_factory(
        {
            "servers": {
                "stateless": {"url": py_mcp_server_stateless.url},
                "json": {"url": py_mcp_server_json.url},
            }
        }
    )
    for name in ("stateless", "json"):
        await editor.wait_for_state(name, "connected")
        result = await editor.request(
            "mcp/callTool", {"server": name, "name": "add", "arguments": {"a": 2, "b": 3}}
        )
        assert result["content"][0]["text"] in ("5.0", "5")


async def test_typescript_sdk_example_server(editor_factory: Factory, ts_mcp_server: Any) -> None:
    editor = await editor_factory({"servers": {"ts": {"url": ts_mcp_server.url}}})
    await editor.wait_for_state("ts", "connected")
    tools = await editor.request("mcp/listTools", {"server": "ts"})
    assert "greet" in {tool["name"] for tool in tools["tools"]}
    result = await editor.request(
        "mcp/callTool", {"server": "ts", "name": "greet", "arguments": {"name": "mcpls"}}
    )
    assert "mcpls" in result["content"][0]["text"]


async def test_session_expiry_reinitializes_transparently(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}})
    await editor.wait_for_state("py", "connected")
    py_mcp_server.restart()  # the new process knows nothing of our session: 404
    result = await editor.request(
        "mcp/callTool", {"server": "py", "name": "echo", "arguments": {"text": "again"}}
    )
    assert result["content"][0]["text"] == "again"
    assert editor.latest("py")["state"] == "connected"


async def test_server_killed_reports_connection_error(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}})
    await editor.wait_for_state("py", "connected")
    py_mcp_server.stop()
    with pytest.raises(JsonRpcException) as caught:
        await editor.request(
            "mcp/callTool", {"server": "py", "name": "echo", "arguments": {"text": "x"}}
        )
    assert error_data(caught.value)["kind"] == "connection"
    status = await editor.wait_for_state("py", "error")
    assert status["error"]["kind"] == "connection"
    assert "cannot connect" in status["error"]["message"]
    assert "retrying in" in status["error"]["message"]


async def test_big_tool_result(editor_factory: Factory, py_mcp_server: Any) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}})
    await editor.wait_for_state("py", "connected")
    size = 10 * 1024 * 1024
    result = await editor.request(
        "mcp/callTool", {"server": "py", "name": "big", "arguments": {"size": size}}
    )
    assert len(result["content"][0]["text"]) == size


async def test_timeout_gives_timeout_error_and_keeps_server(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url, "timeoutMs": 500}}})
    await editor.wait_for_state("py", "connected")
    with pytest.raises(JsonRpcException) as caught:
        await editor.request(
            "mcp/callTool", {"server": "py", "name": "slow", "arguments": {"seconds": 30}}
        )
    assert caught.value.data == {"server": "py", "kind": "timeout"}
    assert "500" in str(caught.value) or "0.5" in str(caught.value)
    # The server stays usable, and it was told that we gave up on the call.
    result = await editor.request(
        "mcp/callTool", {"server": "py", "name": "cancelled_count", "arguments": {}}
    )
    assert result["content"][0]["text"] == "1"


async def test_editor_cancel_becomes_mcp_cancelled(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}})
    await editor.wait_for_state("py", "connected")
    protocol = editor.client.protocol
    pending = protocol.send_request(
        "mcp/callTool",
        {"server": "py", "name": "slow", "arguments": {"seconds": 30}},
        msg_id="slow-1",
    )
    # Cancel only once the server has the call in hand.
    async with asyncio.timeout(20):
        while True:
            count = await editor.request(
                "mcp/callTool", {"server": "py", "name": "running_count", "arguments": {}}
            )
            if count["content"][0]["text"] == "1":
                break
    protocol.notify("$/cancelRequest", types.CancelParams(id="slow-1"))
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wrap_future(pending)
    assert caught.value.code == -32800  # RequestCancelled
    async with asyncio.timeout(20):
        while True:
            result = await editor.request(
                "mcp/callTool", {"server": "py", "name": "cancelled_count", "arguments": {}}
            )
            if result["content"][0]["text"] == "1":
                break


async def test_server_requests_roots_ping_sampling_and_logs(
    editor_factory: Factory, py_mcp_server: Any, tmp_path: Path
) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    editor = await editor_factory(
        {"servers": {"py": {"url": py_mcp_server.url}}}, workspace=workspace
    )
    await editor.wait_for_state("py", "connected")

    async def call(tool: str, **arguments: Any) -> str:
        result = await editor.request(
            "mcp/callTool", {"server": "py", "name": tool, "arguments": arguments}
        )
        text: str = result["content"][0]["text"]
        return text

    assert workspace.as_uri() in await call("list_roots")
    assert "ok" in (await call("ping_client")).lower()
    assert "not" in (await call("sample")).lower()  # method not found, in words
    await call("log_something", text="visible in the editor log")
    await editor.wait_for_log("visible in the editor log")
    assert any(m.startswith("[py]") for m in editor.log if "visible" in m)


async def test_elicitation_goes_to_an_editor_that_supports_it(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}}, elicitation=True)
    editor.elicit_answer = lambda params: {"action": "accept", "content": {"name": "Ada"}}
    await editor.wait_for_state("py", "connected")
    result = await editor.request("mcp/callTool", {"server": "py", "name": "ask_name"})
    assert "Ada" in result["content"][0]["text"]
    assert editor.elicitations[0]["server"] == "py"
    assert "name" in editor.elicitations[0]["requestedSchema"]["properties"]


async def test_elicitation_declined_for_editors_without_support(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}})
    await editor.wait_for_state("py", "connected")
    result = await editor.request("mcp/callTool", {"server": "py", "name": "ask_name"})
    text = result["content"][0]["text"].lower()
    assert "decline" in text or "not supported" in text or result.get("isError")
    assert editor.elicitations == []


async def test_tools_list_changed_refreshes_and_pushes_status(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}})
    status = await editor.wait_for_state("py", "connected")
    before = status["toolCount"]
    await editor.request(
        "mcp/callTool", {"server": "py", "name": "add_tool", "arguments": {"name": "fresh"}}
    )
    await editor.wait_until(lambda: editor.latest("py")["toolCount"] == before + 1)
    tools = await editor.request("mcp/listTools", {"server": "py"})
    assert "fresh" in {tool["name"] for tool in tools["tools"]}


async def test_pagination_is_followed(editor_factory: Factory, paged_server: Any) -> None:
    editor = await editor_factory({"servers": {"paged": {"url": paged_server.url}}})
    status = await editor.wait_for_state("paged", "connected")
    tools = await editor.request("mcp/listTools", {"server": "paged"})
    assert len(tools["tools"]) == status["toolCount"] == 25
    assert len({t["name"] for t in tools["tools"]}) == 25
