"""Where sign-ins live: the system keychain, or files readable only by the user.

Tokens are keyed by canonical resource URL and authorization server issuer, client
registrations by issuer. The system keychain (`keyring`) is used when one works; otherwise
each entry is a small JSON file under the platformdirs data directory (mode 0600, written
atomically), so a damaged file costs one entry and never another server's. Several mcpls
processes (one per editor window) share the store; `TokenStore.locked` serialises refresh
and sign-in per server across them, and nothing here caches an entry, so a caller that
re-reads under the lock sees a token another process already rotated.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar, cast, get_args

import filelock
import keyring
import keyring.backend
import keyring.backends.chainer
import keyring.backends.fail
import keyring.errors
import platformdirs

__all__ = [
    "ClientRegistration",
    "PromptState",
    "StorageMode",
    "StoreError",
    "TokenSet",
    "TokenStore",
]

StorageMode = Literal["auto", "keyring", "file"]
RegistrationSource = Literal["preregistered", "cimd", "dcr"]
Log = Callable[[str, str], None]

SERVICE = "mcpls"
# Bumped only if the envelope changes incompatibly; the directory is never versioned, so an
# upgrade keeps everyone signed in.
SCHEMA_VERSION = 1
# An entry is a few kilobytes; anything far bigger is not ours and is not read into memory.
_MAX_ENTRY_BYTES = 1 << 20
_T = TypeVar("_T")


def _no_log(level: str, message: str) -> None:
    """The default logger: the store is silent unless given somewhere to write."""


class StoreError(Exception):
    """The store could not do what was asked. The message is for a person and holds no secret."""


# -- what is stored --------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSet:
    """Tokens for one server (resource) from one authorization server (issuer)."""

    access_token: str = field(repr=False)
    token_type: str
    expires_at: float | None  # unix seconds, absolute so it survives a restart
    refresh_token: str | None = field(repr=False)
    scope: tuple[str, ...]
    issuer: str
    resource: str
    # When it was issued (unix seconds): a token's lifetime decides how early to refresh.
    # None in entries written before it was recorded.
    obtained_at: float | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict; it holds the secrets, so it goes only into the store."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "scope": list(self.scope),
            "issuer": self.issuer,
            "resource": self.resource,
            "obtained_at": self.obtained_at,
        }

    @classmethod
    def from_json(cls, data: object) -> TokenSet:
        """Parse `to_json` output; ValueError (naming the field, never its value) otherwise."""
        fields = _object(data, "token set")
        return cls(
            access_token=_string(fields, "access_token"),
            token_type=_string(fields, "token_type"),
            expires_at=_optional_number(fields, "expires_at"),
            refresh_token=_optional_string(fields, "refresh_token"),
            scope=_strings(fields, "scope"),
            issuer=_string(fields, "issuer"),
            resource=_string(fields, "resource"),
            obtained_at=_optional_number(fields, "obtained_at"),
        )


@dataclass(frozen=True)
class ClientRegistration:
    """How mcpls is known to one authorization server (issuer)."""

    issuer: str
    client_id: str
    client_secret: str | None = field(repr=False)
    token_endpoint_auth_method: str
    redirect_uris: tuple[str, ...]
    source: RegistrationSource
    client_secret_expires_at: float | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict; it may hold the client secret, so it goes only into the store."""
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "redirect_uris": list(self.redirect_uris),
            "source": self.source,
            "client_secret_expires_at": self.client_secret_expires_at,
        }

    @classmethod
    def from_json(cls, data: object) -> ClientRegistration:
        """Parse `to_json` output; ValueError (naming the field, never its value) otherwise."""
        fields = _object(data, "client registration")
        source = _string(fields, "source")
        if source not in get_args(RegistrationSource):
            raise ValueError("client registration: source is not preregistered, cimd or dcr")
        return cls(
            issuer=_string(fields, "issuer"),
            client_id=_string(fields, "client_id"),
            client_secret=_optional_string(fields, "client_secret"),
            token_endpoint_auth_method=_string(fields, "token_endpoint_auth_method"),
            redirect_uris=_strings(fields, "redirect_uris"),
            source=cast(RegistrationSource, source),
            client_secret_expires_at=_optional_number(fields, "client_secret_expires_at"),
        )


