"""The Streamable HTTP transport's connection handling, against the Python SDK server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable

import httpx
import pytest

from mcpls.errors import ConnectionFailed
from mcpls.protocol import McpSession, ServerHooks
from mcpls.transport import Message
from mcpls.transport.http import HttpTransport
from peers.managed import HttpPeer, ManagedProcess, free_port, on_free_ports, python_peer

CALLS = 20


class IdleCloseProxy:
    """Sits between a client and a real server and closes every keep-alive connection at
    the worst moment: just as the next request on it arrives, unread and unanswered.

    A server closing an idle connection (uvicorn after 5 s) crosses the client's next
    request on the wire now and then; this makes that race happen on every reuse instead
    of once in a while. HTTP/1.1 clients send nothing while an answer is on its way, so
    "the client speaks after the server has" is "a new request on a reused connection".
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.cut = 0
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> IdleCloseProxy:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/mcp"

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        answered = asyncio.Event()

        async def to_client() -> None:
            while data := await server_r.read(65536):
                answered.set()
                client_w.write(data)
                await client_w.drain()

        async def to_server() -> None:
            while data := await client_r.read(65536):
                if answered.is_set():
                    self.cut += 1
                    return
                server_w.write(data)
                await server_w.drain()

        try:
            pumps = [asyncio.ensure_future(to_client()), asyncio.ensure_future(to_server())]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            for writer in (client_w, server_w):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            self.tasks.discard(task)


async def no_server_messages(message: Message) -> Message | None:
    return None


def quiet(level: str, text: str) -> None:
    pass


async def failed_calls(url: str, client: httpx.AsyncClient | None) -> int:
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
        return HttpPeer(
            spawn_peer("py-server", python_peer("py_server.py", "--port", str(port)), port=port)
        )

    peer = on_free_ports(start)
    # The premise: over plain httpx, a call on a connection closed under it fails.
    async with (
        IdleCloseProxy(peer.port) as proxy,
        httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None)) as plain,
    ):
        assert await failed_calls(proxy.url, plain) > 0
    async with IdleCloseProxy(peer.port) as proxy:
        assert await failed_calls(proxy.url, None) == 0
        assert proxy.cut >= CALLS


@pytest.mark.parametrize("answers", ["sse", "json"])
async def test_a_call_leaves_nothing_for_the_garbage_collector(
    answers: str, py_mcp_server: HttpPeer, py_mcp_server_json: HttpPeer
) -> None:
    """What a call allocates is freed by reference counting when it ends: a reference
    cycle (httpx links a response and its stream both ways) would hold the request, the
    response and, for a connection closed after it, the connection and its socket, until a
    full collection, which holds every thread (`mcp/status` too) for up to 0.3 s under load.
    Before: 53 to 55 objects a call were left to the collector."""
    peer = py_mcp_server if answers == "sse" else py_mcp_server_json
    transport = HttpTransport(peer.url, on_server_message=no_server_messages, log_sink=quiet)
    session = McpSession(transport, hooks=ServerHooks(), timeout_s=30)
    try:
        await session.initialize()
        for n in range(3):  # what lives on (the connection, caches) made by the first calls
            await session.call_tool("add", {"a": n, "b": 1})
        gc.collect()
        gc.disable()
        try:
            for n in range(CALLS):
                result = await session.call_tool("add", {"a": n, "b": 1})
                assert result["structuredContent"] == {"result": n + 1}
            left = gc.collect()
        finally:
            gc.enable()
    finally:
        await session.close()
    assert left == 0, f"{left} objects of {CALLS} calls were left to the garbage collector"
