"""Token writes killed at random points (SIGKILL, as when an editor window is killed):
the store always parses, no other server's entry is lost, and what a killed writer left
behind (a temp file that may hold a whole token set) is removed at the next start."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import signal
from pathlib import Path

import pytest

from mcpls.store.layered import KeychainStore
from mcpls.store.records import TokenSet

ISSUER = "https://as.example"
A = "https://a.example/mcp"
B = "https://b.example/mcp"
KILLS = 200
posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fork are POSIX")


def tokens(resource: str, number: int) -> TokenSet:
    return TokenSet(
        access_token=f"at-{number}-" + "x" * 900,  # a JWT-sized token: writes take a while
        token_type="Bearer",
        expires_at=2_000_000_000.0,
        refresh_token=f"rt-{number}",
        scope=("mcp:read",),
        issuer=ISSUER,
        resource=resource,
    )


def keep_rotating(ready: multiprocessing.synchronize.Event, start: int) -> None:
    """The child: rotate server A's tokens as fast as it can, as refreshes do."""

    async def rotate() -> None:
        store = KeychainStore("file")
        number = start
        await store.save_tokens(tokens(A, number))
        ready.set()
        while True:
            number += 1
            await store.save_tokens(tokens(A, number))

    asyncio.run(rotate())


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp"))


@posix_only
async def test_writes_killed_at_random_points_never_damage_the_store(isolated_dirs: Path) -> None:
    store = KeychainStore("file")
    await store.save_tokens(tokens(B, 7))
    context = multiprocessing.get_context("fork")
    rng = random.Random(20261201)
    last = 0
    leftovers = 0
    for _ in range(KILLS):
        ready = context.Event()
        child = context.Process(target=keep_rotating, args=(ready, last))
        child.start()
        assert await asyncio.to_thread(ready.wait, 10), "the writer never started"
        # A random point in the middle of the writes (the kill is the event under test).
        await asyncio.sleep(rng.uniform(0, 0.02))
        os.kill(child.pid or 0, signal.SIGKILL)
        await asyncio.to_thread(child.join)
        leftovers += len(temp_files(isolated_dirs))
        reader = KeychainStore("file")  # a new process would start like this
        a = await reader.load_tokens(A, ISSUER)
        assert a is not None, "server A's entry was lost or damaged"
        assert a.refresh_token is not None
        number = int(a.refresh_token.split("-")[1])
        assert number >= last  # never an older copy than one already seen
        last = number
        assert await reader.load_tokens(B, ISSUER) == tokens(B, 7), "another server's entry"
        assert temp_files(isolated_dirs) == []  # the new store swept the killed writer's
    assert leftovers > 0, "no kill landed mid-write: the test would prove nothing"


def test_a_dead_writers_temp_file_is_removed_and_a_live_ones_kept(isolated_dirs: Path) -> None:
    asyncio.run(KeychainStore("file").save_tokens(tokens(A, 1)))
    directory = isolated_dirs / "data" / "mcpls" / "tokens"
    dead_pid = 4_194_305  # above Linux's largest pid_max (2**22): no such process
    dead = directory / f".entry.json.{dead_pid}.abc.tmp"
    live = directory / f".entry.json.{os.getpid()}.def.tmp"
    for path in (dead, live):
        path.write_text(tokens(A, 2).access_token)
    asyncio.run(KeychainStore("file").load_tokens(A, ISSUER))
    assert not dead.exists()
    assert live.exists()