# Parsing helpers. Their errors name the field and never echo a value: values are secrets.


def _object(data: object, what: str) -> dict[str, object]:
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise ValueError(f"{what}: expected a JSON object")
    return cast(dict[str, object], data)


def _string(fields: dict[str, object], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a string")
    return value


def _optional_string(fields: dict[str, object], name: str) -> str | None:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name}: expected a string or null")
    return value


def _optional_number(fields: dict[str, object], name: str) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a number or null")
    return float(value)


def _strings(fields: dict[str, object], name: str) -> tuple[str, ...]:
    value = fields.get(name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name}: expected a list of strings")
    return tuple(cast(list[str], value))


# -- keys ------------------------------------------------------------------------------------


def _tokens_key(resource: str, issuer: str) -> str:
    return f"tokens|{resource}|{issuer}"


def _registration_key(issuer: str) -> str:
    return f"client|{issuer}"


def _secret_key(name: str) -> str:
    return f"secret|{name}"


def _describe(key: str) -> str:
    """An entry in a person's words, for warnings (keys hold URLs and names, not secrets)."""
    kind, _, rest = key.partition("|")
    if kind == "tokens":
        resource, _, issuer = rest.partition("|")
        return f"the sign-in for {resource} (issuer {issuer})"
    if kind == "client":
        return f"the client registration with {rest}"
    return f"the stored secret {rest!r}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _display(path: Path) -> str:
    """A path as a person would type it (home as ~)."""
    with contextlib.suppress(ValueError, RuntimeError):
        return str(Path("~") / path.relative_to(Path.home()))
    return str(path)


def _redact(text: str, secrets: tuple[str | None, ...]) -> str:
    """Belt and braces for third-party error text that reaches a log or a StoreError."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


# -- files -----------------------------------------------------------------------------------

_HAS_POSIX_MODES = os.name == "posix"
# Refuse to follow a symlink planted where an entry should be. Windows has no such flag; the
# per-user profile directory's ACL is the protection there.
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


def _private_directory(path: Path) -> Path:
    """Create `path` (and parents) and make it 0700 where the platform has modes."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _HAS_POSIX_MODES:
            # mkdir's mode is filtered by the umask and ignored for an existing directory.
            os.chmod(path, 0o700)
    except OSError as exc:
        raise StoreError(
            f"could not create the directory {_display(path)} ({exc.strerror or exc}); "
            "check that it is writable by you"
        ) from exc
    return path


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: a 0600 temp file beside it, fsync, rename.

    A crash or a full disk leaves either the old file or the new one, never a torn one.
    """
    _private_directory(path.parent)
    try:
        # mkstemp opens with O_EXCL (and O_NOFOLLOW where it exists) and mode 0600.
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise _write_failed(path, exc) from exc
    _sync_directory(path.parent)


def _write_failed(path: Path, exc: OSError) -> StoreError:
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return StoreError(
            f"the disk is full: could not write {_display(path)}; the previous copy is kept. "
            "Free some disk space and try again."
        )
    return StoreError(
        f"could not write {_display(path)} ({exc.strerror or exc}); the previous copy is "
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


def _read_private_file(path: Path) -> bytes | None:
    """The file's bytes, None if it does not exist; OSError or ValueError if unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as file:
        if _HAS_POSIX_MODES and os.fstat(file.fileno()).st_mode & 0o077:
            # Someone widened the mode; narrow it again rather than leave tokens readable.
            os.fchmod(file.fileno(), 0o600)
        data = file.read(_MAX_ENTRY_BYTES + 1)
    if len(data) > _MAX_ENTRY_BYTES:
        raise ValueError("larger than any entry mcpls writes")
    return data


