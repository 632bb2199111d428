"""Through the real `mcpls serve`: network and stream faults while a session is in use
(issue 10), against the official SDK's authorization and MCP server, plus hostile answers
no real server sends on demand (tests/peers/hostile_http.py). For each fault: what the
person sees (state, error kind, message), and that mcpls recovers by itself once the fault
is gone, with no restart and no new sign-in."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pygls.exceptions import JsonRpcException

from lsp_client import error_data
from peers.oauth.browser import signs_in
from peers.oauth.fixtures import PyOAuthServer

Factory = Callable[..., Any]


def settings(url: str, **entry: Any) -> dict[str, Any]:
    return {
        "servers": {"svc": {"url": url, **entry}},
        "allowInsecureLoopback": True,  # every peer runs on this machine over plain http
        "tokenStorage": "file",
    }


async def signed_in_editor(editor_factory: Factory, server: PyOAuthServer) -> Any:
    editor = await editor_factory(settings(server.mcp_url))
    editor.browse = signs_in
    await editor.wait_for_state("svc", "authRequired")
    status = await editor.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected", status
    return editor


async def call(editor: Any, name: str, **arguments: Any) -> dict[str, Any]:
    result: dict[str, Any] = await editor.request(
        "mcp/callTool", {"server": "svc", "name": name, "arguments": arguments}
    )
    return result


async def echo(editor: Any, text: str) -> None:
    result = await call(editor, "echo", text=text)
    assert result["content"][0]["text"] == text


async def test_a_stream_the_server_closes_mid_call_is_resumed_with_last_event_id(
    editor_factory: Factory, py_oauth_server_factory: Factory
) -> None:
    # SEP-1699: a server with an event store may end a call's stream before the answer;
    # mcpls comes back with GET + Last-Event-ID after `retry` and gets the rest.
    server = py_oauth_server_factory(resumable=True)
    editor = await signed_in_editor(editor_factory, server)
    result = await call(editor, "hand_off", text="handed over")
    assert result["content"][0]["text"] == "handed over"
    stats = await server.stats()
    assert stats["resumptions"] == 1
    await editor.wait_for_log("[svc] after")  # replayed from the event store
    assert editor.latest("svc")["state"] == "connected"
    assert stats["authorizations"] == 1


async def retrying(editor: Any, words: str) -> dict[str, Any]:
    """Until the latest status of svc is an error whose message has `words`."""

    def reached() -> bool:
        latest = editor.latest("svc")
        return latest is not None and words in latest.get("error", {}).get("message", "")

    await editor.wait_until(reached)
    status: dict[str, Any] = editor.latest("svc")
    assert status["state"] == "error"
    return status


async def wait_for_stream(editor: Any, task: asyncio.Task[Any]) -> None:
    """Until the slow call's stream carried its first event (the server is mid-answer)."""
    await editor.wait_for_log("[svc] working")
    assert not task.done()


@pytest.mark.parametrize("resumable", [False, True], ids=["no-event-store", "event-store"])
async def test_a_server_killed_mid_stream_fails_the_call_and_the_next_one_works(
    editor_factory: Factory, py_oauth_server_factory: Factory, tmp_path: Path, resumable: bool
) -> None:
    # The process dies in the middle of a call's SSE stream and comes back on the same
    # port with every sign-in (its database) but no session. Without an event store there
    # is nothing to resume; with one, the resumption meets a dead port. Either way the
    # call fails as `connection` at once, and the next call works in a new session.
    server = py_oauth_server_factory(state=tmp_path / "as-state.json", resumable=resumable)
    editor = await signed_in_editor(editor_factory, server)
    slow = asyncio.create_task(call(editor, "working", seconds=60))
    await wait_for_stream(editor, slow)
    started = time.monotonic()
    server.process.kill()
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wait_for(slow, 30)
    failed_after = time.monotonic() - started
    assert error_data(caught.value)["kind"] == "connection"
    print(f"failed {failed_after:.2f} s after the kill: {caught.value}")
    # The error is pushed, then again with the reconnection's delay.
    status = await retrying(editor, "retrying in 1 s")
    assert status["error"]["kind"] == "connection"
    assert "closed the response stream" in status["error"]["message"] or (
        "could not be resumed" in status["error"]["message"]
    )
    assert status["auth"]["authenticated"] is True  # the sign-in is not what broke

    server.start_again()
    back = time.monotonic()
    await echo(editor, "back")  # no action, and no wait for the backoff timer
    print(f"first call after the server came back answered in {time.monotonic() - back:.2f} s")
    assert editor.latest("svc")["state"] == "connected"
    stats = await server.stats()
    assert stats["starts"] == 2
    assert stats["authorizations"] == 1  # no new sign-in
    assert len(editor.shown_documents) == 1


