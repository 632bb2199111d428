"""The Streamable HTTP transport's connection handling, against the Python SDK server."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from mcpls.errors import ConnectionFailed
from mcpls.protocol import McpSession, ServerHooks
from mcpls.transport import Message
from mcpls.transport.http import HttpTransport
from peers.managed import HttpPeer, ManagedProcess, free_port, on_free_ports, python_peer

# uvicorn closes a keep-alive connection idle this long: a few ms makes its close cross the
# next call on the wire now and then, the way its 5 s default does once in a while.
KEEP_ALIVE_S = "0.004"
CALLS = 300


async def no_server_messages(message: Message) -> Message | None:
    return None


def quiet(level: str, text: str) -> None:
    pass


async def failed_calls(url: str, client: httpx.AsyncClient | None, *, stop_at_first: bool) -> int:
    transport = HttpTransport(
        url, on_server_message=no_server_messages, log_sink=quiet, client=client
    )
    session = McpSession(transport, hooks=ServerHooks(), timeout_s=30)
    failures = 0
    try:
        await session.initialize()
        for n in range(CALLS):
            try:
                result = await session.call_tool("add", {"a": n, "b": 1})
            except ConnectionFailed:
                failures += 1
                if stop_at_first:
                    break
            else:
                assert result["structuredContent"] == {"result": n + 1}
    finally:
        await session.close()
    return failures


async def test_a_call_on_a_connection_the_server_just_closed_is_sent_again(
    spawn_peer: Callable[..., ManagedProcess],
) -> None:
    def start() -> HttpPeer:
        port = free_port()
        argv = python_peer("py_server.py", "--port", str(port), "--keep-alive-s", KEEP_ALIVE_S)
        return HttpPeer(spawn_peer("py-short-keep-alive", argv, port=port))

    peer = on_free_ports(start)
    # The premise: over plain httpx, some call meets a connection closed under it.
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None)) as plain:
        premise = 0
        for _ in range(5):
            premise += await failed_calls(peer.url, plain, stop_at_first=True)
            if premise:
                break
    assert premise, "no connection was closed under a call: this test would show nothing"

    assert await failed_calls(peer.url, None, stop_at_first=False) == 0
