"""Server-sent events (WHATWG HTML §9.2 "Parsing an event stream") read as bytes.

An event's data is decoded straight from the bytes of its line (UTF-8, bad bytes
replaced), which is dropped as soon as the event is complete: a large tool result is in
memory once as bytes, then once as text, never more (issue 9: 12 copies of a 10 MB result
at once when a whole stream was decoded, split into lines and joined). Events are what
httpx-sse made of the same stream: lines end with CRLF, LF or CR; an event is
dispatched at a blank line when it has a type, data, an id (kept across events) or a
retry; the last event id is kept; an unterminated last line is dropped.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from mcpls.errors import ResponseTooLarge
from mcpls.net import too_large

_LF = 0x0A


@dataclass(slots=True)
class Event:
    """One dispatched event; `event` is "" when the stream named no type ("message")."""

    event: str
    data: str
    id: str
    retry: int | None


class EventParser:
    """Incremental: `feed` bytes as they arrive; complete events come out of `events`.
    A line or an event's data longer than `max_bytes` raises `ResponseTooLarge`."""

    def __init__(self, max_bytes: int, peer: str) -> None:
        self.events: deque[Event] = deque()
        self._max = max_bytes
        self._peer = peer
        # The line still unfinished: one buffer grown in place, so that a line of many
        # chunks is never both a list of chunks and their join (a 10 MB tool result: 2.1
        # copies of it at the peak this way, 3.2 as a list of chunks joined at the end).
        self._unfinished = bytearray()
        self._after_cr = False  # the last chunk ended with CR: a leading LF belongs to it
        self._event = ""
        self._data: list[memoryview] = []
        self._data_size = 0
        self._id = ""
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> None:
        """Read `chunk`; every event it completes is appended to `events`."""
        start = 0
        size = len(chunk)
        if self._after_cr:
            self._after_cr = False
            if size and chunk[0] == _LF:
                start = 1
        # Each search runs ahead once and is repeated only when passed: linear in the chunk.
        cr = chunk.find(b"\r", start)
        lf = chunk.find(b"\n", start)
        while cr != -1 or lf != -1:
            if cr == -1 or (lf != -1 and lf < cr):
                end, start_next = lf, lf + 1
            elif cr + 1 < size:
                end, start_next = cr, cr + (2 if chunk[cr + 1] == _LF else 1)
            else:
                end, start_next = cr, cr + 1
                self._after_cr = True
            if self._unfinished:
                self._unfinished += chunk[start:end]
                line: bytes | bytearray = self._unfinished
                self._unfinished = bytearray()
            else:
                line = chunk[start:end]
            self._line(line)
            start = start_next
            if cr != -1 and cr < start:
                cr = chunk.find(b"\r", start)
            if lf != -1 and lf < start:
                lf = chunk.find(b"\n", start)
        if start < size:
            self._unfinished += chunk[start:] if start else chunk
            # The event's data lines so far count too: the event is what is held at once.
            if len(self._unfinished) + self._data_size > self._max:
                raise self._too_large()

    def _too_large(self) -> ResponseTooLarge:
        # Released before raising: the traceback keeps this parser alive (through the
        # generator's frame) until the next collection, and with it up to `max_bytes`.
        self._unfinished = bytearray()
        self._data = []
        self.events.clear()
        return too_large(self._peer, self._max, "an event of ")

    def _line(self, line: bytes | bytearray) -> None:
        if not line:
            self._dispatch()
            return
        if line[0] == 0x3A:  # ":" starts a comment
            return
        colon = line.find(b":")
        name: bytes | bytearray
        if colon == -1:
            name, value = line, memoryview(b"")
        else:
            name = line[:colon]
            skip = colon + 2 if line[colon + 1 : colon + 2] == b" " else colon + 1
            value = memoryview(line)[skip:]  # a view: the data of a large result is not copied
        if name == b"data":
            self._data_size += len(value) + 1
            if self._data_size > self._max:
                raise self._too_large()
            self._data.append(value)
        elif name == b"event":
            self._event = bytes(value).decode("utf-8", "replace")
        elif name == b"id":
            text = bytes(value).decode("utf-8", "replace")
            if "\0" not in text:
                self._id = text
        elif name == b"retry":
            with contextlib.suppress(ValueError):  # not a number: ignored, as HTML says
                self._retry = int(bytes(value).decode("utf-8", "replace"))

    def _dispatch(self) -> None:
        data = self._data
        if not (self._event or data or self._id or self._retry is not None):
            return
        joined = data[0] if len(data) == 1 else b"\n".join(data)
        self._data = []
        self.events.append(
            Event(self._event, str(joined, "utf-8", "replace"), self._id, self._retry)
        )
        self._event = ""
        self._data_size = 0
        self._retry = None


async def read_events(response: httpx.Response, max_bytes: int, peer: str) -> AsyncIterator[Event]:
    """The events of a streamed response, each as soon as its blank line arrives."""
    parser = EventParser(max_bytes, peer)
    events = parser.events
    async for chunk in response.aiter_bytes():
        parser.feed(chunk)
        while events:
            # Popped before it is handed on, so that this generator holds no event (and no
            # large result) while its caller works on it.
            yield events.popleft()
