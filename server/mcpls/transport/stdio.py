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

from mcpls.errors import JSON_ERRORS, ConnectionFailed, ProtocolError
from mcpls.transport import LogSink, Message, ServerMessageHandler
from mcpls.transport.router import Router

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
        self._router = Router(on_server_message, log_sink, f"the {name} server")
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
        self._router.spawn(self._read_stdout())
        self._router.spawn(self._read_stderr())

    def session_started(self, protocol_version: str) -> None:
        """stdio has no per-request version header."""

    def reset_session(self) -> None:
        """A stdio session is the process itself."""

    async def request(self, message: Message) -> Message:
        future = self._router.expect(message["id"])
        try:
            await self.send(message)
            return await future
        finally:
            self._router.forget(message["id"])

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
        self._router.close()

    # -- internals ----------------------------------------------------------------------

    def _fail_pending(self, error: Exception) -> None:
        self._router.fail_all(error)

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
        except JSON_ERRORS:
            message = None
        try:
            if not isinstance(message, dict):
                raise ProtocolError("not a JSON object")
            self._router.dispatch(message, self.send)
        except ProtocolError:
            shown = line[:120].decode("utf-8", "replace").strip()
            error = ProtocolError(
                f"the {self._name} server wrote something that is not JSON-RPC on stdout: "
                f"{shown!r} (servers must log to stderr)"
            )
            self._log("warning", error.message)
            self._fail_pending(error)

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
