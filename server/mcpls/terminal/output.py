"""What a person sees in the terminal: marks, colour (only on a terminal, never with
NO_COLOR), tables, relative times, and a live progress line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import TextIO

OK = "✓"
FAIL = "✗"
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_COLOURS = {"green": "32", "red": "31", "yellow": "33", "dim": "2", "bold": "1"}


def uses_colour(stream: TextIO) -> bool:
    """Colour on a terminal only, and never when NO_COLOR is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, colour: str, stream: TextIO) -> str:
    """`text` in `colour` where `stream` shows colour; unchanged elsewhere."""
    if not uses_colour(stream):
        return text
    return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"


def mark(ok: bool, stream: TextIO) -> str:
    """✓ in green or ✗ in red."""
    return paint(OK, "green", stream) if ok else paint(FAIL, "red", stream)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], stream: TextIO) -> str:
    """Columns padded to their widest cell; the header bold on a terminal."""

    def visible(cell: str) -> int:
        return len(_ESCAPE.sub("", cell))

    widths = [max(visible(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell + " " * (width - visible(cell)) for cell, width in zip(cells, widths, strict=True)
        )

    head = paint(line(headers).rstrip(), "bold", stream)
    return "\n".join([head, *(line(row).rstrip() for row in rows)])


def relative(when: float, now: float | None = None) -> str:
    """`in 59 min`, `2 h ago`: a person's reading of a Unix time."""
    delta = when - (time.time() if now is None else now)
    amount = abs(delta)
    if amount < 90:
        text = f"{int(amount)} s"
    elif amount < 90 * 60:
        text = f"{round(amount / 60)} min"
    elif amount < 36 * 3600:
        text = f"{round(amount / 3600)} h"
    else:
        text = f"{round(amount / 86400)} days"
    return f"in {text}" if delta >= 0 else f"expired {text} ago"


class ProgressLine:
    """One line that says what is being waited for and for how long. On a terminal it is
    redrawn in place every fraction of a second; elsewhere (a pipe, a log) each new text is
    printed once, so the output stays readable."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._text = ""
        self._started = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._drawn = False

    def set(self, text: str) -> None:
        """Wait for something else from now on."""
        if text == self._text:
            return
        self._text = text
        self._started = time.monotonic()
        if not self.live:
            print(f"… {text}", file=self.stream, flush=True)
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._redraw())
        self._draw()

    def say(self, text: str) -> None:
        """A line of its own above the progress line (which is redrawn after it)."""
        self._erase()
        print(text, file=self.stream, flush=True)
        self._draw()

    def close(self) -> None:
        """Stop and erase the line."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._erase()
        self._text = ""

    def _draw(self) -> None:
        if not self.live or not self._text:
            return
        elapsed = int(time.monotonic() - self._started)
        spin = _SPINNER[int(time.monotonic() * 10) % len(_SPINNER)]
        clock = f"{elapsed // 60}:{elapsed % 60:02d}"
        self.stream.write(f"\r\x1b[K{paint(spin, 'yellow', self.stream)} {self._text} {clock}")
        self.stream.flush()
        self._drawn = True

    def _erase(self) -> None:
        if self.live and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    async def _redraw(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(0.1)  # the redraw rate of the spinner and clock
                self._draw()