class _FileEntries:
    """One JSON file per entry, named by the SHA-256 of its key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key: str) -> Path:
        return self.directory / f"{_digest(key)}.json"

    def read(self, key: str) -> bytes | None:
        return _read_private_file(self.path(key))

    def write(self, key: str, data: bytes) -> None:
        _write_atomically(self.path(key), data)

    def remove(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(
                f"could not delete {_display(path)} ({exc.strerror or exc}); delete it by hand"
            ) from exc
        _sync_directory(self.directory)


def _envelope(kind: str, key: str, value: object) -> bytes:
    """What one entry holds, in the keychain and in a file alike."""
    document = {"version": SCHEMA_VERSION, "kind": kind, "key": key, "value": value}
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def _open_envelope(data: bytes, key: str) -> object:
    """The entry's value; ValueError if the envelope is damaged or belongs to another key."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        # The decoder's message quotes the document, which may hold a secret.
        raise ValueError("not valid JSON (cut short or overwritten)") from None
    fields = _object(document, "entry")
    version = fields.get("version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema version {version!r}, expected {SCHEMA_VERSION}")
    if fields.get("key") != key:
        raise ValueError("it belongs to a different entry")
    return fields.get("value")


# -- the store -------------------------------------------------------------------------------


class TokenStore:
    """Tokens, client registrations and other secrets, in the keychain or in private files.

    `mode` is the `tokenStorage` setting. "auto" uses the system keychain when one works and
    files otherwise, including for a single operation the keychain fails at run time (it is
    locked, or D-Bus went away); "keyring" insists on the keychain and raises `StoreError`
    instead; "file" never touches it. Reads always look at the files too, so nothing written
    during a fallback is lost, and a file entry found next to a working keychain is moved
    into it.

    The methods block (the keychain is a D-Bus or OS call); they hold no cache, so every
    load sees what another process saved.
    """

    def __init__(self, mode: StorageMode = "auto", *, log: Log = _no_log) -> None:
        if mode not in get_args(StorageMode):
            raise ValueError(f"tokenStorage must be auto, keyring or file, not {mode!r}")
        self.mode: StorageMode = mode
        self._log = log
        self._files = _FileEntries(platformdirs.user_data_path("mcpls", appauthor=False) / "tokens")
        self._lock_directory = platformdirs.user_state_path("mcpls", appauthor=False) / "locks"
        self._keyring: keyring.backend.KeyringBackend | None = None
        self._keyring_resolved = False
        self._keyring_problem = ""
        self._warned_file = False
        self._warned_failure = False

    # -- public API ----------------------------------------------------------------------

    @property
    def backend(self) -> str:
        """Where entries go, for status and diagnostics."""
        files = f"file ({_display(self._files.directory)})"
        backend = self._backend()
        if backend is None:
            return files
        name = f"keyring ({backend.name})"
        return f"{name}, falling back to {files}" if self._warned_failure else name

    def load_tokens(self, resource: str, issuer: str) -> TokenSet | None:
        """The stored tokens for a server, or None (absent or unreadable, with a warning)."""
        return self._load(_tokens_key(resource, issuer), TokenSet.from_json)

    def save_tokens(self, tokens: TokenSet) -> None:
        """Store (replace) the tokens for `tokens.resource` from `tokens.issuer`."""
        key = _tokens_key(tokens.resource, tokens.issuer)
        secrets = (tokens.access_token, tokens.refresh_token)
        self._save(key, _envelope("tokens", key, tokens.to_json()), secrets)

    def delete_tokens(self, resource: str, issuer: str) -> None:
        """Forget the tokens for a server; absent tokens are not an error."""
        self._delete(_tokens_key(resource, issuer))

    def load_registration(self, issuer: str) -> ClientRegistration | None:
        """The client registration with an authorization server, or None."""
        return self._load(_registration_key(issuer), ClientRegistration.from_json)

    def save_registration(self, registration: ClientRegistration) -> None:
        """Store (replace) the client registration with `registration.issuer`."""
        key = _registration_key(registration.issuer)
        data = _envelope("client", key, registration.to_json())
        self._save(key, data, (registration.client_secret,))

    def delete_registration(self, issuer: str) -> None:
        """Forget the client registration with an authorization server."""
        self._delete(_registration_key(issuer))

    def load_secret(self, name: str) -> str | None:
        """A named secret (say, a client secret moved out of settings), or None."""
        return self._load(_secret_key(name), _secret_value)

    def save_secret(self, name: str, value: str) -> None:
        """Store (replace) a named secret."""
        key = _secret_key(name)
        self._save(key, _envelope("secret", key, value), (value,))

    def delete_secret(self, name: str) -> None:
        """Forget a named secret."""
        self._delete(_secret_key(name))

    @contextlib.asynccontextmanager
    async def locked(
        self, resource: str, issuer: str, *, timeout: float = 30.0
    ) -> AsyncIterator[None]:
        """Hold the per-server lock shared by every mcpls process, for a refresh or sign-in.

        Reload the tokens inside it: another window may have rotated them meanwhile. The lock
        is an OS file lock, released by the OS if its holder dies, so it never goes stale.
        Waiting polls without blocking the event loop; `StoreError` after `timeout` seconds.
        """
        path = self._lock_path(resource, issuer)
        # A new lock object each time: filelock is re-entrant per object, and two coroutines
        # of this process must exclude each other as two processes do.
        lock = filelock.FileLock(path, mode=0o600)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.005
        while True:
            try:
                lock.acquire(blocking=False)
                break
            except filelock.Timeout:
                pass  # held by someone else; Timeout is an OSError, so it comes first
            except OSError as exc:
                raise StoreError(
                    f"could not open the lock file {_display(path)} ({exc.strerror or exc}); "
                    "check that its directory is writable by you"
                ) from exc
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StoreError(
                    f"another mcpls process held the sign-in lock for {resource} for more "
                    f"than {timeout:g} s (lock file {_display(path)}); finish or cancel the "
                    "sign-in in the other editor window, or close it, and try again"
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.1)
        try:
            yield
        finally:
            lock.release()

    # -- layering ------------------------------------------------------------------------

    def _lock_path(self, resource: str, issuer: str) -> Path:
        _private_directory(self._lock_directory)
        return self._lock_directory / f"{_digest(_tokens_key(resource, issuer))}.lock"

    def _backend(self) -> keyring.backend.KeyringBackend | None:
        """The keychain to use, found once; None means files."""
        if not self._keyring_resolved:
            self._keyring_resolved = True
            if self.mode != "file":
                self._keyring, self._keyring_problem = _usable_keyring()
        return self._keyring

    def _keychain(self) -> keyring.backend.KeyringBackend | None:
        """The keychain for an operation: warns (once) or raises when there is none."""
        backend = self._backend()
        if backend is not None:
            return backend
        if self.mode == "keyring":
            raise StoreError(
                f"the system keychain is not available ({self._keyring_problem}); unlock or "
                'install one, or set tokenStorage to "file" to keep tokens in a file readable '
                "only by you"
            )
        if not self._warned_file:
            self._warned_file = True
            reason = (
                'tokenStorage is "file"'
                if self.mode == "file"
                else f"no system keychain is available: {self._keyring_problem}"
            )
            self._log(
                "warning",
                f"tokens are stored in files readable only by you under "
                f"{_display(self._files.directory)}, not in the system keychain ({reason})",
            )
        return None

    def _keychain_failed(
        self, exc: Exception, action: str, secrets: tuple[str | None, ...]
    ) -> None:
        """In "auto": warn once and let the caller use files. In "keyring": raise."""
        detail = _redact(f"{type(exc).__name__}: {exc}", secrets)
        if self.mode == "keyring":
            raise StoreError(
                f"the system keychain failed to {action} ({detail}); unlock it, or set "
                'tokenStorage to "file" to keep tokens in a file readable only by you'
            ) from None
        if not self._warned_failure:
            self._warned_failure = True
            self._log(
                "warning",
                f"the system keychain failed to {action} ({detail}); using files readable only "
                f"by you under {_display(self._files.directory)} until it works again",
            )

    def _load(self, key: str, parse: Callable[[object], _T]) -> _T | None:
        backend = self._keychain()
        from_file = self._read_file(key, parse)
        if backend is None:
            return from_file[1] if from_file else None
        if from_file is not None:
            # Every keychain save deletes the file copy, so a file entry beside a working
            # keychain was written while it failed (or before it existed): it is the newest.
            data, value = from_file
            self._migrate(backend, key, data)
            return value
        try:
            text = backend.get_password(SERVICE, key)
        except Exception as exc:  # any backend may raise anything (D-Bus, OS keychain errors)
            self._keychain_failed(exc, "read", ())
            return None
        if text is None:
            return None
        return self._parse(text.encode("utf-8"), key, parse, "in the system keychain")

    def _read_file(self, key: str, parse: Callable[[object], _T]) -> tuple[bytes, _T] | None:
        path = self._files.path(key)
        try:
            data = self._files.read(key)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._unreadable(key, f"{_display(path)}: {reason}")
            return None
        if data is None:
            return None
        value = self._parse(data, key, parse, f"in {_display(path)}")
        return None if value is None else (data, value)

    def _parse(self, data: bytes, key: str, parse: Callable[[object], _T], where: str) -> _T | None:
        try:
            return parse(_open_envelope(data, key))
        except ValueError as exc:
            self._unreadable(key, f"{where}: {exc}")
            return None

    def _unreadable(self, key: str, reason: str) -> None:
        self._log(
            "warning",
            f"{_describe(key)} is unreadable and treated as missing ({reason}); "
            "signing in again replaces it",
        )

    def _migrate(self, backend: keyring.backend.KeyringBackend, key: str, data: bytes) -> None:
        try:
            backend.set_password(SERVICE, key, data.decode("utf-8"))
        except Exception:  # the keychain still fails; the file stays the copy, quietly
            return
        try:
            self._files.remove(key)
        except StoreError as exc:
            self._log("warning", str(exc))

    def _save(self, key: str, data: bytes, secrets: tuple[str | None, ...]) -> None:
        backend = self._keychain()
        if backend is not None:
            try:
                backend.set_password(SERVICE, key, data.decode("utf-8"))
            except Exception as exc:  # any backend may raise anything
                self._keychain_failed(exc, "save", secrets)
            else:
                # A stale file copy would shadow this newer entry on the next load.
                self._files.remove(key)
                return
        self._files.write(key, data)

    def _delete(self, key: str) -> None:
        backend = self._keychain()
        if backend is not None:
            try:
                backend.delete_password(SERVICE, key)
            except keyring.errors.PasswordDeleteError:
                pass  # nothing stored there
            except Exception as exc:  # any backend may raise anything
                self._keychain_failed(exc, "delete", ())
        self._files.remove(key)


