"""The editor's input, read on its own thread.

The thread reads stdin, frames it (framing.py), parses each message and hands them to the
event loop in order, one batch per read. One request is answered on the thread itself:
`mcp/status`, from the statuses the hub last published (`Hub.published`), so that a status
bar is never kept waiting by the work in flight. With 1,000 tool calls in flight the event
loop's turns last tens of milliseconds (2,000 callbacks a turn), and a status request
handed to it waited two turns and every garbage collection in between: 230 ms at the
median, a second at worst (issue 10, figure 8 of tests/bench).

A status answered early must still say what the editor expects from the order it wrote
in: a status after `workspace/didChangeConfiguration` lists the servers it added. So the
thread answers only when every message before it has been handled, except the ones a
status may overtake (`OVERTAKEN`: their effect on a status is not ordered with their
answer anyway). Otherwise, and for anything but the plain request (unknown server, params
it cannot read, before `initialize`, after `shutdown`), the request goes to the event loop
like any other message and gets the answer it always got.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from mcpls.lsp.framing import Framer

log = logging.getLogger(__name__)

READ_SIZE = 65536
# What `mcp/status` may overtake: requests whose effect on a status (a call that finds the
# server gone) reaches the editor by `mcp/didChangeStatus`, not by its order with their
# answers; and status requests themselves.
OVERTAKEN = frozenset({"mcp/callTool", "mcp/listTools", "mcp/status", "$/cancelRequest"})


class EditorInput:
    """Reads `fd` until end of input on a daemon thread (so that exiting never waits on it);
    `deliver` runs on `loop` with each batch of what was read (JSON values, or the exception
    reading one raised), `ended` once at end of input.

    `statuses` gives the hub's published statuses; `answer(id, result)` writes an answer to
    the editor (it must be safe to call from the thread)."""

    def __init__(
        self,
        fd: int,
        loop: asyncio.AbstractEventLoop,
        *,
        deliver: Callable[[list[Any]], None],
        ended: Callable[[], None],
        statuses: Callable[[], Mapping[str, dict[str, Any]]],
        answer: Callable[[int | str, dict[str, Any]], None],
    ) -> None:
        self._fd = fd
        self._loop = loop
        self._deliver = deliver
        self._ended = ended
        self._statuses = statuses
        self._answer = answer
        self._framer = Framer(self._read)
        self._batch: list[Any] = []
        self._handed = 0  # messages handed to the loop that a status must not overtake
        self._handled = 0  # how many of them the loop has handled (written on the loop)
        self._open = False  # between `initialize` and `shutdown`

    def start(self) -> None:
        threading.Thread(target=self._run, name="mcpls-stdin", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, READ_SIZE)
            except OSError:
                chunk = b""
            if not chunk:
                self._framer.end()
                self._hand_over()
                self._call(self._ended)
                return
            self._framer.feed(chunk)
            self._hand_over()

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: mcpls is exiting
            self._loop.call_soon_threadsafe(callback, *args)

    def _hand_over(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self._call(self._handle, batch, self._handed)

    def _handle(self, batch: list[Any], handed: int) -> None:
        """On the loop: deliver a batch; once what it started has taken its first step (an
        async handler runs as a task: `initialized` adds the servers in its first step), let
        the thread know it was handled. A status answered on the loop would have run then."""
        try:
            self._deliver(batch)
        finally:
            self._loop.call_soon(self._handled_up_to, handed)

    def _handled_up_to(self, handed: int) -> None:
        self._handled = handed

    def _read(self, body: bytes) -> None:
        """On the thread: one message's body, as framed."""
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:  # answered on the loop, as always
            self._batch.append(exc)
            self._handed += 1
            return
        method = message.get("method") if isinstance(message, dict) else None
        if method == "mcp/status" and self._answered_here(message):
            return
        if method == "initialize":
            self._open = True
        elif method in ("shutdown", "exit"):
            self._open = False
        self._batch.append(message)
        if method not in OVERTAKEN:
            self._handed += 1

    def _answered_here(self, message: dict[str, Any]) -> bool:
        try:
            return self._answered(message)
        except OSError:  # the editor is gone (its input ends next)
            log.warning("could not answer mcp/status: the editor's output is closed")
            return True
        except Exception:  # a bug: the loop answers it instead, the log has the details
            log.exception("answering mcp/status on the input thread")
            return False

    def _answered(self, message: dict[str, Any]) -> bool:
        """Answer a plain status request on the thread, when it may be (module docstring)."""
        if not self._open or self._handled != self._handed or message.get("jsonrpc") != "2.0":
            return False
        request_id = message.get("id")
        params = message.get("params")
        params = {} if params is None else params
        if (
            not isinstance(request_id, int | str)
            or isinstance(request_id, bool)
            or not isinstance(params, dict)
            or not params.keys() <= {"server"}
        ):
            return False
        published = self._statuses()
        if "server" not in params:
            servers = [published[name] for name in sorted(published)]
        elif isinstance(params["server"], str) and params["server"] in published:
            servers = [published[params["server"]]]
        else:
            return False
        self._answer(request_id, {"servers": servers})
        return True