async def test_the_network_lost_and_back_needs_no_restart_and_no_sign_in(
    editor_factory: Factory, py_oauth_server_factory: Factory, tmp_path: Path
) -> None:
    # The server's port closes (the network is gone) and opens again on the same port.
    # Calls meanwhile fail as `connection` and say so; the first call once it is back
    # works, whatever the backoff timer says, with the same sign-in.
    server = py_oauth_server_factory(state=tmp_path / "as-state.json")
    editor = await signed_in_editor(editor_factory, server)
    server.process.stop()
    with pytest.raises(JsonRpcException) as caught:
        await echo(editor, "lost")
    assert error_data(caught.value)["kind"] == "connection"
    assert "cannot connect" in str(caught.value)

    # The backoff moves on (1 s, then 2 s): the timer is now seconds away.
    status = await retrying(editor, "retrying in 2 s")
    assert status["error"]["kind"] == "connection"
    assert status["auth"]["authenticated"] is True
    with pytest.raises(JsonRpcException) as during:
        await echo(editor, "still lost")  # tried at once, and refused at once
    assert error_data(during.value)["kind"] == "connection"
    assert "not connected: cannot connect" in str(during.value)

    server.start_again()
    back = time.monotonic()
    await echo(editor, "back")  # no wait for the timer
    print(f"first call after the port reopened answered in {time.monotonic() - back:.2f} s")
    assert editor.latest("svc")["state"] == "connected"
    stats = await server.stats()
    assert stats["authorizations"] == 1
    assert len(editor.shown_documents) == 1


def hostile_settings(hostile_server: str, *kinds: str, **entry: Any) -> dict[str, Any]:
    return {
        "servers": {kind: {"url": f"{hostile_server}/faults/{kind}", **entry} for kind in kinds}
    }


async def hostile_call(editor: Any, server: str, name: str, **arguments: Any) -> Any:
    return await editor.request(
        "mcp/callTool", {"server": server, "name": name, "arguments": arguments}
    )


async def test_a_lost_session_while_resuming_fails_the_call_without_sending_it_again(
    editor_factory: Factory, hostile_server: str
) -> None:
    # The server took the call, its stream broke, and the GET that resumes it gets 404
    # (it restarted): the call may have been carried out, so it is not sent again in a
    # new session as a 404 on a POST would be; the next call works in a new session.
    editor = await editor_factory(hostile_settings(hostile_server, "resume-lost"))
    await editor.wait_for_state("resume-lost", "connected")
    with pytest.raises(JsonRpcException) as caught:
        await hostile_call(editor, "resume-lost", "transfer", amount=100)
    assert error_data(caught.value)["kind"] == "connection"
    assert "lost the session while answering tools/call" in str(caught.value)
    assert "whether it was carried out is unknown" in str(caught.value)
    await editor.wait_for_state("resume-lost", "connected")
    result = await hostile_call(editor, "resume-lost", "echo", text="next")
    assert result["content"][0]["text"] == "next"
    seen = await hostile_requests(hostile_server)
    transfers = [r for r in seen if r["method"] == "POST" and '"transfer"' in r["body"]]
    assert len(transfers) == 1
    resumes = [r for r in seen if r["method"] == "GET" and "last-event-id" in r["headers"]]
    assert [r["headers"]["last-event-id"] for r in resumes] == ["e1"]


async def test_a_stream_that_never_ends_stops_at_the_deadline_and_others_go_on(
    editor_factory: Factory, hostile_server: str
) -> None:
    # Events and keep-alive comments forever, never the answer: the call ends at the
    # server's timeoutMs, and calls meanwhile (and after) are answered.
    editor = await editor_factory(hostile_settings(hostile_server, "endless", timeoutMs=1500))
    await editor.wait_for_state("endless", "connected")
    started = time.monotonic()
    endless = asyncio.create_task(hostile_call(editor, "endless", "wait"))
    for n in range(3):
        result = await hostile_call(editor, "endless", "echo", text=f"meanwhile {n}")
        assert result["content"][0]["text"] == f"meanwhile {n}"
    assert not endless.done()
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wait_for(endless, 30)
    elapsed = time.monotonic() - started
    assert error_data(caught.value)["kind"] == "timeout"
    assert "no answer within 1.5 s" in str(caught.value)
    assert elapsed < 15, elapsed  # the deadline, not the 30 s of a hung test
    result = await hostile_call(editor, "endless", "echo", text="after")
    assert result["content"][0]["text"] == "after"
    assert editor.latest("endless")["state"] == "connected"
    seen = await hostile_requests(hostile_server)
    assert any('"notifications/cancelled"' in r["body"] for r in seen)


