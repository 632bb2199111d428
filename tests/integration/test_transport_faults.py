"""The Streamable HTTP transport against another SDK's resumable server (issue 10): the
TypeScript SDK's SEP-1699 polling example closes a call's SSE stream in the middle of a
long task; mcpls comes back with GET + `Last-Event-ID` after the server's `retry` (2 s)
and gets the answer from the SDK's in-memory event store."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from mcpls.protocol import McpSession, ServerHooks
from mcpls.transport import Message
from mcpls.transport.http import HttpTransport, new_client
from peers.managed import (
    LOOPBACK_PRELOAD,
    NODE,
    TS_SDK,
    HttpPeer,
    ManagedProcess,
    free_port,
    missing_node_tools,
    on_free_ports,
)

POLLING_EXAMPLE = TS_SDK / "dist" / "esm" / "examples" / "server" / "ssePollingExample.js"


async def no_server_messages(message: Message) -> Message | None:
    return None


def quiet(level: str, text: str) -> None:
    pass


async def test_a_stream_the_typescript_sdk_closes_mid_call_is_resumed(
    spawn_peer: Callable[..., ManagedProcess],
) -> None:
    problem = missing_node_tools()
    if problem is not None:
        pytest.fail(problem)

    def start() -> HttpPeer:
        port = free_port()
        argv = [str(NODE), "--require", str(LOOPBACK_PRELOAD), str(POLLING_EXAMPLE)]
        # The example hard-codes port 3001; the preload moves it to a free one.
        env = {"MCPLS_TEST_LISTEN_PORT": str(port)}
        return HttpPeer(spawn_peer("ts-polling", argv, port=port, env=env))

    peer = on_free_ports(start)
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    client = new_client()
    client.event_hooks["request"].append(record)
    transport = HttpTransport(
        peer.url, on_server_message=no_server_messages, log_sink=quiet, client=client
    )
    session = McpSession(transport, hooks=ServerHooks(), timeout_s=30)
    try:
        await session.initialize()
        result = await session.call_tool("long-task", {})
        assert result["content"][0]["text"] == "Long task completed successfully!"
    finally:
        await session.close()
        await client.aclose()
    assert "Closing SSE stream to trigger client polling" in peer.output()
    resumptions = [r for r in sent if r.method == "GET" and "last-event-id" in r.headers]
    assert len(resumptions) == 1
