"""MCP transports. They move JSON-RPC messages; they know nothing of editors or OAuth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

Message = dict[str, Any]
# Called for every message the server sends on its own: requests (return the response
# message) and notifications (return None). Responses to our requests never reach it.
ServerMessageHandler = Callable[[Message], Awaitable[Message | None]]
# A line of diagnostic text from the server's side (stdio stderr, transport notes).
LogSink = Callable[[str, str], None]


class Transport(Protocol):
    """What the MCP session needs from a transport."""

    async def open(self) -> None:
        """Make the transport usable (spawn the process; nothing for HTTP)."""

    async def request(self, message: Message) -> Message:
        """Send a request and return the matching response message (result or error)."""

    async def send(self, message: Message) -> None:
        """Send a notification or a response; nothing comes back."""

    def session_started(self, protocol_version: str) -> None:
        """`initialize` succeeded: later requests carry the negotiated version."""

    def reset_session(self) -> None:
        """Forget the session (before a new `initialize`)."""

    async def close(self) -> None:
        """End the session (HTTP DELETE, process terminated) and free resources."""


def is_response(message: Message) -> bool:
    """A JSON-RPC response: has an id and a result or an error, and no method."""
    return (
        "method" not in message and "id" in message and ("result" in message or "error" in message)
    )
