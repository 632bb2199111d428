"""Two editor windows, two `mcpls serve` processes, one token store: against oidc-provider,
which rotates the refresh token of a public client on every use and revokes the whole grant
when a used one comes back, every refresh must happen under the cross-process lock and
start from the refresh token the other process last stored.

The soak at the end (four windows, 5-second tokens) runs 60 s in the suite; the long run
is a separate command: `MCPLS_SOAK_SECONDS=600 ./tests/run tests/e2e/test_lsp_shared_store.py`.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mcpls.auth.discovery import canonical_resource
from mcpls.store import Store
from mcpls.store.layered import KeychainStore
from peers.oauth.browser import signs_in

Factory = Callable[..., Any]

# mcpls refreshes a token this short-lived at half its life; every step below first waits
# (on the clock, which is the condition here) until the stored token is due.
ACCESS_TTL_S = 2
ROUNDS = 5
GATED_ROUNDS = 3
# How long a call is watched to not finish while another process holds the lock. Without
# the lock a refresh and a tool call take a few tens of milliseconds.
HELD_LOCK_WINDOW_S = 1.0
TOKEN_RESPONSE = re.compile(r'HTTP Request: POST (\S+) "HTTP/1\.1 (\d{3})')


def settings(url: str) -> dict[str, Any]:
    return {
        "servers": {"svc": {"url": url}},
        "allowInsecureLoopback": True,  # every peer runs on this machine over plain http
        "tokenStorage": "file",  # one directory of files, shared by both processes
    }


async def echo(editor: Any, text: str) -> None:
    result = await editor.request(
        "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": text}}
    )
    assert result["content"][0]["text"] == text
    assert not result.get("isError")


async def until_due(store: Store, resource: str, issuer: str) -> None:
    """Until the token last stored (by either process) is due for a refresh."""
    tokens = await store.load_tokens(resource, issuer)
    assert tokens is not None
    assert tokens.obtained_at is not None
    assert tokens.expires_at is not None
    due = tokens.obtained_at + (tokens.expires_at - tokens.obtained_at) / 2
    await asyncio.sleep(max(0.0, due - time.time()) + 0.05)


def token_responses(log_file: Path, token_endpoint: str) -> list[str]:
    """Status codes of the token endpoint's answers, from mcpls's own log (httpx, info)."""
    return [
        status
        for url, status in TOKEN_RESPONSE.findall(log_file.read_text())
        if url == token_endpoint
    ]


async def test_two_processes_share_rotating_refresh_tokens(
    editor_factory: Factory, oidc_provider_factory: Factory, tmp_path: Path
) -> None:
    oidc = oidc_provider_factory(access_ttl=ACCESS_TTL_S)
    config = settings(oidc.mcp_url)  # tokenStorage "file", one store for both processes
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"

    a = await editor_factory(config, log_level="info", log_file=log_a)
    a.browse = signs_in
    await a.wait_for_state("svc", "authRequired")
    status = await a.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected", status
    issuer = status["auth"]["issuer"]
    assert issuer == oidc.issuer
    signed_in_at = len(a.statuses)

    # A second window: connected from the store (refreshing first), no browser, no prompt.
    b = await editor_factory(config, log_level="info", log_file=log_b)
    status = await b.wait_for_state("svc", "connected", "authRequired", "error")
    assert status["state"] == "connected", status
    assert b.shown_documents == []
    assert b.prompts == []

    store = KeychainStore("file")  # a third process (say `mcpls login`), same store
    resource = canonical_resource(oidc.mcp_url)
    due_steps = 0
    for round_ in range(ROUNDS):
        # Alternating: each process refreshes with the token the other one rotated.
        await until_due(store, resource, issuer)
        await echo(a, f"a{round_}")
        await until_due(store, resource, issuer)
        await echo(b, f"b{round_}")
        # Both at once: the two refreshes contend for the lock; the loser adopts.
        await until_due(store, resource, issuer)
        await asyncio.gather(echo(a, f"a{round_}+"), echo(b, f"b{round_}+"))
        due_steps += 3

    # The third process holds the lock: both windows must wait for it, then refresh one
    # after the other, the second from the first one's rotated token.
    for round_ in range(GATED_ROUNDS):
        await until_due(store, resource, issuer)
        async with store.locked(resource, issuer):
            waiting = [
                asyncio.ensure_future(echo(a, f"gated-a{round_}")),
                asyncio.ensure_future(echo(b, f"gated-b{round_}")),
            ]
            try:
                done, _ = await asyncio.wait(waiting, timeout=HELD_LOCK_WINDOW_S)
                assert not done, "a refresh went ahead while another process held the lock"
            except BaseException:
                for call in waiting:
                    call.cancel()
                raise
        await asyncio.gather(*waiting)
        due_steps += 1

    for editor, since in ((a, signed_in_at), (b, 0)):
        states = [s["state"] for s in editor.statuses[since:]]
        assert "authRequired" not in states, states
        assert "error" not in states, states
        first = states.index("connected")
        assert set(states[first:]) == {"connected"}, states  # never left connected
        assert editor.latest("svc")["auth"]["authenticated"] is True
        assert not any("expired or was revoked" in line for line in editor.log), editor.log
    assert len(a.shown_documents) == 1  # one sign-in in all
    assert b.shown_documents == []

    # Issue 10: a window that adopts the token another one refreshed tells its editor, so
    # neither shows a stale expiry.
    final = await store.load_tokens(resource, issuer)
    assert final is not None
    assert final.expires_at is not None
    for editor in (a, b):
        await editor.wait_until(
            lambda e=editor: e.latest("svc")["auth"].get("expiresAt") == int(final.expires_at)
        )

    # Every step met a due token and refreshed, and the token endpoint never refused.
    token_endpoint = f"{oidc.issuer}/token"
    answers = token_responses(log_a, token_endpoint) + token_responses(log_b, token_endpoint)
    assert set(answers) == {"200"}, answers
    refreshes = len(answers) - 1  # the first is A's authorization code exchange
    assert refreshes >= due_steps, (refreshes, due_steps)
    assert token_responses(log_b, token_endpoint), "B must have refreshed too"


WINDOWS = 4
SOAK_ACCESS_TTL_S = 5
SOAK_SECONDS = float(os.environ.get("MCPLS_SOAK_SECONDS", "60"))


@pytest.mark.timeout(SOAK_SECONDS + 120)
async def test_four_windows_share_rotating_tokens_for_a_while(
    editor_factory: Factory, oidc_provider_factory: Factory, tmp_path: Path
) -> None:
    oidc = oidc_provider_factory(access_ttl=SOAK_ACCESS_TTL_S)
    config = settings(oidc.mcp_url)
    logs = [tmp_path / f"window-{n}.log" for n in range(WINDOWS)]
    first = await editor_factory(config, log_level="info", log_file=logs[0])
    first.browse = signs_in
    await first.wait_for_state("svc", "authRequired")
    assert (await first.request("mcp/authenticate", {"server": "svc"}))["state"] == "connected"
    windows = [first]
    for log in logs[1:]:
        window = await editor_factory(config, log_level="info", log_file=log)
        await window.wait_for_state("svc", "connected")
        windows.append(window)

    calls = 0
    started = time.monotonic()

    async def keep_calling(window: Any, n: int) -> None:
        nonlocal calls
        while time.monotonic() - started < SOAK_SECONDS:
            await echo(window, f"{n}-{calls}")
            calls += 1

    await asyncio.gather(*(keep_calling(window, n) for n, window in enumerate(windows)))
    elapsed = time.monotonic() - started

    for window in windows:
        states = {s["state"] for s in window.statuses if s["server"] == "svc"}
        assert "authRequired" not in states - ({"authRequired"} if window is first else set())
        assert window.latest("svc")["state"] == "connected"
        assert not any("expired or was revoked" in line for line in window.log)
    assert len(first.shown_documents) == 1  # one sign-in in all
    answers = [a for log in logs for a in token_responses(log, f"{oidc.issuer}/token")]
    assert set(answers) == {"200"}, answers  # never an invalid_grant (400)
    refreshes = len(answers) - 1  # the first is the authorization code exchange
    # A token is refreshed at half its life: at most one refresh per half-life, plus one.
    assert refreshes <= elapsed / (SOAK_ACCESS_TTL_S / 2) + 1, (refreshes, elapsed)
    assert refreshes >= elapsed / SOAK_ACCESS_TTL_S - 1, (refreshes, elapsed)
    assert calls > WINDOWS * 10
    print(f"soak: {calls} calls in {elapsed:.0f} s across {WINDOWS} windows, {refreshes} refreshes")
