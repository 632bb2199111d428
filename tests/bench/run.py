"""Side-by-side benchmarks, printed as ratios. Not collected as tests.

    .venv/bin/python tests/bench/run.py [--startups 15] [--calls 200]

(a) start-up: spawn to `initialize` response, `mcpls serve` vs a bare pygls server;
(b) latency of sequential tool calls: `mcp/callTool` through mcpls vs the same JSON-RPC
    request POSTed with raw httpx vs the official Python SDK client, to one local SDK
    server (tests/peers/py_server.py, no OAuth: this measures the transport path).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from mcpls.demo import free_port, wait_listening
from mcpls.lsp.server import raw_converter

HERE = Path(__file__).resolve().parent


async def time_startup(command: list[str], env: dict[str, str]) -> float:
    client = LanguageClient("bench", "1", converter_factory=raw_converter)
    start = time.perf_counter()
    await client.start_io(*command, env=env)
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
    elapsed = time.perf_counter() - start
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()  # type: ignore[no-untyped-call]
    return elapsed


async def startups(runs: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    mcpls = [sys.executable, "-m", "mcpls", "serve"]
    bare = [sys.executable, str(HERE / "bare_pygls.py")]
    # Interleave the two so that machine noise falls on both alike; one warm-up each.
    await time_startup(mcpls, env)
    await time_startup(bare, env)
    ours, base = [], []
    for _ in range(runs):
        ours.append(await time_startup(mcpls, env))
        base.append(await time_startup(bare, env))
    return ours, base


async def timed(n: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    await call()  # warm-up
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


async def mcpls_calls(url: str, n: int, env: dict[str, str]) -> list[float]:
    client = LanguageClient("bench", "1", converter_factory=raw_converter)
    connected = asyncio.Event()

    @client.feature("mcp/didChangeStatus")  # type: ignore[untyped-decorator]
    def on_status(ls: LanguageClient, status: dict[str, Any]) -> None:
        if status["state"] == "connected":
            connected.set()

    await client.start_io(sys.executable, "-m", "mcpls", "serve", env=env)
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options={"servers": {"bench": {"url": url}}},
        )
    )
    client.initialized(types.InitializedParams())
    await asyncio.wait_for(connected.wait(), 30)
    params = {"server": "bench", "name": "add", "arguments": {"a": 1, "b": 2}}
    samples = await timed(n, lambda: client.protocol.send_request_async("mcp/callTool", params))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()  # type: ignore[no-untyped-call]
    return samples


async def raw_calls(url: str, n: int) -> list[float]:
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as http:
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        }
        response = await http.post(url, json=init, headers=headers)
        headers["Mcp-Session-Id"] = response.headers["mcp-session-id"]
        headers["MCP-Protocol-Version"] = "2025-11-25"
        await http.post(
            url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
        )
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 1, "b": 2}},
        }

        async def call() -> None:
            answer = await http.post(url, json=body, headers=headers)
            answer.raise_for_status()
            await answer.aread()

        return await timed(n, call)


async def sdk_calls(url: str, n: int) -> list[float]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        streamable_http_client(url) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await timed(n, lambda: session.call_tool("add", {"a": 1, "b": 2}))


def line(label: str, samples: list[float], base: float) -> str:
    median = statistics.median(samples)
    return (
        f"  {label:<34} median {median * 1000:8.2f} ms   p90 "
        f"{statistics.quantiles(samples, n=10)[-1] * 1000:8.2f} ms   ratio {median / base:5.2f}x"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--startups", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mcpls-bench-") as home:
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": f"{home}/config",
            "XDG_DATA_HOME": f"{home}/data",
            "XDG_STATE_HOME": f"{home}/state",
        }
        print(f"(a) start-up, spawn → initialize response, {args.startups} runs each")
        ours, base = await startups(args.startups, env)
        base_median = statistics.median(base)
        print(line("bare pygls server (baseline)", base, base_median))
        print(line("mcpls serve", ours, base_median))

        port = free_port()
        server = subprocess.Popen(  # noqa: ASYNC220 - started once, before timing
            [sys.executable, str(HERE.parent / "peers" / "py_server.py"), "--port", str(port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            await wait_listening(port)
            url = f"http://127.0.0.1:{port}/mcp"
            print(f"(b) {args.calls} sequential tools/call round trips to one local SDK server")
            raw = await raw_calls(url, args.calls)
            raw_median = statistics.median(raw)
            print(line("raw httpx POST (baseline)", raw, raw_median))
            print(
                line(
                    "mcp/callTool through mcpls",
                    await mcpls_calls(url, args.calls, env),
                    raw_median,
                )
            )
            print(line("official Python SDK client", await sdk_calls(url, args.calls), raw_median))
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
