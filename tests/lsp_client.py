"""Typed access to the pygls client calls the tests use that pygls 2.1 and pytest-lsp 1.0
leave unannotated (registering a handler, sending a raw request, stopping the client),
and to the `data` of an error answer, which pygls types as `Any | None`.

Each wrapper states the signature the tests rely on, so mypy --strict checks the callers
instead of giving up at the untyped library boundary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pygls.client import JsonRPCClient
from pygls.exceptions import JsonRpcException

__all__ = ["count_responses", "error_data", "on", "send_request", "stop"]

# A client-side handler: `(client, params) -> result`, sync or async.
Handler = TypeVar("Handler", bound=Callable[[Any, Any], object])


def on(client: JsonRPCClient, method: str) -> Callable[[Handler], Handler]:
    """`@client.feature(method)`: registers the handler and returns it unchanged."""
    register: Callable[[Handler], Handler] = client.feature(method)
    return register


async def send_request(client: JsonRPCClient, method: str, params: object) -> Any:
    """`client.protocol.send_request_async(method, params)`: the raw JSON result."""
    send: Callable[[str, object], Awaitable[Any]] = client.protocol.send_request_async
    return await send(method, params)


async def stop(client: JsonRPCClient) -> None:
    """`client.stop()`: waits for the server process and the client's tasks to end."""
    stop_client: Callable[[], Awaitable[None]] = client.stop
    await stop_client()


def error_data(error: JsonRpcException) -> dict[str, Any]:
    """The `data` of an error mcpls answered: always an object (schemas/error-data)."""
    data = error.data
    assert isinstance(data, dict), f"error without object data: {error!r}"
    return data


def count_responses(client: JsonRPCClient) -> Counter[str | int]:
    """Count every response id the client receives, before pygls matches it to a request:
    pygls drops a second answer to the same id with only a log line, so a test that must
    see duplicates counts them here (pygls 2.1 routes each response through
    `_handle_response`). The counter is live: clear it between batches."""
    seen: Counter[str | int] = Counter()
    protocol = client.protocol
    handle: Callable[..., None] = protocol._handle_response

    def counted(msg_id: str | int, result: Any = None, error: Any = None) -> None:
        seen[msg_id] += 1
        handle(msg_id, result, error)

    protocol._handle_response = counted  # type: ignore[method-assign]
    return seen
