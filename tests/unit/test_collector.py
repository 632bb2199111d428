"""lsp/collector.py: a full collection when mcpls is quiet, and only then.

Python's own collections are switched off in each test (`gc.disable`), so that the counts
the collector reads move only when a test collects by hand: `gc.collect(0)` is work going
on (a young collection), `gc.collect(1)` objects reaching the oldest generation."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from mcpls.lsp.collector import QuietCollector


@pytest.fixture(autouse=True)
def no_automatic_collections() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def full_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


async def test_quiet_after_objects_reached_the_oldest_generation_collects_once() -> None:
    collector = QuietCollector(asyncio.get_running_loop())
    gc.collect(1)
    before = full_collections()
    assert collector.check()
    assert full_collections() == before + 1
    assert not collector.check()  # nothing new since: no second one
    assert full_collections() == before + 1


async def test_no_full_collection_while_work_goes_on() -> None:
    collector = QuietCollector(asyncio.get_running_loop())
    gc.collect(1)
    gc.collect(0)  # a young collection since the collector's last look: busy
    assert not collector.check()
    gc.collect(0)
    assert not collector.check()
    assert collector.check()  # quiet at last


async def test_nothing_to_do_when_nothing_reached_the_oldest_generation() -> None:
    collector = QuietCollector(asyncio.get_running_loop())
    before = full_collections()
    assert not collector.check()
    gc.collect(0)  # young collections alone promote nothing into the oldest generation
    assert not collector.check()
    assert not collector.check()
    assert full_collections() == before


async def test_a_full_collection_python_ran_counts() -> None:
    collector = QuietCollector(asyncio.get_running_loop())
    gc.collect(1)
    gc.collect(2)  # Python's own, after the middle one
    assert not collector.check()


async def test_it_looks_by_itself_on_the_loop_until_stopped() -> None:
    loop = asyncio.get_running_loop()
    collected = asyncio.Event()

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            loop.call_soon(collected.set)

    collector = QuietCollector(loop, period_s=0.01)
    gc.collect(1)
    gc.callbacks.append(on_collection)
    try:
        collector.start()
        await asyncio.wait_for(collected.wait(), 10)
    finally:
        collector.stop()
        gc.callbacks.remove(on_collection)
