"""Through the real `mcpls serve`: local servers over stdio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from lsp_client import error_data

Factory = Callable[..., Any]


def stdio_entry(command: list[str], **extra: Any) -> dict[str, Any]:
    return {"command": command[0], "args": command[1:], **extra}


async def test_stdio_server_tools_and_stderr_log(
    editor_factory: Factory, stdio_server_command: list[str]
) -> None:
    editor = await editor_factory({"servers": {"local": stdio_entry(stdio_server_command)}})
    status = await editor.wait_for_state("local", "connected")
    assert status["transport"] == "stdio"
    assert "url" not in status
    result = await editor.request(
        "mcp/callTool", {"server": "local", "name": "echo", "arguments": {"text": "via stdio"}}
    )
    assert result["content"][0]["text"] == "via stdio"
    await editor.request(
        "mcp/callTool",
        {"server": "local", "name": "stderr_line", "arguments": {"text": "a line on stderr"}},
    )
    await editor.wait_for_log("a line on stderr")
    assert any(line.startswith("[local]") for line in editor.log if "a line on stderr" in line)


async def test_env_is_passed_to_the_process(
    editor_factory: Factory, stdio_server_command: list[str]
) -> None:
    entry = stdio_entry(stdio_server_command, env={"MCPLS_TEST_VALUE": "from-settings"})
    editor = await editor_factory({"servers": {"local": entry}})
    await editor.wait_for_state("local", "connected")
    result = await editor.request(
        "mcp/callTool",
        {"server": "local", "name": "get_env", "arguments": {"name": "MCPLS_TEST_VALUE"}},
    )
    assert result["content"][0]["text"] == "from-settings"


async def test_crash_reports_exit_status_then_restarts(
    editor_factory: Factory, stdio_server_command: list[str]
) -> None:
    editor = await editor_factory({"servers": {"local": stdio_entry(stdio_server_command)}})
    await editor.wait_for_state("local", "connected")
    with pytest.raises(JsonRpcException) as caught:
        await editor.request(
            "mcp/callTool", {"server": "local", "name": "crash", "arguments": {"code": 3}}
        )
    assert error_data(caught.value)["kind"] == "connection"
    status = await editor.wait_for_state("local", "error")
    assert "exited with status 3" in status["error"]["message"]
    assert "retrying in 1 s" in status["error"]["message"]
    await editor.wait_for_state("local", "connected")
    result = await editor.request(
        "mcp/callTool", {"server": "local", "name": "echo", "arguments": {"text": "back"}}
    )
    assert result["content"][0]["text"] == "back"


async def test_garbage_on_stdout_is_a_protocol_error(
    editor_factory: Factory, garbage_stdio_command: list[str], stdio_server_command: list[str]
) -> None:
    editor = await editor_factory(
        {
            "servers": {
                "noisy": stdio_entry(garbage_stdio_command, timeoutMs=5000),
                "fine": stdio_entry(stdio_server_command),
            }
        }
    )
    status = await editor.wait_for_state("noisy", "error")
    assert status["error"]["kind"] == "protocol"
    assert "not JSON-RPC" in status["error"]["message"]
    await editor.wait_for_state("fine", "connected")


async def test_missing_command_is_a_clear_error(editor_factory: Factory) -> None:
    editor = await editor_factory(
        {"servers": {"nope": {"command": "/nonexistent/mcp-server-binary"}}}
    )
    status = await editor.wait_for_state("nope", "error")
    assert "cannot start '/nonexistent/mcp-server-binary'" in status["error"]["message"]


async def test_disable_terminates_the_process(
    editor_factory: Factory, stdio_server_command: list[str]
) -> None:
    editor = await editor_factory({"servers": {"local": stdio_entry(stdio_server_command)}})
    await editor.wait_for_state("local", "connected")
    pid = await editor.request("mcp/callTool", {"server": "local", "name": "get_pid"})
    process_id = int(pid["content"][0]["text"])
    await editor.request("mcp/disable", {"server": "local"})
    assert not process_alive(process_id)


def process_alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