def reset_peak_rss(pid: int) -> None:
    """Start the process's peak resident set (VmHWM) again from now (proc(5) clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


async def test_a_100_mb_answer_is_refused_at_the_limit_with_memory_bounded(
    editor_factory: Factory, hostile_server: str
) -> None:
    # 100 MB tool results, as one JSON body (chunked, no Content-Length) and as one SSE
    # event: refused at MAX_MESSAGE_BYTES (64 MiB) with an error naming it; mcpls holds
    # at most about the limit, never the payload, and goes on serving.
    from mcpls.transport.http import MAX_MESSAGE_BYTES

    editor = await editor_factory(hostile_settings(hostile_server, "huge-json", "huge-sse"))
    for name in ("huge-json", "huge-sse"):
        await editor.wait_for_state(name, "connected")
    assert editor.client._server is not None
    pid = editor.client._server.pid
    growths: dict[str, int] = {}
    for name in ("huge-json", "huge-sse"):
        # Each answer against its own start, so that memory the allocator kept from the
        # first one does not count for the second.
        reset_peak_rss(pid)
        before = peak_rss(pid)
        with pytest.raises(JsonRpcException) as caught:
            await hostile_call(editor, name, "big")
        assert error_data(caught.value)["kind"] == "protocol"
        assert f"more than the {MAX_MESSAGE_BYTES} bytes (64 MiB)" in str(caught.value)
        result = await hostile_call(editor, name, "echo", text="still here")
        assert result["content"][0]["text"] == "still here"
        assert editor.latest(name)["state"] == "connected"
        growths[name] = peak_rss(pid) - before
        print(f"{name}: peak RSS +{growths[name] / 2**20:.0f} MiB over {before / 2**20:.0f} MiB")
    # A legitimate answer of up to the limit must be held, so the bound is the limit plus
    # room for the rest of mcpls, below the 95 MiB of the payload that holding it all
    # would take at the very least (before the SSE cap: +325 MiB).
    for name, growth in growths.items():
        assert growth < MAX_MESSAGE_BYTES * 1.4, f"{name}: {growth / 2**20:.0f} MiB for 100 MB"


async def test_control_characters_in_a_tool_result_reach_the_editor_as_data_only(
    editor_factory: Factory, hostile_server: str, tmp_path: Path
) -> None:
    # CR LF with a Set-Cookie line, ANSI escapes, NUL: the result is the editor's data,
    # verbatim; the same text in a log notification is escaped in the editor's log and
    # in mcpls's own, where it can neither cut a line nor drive a terminal.
    control_text = (
        "ok\r\nSet-Cookie: session=stolen; Path=/\r\n\r\n"
        "\x1b[2J\x1b[31mred\x1b[0m \x1b]0;title\x07 nul:\x00 bell:\x07 del:\x7f end"
    )
    log_file = tmp_path / "mcpls-debug.log"
    editor = await editor_factory(
        {**hostile_settings(hostile_server, "controls"), "logLevel": "debug"},
        log_level="debug",
        log_file=log_file,
    )
    await editor.wait_for_state("controls", "connected")
    result = await hostile_call(editor, "controls", "show")
    assert result["content"][0]["text"] == control_text
    await editor.wait_for_log("[controls] ok\\r\\nSet-Cookie")
    # The same text as a JSON-RPC error: shown to the person, escaped and bounded.
    with pytest.raises(JsonRpcException) as caught:
        await hostile_call(editor, "controls", "fail")
    assert str(caught.value).startswith("server error -32000: ok\\r\\nSet-Cookie")
    assert len(str(caught.value)) < 1200
    assert not UNPRINTABLE.search(str(caught.value))
    result = await hostile_call(editor, "controls", "echo", text="next")
    assert result["content"][0]["text"] == "next"
    logged = log_file.read_text(errors="strict")
    assert "ok\\r\\nSet-Cookie: session=stolen" in logged
    for raw in ("\x1b", "\x00", "\x07", "\x7f", "\r"):
        assert raw not in logged
        assert not any(raw in line for line in editor.log)


async def hostile_requests(hostile_server: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        seen: list[dict[str, Any]] = (await http.get(f"{hostile_server}/_requests")).json()
    return seen


# Header values no HTTP library sends (h11 refuses to write them), so a raw TCP server on
# 127.0.0.1 writes them: ANSI escapes, BEL, a C1 CSI (0x9b), NUL, and CR LF starting a
# Set-Cookie line, in the realm, error_description, scope and resource_metadata.
RAW_CHALLENGES = {
    "esc": (
        b'Bearer realm="\x1b[5mrealm", error="invalid_token", '
        b'error_description="\x1b[2J\x1b]0;pwned\x07gone", scope="mcp:read \x1b[31mred \x9b2J", '
        b'resource_metadata="http://127.0.0.1:9/prm\x1b[31m"'
    ),
    "nul": b'Bearer realm="a\x00b", error_description="nul"',
    "crlf": b'Bearer realm="x", error_description="y\r\nSet-Cookie: injected=1; Path=/"',
    "step-up": (
        b'Bearer error="insufficient_scope", scope="mcp:read \x9b2J caf\xe9 ok:admin", '
        b'error_description="\x1b[31mneeds admin\x7f"'
    ),
}
UNPRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class RawMcpPeer:
    """Answers MCP over hand-written HTTP/1.1, one request per connection: `/step-up`
    initializes and fails `tools/call` with a 403 step-up challenge; the others answer
    every request 401 with their challenge."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> RawMcpPeer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.port}/{kind}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            method, path = request_line.split(" ")[:2]
            headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
            length = int(headers.get("content-length") or 0)
            body = json.loads(await reader.readexactly(length)) if length else {}
            writer.write(self._answer(path.strip("/"), method, body))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    def _answer(self, kind: str, method: str, body: dict[str, Any]) -> bytes:
        def response(status: str, extra: bytes = b"", content: bytes = b"") -> bytes:
            return (
                f"HTTP/1.1 {status}\r\nConnection: close\r\n"
                f"Content-Length: {len(content)}\r\n".encode()
                + extra
                + b"\r\n"
                + content
            )

        def json_answer(result: dict[str, Any]) -> bytes:
            content = json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": result})
            extra = b"Content-Type: application/json\r\nMcp-Session-Id: raw-1\r\n"
            return response("200 OK", extra, content.encode())

        challenge = b"WWW-Authenticate: " + RAW_CHALLENGES.get(kind, b"Bearer") + b"\r\n"
        if kind != "step-up" or method != "POST":
            return response("401 Unauthorized" if method == "POST" else "405 No", challenge)
        if body.get("method") == "initialize":
            return json_answer(
                {
                    "protocolVersion": body["params"]["protocolVersion"],
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "raw", "version": "0"},
                }
            )
        if "id" not in body:
            return response("202 Accepted")
        if body.get("method") == "tools/list":
            return json_answer({"tools": [{"name": "admin", "inputSchema": {"type": "object"}}]})
        return response("403 Forbidden", challenge)


