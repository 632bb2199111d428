"""JSON-RPC routing for every transport: answers go to the request waiting for them,
requests and notifications the server sends on its own go to the session's handler, and
its replies go back over the transport. One set of rules for HTTP and stdio alike:
an answer nobody waits for (a request already timed out or cancelled) is logged and
dropped; anything that is not JSON-RPC 2.0 is a `ProtocolError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from mcpls.errors import McplsError, ProtocolError, SessionExpired
from mcpls.transport import LogSink, Message, ServerMessageHandler, is_response

Send = Callable[[Message], Awaitable[None]]


class Router:
    """Pending requests by id, and the tasks answering the server."""

    def __init__(self, on_server_message: ServerMessageHandler, log: LogSink, peer: str) -> None:
        self._on_server_message = on_server_message
        self._log = log
        self._peer = peer
        self._pending: dict[Any, asyncio.Future[Message]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def expect(self, request_id: Any) -> asyncio.Future[Message]:
        """A future for the answer to `request_id`; `forget` it when done."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        return future

    def forget(self, request_id: Any) -> None:
        self._pending.pop(request_id, None)

    def dispatch(self, data: object, reply: Send) -> None:
        """Route one decoded message (or batch). Raises `ProtocolError` for anything that
        is not JSON-RPC 2.0; what was routed before it stays routed."""
        for message in data if isinstance(data, list) else [data]:
            if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                raise ProtocolError(f"{self._peer} sent something that is not JSON-RPC 2.0")
            if is_response(message):
                if isinstance(message["id"], list | dict):  # unhashable: no request has it
                    raise ProtocolError(f"{self._peer} answered with an id that is not an id")
                future = self._pending.get(message["id"])
                if future is None or future.done():
                    self._log("debug", "answer to a request no longer waited for dropped")
                else:
                    future.set_result(message)
            elif isinstance(message.get("method"), str):
                self.spawn(self._answer(message, reply))
            else:
                raise ProtocolError(f"{self._peer} sent a malformed JSON-RPC message")

    def fail_all(self, error: Exception) -> None:
        """Every waiting request fails with `error` (the peer went away or broke)."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _answer(self, message: Message, reply: Send) -> None:
        response = await self._on_server_message(message)
        if response is None:
            return
        try:
            await reply(response)
        except (McplsError, SessionExpired) as exc:
            self._log("warning", f"could not answer the server's {message['method']}: {exc}")
