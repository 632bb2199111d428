"""What the store's unit tests share: where the store lives under a test's XDG folders,
and a log sink that records what the store reports."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


class Log(list[tuple[str, str]]):
    """A `KeychainStore` log callback that keeps (level, message) pairs."""

    def __call__(self, level: str, message: str) -> None:
        self.append((level, message))

    def warnings(self) -> list[str]:
        return [message for level, message in self if level == "warning"]


def place_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Data and state directories inside tmp_path (platformdirs reads XDG_* on Linux)."""
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    if sys.platform != "linux":
        pytest.skip("the tests place the store through XDG variables")
    return tmp_path


def tokens_dir(root: Path) -> Path:
    """The token entries' folder under a root given to `place_store`."""
    return root / "xdg_data_home" / "mcpls" / "tokens"
