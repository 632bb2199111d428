"""Fixtures of the terminal tests: `cli` (the real `mcpls` command line in the test's
isolated folders) and, for the tests where an editor shares the store, the end-to-end
tests' `editor_factory`."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.conftest import editor_factory
from terminal.runner import Cli

__all__ = ["editor_factory"]


@pytest.fixture
def cli(isolated_dirs: Path) -> Cli:
    """`mcpls` as a person runs it, with this test's servers.json and token store."""
    return Cli(isolated_dirs)
