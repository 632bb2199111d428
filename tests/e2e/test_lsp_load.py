"""Load through the real `mcpls serve` (issue 10): 1,000 calls in flight over 20 servers.

The correctness half of the load figure (tests/bench/load.py measures the rate, memory and
`mcp/status` latency over minutes): every call answered exactly once, with its own answer,
and `mcp/status` answered while the calls are still in flight. No timing thresholds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from lsp_client import count_responses

Factory = Callable[..., Any]
SERVERS = 20
CALLS = 1000


async def test_a_thousand_calls_over_twenty_servers_each_get_their_own_answer_once(
    editor_factory: Factory, py_mcp_server: Any
) -> None:
    # 20 configured servers, 20 MCP sessions: one SDK process, an endpoint per query string.
    names = [f"s{i:02d}" for i in range(SERVERS)]
    editor = await editor_factory(
        {"servers": {name: {"url": f"{py_mcp_server.url}?n={name}"} for name in names}}
    )
    for name in names:
        await editor.wait_for_state(name, "connected")
    wire = count_responses(editor.client)
    answered: Counter[str] = Counter()

    async def call(number: int) -> None:
        text = f"call-{number}"  # no other call carries it: the answer must echo it
        result = await editor.raw_request(
            "mcp/callTool",
            {"server": names[number % SERVERS], "name": "echo", "arguments": {"text": text}},
        )
        assert not result.get("isError"), result
        assert result["content"][0]["text"] == text
        answered[text] += 1

    calls = [asyncio.ensure_future(call(n)) for n in range(CALLS)]
    # While the calls are in flight, the editor still gets its status: at least one answer
    # to `mcp/status` must come back before the last call is answered.
    statuses_meanwhile = 0
    pending = set(calls)
    while pending:
        listed = await editor.request("mcp/status", {})
        assert len(listed["servers"]) == SERVERS
        pending = {task for task in pending if not task.done()}
        if pending:
            statuses_meanwhile += 1
            # The next status once some call more was answered.
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*calls)  # raises the first failed call's assertion, if any

    assert statuses_meanwhile > 0, "mcp/status was not answered while calls were in flight"
    assert len(answered) == CALLS
    assert set(answered.values()) == {1}
    duplicates = {msg_id: n for msg_id, n in wire.items() if n > 1}
    assert not duplicates, f"responses received more than once: {len(duplicates)} ids"
    assert sum(wire.values()) >= CALLS + statuses_meanwhile
    for name in names:  # and the servers are still there, connected
        assert (editor.latest(name) or {}).get("state") == "connected"
