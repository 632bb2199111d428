"""The extension in a real VS Code: code-server 4.139.1 (VS Code 1.139) with the built
.vsix installed, driven by Playwright and Debian's Chromium (e2e.mjs), against the real
`mcpls serve` and a real OAuth-protected MCP server (`py_oauth_server`): the person sees
the server needs a sign-in, signs in from the palette in the page the extension opened,
sees it connected with its tools, and logs out. Screenshots: tests/clients/vscode/artifacts/."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clients.vscode.vscode_env import HERE, REPO, TOOLS, Node, redact
from peers.managed import HOST, HttpPeer, free_port

MCPLS = Path(sys.executable).parent / "mcpls"
CODE_SERVER = TOOLS / "node_modules" / ".bin" / "code-server"


@dataclass
class CodeServer:
    process: subprocess.Popen[bytes]
    port: int
    workspace: Path
    log: Path
    user_data: Path

    @property
    def user_settings(self) -> Path:
        return self.user_data / "User" / "settings.json"

    def mcpls_processes(self) -> list[int]:
        """The pids of `mcpls serve` processes in code-server's process group."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
            except OSError:  # ended meanwhile
                continue
            if int(fields[2]) == self.process.pid and str(MCPLS).encode() in cmdline[:2]:
                found.append(int(stat.parent.name))
        return found

    def mcpls_channel(self) -> str:
        """The "mcpls" output channel (mcpls's stderr and, traced, every LSP message)."""
        [channel] = (self.user_data / "logs").rglob("*-mcpls.log")
        return channel.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/?folder={self.workspace}"

    def output(self) -> str:
        return redact(self.log.read_text(errors="replace"))[-6000:]


def machine_settings() -> dict[str, Any]:
    """Settings of scope `machine`: code-server is a remote window, so they are the remote
    machine's (user-data/Machine/settings.json), as over SSH; user settings would be ignored."""
    return {
        "mcpls.path": str(MCPLS),
        "mcpls.allowInsecureLoopback": True,  # the peer is plain http on this machine
        "mcpls.tokenStorage": "file",
    }


def user_settings(oauth_url: str, plain_url: str) -> dict[str, Any]:
    return {
        "mcpls.servers": {"svc": {"url": oauth_url}, "py": {"url": plain_url}},
        "mcpls.trace.server": "verbose",
        # A quiet, trusted workbench: no Restricted Mode, chat agent, tours or updates.
        "security.workspace.trust.enabled": False,
        "chat.disableAIFeatures": True,
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        # The test replaces settings.json's text in the editor: no brackets or indent added.
        "editor.autoClosingBrackets": "never",
        "editor.autoClosingQuotes": "never",
        "editor.autoIndent": "none",
    }


@pytest.fixture
def code_server(
    tmp_path: Path,
    node: Node,
    vsix: Path,
    artifacts: Path,
    py_oauth_server: Any,
    py_mcp_server: HttpPeer,
) -> Iterator[CodeServer]:
    user_data, extensions, workspace = (tmp_path / n for n in ("user-data", "extensions", "ws"))
    for folder in (user_data / "User", user_data / "Machine", extensions, workspace):
        folder.mkdir(parents=True)
    (user_data / "Machine" / "settings.json").write_text(json.dumps(machine_settings(), indent=2))
    (user_data / "User" / "settings.json").write_text(
        json.dumps(user_settings(py_oauth_server.mcp_url, py_mcp_server.url), indent=2)
    )
    dirs = ["--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    installed = node.run(str(CODE_SERVER), *dirs, "--install-extension", str(vsix), cwd=tmp_path)
    assert "was successfully installed" in installed, installed

    port = free_port()
    log = tmp_path / "code-server.log"
    # os.environ carries the isolated XDG folders, so the mcpls it starts uses temp dirs.
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(CODE_SERVER),
                *("--bind-addr", f"{HOST}:{port}", "--auth", "none"),
                *("--disable-telemetry", "--disable-update-check", "--disable-workspace-trust"),
                *dirs,
                str(workspace),
            ],
            env=node.env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group, so the extension host and mcpls end with it.
            start_new_session=True,
        )
    server = CodeServer(process, port, workspace, log, user_data)
    try:
        deadline = time.monotonic() + 60
        while not healthy(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"code-server did not come up on {port}:\n{server.output()}")
            time.sleep(0.1)  # poll interval of the condition above
        yield server
    finally:
        end_group(process)
        keep_logs(tmp_path, artifacts)


def keep_logs(tmp_path: Path, artifacts: Path) -> None:
    """code-server's log, the extension host's and the "mcpls" output channel, redacted."""
    logs = artifacts / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    found = [tmp_path / "code-server.log"]
    found += [p for p in (tmp_path / "user-data" / "logs").rglob("*.log") if "exthost" in str(p)]
    for path in found:
        if path.is_file():
            name = str(path.relative_to(tmp_path)).replace(os.sep, "_")
            (logs / name).write_text(redact(path.read_text(errors="replace")))


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def end_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to code-server's process group, SIGKILL to whatever is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def drive(
    server: CodeServer, node: Node, artifacts: Path, name: str, add_url: str
) -> list[dict[str, Any]]:
    """Run e2e.mjs; its steps, or a failure with its output and code-server's log."""
    config = {
        "url": server.url,
        "tools": str(TOOLS),
        "artifacts": str(artifacts),
        "server": name,
        "plainServer": "py",
        "userSettings": str(server.user_settings),
        "addServer": {"name": f"{name}-2", "url": add_url},
    }
    process = await asyncio.create_subprocess_exec(
        str(node.executable),
        str(HERE / "e2e.mjs"),
        json.dumps(config),
        env=node.env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=360)
    text = redact(stdout.decode())
    steps = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    if process.returncode != 0:
        pytest.fail(
            f"e2e.mjs failed ({process.returncode}):\n{text}\n{redact(stderr.decode())[-3000:]}"
            f"\n--- code-server log\n{server.output()}"
        )
    return steps


