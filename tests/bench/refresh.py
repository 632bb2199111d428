"""Concurrent calls across a token refresh, printed as ratios. Not collected as tests.

    .venv/bin/python tests/bench/refresh.py [--runs 5] [--calls 200]

Requirement: N (200) concurrent `mcp/callTool` calls issued while the access token has just
expired cause exactly one token request at the authorization server; the time to complete
all N is compared with the same N calls on a fresh token.

A real `mcpls serve` (driven like an editor, settings and tokens in a temporary folder)
signs in once to tests/peers/oauth/py_as_rs.py (the official SDK's AS + MCP server, with
`/_control/stats` counting token requests by grant type), a scripted browser approving.

(a) fresh: N concurrent calls of `echo` on a valid token; no token request is allowed.
(b) expired on the server: `POST /_control/expire-access` (mcpls still thinks the token
    good, the server answers 401, mcpls refreshes once and retries), then N calls.
(c) expired for mcpls: a second server issues 10 s tokens, which mcpls refreshes at half
    their life; each batch waits until the token is due (a benchmark may wait on the
    clock: the wait is not timed), then sends N calls.
(d) two mcpls processes (two editor windows) sharing one token store (files): the second
    starts on the sign-in the first stored, and each batch is N calls split between the
    two. Fresh, expired on the server (401) and expired for mcpls (proactive), as above:
    across an expiry the processes must make one token request between them (the
    cross-process lock, and the adoption of the token the other process got).

Each batch is timed from the first request sent to the last answer received; every batch
across an expiry must cause exactly one token request (a refresh_token grant), a batch on
a fresh token none. The process exits with status 1, after printing every figure, if any
batch did not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types
from pygls.lsp.client import LanguageClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: lsp_client, peers

from lsp_client import on, send_request, stop
from mcpls.lsp.server import raw_converter
from peers.managed import (
    HOST,
    ManagedProcess,
    free_port,
    on_free_ports,
    python_peer,
)
from peers.oauth.fixtures import wait_for_ok

SERVER = "bench"
# mcpls refreshes a token this short-lived at half its life (5 s): each batch waits until
# the token is due, so that all its calls meet a token mcpls wants to replace. A batch must
# end before the token it got is due in turn: at 6 s (due after 3), a batch slowed to 4 s
# by a loaded machine refreshed twice.
PROACTIVE_TTL_S = 10
START_TIMEOUT_S = 30.0
SIGN_IN_TIMEOUT_S = 30.0
BATCH_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0


class BenchFailed(Exception):
    """Something other than the counted requirement went wrong (a call failed, a hang)."""


# --- the authorization + MCP server ----------------------------------------------------------


@dataclass
class Peer:
    """py_as_rs.py on a free port, with its control API."""

    process: ManagedProcess
    port: int

    @property
    def mcp_url(self) -> str:
        return f"http://{HOST}:{self.port}/mcp"

    async def control(self, method: str, name: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.request(method, f"http://{HOST}:{self.port}/_control/{name}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def token_requests(self) -> Counter[str]:
        """Token requests received so far, by grant type."""
        return Counter((await self.control("GET", "stats"))["token_requests"])


def start_peer(log_dir: Path, access_ttl: int) -> Peer:
    def attempt() -> Peer:
        port = free_port()
        process = ManagedProcess(
            f"py-as-rs-{port}",
            python_peer("oauth/py_as_rs.py", "--port", str(port), "--access-ttl", str(access_ttl)),
            log_dir=log_dir,
            port=port,
            start_timeout=START_TIMEOUT_S,
        )
        try:
            process.start()
            wait_for_ok(process, f"http://{HOST}:{port}/.well-known/oauth-authorization-server")
        except BaseException:
            process.stop()
            raise
        return Peer(process, port)

    return on_free_ports(attempt)


# --- the editor side ---------------------------------------------------------------------------


async def scripted_browser(url: str) -> bool:
    """The person's browser: the peer approves at once and redirects to mcpls's loopback
    callback, which the browser then opens."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as browser:
        response = await browser.get(url)
        location = response.headers.get("location", "")
        if not location.startswith(f"http://{HOST}:"):
            return False
        return (await browser.get(location)).status_code == 200


