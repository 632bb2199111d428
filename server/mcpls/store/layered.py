"""The token store as mcpls uses it: the system keychain for secrets, private files where
no keychain works, and a lock per server shared by every mcpls process.

Tokens are keyed by canonical resource URL and authorization server issuer; client
registrations by issuer and redirect URI. What is not secret (discovered metadata, which
authorization server a configured client belongs to) never goes to the keychain: it lives
in private files beside the tokens, so keychain entries stay small (Windows Credential
Manager holds at most 2,560 bytes; an entry that does not fit goes to a file, with a
warning). Several mcpls processes (one per editor window) share the store; `locked`
serialises refresh and sign-in per server across them, and nothing here caches an entry,
so a caller that re-reads under the lock sees a token another process already rotated.

Every method is async: keychain calls (D-Bus, OS APIs) and file I/O run in a worker
thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Literal, TypeVar, get_args

import filelock
import keyring
import keyring.backend
import keyring.backends.chainer
import keyring.backends.fail
import keyring.errors
import platformdirs

from mcpls.errors import StorageFailed
from mcpls.store.files import FileEntries, display, private_directory, sweep_temporary
from mcpls.store.records import (
    ClientRegistration,
    TokenSet,
    describe_key,
    digest,
    envelope,
    legacy_registration_key,
    open_envelope,
    redact,
    registration_key,
    secret_key,
    state_key,
    string_value,
    tokens_key,
)

StorageMode = Literal["auto", "keyring", "file"]
Log = Callable[[str, str], None]

SERVICE = "mcpls"
# Windows Credential Manager: a credential blob of at most 2,560 bytes (keyring stores the
# text as UTF-16). Other keychains take what mcpls writes.
WINDOWS_CREDENTIAL_LIMIT = 2560
_T = TypeVar("_T")


def _no_log(level: str, message: str) -> None:
    """The default logger: the store is silent unless given somewhere to write."""


def keychain_limit(backend: keyring.backend.KeyringBackend) -> int | None:
    """The largest entry (bytes of UTF-16) a keychain takes, where it has a limit."""
    if type(backend).__module__.startswith("keyring.backends.Windows"):
        return WINDOWS_CREDENTIAL_LIMIT
    return None


class KeychainStore:
    """Tokens, client registrations and other secrets, in the keychain or in private files.

    `mode` is the `tokenStorage` setting. "auto" uses the system keychain when one works and
    files otherwise, including for a single operation the keychain fails at run time (it is
    locked, or D-Bus went away); "keyring" insists on the keychain and raises
    `StorageFailed` instead; "file" never touches it. Reads always look at the files too, so
    nothing written during a fallback is lost, and a file entry found next to a working
    keychain is moved into it.
    """

    def __init__(
        self,
        mode: StorageMode = "auto",
        *,
        log: Log = _no_log,
        entry_limit: int | None = None,
    ) -> None:
        if mode not in get_args(StorageMode):
            raise ValueError(f"tokenStorage must be auto, keyring or file, not {mode!r}")
        self.mode: StorageMode = mode
        self._log = log
        data = platformdirs.user_data_path("mcpls", appauthor=False)
        self._files = FileEntries(data / "tokens")
        self._state = FileEntries(data / "state")
        self._lock_directory = platformdirs.user_state_path("mcpls", appauthor=False) / "locks"
        self._keyring: keyring.backend.KeyringBackend | None = None
        self._keyring_resolved = False
        self._keyring_problem = ""
        # Set by tests to stand for a keychain with a size limit; else found from the backend.
        self._entry_limit = entry_limit
        self._warned_file = False
        self._warned_failure = False
        self._warned_size: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._swept = False

    # -- public API ----------------------------------------------------------------------

    @property
    def backend(self) -> str:
        """Where entries go, for status and diagnostics."""
        files = f"file ({display(self._files.directory)})"
        backend = self._backend()
        if backend is None:
            return files
        name = f"keyring ({backend.name})"
        return f"{name}, falling back to {files}" if self._warned_failure else name

    async def load_tokens(self, resource: str, issuer: str) -> TokenSet | None:
        """The stored tokens for a server, or None (absent or damaged, with a warning);
        `StorageFailed` when the keychain cannot be read (locked): not the same as absent,
        and a caller holding the tokens in memory keeps them."""
        key = tokens_key(resource, issuer)
        return await self._run(self._load, key, TokenSet.from_json, True)

    async def save_tokens(self, tokens: TokenSet) -> None:
        """Store (replace) the tokens for `tokens.resource` from `tokens.issuer`."""
        key = tokens_key(tokens.resource, tokens.issuer)
        secrets = (tokens.access_token, tokens.refresh_token)
        await self._run(self._save, key, envelope("tokens", key, tokens.to_json()), secrets)

    async def delete_tokens(self, resource: str, issuer: str) -> None:
        """Forget the tokens for a server; absent tokens are not an error."""
        await self._run(self._delete, tokens_key(resource, issuer))

    async def load_registration(self, issuer: str, redirect_uri: str) -> ClientRegistration | None:
        """The client registration with `issuer` for `redirect_uri`, or None."""
        key = registration_key(issuer, redirect_uri)
        found = await self._run(self._load, key, ClientRegistration.from_json)
        if found is None:
            # Written before registrations were keyed by redirect URI: usable only if it was
            # made for this redirect URI.
            legacy = await self._run(
                self._load, legacy_registration_key(issuer), ClientRegistration.from_json
            )
            if legacy is not None and redirect_uri in legacy.redirect_uris:
                found = legacy
        return found

    async def save_registration(self, registration: ClientRegistration, redirect_uri: str) -> None:
        """Store (replace) the client registration with `registration.issuer` for
        `redirect_uri`."""
        key = registration_key(registration.issuer, redirect_uri)
        data = envelope("client", key, registration.to_json())
        await self._run(self._save, key, data, (registration.client_secret,))

    async def delete_registration(self, issuer: str, redirect_uri: str) -> None:
        """Forget the client registration with `issuer` for `redirect_uri` (and the entry
        of before registrations were keyed by redirect URI, if it was made for it)."""
        await self._run(self._delete, registration_key(issuer, redirect_uri))
        legacy = await self._run(
            self._load, legacy_registration_key(issuer), ClientRegistration.from_json
        )
        if legacy is not None and redirect_uri in legacy.redirect_uris:
            await self._run(self._delete, legacy_registration_key(issuer))

    async def load_secret(self, name: str) -> str | None:
        """A named secret (say, a client secret moved out of settings), or None."""
        return await self._run(self._load, secret_key(name), string_value)

    async def save_secret(self, name: str, value: str) -> None:
        """Store (replace) a named secret."""
        key = secret_key(name)
        await self._run(self._save, key, envelope("secret", key, value), (value,))

    async def delete_secret(self, name: str) -> None:
        """Forget a named secret."""
        await self._run(self._delete, secret_key(name))

    async def load_state(self, name: str) -> str | None:
        """A named record that is not secret (a private file, never the keychain)."""
        return await self._run(self._load_state, state_key(name))

    async def save_state(self, name: str, value: str) -> None:
        """Store (replace) a named record that is not secret."""
        key = state_key(name)
        await self._run(self._state.write, key, envelope("state", key, value))

    async def delete_state(self, name: str) -> None:
        """Forget a named record that is not secret."""
        await self._run(self._state.remove, state_key(name))

    @contextlib.asynccontextmanager
    async def locked(
        self, resource: str, issuer: str, *, timeout: float = 30.0
    ) -> AsyncIterator[None]:
        """Hold the per-server lock shared by every mcpls process, for a refresh or sign-in.

        Reload the tokens inside it: another window may have rotated them meanwhile. The lock
        is an OS file lock, released by the OS if its holder dies, so it never goes stale.
        Waiting polls without blocking the event loop; `StorageFailed` after `timeout` s.
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
                raise StorageFailed(
                    f"could not open the lock file {display(path)} ({exc.strerror or exc}); "
                    "check that its directory is writable by you"
                ) from exc
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StorageFailed(
                    f"another mcpls process held the sign-in lock for {resource} for more "
                    f"than {timeout:g} s (lock file {display(path)}); finish or cancel the "
                    "sign-in in the other editor window, or close it, and try again"
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.1)
        try:
            yield
        finally:
            lock.release()

    # -- threads ----------------------------------------------------------------------------

    async def _run(self, call: Callable[..., _T], *args: object) -> _T:
        self._loop = asyncio.get_running_loop()
        if not self._swept:
            self._swept = True
            await asyncio.to_thread(self._sweep)
        return await asyncio.to_thread(call, *args)

    def _sweep(self) -> None:
        """At start: the temp files a killed mcpls left beside its entries."""
        removed = sweep_temporary(self._files.directory) + sweep_temporary(self._state.directory)
        if removed:
            self._warn(f"removed {removed} unfinished token file(s) left by a stopped mcpls")

    def _warn(self, message: str) -> None:
        """A warning from a worker thread, delivered on the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._log("warning", message)
        else:
            loop.call_soon_threadsafe(self._log, "warning", message)

    # -- layering ------------------------------------------------------------------------

    def _lock_path(self, resource: str, issuer: str) -> Path:
        private_directory(self._lock_directory)
        return self._lock_directory / f"{digest(tokens_key(resource, issuer))}.lock"

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
            raise StorageFailed(
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
            self._warn(
                f"tokens are stored in files readable only by you under "
                f"{display(self._files.directory)}, not in the system keychain ({reason})",
            )
        return None

    def _keychain_failed(
        self, exc: Exception, action: str, secrets: tuple[str | None, ...]
    ) -> None:
        """In "auto": warn once and let the caller use files. In "keyring": raise."""
        detail = redact(f"{type(exc).__name__}: {exc}", secrets)
        if self.mode == "keyring":
            raise StorageFailed(
                f"the system keychain failed to {action} ({detail}); unlock it, or set "
                'tokenStorage to "file" to keep tokens in a file readable only by you'
            ) from None
        if not self._warned_failure:
            self._warned_failure = True
            self._warn(
                f"the system keychain failed to {action} ({detail}); using files readable only "
                f"by you under {display(self._files.directory)} until it works again",
            )

    def _load(self, key: str, parse: Callable[[object], _T], strict: bool = False) -> _T | None:
        backend = self._keychain()
        from_file = self._read_file(key, parse, strict)
        if backend is None:
            return from_file[1] if from_file else None
        if from_file is not None:
            # Every keychain save deletes the file copy, so a file entry beside a working
            # keychain was written while it failed (or before it existed): it is the newest.
            data, value = from_file
            if self._fits(backend, key, data):
                self._migrate(backend, key, data)
            return value
        try:
            text = backend.get_password(SERVICE, key)
        except Exception as exc:  # any backend may raise anything (D-Bus, OS keychain errors)
            self._keychain_failed(exc, "read", ())
            if not strict:
                return None  # a registration or secret: made again, or asked for again
            # Not "absent": the entry may be there, behind a lock.
            raise StorageFailed(
                f"the system keychain could not be read for {describe_key(key)}; unlock it"
            ) from None
        if text is None:
            return None
        return self._parse(text.encode("utf-8"), key, parse, "in the system keychain", strict)

    def _read_file(
        self, key: str, parse: Callable[[object], _T], strict: bool = False
    ) -> tuple[bytes, _T] | None:
        path = self._files.path(key)
        try:
            data = self._files.read(key)
        except IsADirectoryError:
            # Not a damaged copy of anything, and no write can replace it: only a person
            # can, so the message says what to remove.
            message = (
                f"{describe_key(key)} cannot be read or written: {display(path)} is a "
                "directory, not a file mcpls wrote; remove it"
            )
            if strict:
                raise StorageFailed(message) from None
            self._warn(message)
            return None
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._unreadable(key, f"{display(path)}: {reason}", strict)
            return None
        if data is None:
            return None
        value = self._parse(data, key, parse, f"in {display(path)}", strict)
        return None if value is None else (data, value)

    def _parse(
        self,
        data: bytes,
        key: str,
        parse: Callable[[object], _T],
        where: str,
        strict: bool = False,
    ) -> _T | None:
        try:
            return parse(open_envelope(data, key))
        except ValueError as exc:
            self._unreadable(key, f"{where}: {exc}", strict)
            return None

    def _unreadable(self, key: str, reason: str, strict: bool = False) -> None:
        """A damaged entry. Tokens (`strict`) raise: "damaged" is not "absent", and a caller
        holding the sign-in in memory must keep it rather than conclude it was signed out
        (or adopt an older copy from the keychain behind a newer file). Anything else is
        made or asked for again, so it is treated as missing, with a warning.

        The damaged bytes are left where they are, never deleted on a read: the next good
        write replaces them atomically. They are not kept aside either: a partial copy of
        tokens mcpls cannot parse is of no use to anyone and would pile secrets on disk.
        """
        if strict:
            raise StorageFailed(
                f"{describe_key(key)} is unreadable ({reason}); the next sign-in or refresh "
                "replaces it"
            )
        self._warn(
            f"{describe_key(key)} is unreadable and treated as missing ({reason}); "
            "signing in again replaces it",
        )

    def _migrate(self, backend: keyring.backend.KeyringBackend, key: str, data: bytes) -> None:
        try:
            backend.set_password(SERVICE, key, data.decode("utf-8"))
        except Exception:  # the keychain still fails; the file stays the copy, quietly
            return
        try:
            self._files.remove(key)
        except StorageFailed as exc:
            self._warn(str(exc))

    def _fits(self, backend: keyring.backend.KeyringBackend, key: str, data: bytes) -> bool:
        limit = self._entry_limit if self._entry_limit is not None else keychain_limit(backend)
        if limit is None or len(data.decode("utf-8").encode("utf-16-le")) <= limit:
            return True
        if key not in self._warned_size:
            self._warned_size.add(key)
            self._warn(
                f"{describe_key(key)} is larger than {backend.name} can hold ({limit} bytes); "
                f"it is kept in a file readable only by you under {display(self._files.directory)}"
            )
        return False

    def _load_state(self, key: str) -> str | None:
        try:
            data = self._state.read(key)
        except (OSError, ValueError) as exc:
            self._unreadable(key, str(exc))
            return None
        return None if data is None else self._parse(data, key, string_value, "in a state file")

    def _save(self, key: str, data: bytes, secrets: tuple[str | None, ...]) -> None:
        backend = self._keychain()
        if backend is not None and not self._fits(backend, key, data):
            backend = None
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
                # The keychain may still hold the entry, and would give it back once it
                # opens: a logout that seemed done would be undone. Say so.
                raise StorageFailed(
                    f"{describe_key(key)} could not be deleted from the system keychain "
                    f"({type(exc).__name__}); unlock the keychain and try again"
                ) from None
        self._files.remove(key)


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
