"""The LSP framing (lsp/framing.py) fed in chunks: well-formed frames in any chunking
arrive whole; every kind of bad frame is skipped and the framer finds the next header;
nothing is allocated from a declared length."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpls.lsp.framing import HEADER_LINE_LIMIT, MAX_MESSAGE_BYTES, Framer, header_length


def frame(body: bytes, header: bytes | None = None) -> bytes:
    header = b"Content-Length: %d\r\n" % len(body) if header is None else header
    return header + b"\r\n" + body


def delivered(*chunks: bytes, end: bool = True) -> list[bytes]:
    bodies: list[bytes] = []
    framer = Framer(bodies.append)
    for chunk in chunks:
        framer.feed(chunk)
    if end:
        framer.end()
    return bodies


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b" 42 ", 42),
        (b"0", 0),
        (b"0000000000000000000000000000007", 7),
        (b"-5", None),
        (b"+5", None),
        (b"4 2", None),
        (b"", None),
        (b"0x10", None),
        ("٣".encode(), None),  # a digit, but not an ASCII one
        (b"1000000000000", None),
        (b"9" * 10_000, None),
        (str(MAX_MESSAGE_BYTES).encode(), MAX_MESSAGE_BYTES),
        (str(MAX_MESSAGE_BYTES + 1).encode(), None),
    ],
)
def test_header_values(value: bytes, expected: int | None) -> None:
    length, why = header_length(value)
    assert length == expected
    assert (why is None) == (expected is not None)


def test_bad_frames_are_skipped_and_the_next_one_arrives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = b'{"id": 2}'
    cases = [
        frame(b'{"id": 1}', b"Content-Length: x\r\n"),
        frame(b'{"id": 1}', b"Content-Length: -9\r\n"),
        frame(b'{"id": 1}', b"Content-Length: 1000000000000\r\n"),
        frame(b'{"id": 1}', b""),
        frame(b'{"id": 1}', b"Content-Length: 3\r\nContent-Length: 9\r\n"),
    ]
    caplog.set_level(logging.WARNING, "mcpls.lsp.framing")
    for bad in cases:
        assert delivered(bad + frame(good)) == [good], bad
    # Too short: the cut body is handed on (the server answers it with a parse error).
    assert delivered(frame(b'{"id": 1}', b"Content-Length: 4\r\n") + frame(good)) == [
        b'{"id',
        good,
    ]
    assert "is not a number of bytes" in caplog.text
    assert "two different Content-Length headers" in caplog.text
    assert '"id"' not in caplog.text  # what the editor sent is never logged


def test_a_length_too_long_swallows_the_next_frame_and_the_one_after_arrives() -> None:
    first, second, third = b'{"id": 1}', b'{"id": 2}', b'{"id": 3}'
    bodies = delivered(
        frame(first, b"Content-Length: %d\r\n" % (len(first) + 5)), frame(second), frame(third)
    )
    assert bodies[-1] == third
    assert len(bodies) == 2  # the first, with the start of the second's frame in it


def test_end_of_input_mid_body_or_mid_header_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "mcpls.lsp.framing")
    assert delivered(b"Content-Length: 100\r\n\r\n{") == []
    assert "ended 1 bytes into a message of 100 bytes" in caplog.text
    assert delivered(b"Content-Length: 10") == []
    assert "ended in the middle of a message header" in caplog.text
    caplog.clear()
    assert delivered(b"") == []
    assert delivered(frame(b"{}")) == [b"{}"]
    assert caplog.text == ""


def test_a_huge_declared_length_is_never_waited_for() -> None:
    # Without an end of input: had the framer waited for 10^12 bytes, nothing would arrive.
    assert delivered(b"Content-Length: 1000000000000\r\n\r\n{}" + frame(b"{}"), end=False) == [
        b"{}"
    ]


def test_junk_far_longer_than_a_header_line_is_dropped_not_kept() -> None:
    junk = b"x" * (HEADER_LINE_LIMIT * 20)
    bodies: list[bytes] = []
    framer = Framer(bodies.append)
    for start in range(0, len(junk), 65536):
        framer.feed(junk[start : start + 65536])
        assert len(framer._buffer) <= 2 * HEADER_LINE_LIMIT + 65536
    framer.feed(frame(b"{}"))
    assert bodies == [b"{}"]


def test_a_body_longer_than_a_header_line_arrives_whole_in_small_chunks() -> None:
    body = b'{"text": "%s"}' % (b"y" * (HEADER_LINE_LIMIT * 3))
    stream = frame(body) + frame(b"{}")
    assert delivered(*(stream[i : i + 1000] for i in range(0, len(stream), 1000))) == [
        body,
        b"{}",
    ]


bodies_strategy = st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(bodies_strategy, st.data())
def test_well_formed_frames_arrive_whole_in_any_chunking(
    bodies: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(frame(body) for body in bodies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert delivered(*chunks) == bodies


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000), st.binary(min_size=1, max_size=200))
def test_after_any_junk_without_a_newline_the_next_frame_arrives(junk: bytes, body: bytes) -> None:
    junk = junk.replace(b"\n", b"")
    if b"content-length:" in junk.lower():
        return
    assert delivered(junk + frame(body))[-1:] == [body]