@dataclass
class Editor:
    client: LanguageClient
    states: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stderr_task: asyncio.Task[None] | None = None

    async def wait_for_state(self, *wanted: str) -> str:
        async with asyncio.timeout(START_TIMEOUT_S):
            while not (self.states and self.states[-1] in wanted):
                self.changed.clear()
                await self.changed.wait()
        return self.states[-1]


async def start_editor(url: str, env: dict[str, str], log_file: Path) -> Editor:
    client = LanguageClient("bench", "1", converter_factory=raw_converter)
    editor = Editor(client)

    @on(client, "mcp/didChangeStatus")
    def on_status(ls: LanguageClient, status: dict[str, Any]) -> None:
        if status["server"] == SERVER:
            editor.states.append(status["state"])
            editor.changed.set()

    @on(client, types.WINDOW_SHOW_DOCUMENT)
    async def on_show_document(
        ls: LanguageClient, params: types.ShowDocumentParams
    ) -> types.ShowDocumentResult:
        return types.ShowDocumentResult(success=await scripted_browser(params.uri))

    @on(client, types.WINDOW_SHOW_MESSAGE_REQUEST)
    def on_prompt(
        ls: LanguageClient, params: types.ShowMessageRequestParams
    ) -> types.MessageActionItem | None:
        return types.MessageActionItem(title="Not now")  # the bench signs in explicitly

    @on(client, types.WINDOW_LOG_MESSAGE)
    def on_log(ls: LanguageClient, params: types.LogMessageParams) -> None:
        pass

    logging = ["--log-level", "warning", "--log-file", str(log_file)]
    await client.start_io(sys.executable, "-m", "mcpls", "serve", *logging, env=env)
    process = client._server  # pygls keeps it private; its stderr is a pipe nobody reads
    if process is not None and process.stderr is not None:
        editor.stderr_task = asyncio.create_task(drain(process.stderr, log_file))
    settings = {
        "servers": {SERVER: {"url": url}},
        "allowInsecureLoopback": True,
        "tokenStorage": "file",
    }
    async with asyncio.timeout(START_TIMEOUT_S):
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(
                    window=types.WindowClientCapabilities(
                        show_document=types.ShowDocumentClientCapabilities(support=True)
                    )
                ),
                initialization_options=settings,
            )
        )
    client.initialized(types.InitializedParams())
    return editor


async def drain(stream: asyncio.StreamReader, log_file: Path) -> None:
    """Keep mcpls's stderr pipe from filling up (and keep what it said)."""
    with log_file.with_suffix(".stderr").open("ab") as out:
        while chunk := await stream.read(65536):
            out.write(chunk)


async def stop_editor(editor: Editor) -> None:
    """shutdown + exit; the process is killed if it does not end in time."""
    client = editor.client
    process = client._server
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await client.shutdown_async(None)
        client.exit(None)
    except (TimeoutError, Exception) as exc:  # going away anyway: make sure it does
        print(f"  (mcpls did not shut down cleanly: {exc!r}; killing it)", file=sys.stderr)
    if process is not None and process.returncode is None:
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop(client), STOP_TIMEOUT_S)
    if editor.stderr_task is not None:
        editor.stderr_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await editor.stderr_task


async def sign_in(editor: Editor) -> None:
    state = await editor.wait_for_state("authRequired", "connected", "error")
    if state != "authRequired":
        raise BenchFailed(f"expected the server to need a sign-in, it is {state!r}")
    async with asyncio.timeout(SIGN_IN_TIMEOUT_S):
        status = await send_request(editor.client, "mcp/authenticate", {"server": SERVER})
    if status["state"] != "connected":
        raise BenchFailed(f"sign-in did not connect: {status}")


async def batch(editors: Editor | list[Editor], calls: int, tag: str) -> float:
    """`calls` concurrent `mcp/callTool`, shared out among `editors` in turn; seconds from
    the first sent to the last answered."""
    windows = editors if isinstance(editors, list) else [editors]

    async def call(i: int) -> None:
        text = f"{tag}-{i}"
        params = {"server": SERVER, "name": "echo", "arguments": {"text": text}}
        client = windows[i % len(windows)].client
        result = await send_request(client, "mcp/callTool", params)
        if result.get("isError") or result["content"][0].get("text") != text:
            raise BenchFailed(f"call {i} answered {result}")

    start = time.perf_counter()
    try:
        async with asyncio.timeout(BATCH_TIMEOUT_S):
            await asyncio.gather(*(call(i) for i in range(calls)))
    except TimeoutError:
        raise BenchFailed(f"{calls} calls did not complete within {BATCH_TIMEOUT_S} s") from None
    return time.perf_counter() - start


