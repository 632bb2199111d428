"""The LSP base protocol's framing on mcpls's stdin: `Content-Length` headers, a blank
line, the body. pygls's reader trusts the header; one bad frame from the editor (a wrong
length, a header that is not a number, a missing or doubled header) left it out of step
for good, since it only recognised a header at the very start of a line and the bodies it
then read as headers never end with one. This reader finds its way back to the next
header and keeps every read bounded.

What a bad frame costs (no id can be known, so nothing can be answered; a warning names it):
- length too short: the body is cut, answered with a JSON-RPC parse error (id null), and the
  rest is skipped up to the next header; the next message is answered.
- length too long: nothing but the length frames a message, so mcpls waits for the missing
  bytes, as any LSP server does. The next message completes the body (which then fails to
  parse and is answered with a parse error); the message after it is answered. At end of
  input mcpls exits as it does when the editor goes away.
- not a number, negative, two different values, or more than `MAX_MESSAGE_BYTES`: the frame
  is skipped; its body is read as junk up to the next header, never allocated up front.
- no header before the blank line: the body is junk up to the next header.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# The largest message mcpls reads: far above any request an editor sends (a tool call's
# arguments are text typed or picked by a person; the fuzz suite's 50 MB message fits),
# small enough that a wrong length cannot make mcpls hold the editor's whole stream.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# A header line longer than this is junk (a line of a body being skipped); the reader drops
# it instead of buffering it whole.
HEADER_LINE_LIMIT = 64 * 1024
_LENGTH = b"content-length:"
# Digits of the largest length worth converting (int() of a huge digit string is slow).
_MAX_DIGITS = len(str(MAX_MESSAGE_BYTES))


def header_length(value: bytes) -> tuple[int | None, str | None]:
    """A `Content-Length` value: the length, or None and why it cannot be used."""
    value = value.strip()
    if not value.isdigit():  # ASCII digits only: no sign, no spaces, no other numerals
        shown = value[:20].decode("ascii", "replace")
        return None, f"its Content-Length {shown!r} is not a number of bytes"
    if len(value.lstrip(b"0")) > _MAX_DIGITS or int(value) > MAX_MESSAGE_BYTES:
        return None, f"its Content-Length is more than the {MAX_MESSAGE_BYTES} bytes mcpls reads"
    return int(value), None


# What is kept of a line too long to be a header: enough for a header glued to its end.
_TAIL = 64


class Framer:
    """Frames the editor's input as it arrives: `feed` each chunk read, `end` at end of
    input; each message body is handed to `deliver` as soon as it is complete, bad frames
    are skipped with a warning (module docstring). No I/O, so the thread reading stdin
    frames it (lsp/editor_input.py). A header line is bounded by `HEADER_LINE_LIMIT`, and
    nothing is allocated from a declared length: a body grows as its bytes arrive."""

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self._deliver = deliver
        self._buffer = bytearray()
        self._start = 0  # where the unread bytes of the buffer begin
        self._body: int | None = None  # the length of the body being read
        self._length: int | None = None
        self._problem: str | None = None
        self._junk = False  # bytes that belong to no header were skipped since the last message

    def feed(self, data: bytes) -> None:
        """Take the next bytes of input; deliver every message they complete."""
        self._buffer += data
        while self._next():
            pass
        if self._start > len(self._buffer) // 2:  # drop what was read, at most once per chunk
            del self._buffer[: self._start]
            self._start = 0

    def end(self) -> None:
        """The input ended: warn about a message it cut."""
        unread = len(self._buffer) - self._start
        if self._body is not None:
            log.warning(
                "the editor's input ended %d bytes into a message of %d bytes",
                unread,
                self._body,
            )
        elif unread or self._junk or self._problem or self._length is not None:
            log.warning("the editor's input ended in the middle of a message header")
        self._buffer.clear()
        self._start = 0

    def _next(self) -> bool:
        """Read one body or one header line if all of it is here; False when more is needed."""
        buffer, start = self._buffer, self._start
        if self._body is not None:
            end = start + self._body
            if len(buffer) < end:
                return False
            body = bytes(buffer[start:end])
            self._start, self._body, self._junk = end, None, False
            self._deliver(body)
            return True
        newline = buffer.find(b"\n", start)
        if newline < 0 or newline - start >= HEADER_LINE_LIMIT:
            # A line this long is junk (a body being skipped): keep only its end, where the
            # next header may be glued on.
            if newline < 0 and len(buffer) - start <= HEADER_LINE_LIMIT:
                return False
            self._junk = True
            cut = (len(buffer) if newline < 0 else newline) - _TAIL
            self._start = max(cut, start + 1)
            return newline >= 0
        self._start = newline + 1
        self._header(bytes(buffer[start : newline + 1]))
        return True

    def _header(self, line: bytes) -> None:
        if not line.strip():  # the blank line that ends the headers
            if self._problem is not None:
                log.warning("skipped a message from the editor: %s", self._problem)
            elif self._length is None:
                self._junk = True  # a blank line with no header before it
            else:
                if self._junk:
                    log.warning("skipped bytes from the editor that were not a message")
                self._body = self._length
            self._length, self._problem = None, None
            return
        at = line.lower().rfind(_LENGTH)
        if at < 0:
            if b":" not in line:
                self._junk = True  # not a header (other headers, like Content-Type, are ignored)
            return
        if at > 0:
            self._junk = True  # the end of a skipped body, with the next header glued to it
            self._length, self._problem = None, None
        found, why = header_length(line[at + len(_LENGTH) :])
        if why is not None:
            self._problem = why
        elif self._length is not None and found != self._length:
            self._problem = "it has two different Content-Length headers"
        else:
            self._length = found
