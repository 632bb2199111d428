"""The bytes-level readers and writers of the request path (issue 9): the SSE parser
reads every stream as HTML §9.2 says whatever the chunking, and refuses an event larger
than its cap; `wire` reads and writes JSON exactly as `json` would."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpls import wire
from mcpls.errors import ResponseTooLarge
from mcpls.transport.sse import EventParser

Parsed = tuple[str, str, str, int | None]


def parse(stream: bytes, cut: int | None = None, max_bytes: int = 10**6) -> list[Parsed]:
    parser = EventParser(max_bytes, "http://127.0.0.1:9/mcp")
    step = cut or max(len(stream), 1)
    for start in range(0, len(stream), step):
        parser.feed(stream[start : start + step])
    return [(e.event, e.data, e.id, e.retry) for e in parser.events]


@pytest.mark.parametrize(
    ("stream", "events"),
    [
        pytest.param(
            b'event: x\ndata: {"a":1}\nid: 7\nretry: 12\n\n',
            [("x", '{"a":1}', "7", 12)],
            id="every-field",
        ),
        pytest.param(
            b"data: a\r\ndata: b\r\n\r\n", [("", "a\nb", "", None)], id="crlf-and-two-data-lines"
        ),
        pytest.param(b"data: a\rdata:b\r\r", [("", "a\nb", "", None)], id="cr-alone"),
        pytest.param(b": a comment\n\n", [], id="comment-only"),
        pytest.param(b"data:  two\n\n", [("", " two", "", None)], id="one-space-removed"),
        pytest.param(b"data\n\n", [("", "", "", None)], id="field-without-colon"),
        pytest.param(b"data: never ended", [], id="unterminated-event-dropped"),
        pytest.param(
            b"id: 1\ndata: a\n\ndata: b\n\n",
            [("", "a", "1", None), ("", "b", "1", None)],
            id="id-kept-across-events",
        ),
        pytest.param(b"id: a\0b\ndata: q\n\n", [("", "q", "", None)], id="id-with-nul-ignored"),
        pytest.param(b"retry: soon\nretry: 5\n\n", [("", "", "", 5)], id="retry-number-only"),
        pytest.param(b"id: 3\n\n\n", [("", "", "3", None)] * 2, id="priming-event"),
        pytest.param(b"unknown: x\n\n", [], id="unknown-field-ignored"),
    ],
)
def test_events_are_read_as_html_says(stream: bytes, events: list[Parsed]) -> None:
    assert parse(stream) == events
    assert parse(stream, cut=1) == events  # every split of a CRLF and of a field included


PIECES = [b"data", b"id", b"event", b"retry", b":", b" ", b"\r", b"\n", b"\r\n", b"x", b"7"]


@settings(max_examples=400)
@given(st.lists(st.sampled_from(PIECES), max_size=40), st.integers(min_value=1, max_value=9))
def test_chunking_never_changes_the_events(pieces: list[bytes], cut: int) -> None:
    stream = b"".join(pieces)
    assert parse(stream, cut=cut) == parse(stream)


def test_an_event_over_the_cap_is_refused_whether_one_line_or_many() -> None:
    assert parse(b"data: " + b"x" * 90 + b"\n\n", cut=7, max_bytes=100)  # under: read
    with pytest.raises(ResponseTooLarge, match="more than the 100 bytes"):
        parse(b"data: " + b"x" * 200 + b"\n\n", cut=7, max_bytes=100)
    with pytest.raises(ResponseTooLarge):
        parse(b"data: xxxxxxxxxx\n" * 20 + b"\n", max_bytes=100)


def test_data_is_utf8_text_with_bad_bytes_replaced() -> None:
    assert parse(b"data: \xc3\xa9\xff\n\n") == [("", "é\ufffd", "", None)]
    assert parse("data: é\n\n".encode(), cut=1) == [("", "é", "", None)]  # split mid-char


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, and of the same JSON types (1 is not 1.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=400)
@given(JSON)
def test_what_is_read_is_written_back_as_json_would(value: Any) -> None:
    text = json.dumps(value)
    read = wire.loads(text.encode())
    assert same(read, json.loads(text))
    written = wire.dumps(read)
    if written is None:  # left to json: NaN, big integers, lone surrogates
        written = "".join(wire.pieces(read, default=str)).encode("ascii")
    assert same(json.loads(written), json.loads(text))
    assert "NaN" not in text or b"NaN" in written  # never turned into null


def test_nan_and_big_integers_go_back_as_they_came() -> None:
    read = wire.loads(b'{"n": NaN, "i": -Infinity, "big": 123456789012345678901234567890}')
    assert wire.dumps(read) is None
    assert "".join(wire.pieces(read, default=str)) == (
        '{"n":NaN,"i":-Infinity,"big":123456789012345678901234567890}'
    )
    assert wire.dumps("\ud800") is None
    assert wire.dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()


def test_a_large_string_is_written_in_pieces_never_joined() -> None:
    big = "x" * wire.LARGE_BYTES
    message = {"id": 1, "result": {"content": [{"type": "text", "text": big}]}}
    assert wire.dumps(message) is None
    assert max(len(piece) for piece in wire.pieces(message, default=str)) == len(big) + 2
    assert "".join(wire.pieces(message, default=str)) == json.dumps(message, separators=(",", ":"))
