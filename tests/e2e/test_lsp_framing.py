"""Issue 10, raw bytes into a real `mcpls serve`: a wrong `Content-Length` (too short, too
long, not a number, negative, 10^12, missing, doubled) never kills mcpls nor leaves it out
of step: the next well-formed request is answered, and end of input in the middle of a
message exits cleanly (lsp/framing.py says what each bad frame costs)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "initialized", "params": {}}


def status(request_id: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "mcp/status"}).encode()


def frame(body: bytes, header: bytes | None = None) -> bytes:
    header = b"Content-Length: %d\r\n" % len(body) if header is None else header
    return header + b"\r\n" + body


class RawEditor:
    """`mcpls serve` spoken to byte by byte; every answer it wrote, by id."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.answers: dict[Any, list[dict[str, Any]]] = {}
        self._arrived = asyncio.Condition()
        self._reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            length = 0
            while (line := await stdout.readline()).strip():
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line:
                return
            reply = json.loads(await stdout.readexactly(length))
            async with self._arrived:
                self.answers.setdefault(reply.get("id"), []).append(reply)
                self._arrived.notify_all()

    async def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    async def answer(self, request_id: int) -> dict[str, Any]:
        async with asyncio.timeout(15), self._arrived:
            await self._arrived.wait_for(lambda: request_id in self.answers)
        [reply] = self.answers[request_id]
        return reply


@pytest_asyncio.fixture
async def raw_editor(tmp_path: Path) -> AsyncIterator[RawEditor]:
    log_file = tmp_path / "mcpls.log"
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "mcpls", "serve", "--log-file", str(log_file)),
        stdin=PIPE,
        stdout=PIPE,
        stderr=PIPE,
        env=dict(os.environ),
    )
    editor = RawEditor(process)
    await editor.send(
        frame(json.dumps(INITIALIZE).encode()) + frame(json.dumps(INITIALIZED).encode())
    )
    await editor.answer(1)
    try:
        yield editor
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        editor._reading.cancel()


async def test_after_each_bad_frame_the_next_request_is_answered(
    raw_editor: RawEditor, tmp_path: Path
) -> None:
    bad_frames: dict[int, Callable[[bytes], bytes]] = {
        # id of the bad frame's body: its framing
        10: lambda body: frame(body, b"Content-Length: %d\r\n" % (len(body) - 10)),  # too short
        12: lambda body: frame(body, b"Content-Length: twelve\r\n"),
        14: lambda body: frame(body, b"Content-Length: -5\r\n"),
        16: lambda body: frame(body, b""),  # no header at all
        18: lambda body: frame(body, b"Content-Length: 5\r\nContent-Length: 90\r\n"),
        20: lambda body: frame(body, b"Content-Length: 1000000000000\r\n"),  # 10^12
        22: lambda body: frame(body, b"Content-Length: %s\r\n" % (b"9" * 5000)),
    }
    for bad, make in bad_frames.items():
        await raw_editor.send(make(status(bad)) + frame(status(bad + 1)))
        reply = await raw_editor.answer(bad + 1)
        assert reply["result"] == {"servers": []}, (bad, reply)
    # Only the cut body was read as a message: answered with a parse error, id null.
    [parse_error] = raw_editor.answers[None]
    assert parse_error["error"]["code"] == -32700
    assert not set(bad_frames) & set(raw_editor.answers)

    # The same header twice with the same value is one header; other headers are ignored.
    body = status(30)
    header = b"Content-Length: %d\r\ncontent-length:%d\r\nContent-Type: x\r\n" % ((len(body),) * 2)
    await raw_editor.send(frame(body, header))
    assert (await raw_editor.answer(30))["result"] == {"servers": []}

    # Too long: mcpls waits for the missing bytes, which the next message supplies (that
    # body fails to parse); the message after that is answered.
    await raw_editor.send(frame(status(40), b"Content-Length: %d\r\n" % (len(status(40)) + 30)))
    await raw_editor.send(frame(status(41)))
    await raw_editor.send(frame(status(42)))
    assert (await raw_editor.answer(42))["result"] == {"servers": []}
    assert len(raw_editor.answers[None]) == 2
    assert raw_editor.process.returncode is None  # never died

    log = (tmp_path / "mcpls.log").read_text()
    assert "skipped a message from the editor: its Content-Length 'twelve' is not a number" in log
    assert "more than the 67108864 bytes mcpls reads" in log
    assert "two different Content-Length headers" in log


async def test_a_huge_length_holds_no_memory_and_junk_is_dropped(raw_editor: RawEditor) -> None:
    # 10^12 declared, then 16 MB without a newline: neither is buffered whole.
    await raw_editor.send(b"Content-Length: 1000000000000\r\n\r\n" + b"x" * 16_000_000)
    await raw_editor.send(frame(status(50)))
    assert (await raw_editor.answer(50))["result"] == {"servers": []}
    high_water = _peak_rss_kib(raw_editor.process.pid)
    assert high_water is None or high_water < 120_000, high_water


async def test_end_of_input_in_the_middle_of_a_message_exits_cleanly(
    raw_editor: RawEditor,
) -> None:
    # A length under the limit whose bytes never come, then the editor goes away.
    await raw_editor.send(b"Content-Length: 60000000\r\n\r\n" + status(60)[:20])
    assert raw_editor.process.stdin is not None
    raw_editor.process.stdin.close()
    async with asyncio.timeout(15):
        code = await raw_editor.process.wait()
    assert code == 1  # no `shutdown` came: the LSP exit code for that
    assert raw_editor.process.stderr is not None
    stderr = await raw_editor.process.stderr.read()
    assert b"Traceback" not in stderr, stderr[-2000:]


def _peak_rss_kib(pid: int) -> int | None:
    """The process's peak resident memory (Linux /proc), None where there is no /proc."""
    try:
        status_text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


async def test_a_status_written_right_after_a_change_of_settings_follows_it(
    raw_editor: RawEditor,
) -> None:
    # mcp/status may be answered by the thread that reads the input (lsp/editor_input.py),
    # but never before a message written ahead of it that changes what it reports.
    servers = {f"s{n}": {"url": f"http://127.0.0.1:9/{n}", "enabled": False} for n in range(3)}
    change = {
        "jsonrpc": "2.0",
        "method": "workspace/didChangeConfiguration",
        "params": {"settings": {"mcpls": {"servers": servers}}},
    }
    await raw_editor.send(frame(json.dumps(change).encode()) + frame(status(70)))
    reply = await raw_editor.answer(70)
    assert [s["server"] for s in reply["result"]["servers"]] == ["s0", "s1", "s2"]
    assert {s["state"] for s in reply["result"]["servers"]} == {"disabled"}