# --- measurements ------------------------------------------------------------------------------


@dataclass
class Scenario:
    label: str
    refreshes: int  # refresh_token grants each batch must cause, and no other token request
    samples: list[float] = field(default_factory=list)
    counts: list[Counter[str]] = field(default_factory=list)

    def record(self, seconds: float, before: Counter[str], after: Counter[str]) -> None:
        self.samples.append(seconds)
        self.counts.append(after - before)

    def failures(self) -> list[str]:
        wanted = Counter({"refresh_token": self.refreshes}) if self.refreshes else Counter[str]()
        return [
            f"{self.label}, run {run}: token requests {dict(count) or 'none'}, "
            f"expected {dict(wanted) or 'none'}"
            for run, count in enumerate(self.counts, 1)
            if count != wanted
        ]

    def refresh_counts(self) -> str:
        return " ".join(str(c["refresh_token"]) for c in self.counts)


async def measured(
    editor: Editor | list[Editor],
    peer: Peer,
    scenario: Scenario,
    calls: int,
    *,
    expire: bool = False,
) -> None:
    before = await peer.token_requests()
    if expire:
        await peer.control("POST", "expire-access")
    seconds = await batch(editor, calls, scenario.label[:1])
    scenario.record(seconds, before, await peer.token_requests())


async def run_on_server(
    home: Path,
    env: dict[str, str],
    access_ttl: int,
    name: str,
    body: Callable[[list[Editor], Peer], Awaitable[None]],
    *,
    windows: int = 1,
) -> None:
    """Start a peer and `windows` `mcpls serve` sharing one store; sign in with the first
    (the others start on the stored sign-in); run `body(editors, peer)`; stop them all."""
    peer = start_peer(home / "peers", access_ttl)
    editors: list[Editor] = []
    try:
        editors.append(await start_editor(peer.mcp_url, env, home / f"mcpls-{name}.log"))
        await sign_in(editors[0])
        for window in range(1, windows):
            log_file = home / f"mcpls-{name}-{window}.log"
            editors.append(await start_editor(peer.mcp_url, env, log_file))
            state = await editors[-1].wait_for_state("connected", "authRequired", "error")
            if state != "connected":
                raise BenchFailed(f"window {window + 1} did not use the stored sign-in: {state}")
        await body(editors, peer)
    except Exception:
        dump_logs(peer, home, name)
        raise
    finally:
        for editor in editors:
            await stop_editor(editor)
        peer.process.stop()


