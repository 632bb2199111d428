"""Through the real `mcpls serve`: configuration, lifecycle methods, bad input, 401."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcMethodNotFound

from lsp_client import error_data

Factory = Callable[..., Any]


async def test_invalid_entry_is_an_error_and_others_connect(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory(
        {
            "servers": {
                "bad": {"url": "https://h", "timeoutMs": "soon"},
                "py": {"url": py_mcp_server.url},
            }
        }
    )
    bad = await editor.wait_for_state("bad", "error")
    assert bad["error"] == {
        "kind": "other",
        "message": "servers.bad.timeoutMs: expected a positive whole number of milliseconds, "
        "got 'soon'",
    }
    await editor.wait_for_state("py", "connected")


async def test_configuration_change_touches_only_what_changed(
    editor_factory: Factory, py_mcp_server: Any, py_mcp_server_stateless: Any
) -> None:
    editor = await editor_factory(
        {"servers": {"a": {"url": py_mcp_server.url}, "b": {"url": py_mcp_server_stateless.url}}}
    )
    await editor.wait_for_state("a", "connected")
    await editor.wait_for_state("b", "connected")
    pushed_for_b = len([s for s in editor.statuses if s["server"] == "b"])
    await editor.configure(
        {
            "mcpls": {
                "servers": {
                    "b": {"url": py_mcp_server_stateless.url},
                    "c": {"url": py_mcp_server.url, "timeoutMs": 20000},
                }
            }
        }
    )
    await editor.wait_for_state("c", "connected")
    listed = await editor.request("mcp/status", {})
    assert [s["server"] for s in listed["servers"]] == ["b", "c"]
    assert len([s for s in editor.statuses if s["server"] == "b"]) == pushed_for_b
    # Changing c's settings restarts c alone.
    await editor.configure(
        {"servers": {"b": {"url": py_mcp_server_stateless.url}, "c": {"url": py_mcp_server.url}}}
    )

    def c_restarted() -> bool:
        states = [s["state"] for s in editor.statuses if s["server"] == "c"]
        return len(states) >= 4 and states[-2:] == ["connecting", "connected"]

    await editor.wait_until(c_restarted)
    assert len([s for s in editor.statuses if s["server"] == "b"]) == pushed_for_b


async def test_user_file_is_read_and_editor_settings_win(
    editor_factory: Factory, py_mcp_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "xdg-config" / "mcpls"
    config_dir.mkdir(parents=True)
    (config_dir / "servers.json").write_text(
        json.dumps({"mcpServers": {"fromfile": {"url": py_mcp_server.url}, "py": {"url": 3}}})
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}})
    await editor.wait_for_state("fromfile", "connected")
    await editor.wait_for_state("py", "connected")  # initializationOptions replaced the file's


async def test_disable_enable_restart_and_calls_on_a_disabled_server(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}})
    await editor.wait_for_state("py", "connected")
    status = await editor.request("mcp/disable", {"server": "py"})
    assert status["state"] == "disabled"
    with pytest.raises(JsonRpcException) as caught:
        await editor.request("mcp/callTool", {"server": "py", "name": "echo"})
    assert caught.value.data == {"server": "py", "kind": "other", "state": "disabled"}
    pushed = len(editor.statuses)
    again = await editor.request("mcp/disable", {"server": "py"})
    assert again["state"] == "disabled"
    assert len(editor.statuses) == pushed  # a no-op pushes nothing
    status = await editor.request("mcp/enable", {"server": "py"})
    assert status["state"] == "connected"
    status = await editor.request("mcp/restart", {"server": "py"})
    assert status["state"] == "connected"


async def test_disabled_in_settings_is_announced_and_not_started(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url, "enabled": False}}})
    status = await editor.wait_for_state("py", "disabled")
    assert "error" not in status


MALFORMED: list[tuple[str, object]] = [
    ("mcp/status", {"server": 5}),
    ("mcp/status", ["py"]),
    ("mcp/status", {"servre": "py"}),
    ("mcp/enable", {}),
    ("mcp/disable", {"server": ""}),
    ("mcp/restart", {"server": None}),
    ("mcp/listTools", "py"),
    ("mcp/callTool", {"server": "py"}),
    ("mcp/callTool", {"server": "py", "name": "echo", "arguments": [1, 2]}),
    ("mcp/callTool", {"server": "py", "name": 7}),
    ("mcp/callTool", {"server": "nope", "name": "echo"}),
]


async def test_malformed_params_get_invalid_params_and_the_server_keeps_serving(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}})
    await editor.wait_for_state("py", "connected")
    for method, params in MALFORMED:
        with pytest.raises(JsonRpcInvalidParams) as caught:
            await editor.raw_request(method, params)
        assert error_data(caught.value)["kind"] == "invalidParams", method
        assert method in str(caught.value) or "nope" in str(caught.value)
    with pytest.raises(JsonRpcInvalidParams, match="configured: 'py'"):
        await editor.raw_request("mcp/listTools", {"server": "nope"})
    with pytest.raises(JsonRpcMethodNotFound):
        await editor.raw_request("mcp/doesNotExist", {})
    result = await editor.request(
        "mcp/callTool", {"server": "py", "name": "echo", "arguments": {"text": "still here"}}
    )
    assert result["content"][0]["text"] == "still here"


async def test_unknown_tool_is_the_servers_error_not_a_crash(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    editor = await editor_factory({"servers": {"py": {"url": py_mcp_server.url}}})
    await editor.wait_for_state("py", "connected")
    # The SDK answers an unknown tool with isError or a JSON-RPC error; either way it
    # is the server's answer, passed on, and mcpls keeps the server connected.
    outcome: object
    try:
        outcome = await editor.request("mcp/callTool", {"server": "py", "name": "no_such_tool"})
    except JsonRpcException as exc:
        outcome = exc.data
    assert outcome in ({"server": "py", "kind": "other"},) or (
        isinstance(outcome, dict) and outcome.get("isError") is True
    )
    assert editor.latest("py")["state"] == "connected"


async def test_401_gives_auth_required_once_without_retrying(
    editor_factory: Factory, hostile_server: str
) -> None:
    url = f"{hostile_server}/unauthorized"
    editor = await editor_factory({"servers": {"locked": {"url": url}}})
    status = await editor.wait_for_state("locked", "authRequired")
    assert status["error"]["kind"] == "authRequired"
    with pytest.raises(JsonRpcException) as caught:
        await editor.request("mcp/listTools", {"server": "locked"})
    assert caught.value.data == {
        "server": "locked",
        "kind": "authRequired",
        "state": "authRequired",
    }
    await editor.request("mcp/status", {})
    async with httpx.AsyncClient() as http:
        seen = (await http.get(f"{hostile_server}/_requests")).json()
    assert len([r for r in seen if r["path"] == "/unauthorized"]) == 1


async def test_configured_authorization_header_is_sent(
    editor_factory: Factory, hostile_server: str
) -> None:
    url = f"{hostile_server}/unauthorized"
    editor = await editor_factory(
        {"servers": {"locked": {"url": url, "headers": {"Authorization": "Bearer pat-123"}}}}
    )
    await editor.wait_for_state("locked", "authRequired", "error")
    async with httpx.AsyncClient() as http:
        seen = (await http.get(f"{hostile_server}/_requests")).json()
    headers = {k.lower(): v for k, v in seen[0]["headers"].items()}
    assert headers["authorization"] == "Bearer pat-123"
    assert headers["accept"] == "application/json, text/event-stream"
    assert not any("pat-123" in line for line in editor.log)


@pytest.mark.parametrize(
    ("path", "kind", "words"),
    [
        ("/html", "protocol", "text/html"),
        ("/malformed", "protocol", "JSON"),
        ("/sse-drop", "connection", "closed the response stream"),
    ],
)
async def test_hostile_http_servers_get_clear_errors(
    editor_factory: Factory, hostile_server: str, path: str, kind: str, words: str
) -> None:
    editor = await editor_factory({"servers": {"bad": {"url": hostile_server + path}}})
    status = await editor.wait_for_state("bad", "error")
    assert status["error"]["kind"] == kind
    assert words in status["error"]["message"]


async def test_server_that_never_answers_times_out(
    editor_factory: Factory, hostile_server: str
) -> None:
    editor = await editor_factory(
        {"servers": {"mute": {"url": f"{hostile_server}/hang", "timeoutMs": 300}}}
    )
    status = await editor.wait_for_state("mute", "error")
    assert "no answer within 0.3 s" in status["error"]["message"]


async def test_nothing_listening_is_a_connection_error(editor_factory: Factory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    editor = await editor_factory({"servers": {"gone": {"url": f"http://127.0.0.1:{port}/mcp"}}})
    status = await editor.wait_for_state("gone", "error")
    assert status["error"]["kind"] == "connection"
    assert "cannot connect" in status["error"]["message"]


async def test_exit_ends_the_process_with_code_zero(editor_factory: Factory) -> None:
    editor = await editor_factory({"servers": {}})
    await editor.client.shutdown_session()
    assert editor.client._server is not None
    assert editor.client._server.returncode == 0


async def test_tls_error_is_a_connection_error_in_words(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    # https to a server that speaks plain http: the TLS handshake fails.
    url = py_mcp_server.url.replace("http://", "https://")
    editor = await editor_factory({"servers": {"tls": {"url": url}}})
    status = await editor.wait_for_state("tls", "error")
    assert status["error"]["kind"] == "connection"
    assert "TLS error" in status["error"]["message"]


async def test_exit_closes_http_sessions_and_stdio_processes(
    editor_factory: Factory, py_mcp_server: Any, stdio_server_command: list[str]
) -> None:
    editor = await editor_factory(
        {
            "servers": {
                "http": {"url": py_mcp_server.url},
                "local": {"command": stdio_server_command[0], "args": stdio_server_command[1:]},
            }
        }
    )
    await editor.wait_for_state("http", "connected")
    await editor.wait_for_state("local", "connected")
    pid = await editor.request("mcp/callTool", {"server": "local", "name": "get_pid"})
    process_id = int(pid["content"][0]["text"])
    await editor.client.shutdown_session()
    # The server saw the DELETE that ended our session; the local server is gone.
    assert "DELETE /mcp session=True" in py_mcp_server.output()
    try:
        os.kill(process_id, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError("the stdio server outlived mcpls")