def _secret_value(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _usable_keyring() -> tuple[keyring.backend.KeyringBackend | None, str]:
    """keyring's chosen backend if it can store anything, else None and why not."""
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # a broken keyring config file or plugin
        return None, f"keyring failed to load: {type(exc).__name__}: {exc}"
    if isinstance(backend, keyring.backends.fail.Keyring):
        return None, "keyring found no backend"
    if isinstance(backend, keyring.backends.chainer.ChainerBackend) and not backend.backends:
        return None, "keyring found no backend"
    try:
        priority = float(backend.priority)
    except Exception as exc:  # priority probes the service (for example over D-Bus)
        return None, f"{backend.name}: {exc}"
    if priority <= 0:
        return None, f"{backend.name} is not a usable keychain"
    return backend, ""


# -- the one-time sign-in prompt -------------------------------------------------------------


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
        digest = _digest(server_key)
        return digest in self._shown_here or digest in self._read()

    def mark_shown(self, server_key: str) -> None:
        """Remember that the prompt for this server was shown."""
        digest = _digest(server_key)
        self._shown_here.add(digest)
        try:
            with self._file_lock():
                shown = self._read()
                if digest in shown:
                    return
                document = {"version": SCHEMA_VERSION, "shown": sorted(shown | {digest})}
                _write_atomically(self._path, json.dumps(document).encode("utf-8"))
        except (StoreError, OSError) as exc:  # filelock.Timeout is an OSError
            self._log("warning", f"could not remember that a sign-in was offered: {exc}")

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        # Two windows marking different servers at once must not drop each other's mark.
        _private_directory(self._path.parent)
        with filelock.FileLock(self._path.with_suffix(".lock"), mode=0o600, timeout=5):
            yield

    def _read(self) -> set[str]:
        try:
            data = _read_private_file(self._path)
            if data is None:
                return set()
            document = _object(json.loads(data.decode("utf-8")), "prompt state")
            return set(_strings(document, "shown"))
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeError are ValueErrors
            self._log("warning", f"{_display(self._path)} is unreadable and ignored: {exc}")
            return set()
