"""When the cyclic garbage collector runs in `mcpls serve`.

Every collection holds every thread for as long as it looks at its generations' objects,
the thread answering `mcp/status` too (editor_input.py). Under 1,000 calls in flight those
objects are mostly the calls' own, alive, and a full collection took 0.1-0.3 s, a middle
one at a young threshold of 10,000 up to 0.26 s (issue 10, figure 8 of tests/bench).

What mcpls allocates is freed by reference counting (net.Client: httpx's responses no
longer form a cycle), so the collector has little to find; what is left are the asyncio
transports of connections httpcore closes, a few objects a call under heavy load. So:

- the young threshold is 1,500 (Python: 700): a middle collection looks at up to ~15,000
  young objects and takes 25-35 ms at the median, at most 75-125 ms, under that load;
- a full collection comes after 1,000 middle ones (Python: 10), ~5 minutes of that load,
  instead of every ~1.5 s;
- and whenever mcpls has been quiet (no young collection for `QUIET_S`) after objects
  reached the oldest generation, a full collection runs then, when it keeps nobody
  waiting, and frees what the load left behind before the next one.
"""

from __future__ import annotations

import asyncio
import gc

THRESHOLDS = (1_500, 10, 1_000)
# How long without a young collection counts as quiet (fewer than 1,500 new objects).
QUIET_S = 5.0


def configure() -> None:
    gc.set_threshold(*THRESHOLDS)


def freeze_what_lives_on() -> None:
    """Once the servers have connected: what exists now (modules, classes, functions, the
    HTTP stack imported on the first connection, the servers' clients) is left out of every
    later collection, ~76,000 objects with 20 servers connected. What of it dies later (a
    connection replaced) is freed by its reference count or, if in a cycle, never: a
    bounded cost, paid once."""
    gc.collect()
    gc.freeze()


class QuietCollector:
    """Runs a full collection when mcpls is quiet and something may be waiting for one.

    `check` looks every `period_s` on `loop`: quiet is no young collection since the last
    look; something may be waiting is a middle collection (the only way into the oldest
    generation) since the last full one, Python's or this one's."""

    def __init__(self, loop: asyncio.AbstractEventLoop, period_s: float = QUIET_S) -> None:
        self._loop = loop
        self._period_s = period_s
        self._young, self._middle, self._full = _collections()
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._timer = self._loop.call_later(self._period_s, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def check(self) -> bool:
        """Collect if quiet and something may be waiting; whether it did."""
        young, middle, full = _collections()
        if full != self._full:  # Python ran one since the last look
            self._middle, self._full = middle, full
        quiet, self._young = young == self._young, young
        if not quiet or middle == self._middle:
            return False
        gc.collect()
        self._middle, self._full = middle, full + 1
        return True

    def _tick(self) -> None:
        self.check()
        self.start()


def _collections() -> tuple[int, int, int]:
    young, middle, full = (generation["collections"] for generation in gc.get_stats())
    return young, middle, full
