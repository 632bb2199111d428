"""The editor's input thread (lsp/editor_input.py) over a real pipe, with an event loop
running on a thread of its own that a test can hold busy: `mcp/status` is answered while
the loop is busy, and only when nothing it must follow is still waiting for the loop."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from mcpls.lsp.editor_input import EditorInput

WAIT_S = 10
STATUSES = {
    "b": {"server": "b", "transport": "http", "state": "connected"},
    "a": {"server": "a", "transport": "stdio", "state": "authRequired"},
}


def frame(message: object) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def request(request_id: int, method: str, params: object = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


@dataclass
class Editor:
    """Writes to the input thread's pipe; sees what reached the loop and what the thread
    answered itself."""

    write_fd: int
    loop: asyncio.AbstractEventLoop
    statuses: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(STATUSES))
    # Run on the loop with each message as it is delivered (a handler's work).
    handlers: dict[str, Callable[[], None]] = field(default_factory=dict)
    delivered: queue.Queue[Any] = field(default_factory=queue.Queue)
    answered: queue.Queue[tuple[int | str, dict[str, Any]]] = field(default_factory=queue.Queue)
    ended: threading.Event = field(default_factory=threading.Event)

    def send(self, *messages: object) -> None:
        os.write(self.write_fd, b"".join(frame(m) for m in messages))

    def reached_loop(self, count: int) -> list[Any]:
        return [self.delivered.get(timeout=WAIT_S) for _ in range(count)]

    def answer(self) -> tuple[int | str, dict[str, Any]]:
        return self.answered.get(timeout=WAIT_S)

    @contextmanager
    def loop_busy(self) -> Iterator[None]:
        """The loop stuck in one long callback (a turn with thousands of calls in it)."""
        inside, release = threading.Event(), threading.Event()

        def busy() -> None:
            inside.set()
            release.wait(WAIT_S)

        self.loop.call_soon_threadsafe(busy)
        assert inside.wait(WAIT_S)
        try:
            yield
        finally:
            release.set()

    def initialized(self) -> None:
        self.send(request(1, "initialize", {}))
        assert self.reached_loop(1)[0]["method"] == "initialize"
        self.loop_idle()

    def loop_idle(self) -> None:
        """Every batch handed so far has been handled (the loop ran a later callback)."""
        done = threading.Event()
        self.loop.call_soon_threadsafe(done.set)
        assert done.wait(WAIT_S)


@pytest.fixture
def editor() -> Iterator[Editor]:
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    read_fd, write_fd = os.pipe()
    editor = Editor(write_fd, loop)

    def deliver(batch: list[Any]) -> None:
        for message in batch:
            editor.delivered.put(message)
            method = message.get("method") if isinstance(message, dict) else None
            if method in editor.handlers:
                editor.handlers[method]()

    EditorInput(
        read_fd,
        loop,
        deliver=deliver,
        ended=editor.ended.set,
        statuses=lambda: editor.statuses,
        answer=lambda request_id, result: editor.answered.put((request_id, result)),
    ).start()
    try:
        yield editor
    finally:
        os.close(write_fd)
        assert editor.ended.wait(WAIT_S)  # end of input reaches the loop
        loop.call_soon_threadsafe(loop.stop)
        runner.join(WAIT_S)
        loop.close()
        os.close(read_fd)


def test_status_is_answered_while_the_loop_is_busy_and_the_calls_reach_it_in_order(
    editor: Editor,
) -> None:
    editor.initialized()
    calls = [request(n, "mcp/callTool", {"server": "a", "name": "t"}) for n in (2, 3)]
    with editor.loop_busy():
        editor.send(*calls, request(4, "mcp/status", {}), request(5, "mcp/status"))
        assert editor.answer() == (4, {"servers": [STATUSES["a"], STATUSES["b"]]})
        assert editor.answer() == (5, {"servers": [STATUSES["a"], STATUSES["b"]]})
        assert editor.delivered.empty()
        editor.send(request(6, "mcp/status", {"server": "b"}))
        assert editor.answer() == (6, {"servers": [STATUSES["b"]]})
    assert editor.reached_loop(2) == calls
    editor.loop_idle()
    assert editor.delivered.empty()


def test_status_waits_for_the_loop_behind_a_message_it_must_follow(editor: Editor) -> None:
    editor.initialized()
    change = {"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {}}
    status = request(2, "mcp/status", {})
    with editor.loop_busy():
        editor.send(change, status)  # one write: read at once
    assert editor.reached_loop(2) == [change, status]
    assert editor.answered.empty()
    # Once the loop has handled it, a status is answered on the thread again.
    editor.loop_idle()
    editor.send(request(3, "mcp/status", {}))
    assert editor.answer()[0] == 3


def test_status_waits_for_the_first_step_of_what_a_message_started(editor: Editor) -> None:
    # An async handler runs as a task: the servers a configuration change adds appear in its
    # first step, after the message was handed on. Here the loop is held busy between the
    # two, so a status read meanwhile must not be answered from the picture before it.
    editor.initialized()
    release = threading.Event()

    async def apply() -> None:
        editor.statuses = {**editor.statuses, "c": {"server": "c", "state": "connecting"}}

    def did_change() -> None:
        editor.loop.call_soon(release.wait, WAIT_S)  # the loop busy before the task's step
        editor.loop.create_task(apply())

    editor.handlers["workspace/didChangeConfiguration"] = did_change
    change = {"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {}}
    editor.send(change)
    assert editor.reached_loop(1) == [change]
    handed_on = threading.Event()
    hand_on = editor.loop.call_soon_threadsafe

    def spy(callback: Callable[..., object], *args: Any) -> asyncio.Handle:
        handed_on.set()
        return hand_on(callback, *args)

    editor.loop.call_soon_threadsafe = spy  # type: ignore[method-assign,assignment]
    status = request(2, "mcp/status", {})
    editor.send(status)
    assert handed_on.wait(WAIT_S), "answered on the thread before the task's first step"
    editor.loop.call_soon_threadsafe = hand_on  # type: ignore[method-assign]
    release.set()
    assert editor.reached_loop(1) == [status]
    assert editor.answered.empty()
    editor.loop_idle()
    editor.send(request(3, "mcp/status", {}))
    assert [s["server"] for s in editor.answer()[1]["servers"]] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "message",
    [
        request(2, "mcp/status", {"server": "unknown"}),
        request(2, "mcp/status", {"server": 7}),
        request(2, "mcp/status", {"server": None}),
        request(2, "mcp/status", {"server": "a", "extra": 1}),
        request(2, "mcp/status", ["a"]),
        {"jsonrpc": "2.0", "method": "mcp/status", "params": {}},
        {"jsonrpc": "2.0", "id": True, "method": "mcp/status", "params": {}},
        {"jsonrpc": "1.0", "id": 2, "method": "mcp/status", "params": {}},
    ],
)
def test_what_is_not_a_plain_status_request_goes_to_the_loop(
    editor: Editor, message: dict[str, Any]
) -> None:
    editor.initialized()
    editor.send(message)
    assert editor.reached_loop(1) == [message]
    assert editor.answered.empty()


def test_status_before_initialize_and_after_shutdown_goes_to_the_loop(editor: Editor) -> None:
    early = request(1, "mcp/status", {})
    editor.send(early)
    assert editor.reached_loop(1) == [early]
    editor.initialized()
    shutdown, late = request(2, "shutdown"), request(3, "mcp/status", {})
    editor.send(shutdown)
    assert editor.reached_loop(1) == [shutdown]
    editor.loop_idle()
    editor.send(late)
    assert editor.reached_loop(1) == [late]
    assert editor.answered.empty()


def test_what_cannot_be_parsed_reaches_the_loop_as_the_error_it_raised(editor: Editor) -> None:
    os.write(editor.write_fd, b"Content-Length: 3\r\n\r\n{x}" + frame(request(1, "initialize")))
    error, initialize = editor.reached_loop(2)
    assert isinstance(error, json.JSONDecodeError)
    assert initialize["method"] == "initialize"
