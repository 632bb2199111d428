"""Files readable only by their owner, written atomically: the store's fallback where no
keychain works, and the home of records that are not secret. A crash or a full disk
leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import time
from pathlib import Path

from mcpls.errors import StorageFailed
from mcpls.store.records import digest

# An entry is a few kilobytes; anything far bigger is not ours and is not read into memory.
MAX_ENTRY_BYTES = 1 << 20
_TEMP_SUFFIX = ".tmp"
# No write takes this long: an older temp file is a leftover whatever its pid says.
STALE_TEMP_AGE_S = 600.0


def display(path: Path) -> str:
    """A path as a person would type it (home as ~)."""
    with contextlib.suppress(ValueError, RuntimeError):
        return str(Path("~") / path.relative_to(Path.home()))
    return str(path)


_HAS_POSIX_MODES = os.name == "posix"
# Refuse to follow a symlink planted where an entry should be. Windows has no such flag; the
# per-user profile directory's ACL is the protection there.
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


def private_directory(path: Path) -> Path:
    """Create `path` (and parents) and make it 0700 where the platform has modes."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _HAS_POSIX_MODES:
            # mkdir's mode is filtered by the umask and ignored for an existing directory.
            os.chmod(path, 0o700)
    except OSError as exc:
        raise StorageFailed(
            f"could not create the directory {display(path)} ({exc.strerror or exc}); "
            "check that it is writable by you"
        ) from exc
    return path


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: a 0600 temp file beside it, fsync, rename.

    A crash or a full disk leaves either the old file or the new one, never a torn one;
    a temp file is never left behind on an error path (a killed writer's is swept at the
    next start, `sweep_temporary`).
    """
    private_directory(path.parent)
    try:
        # mkstemp opens with O_EXCL (and O_NOFOLLOW where it exists) and mode 0600. The
        # writer's pid in the name tells a dead writer's leftover from a live one's.
        fd, temp_name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=_TEMP_SUFFIX
        )
    except OSError as exc:
        raise _write_failed(path, exc) from exc
    temp = Path(temp_name)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        _replace(temp, path)
    except BaseException as exc:  # cancelled or interrupted too: never leave the copy
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(exc, OSError):
            raise _write_failed(path, exc) from exc
        raise
    _sync_directory(path.parent)


def _writer_alive(pid: int) -> bool:
    if not _HAS_POSIX_MODES:
        return True  # no safe probe (os.kill would terminate on Windows): judged by age
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def sweep_temporary(directory: Path, *, max_age_s: float = STALE_TEMP_AGE_S) -> int:
    """Delete the temp files killed writers left in `directory` (they may hold a whole
    token set); a live writer's file is kept. Returns how many were deleted."""
    removed = 0
    try:
        candidates = list(directory.glob(f".*{_TEMP_SUFFIX}"))
    except OSError:
        return 0
    now = time.time()
    for path in candidates:
        parts = path.name.split(".")
        # ".<entry>.json.<pid>.<random>.tmp" -> the pid is the third part from the end.
        pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
        try:
            old = now - path.stat().st_mtime > max_age_s
            if old or pid is None or not _writer_alive(pid):
                path.unlink()
                removed += 1
        except OSError:
            continue  # gone already, or not ours to delete
    return removed


def _write_failed(path: Path, exc: OSError) -> StorageFailed:
    if isinstance(exc, IsADirectoryError):
        # Something put a directory where the entry goes: no rename can replace it.
        return StorageFailed(
            f"could not write {display(path)}: it is a directory, not a file mcpls wrote; remove it"
        )
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return StorageFailed(
            f"the disk is full: could not write {display(path)}; the previous copy is kept. "
            "Free some disk space and try again."
        )
    return StorageFailed(
        f"could not write {display(path)} ({exc.strerror or exc}); the previous copy is "
        "kept. Check that the directory is writable by you."
    )


def _replace(source: Path, target: Path) -> None:
    # On Windows a reader holding the target open makes the rename fail for a moment.
    for _ in range(20 if os.name == "nt" else 0):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            time.sleep(0.05)
    os.replace(source, target)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable; directories cannot be opened (or need not be) on Windows."""
    if not _HAS_POSIX_MODES:
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_private_file(path: Path) -> bytes | None:
    """The file's bytes, None if it does not exist; OSError or ValueError if unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if stat.S_ISDIR(mode):
            # Opening a directory read-only succeeds; say what it is before touching its mode.
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise ValueError("not a regular file")
        if _HAS_POSIX_MODES and mode & 0o077:
            # Someone widened the mode; narrow it again rather than leave tokens readable.
            os.fchmod(file.fileno(), 0o600)
        data = file.read(MAX_ENTRY_BYTES + 1)
    if len(data) > MAX_ENTRY_BYTES:
        raise ValueError("larger than any entry mcpls writes")
    return data


class FileEntries:
    """One JSON file per entry, named by the SHA-256 of its key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key: str) -> Path:
        return self.directory / f"{digest(key)}.json"

    def read(self, key: str) -> bytes | None:
        return read_private_file(self.path(key))

    def write(self, key: str, data: bytes) -> None:
        write_atomically(self.path(key), data)

    def remove(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageFailed(
                f"could not delete {display(path)} ({exc.strerror or exc}); delete it by hand"
            ) from exc
        _sync_directory(self.directory)
