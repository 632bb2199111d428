"""The editor's memory of the one-time "needs you to sign in" prompt: which servers were
already offered a sign-in, across restarts and editor windows. It belongs to the editor
edge, not to OAuth."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator

import filelock
import platformdirs

from mcpls.errors import StorageFailed
from mcpls.store.files import display, private_directory, read_private_file, write_atomically
from mcpls.store.records import SCHEMA_VERSION, as_object, digest, strings

Log = Callable[[str, str], None]


def _no_log(level: str, message: str) -> None:
    """Silent unless given somewhere to write."""


class PromptState:
    """Which servers were already offered a sign-in, across restarts and windows.

    Keys are stored hashed: a server URL may carry a token in its query string. A failure
    to persist is logged and remembered in memory, so this process still asks only once.
    """

    def __init__(self, *, log: Log = _no_log) -> None:
        self._path = platformdirs.user_state_path("mcpls", appauthor=False) / "prompts.json"
        self._log = log
        self._shown_here: set[str] = set()

    def shown(self, server_key: str) -> bool:
        """Whether the prompt for this server was shown, by any mcpls process, ever."""
        hashed = digest(server_key)
        return hashed in self._shown_here or hashed in self._read()

    def mark_shown(self, server_key: str) -> None:
        """Remember that the prompt for this server was shown."""
        hashed = digest(server_key)
        self._shown_here.add(hashed)
        try:
            with self._file_lock():
                shown = self._read()
                if hashed in shown:
                    return
                document = {"version": SCHEMA_VERSION, "shown": sorted(shown | {hashed})}
                write_atomically(self._path, json.dumps(document).encode("utf-8"))
        except (StorageFailed, OSError) as exc:  # filelock.Timeout is an OSError
            self._log("warning", f"could not remember that a sign-in was offered: {exc}")

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        # Two windows marking different servers at once must not drop each other's mark.
        private_directory(self._path.parent)
        with filelock.FileLock(self._path.with_suffix(".lock"), mode=0o600, timeout=5):
            yield

    def _read(self) -> set[str]:
        try:
            data = read_private_file(self._path)
            if data is None:
                return set()
            document = as_object(json.loads(data.decode("utf-8")), "prompt state")
            return set(strings(document, "shown"))
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeError are ValueErrors
            self._log("warning", f"{display(self._path)} is unreadable and ignored: {exc}")
            return set()