def printable_everywhere(editor: Any, *texts: str) -> None:
    """No unprintable character in any status's strings, log line or mcpls's log file."""
    seen = [*texts, *editor.log]
    for status in editor.statuses:
        seen.append(status.get("error", {}).get("message", ""))
        seen.extend(status.get("auth", {}).get("requiredScopes", []))
    if editor.log_file is not None:
        seen.append(editor.log_file.read_text().replace("\n", " "))
    found = [text for text in seen if UNPRINTABLE.search(text)]
    assert not found, found[:3]


async def test_control_characters_in_www_authenticate_are_never_echoed_raw(
    editor_factory: Factory,
) -> None:
    async with RawMcpPeer() as peer:
        editor = await editor_factory(
            {
                "servers": {kind: {"url": peer.url(kind)} for kind in RAW_CHALLENGES},
                "allowInsecureLoopback": True,
                "tokenStorage": "file",
                "logLevel": "debug",
            },
            log_level="debug",
        )
        # ESC and CR LF inside a challenge: a sign-in is needed, in mcpls's own words.
        for kind in ("esc", "crlf"):
            status = await editor.wait_for_state(kind, "authRequired")
            assert status["error"]["message"] == f"{kind} needs you to sign in (HTTP 401)"
        with pytest.raises(JsonRpcException) as esc:
            await editor.request("mcp/authenticate", {"server": "esc"})
        assert "127.0.0.1:9" not in str(esc.value)  # the poisoned metadata URL was dropped
        # NUL: the HTTP layer refuses the header line; the message quotes it, escaped.
        status = await editor.wait_for_state("nul", "error")
        assert status["error"]["kind"] == "connection"
        assert "broke the connection: 'illegal header line" in status["error"]["message"]
        # A 403 step-up whose scope mixes good tokens with a C1 CSI (0x9b) and non-ASCII,
        # which pass the header grammar (obs-text): only RFC 6749 scope tokens are kept.
        await editor.wait_for_state("step-up", "connected")
        with pytest.raises(JsonRpcException) as step_up:
            await editor.request(
                "mcp/callTool", {"server": "step-up", "name": "admin", "arguments": {}}
            )
        assert error_data(step_up.value)["kind"] == "authRequired"
        assert "needs more permissions ('mcp:read ok:admin')" in str(step_up.value)
        status = await editor.wait_for_state("step-up", "connected")
        assert status["auth"]["requiredScopes"] == ["mcp:read", "ok:admin"]
        printable_everywhere(editor, str(esc.value), str(step_up.value))
