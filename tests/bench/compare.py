"""Before and after in one run: mcpls at a git revision beside the working tree. Not a test.

    .venv/bin/python tests/bench/compare.py --before c03a543 [--calls 3000] [--rounds 2]

The revision's `server/` is unpacked from git into a temporary folder and run with
PYTHONPATH; both `mcpls serve` processes are driven by one bench client against one SDK
server, their calls interleaved, so that the load of this shared machine falls on both
alike. Printed per round, each process in turn going first:

- small calls: `tools/call` of `add`, p50 against the raw httpx floor, and mcpls's CPU time
  per call from /proc (all threads), which others' load moves much less than latencies;
- large: a 10 MB tool result (time, CPU, peak RSS above the resident size before, in copies
  of the result as sent) and `mcp/listTools` with 1,000 tools.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: bench, peers
from bench import run

SIZE = 10_000_000


def unpack(revision: str, into: Path) -> Path:
    """`server/` of `revision`, unpacked under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(run.REPO), "archive", revision, "server"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "server"


async def add_tools(url: str, count: int) -> None:
    """`count` more tools on the server (tools.py's add_tool), before mcpls connects."""
    async with httpx.AsyncClient(timeout=60) as http:
        headers = {"Accept": run.ACCEPT, "MCP-Protocol-Version": run.PROTOCOL}
        answer = await http.post(url, json=run.initialize_body("adder"), headers=headers)
        headers["Mcp-Session-Id"] = answer.headers["mcp-session-id"]
        for i in range(count):
            body = run.call_body({"name": f"extra_{i}"}, "add_tool")
            await http.post(url, json=body, headers=headers)


async def small(editors: dict[str, run.Editor], floor: run.Call, calls: int) -> None:
    samples: dict[str, list[float]] = {"floor": [], **{name: [] for name in editors}}
    cpu = dict.fromkeys(editors, 0.0)
    for call in [floor, *(run.mcpls_call(editor) for editor in editors.values())]:
        await run.timed(call, 20)  # warm-up
    for _ in range(5):
        samples["floor"] += await run.timed(floor, calls // 5)
        for name, editor in editors.items():
            before = run.cpu_seconds(editor.pid)
            samples[name] += await run.timed(run.mcpls_call(editor), calls // 5)
            cpu[name] += run.cpu_seconds(editor.pid) - before
    base = statistics.median(samples["floor"])
    print(f"  small calls: floor p50 {base * 1000:.3f} ms")
    for name in editors:
        p50 = statistics.median(samples[name])
        print(
            f"    {name:7s} p50 {p50 * 1000:.3f} ms ({p50 / base:.2f}x), "
            f"CPU per call {cpu[name] / calls * 1e6:.0f} us"
        )


async def large(editors: dict[str, run.Editor], calls: int) -> None:
    before = {name: run.proc_status(e.pid, "VmRSS") for name, e in editors.items()}
    took: dict[str, list[float]] = {name: [] for name in editors}
    listed: dict[str, list[float]] = {name: [] for name in editors}
    cpu = dict.fromkeys(editors, 0.0)
    payload = 0
    params = {"server": "bench", "name": "big", "arguments": {"size": SIZE}}
    for _ in range(calls):
        for name, editor in editors.items():
            used = run.cpu_seconds(editor.pid)
            start = time.perf_counter()
            result = await editor.request("mcp/callTool", params)
            took[name].append(time.perf_counter() - start)
            cpu[name] += run.cpu_seconds(editor.pid) - used
            payload = len(json.dumps(result, separators=(",", ":")))
            start = time.perf_counter()
            await editor.request("mcp/listTools", {"server": "bench"})
            listed[name].append(time.perf_counter() - start)
    for name, editor in editors.items():
        above = run.proc_status(editor.pid, "VmHWM") - before[name]
        print(
            f"    {name:7s} 10 MB result {statistics.median(took[name]) * 1000:.0f} ms, "
            f"CPU {cpu[name] / calls * 1000:.0f} ms, peak RSS +{above / 2**20:.0f} MB = "
            f"{above / payload:.1f} copies of the result as sent ({payload / 1e6:.1f} MB); "
            f"listTools {statistics.median(listed[name]) * 1000:.1f} ms"
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--before", required=True, help="a git revision, e.g. main or c03a543")
    parser.add_argument("--calls", type=int, default=3000, help="small calls per round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mcpls-compare-") as tmp:
        env = run.bench_env(Path(tmp))
        old = unpack(args.before, Path(tmp) / "before")
        envs = {"before": {**env, "PYTHONPATH": str(old)}, "after": env}
        async with run.sdk_server(env) as url:
            await add_tools(url, 1000)
            for round_ in range(args.rounds):
                order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
                editors = {
                    n: await run.mcpls_editor(envs[n], {"bench": {"url": url}}) for n in order
                }
                print(f"round {round_ + 1}, load average {os.getloadavg()[0]:.2f}")
                with contextlib.ExitStack() as stack:
                    await small(editors, run.raw_sync(stack, url), args.calls)
                await large(editors, 3)
                for editor in editors.values():
                    await editor.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