def dump_logs(peer: Peer, home: Path, name: str) -> None:
    """What the peer and mcpls said, for a run that went wrong."""
    print(peer.process.output()[-3000:], file=sys.stderr)
    for log in sorted(home.glob(f"mcpls-{name}[.-]*")):
        print(f"[{log.name}]\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)


def line(label: str, samples: list[float], base: float) -> str:
    median = statistics.median(samples)
    return (
        f"  {label:<38} median {median * 1000:8.2f} ms   p90 "
        f"{statistics.quantiles(samples, n=10)[-1] * 1000:8.2f} ms   ratio {median / base:5.2f}x"
    )


@dataclass
class RefreshResult:
    fresh: Scenario
    expired: Scenario
    proactive: Scenario
    # Two mcpls processes sharing the store (None: not measured).
    shared: tuple[Scenario, Scenario, Scenario] | None = None

    @property
    def scenarios(self) -> tuple[Scenario, ...]:
        return (self.fresh, self.expired, self.proactive, *(self.shared or ()))

    def failures(self) -> list[str]:
        return [f for s in self.scenarios for f in s.failures()]


async def measure(runs: int, calls: int, *, two_processes: bool = True) -> RefreshResult:
    """`calls` concurrent calls on a fresh token, across a 401, across a proactive refresh;
    with `two_processes`, the same split between two mcpls sharing one store."""
    result = RefreshResult(
        Scenario("fresh token", refreshes=0),
        Scenario("expired on the server (401)", refreshes=1),
        Scenario("expired for mcpls (proactive)", refreshes=1),
    )
    if two_processes:
        result.shared = (
            Scenario("2 mcpls: fresh token", refreshes=0),
            Scenario("2 mcpls: expired on the server (401)", refreshes=1),
            Scenario("2 mcpls: expired for mcpls (proactive)", refreshes=1),
        )

    def server_expiry(
        fresh: Scenario, expired: Scenario
    ) -> Callable[[list[Editor], Peer], Awaitable[None]]:
        async def body(editors: list[Editor], peer: Peer) -> None:
            await batch(editors, calls, "warm-up")
            # Interleaved, so that machine noise falls on both alike. A refresh leaves a
            # token good for an hour, so each fresh batch really starts from a fresh token.
            for _ in range(runs):
                await measured(editors, peer, fresh, calls)
                await measured(editors, peer, expired, calls, expire=True)

        return body

    def client_expiry(proactive: Scenario) -> Callable[[list[Editor], Peer], Awaitable[None]]:
        async def body(editors: list[Editor], peer: Peer) -> None:
            await batch(editors, calls, "warm-up")
            for _ in range(runs):
                # Past half the token's life (plus a margin): mcpls now refreshes before use.
                await asyncio.sleep(PROACTIVE_TTL_S / 2 + 0.3)
                await measured(editors, peer, proactive, calls)

        return body

    with tempfile.TemporaryDirectory(prefix="mcpls-bench-refresh-") as tmp:
        home = Path(tmp)
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state"),
        }
        await run_on_server(home, env, 3600, "ttl3600", server_expiry(result.fresh, result.expired))
        await run_on_server(
            home, env, PROACTIVE_TTL_S, f"ttl{PROACTIVE_TTL_S}", client_expiry(result.proactive)
        )
        if result.shared is not None:
            fresh, expired, proactive = result.shared
            # A store of their own: the one-window runs above signed in to other peers.
            shared_home = home / "shared"
            shared_env = {
                **env,
                "XDG_CONFIG_HOME": str(shared_home / "config"),
                "XDG_DATA_HOME": str(shared_home / "data"),
                "XDG_STATE_HOME": str(shared_home / "state"),
            }
            await run_on_server(
                home, shared_env, 3600, "two-ttl3600", server_expiry(fresh, expired), windows=2
            )
            await run_on_server(
                home,
                shared_env,
                PROACTIVE_TTL_S,
                f"two-ttl{PROACTIVE_TTL_S}",
                client_expiry(proactive),
                windows=2,
            )
    return result


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument(
        "--one-process", action="store_true", help="skip the two mcpls sharing one store"
    )
    args = parser.parse_args()
    runs, calls = max(args.runs, 2), args.calls
    print(f"{calls} concurrent mcp/callTool (echo), {runs} runs each")
    result = await measure(runs, calls, two_processes=not args.one_process)
    base = statistics.median(result.fresh.samples)
    print("one mcpls; ratios to its fresh-token batches")
    print(line("fresh token (baseline)", result.fresh.samples, base))
    print(line("expired on the server (401)", result.expired.samples, base))
    print(line(f"expired for mcpls (ttl {PROACTIVE_TTL_S} s)", result.proactive.samples, base))
    if result.shared is not None:
        fresh, expired, proactive = result.shared
        shared_base = statistics.median(fresh.samples)
        print("two mcpls sharing one store, the calls split between them; ratios to their fresh")
        print(line("2 mcpls: fresh token (baseline)", fresh.samples, shared_base))
        print(line("2 mcpls: expired on the server", expired.samples, shared_base))
        print(line(f"2 mcpls: expired (ttl {PROACTIVE_TTL_S} s)", proactive.samples, shared_base))
    print("refresh_token grants per batch (must be 1; fresh must be 0)")
    for scenario in result.scenarios:
        print(f"  {scenario.label:<40} {scenario.refresh_counts()}")
    failures = result.failures()
    if failures:
        print("FAIL: not exactly one token request per batch across an expiry", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    print("OK: exactly one token request per batch across an expiry, none on a fresh token")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
