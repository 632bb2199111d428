"""stdio transport: a local MCP server as a child process, newline-delimited JSON-RPC.

stdout carries only JSON-RPC; anything else there is a protocol violation that fails
the requests waiting for an answer. stderr lines are the server's log. When the process
ends, every waiting request fails with its exit status and `on_exit` is told, so the
connection can restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

from mcpls.errors import ConnectionFailed, ProtocolError
from mcpls.transport import LogSink, Message, ServerMessageHandler, is_response

TERMINATE_GRACE_S = 2.0
# Lines longer than this are not JSON-RPC we can use; asyncio's default limit is 64 KiB.
LINE_LIMIT = 256 * 1024 * 1024


def describe_exit(returncode: int) -> str:
    """`exited with status 3` or `was killed by signal 9`."""
    if returncode < 0:
        return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class StdioTransport:
    """One MCP server process."""

    def __init__(
        self,
        command: str,
        args: list[str],
        *,
        env: dict[str, str],
        on_server_message: ServerMessageHandler,
        log_sink: LogSink,
        on_exit: Callable[[int], None],
        name: str,
        cwd: str | None = None,
    ) -> None:
        self.command = command
        self._cwd = cwd
        self.args = args
        self._env = env
        self._on_server_message = on_server_message
        self._log = log_sink
        self._on_exit = on_exit
        self._name = name
        self._process: asyncio.subprocess.Process | None = None
        self._pending: dict[Any, asyncio.Future[Message]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        try:
            self._process = await asyncio.create_subprocess_exec(
                self.command,
                *self.args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, **self._env},
                cwd=self._cwd,
                limit=LINE_LIMIT,
            )
        except OSError as exc:
            raise ConnectionFailed(
                f"cannot start {self.command!r}: {exc.strerror or exc}"
                " (check command, cwd and PATH in the server's settings)"
            ) from None
        self._spawn(self._read_stdout())
        self._spawn(self._read_stderr())

    def session_started(self, protocol_version: str) -> None:
        """stdio has no per-request version header."""

    def reset_session(self) -> None:
        """A stdio session is the process itself."""

    async def request(self, message: Message) -> Message:
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[message["id"]] = future
        try:
            await self.send(message)
            return await future
        finally:
            self._pending.pop(message["id"], None)

    async def send(self, message: Message) -> None:
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            raise ConnectionFailed(f"the {self._name} server process is not running")
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        try:
            async with self._write_lock:
                process.stdin.write(line)
                await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise ConnectionFailed(f"the {self._name} server process closed its input") from None

    async def close(self) -> None:
        self._closing = True
        process = self._process
        if process is not None and process.returncode is None:
            if process.stdin is not None:
                process.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                async with asyncio.timeout(TERMINATE_GRACE_S):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for task in list(self._tasks):
            task.cancel()

    # -- internals ----------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fail_pending(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    async def _read_stdout(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        stdout = self._process.stdout
        while True:
            try:
                line = await stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                self._fail_pending(ProtocolError(f"the {self._name} server wrote an endless line"))
                break
            if not line:
                break
            if line.strip():
                self._handle_line(line)
        returncode = await self._process.wait()
        self._fail_pending(
            ConnectionFailed(f"the {self._name} server process {describe_exit(returncode)}")
        )
        if not self._closing:
            self._on_exit(returncode)

    def _handle_line(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            message = None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            shown = line[:120].decode("utf-8", "replace").strip()
            error = ProtocolError(
                f"the {self._name} server wrote something that is not JSON-RPC on stdout: "
                f"{shown!r} (servers must log to stderr)"
            )
            self._log("warning", error.message)
            self._fail_pending(error)
            return
        if is_response(message):
            future = self._pending.get(message["id"])
            if future is not None and not future.done():
                future.set_result(message)
            else:
                self._log("debug", f"answer to an unknown request id {message['id']!r} ignored")
        elif isinstance(message.get("method"), str):
            self._spawn(self._answer(message))
        else:
            self._fail_pending(ProtocolError(f"the {self._name} server sent malformed JSON-RPC"))

    async def _answer(self, message: Message) -> None:
        reply = await self._on_server_message(message)
        if reply is not None:
            with contextlib.suppress(ConnectionFailed):
                await self.send(reply)

    async def _read_stderr(self) -> None:
        assert self._process is not None
        assert self._process.stderr is not None
        stderr = self._process.stderr
        while True:
            try:
                line = await stderr.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                self._log("info", text)