def step(steps: list[dict[str, Any]], name: str, index: int = 0) -> dict[str, Any]:
    found = [s for s in steps if s["step"] == name]
    assert len(found) > index, f"no step {name} #{index} in {steps}"
    return found[index]


@pytest.mark.timeout(480)
async def test_sign_in_and_out_in_real_vscode(
    code_server: CodeServer, node: Node, artifacts: Path, py_oauth_server: Any
) -> None:
    steps = await drive(code_server, node, artifacts, "svc", py_oauth_server.mcp_url)

    # Before any action: one server connected, one needing a sign-in (warned in the status
    # bar, asked once), and no page opened.
    assert step(steps, "statusBar", 0) == {
        "step": "statusBar",
        "text": "MCP 1/2",
        "icon": "warning",
    }
    assert step(steps, "prompt")["buttons"] == ["Authenticate", "Not now"]
    assert step(steps, "pagesBeforeSignIn")["count"] == 0
    py, svc = step(steps, "statusQuickPick")["rows"]
    assert py.startswith("py")
    assert "connected" in py
    assert svc.startswith("svc")
    assert "needs sign-in" in svc

    # MCP: Authenticate Server… (only svc needs it) opened exactly one page, which ended on
    # mcpls's loopback callback.
    sign_in = step(steps, "signInPage")
    assert sign_in["finalUrl"].startswith(f"http://{HOST}:")
    assert sign_in["finalUrl"].endswith("/callback")
    assert "mcpls has the sign-in" in sign_in["text"]
    assert sign_in["pages"] == 1
    assert step(steps, "statusBar", 1) == {"step": "statusBar", "text": "MCP 2/2", "icon": "plug"}

    # MCP: Show Tools…: a pick of the two servers, then svc's tools.
    py, svc = step(steps, "toolsServers")["rows"]
    assert py.startswith("py")
    assert svc.startswith("svc")
    # The peer's tools in its order (py_as_rs.py: the last two serve the stream-fault tests).
    assert [row.split()[0] for row in step(steps, "tools")["rows"]] == [
        "whoami",
        "echo",
        "admin_echo",
        "working",
        "hand_off",
    ]
    # A tool of py asks for a name (mcp/elicit): an input box with the default filled in.
    assert step(steps, "elicitation")["value"] == "anonymous"
    result = step(steps, "toolResult")["text"]
    assert result.startswith("ask_name: ")
    assert json.loads(result.removeprefix("ask_name: ")) == {
        "action": "accept",
        "content": {"name": "Ada"},
    }
    # Step-up: admin_echo needs mcp:admin, which the first sign-in did not grant. The call
    # fails with mcpls's words, the status asks for a sign-in (or, once mcpls keeps the
    # server connected after a 403, for more permission), and a second sign-in grants it.
    assert step(steps, "stepUpRefused")["text"].startswith("svc: ")
    svc_row = step(steps, "statusQuickPickStepUp")["rows"][1]
    assert "needs sign-in" in svc_row or "needs more permission" in svc_row, svc_row
    assert "mcp:admin" in svc_row
    assert step(steps, "statusBar", 2) == {"step": "statusBar", "text": "MCP 2/2", "icon": "plug"}
    assert step(steps, "stepUpGranted")["text"] == "admin_echo: root"
    assert (await py_oauth_server.stats())["authorizations"] == 2

    svc_row = step(steps, "statusQuickPickConnected")["rows"][1]
    assert "connected" in svc_row
    assert f"signed in with {py_oauth_server.issuer}" in svc_row

    # MCP: Log Out of Server…: svc disabled, not counted, signed out at the authorization server.
    assert step(steps, "statusBar", 3) == {"step": "statusBar", "text": "MCP 1/1", "icon": "plug"}
    svc_row = step(steps, "statusQuickPickLoggedOut")["rows"][1]
    assert svc_row.startswith("svc")
    assert "disabled" in svc_row
    assert (await py_oauth_server.stats())["revocations"] >= 1

    # A server added in the settings (signed out, so it needs a sign-in), taken by the same
    # mcpls process: one initialize in the output channel's trace of the whole session.
    assert step(steps, "statusBar", 4) == {
        "step": "statusBar",
        "text": "MCP 1/2",
        "icon": "warning",
    }
    assert code_server.mcpls_channel().count("Sending request 'initialize") == 1
    assert step(steps, "pagesAtEnd")["count"] == 2  # the two sign-ins

    for shot in (
        "1-needs-sign-in",
        "2-status-quick-pick",
        "3-connected",
        "4-tools",
        "6-needs-more-permission",
        "8-logged-out",
    ):
        assert (artifacts / f"{shot}.png").stat().st_size > 10_000, shot
