"""The transport's capped SSE reader (`transport/sse.py`): whatever the chunking of the
stream, the same events as httpx-sse reads from the whole body, and an event past the
limit refused with memory bounded (issue 10: a 100 MB tool result)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from httpx_sse import EventSource, ServerSentEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpls.errors import ResponseTooLarge
from mcpls.transport.sse import Event, read_events

LINES = st.lists(
    st.sampled_from(
        ["data: {}", "data: x", "data:y", "event: message", "id: 7", "retry: 50", ": ping", "", ""]
    ),
    max_size=20,
)
ENDS = st.sampled_from(["\n", "\r", "\r\n"])


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def response(chunks: list[bytes]) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Chunks(chunks))


Fields = tuple[str, str, str, int | None]


def fields(event: ServerSentEvent | Event) -> Fields:
    # An event without a type is "message" (WHATWG); mcpls leaves it "" rather than
    # allocating the name for every event.
    return event.event or "message", event.data, event.id, event.retry


async def read(chunks: list[bytes], limit: int = 1 << 20) -> list[Fields]:
    return [fields(e) async for e in read_events(response(chunks), limit, "http://peer/mcp")]


async def reference(body: bytes) -> list[Fields]:
    return [fields(e) async for e in EventSource(response([body])).aiter_sse()]


@settings(max_examples=300)
@given(LINES, st.lists(ENDS, min_size=1), st.lists(st.integers(0, 400), max_size=6))
def test_any_chunking_gives_the_events_of_the_whole_body(
    lines: list[str], ends: list[str], cuts: list[int]
) -> None:
    body = "".join(line + ends[i % len(ends)] for i, line in enumerate(lines)).encode()
    points = sorted({min(cut, len(body)) for cut in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    chunks = [chunk for chunk in chunks if chunk]
    assert asyncio.run(read(chunks)) == asyncio.run(reference(body))


def test_an_event_past_the_limit_is_refused_before_it_is_all_read() -> None:
    sent = 0

    class Endless(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            nonlocal sent
            yield b"event: message\ndata: "
            while True:
                sent += 1000
                yield b"x" * 1000

    stream = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Endless())

    async def consume() -> None:
        async for _ in read_events(stream, 100_000, "http://peer/mcp"):
            pass

    with pytest.raises(ResponseTooLarge, match=r"an event of more than the 100000 bytes"):
        asyncio.run(consume())
    assert sent <= 101_000


def test_many_small_events_are_not_counted_together() -> None:
    chunks = [b"data: " + b"x" * 900 + b"\n\n" for _ in range(1000)]  # 0.9 MB in all
    assert len(asyncio.run(read(chunks, limit=10_000))) == 1000
