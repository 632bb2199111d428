"""The layering DESIGN.md asks for, held by tests: `transport/` and `auth/` know nothing of
editors or of the hub; the editor edge starts without the HTTP and OAuth stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "server" / "mcpls"
UPPER_LAYERS = ("mcpls.hub", "mcpls.connection", "mcpls.lsp")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    "path",
    sorted(
        [*PACKAGE.glob("transport/*.py"), *PACKAGE.glob("auth/*.py"), *PACKAGE.glob("store/*.py")]
    ),
    ids=lambda path: str(path.relative_to(PACKAGE)),
)
def test_lower_layers_never_import_the_hub_the_connection_or_the_editor_edge(path: Path) -> None:
    upward = {m for m in imported_modules(path) if m.startswith(UPPER_LAYERS)}
    assert upward == set()


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("auth/*.py")), ids=lambda p: p.name)
def test_auth_does_not_import_the_transport(path: Path) -> None:
    assert not {m for m in imported_modules(path) if m.startswith("mcpls.transport")}


@pytest.mark.parametrize("module", ["mcpls.lsp.server", "mcpls.cli"])
def test_the_editor_edge_starts_without_httpx_authlib_or_keyring(module: str) -> None:
    # Start-up time: these load only when a configured server needs them (`mcpls.cli`
    # registers the terminal commands, which load them only when one runs).
    probe = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('httpx', 'authlib', 'keyring') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
