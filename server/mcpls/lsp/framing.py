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

import asyncio
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


async def _line(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    """The next line (b"" at end of input, a partial line just before it), or b"" and True
    when part of a line longer than the reader's limit was dropped. Only the end of such a
    line is kept: a header glued to the end of a skipped body must survive."""
    try:
        return await reader.readuntil(b"\n"), False
    except asyncio.IncompleteReadError as exc:
        return exc.partial, False
    except asyncio.LimitOverrunError as exc:
        # The bytes are still in the reader; `consumed` is where the newline is, or how far
        # the search got without one. Drop all but the last few before it: the next read
        # returns them with the rest of the line.
        await reader.readexactly(max(exc.consumed - _TAIL, 1))
        return b"", True


async def read_messages(reader: asyncio.StreamReader, deliver: Callable[[bytes], None]) -> None:
    """Read framed messages until end of input, handing each body to `deliver`; bad frames
    are skipped with a warning (module docstring). `reader` should have a line limit of
    `HEADER_LINE_LIMIT`."""
    length: int | None = None
    problem: str | None = None
    junk = False  # bytes that belong to no header were skipped since the last message
    while True:
        line, dropped = await _line(reader)
        if dropped:
            junk = True
            if not line:
                continue  # more of the same line to come
        if not line:
            if junk or problem or length is not None:
                log.warning("the editor's input ended in the middle of a message header")
            return
        if not line.strip() and line.endswith(b"\n"):  # the blank line that ends the headers
            if problem is not None:
                log.warning("skipped a message from the editor: %s", problem)
            elif length is None:
                junk = True  # a blank line with no header before it
            else:
                if junk:
                    log.warning("skipped bytes from the editor that were not a message")
                try:
                    body = await reader.readexactly(length)
                except asyncio.IncompleteReadError as exc:
                    log.warning(
                        "the editor's input ended %d bytes into a message of %d bytes",
                        len(exc.partial),
                        length,
                    )
                    return
                junk = False
                deliver(body)
            length, problem = None, None
            continue
        at = line.lower().rfind(_LENGTH)
        if at < 0:
            if b":" not in line:
                junk = True  # not a header (other headers, such as Content-Type, are ignored)
            continue
        if at > 0:
            junk = True  # the end of a skipped body, with the next header glued to it
            length, problem = None, None
        found, why = header_length(line[at + len(_LENGTH) :])
        if why is not None:
            problem = why
        elif length is not None and found != length:
            problem = "it has two different Content-Length headers"
        else:
            length = found
