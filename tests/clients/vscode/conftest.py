"""Fixtures of the VS Code extension's tests: the tools tests/clients/vscode/setup.sh
installs and the extension built once per run as clients/vscode/mcpls.vsix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clients.vscode.vscode_env import ARTIFACTS, EXTENSION, SETUP, TOOLS, Node


@pytest.fixture(scope="session")
def node() -> Node:
    stamps = (TOOLS / ".installed", EXTENSION / "node_modules" / ".mcpls-installed")
    for stamp in stamps:
        if not stamp.exists():
            pytest.fail(f"{stamp} is missing: run {SETUP} (./tests/run does) to install the tools")
    return Node()


@pytest.fixture(scope="session")
def vsix(node: Node) -> Path:
    """clients/vscode/mcpls.vsix, built from the current sources."""
    target = EXTENSION / "mcpls.vsix"
    target.unlink(missing_ok=True)
    node.run("npm", "run", "package")
    assert target.is_file()
    return target


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots and logs of the real-editor test (ignored by git), this run's only."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir()
    return ARTIFACTS
