"""The store's decisions when its files or its keychain fail under a running mcpls (issue 10):
damaged is not absent, a directory in an entry's place is named with what to remove, a
keychain that raises on every call (read, write, delete) loses nothing and says so, and a
refresh whose write failed never adopts the older stored entry."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
import pytest
from keyring.compat import properties

from mcpls.auth.tokens import decide_refresh
from mcpls.errors import StorageFailed
from mcpls.store.layered import KeychainStore
from mcpls.store.records import TokenSet
from store_support import Log, place_store, tokens_dir

RESOURCE = "https://mcp.example.com/mcp"
ISSUER = "https://auth.example.com/"
NOW = 1_900_000_000.0
posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def tokens(access: str = "at-5e1d-faults", *, expires_in: float = 3600) -> TokenSet:
    return TokenSet(
        access_token=access,
        token_type="Bearer",
        expires_at=NOW + expires_in,
        refresh_token="rt-77c2-faults",
        scope=("mcp:read",),
        issuer=ISSUER,
        resource=RESOURCE,
        obtained_at=NOW - 60,
    )


@pytest.fixture(autouse=True)
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return place_store(tmp_path, monkeypatch)


def only_entry(root: Path) -> Path:
    [path] = [p for p in tokens_dir(root).iterdir() if not p.name.startswith(".")]
    return path


class SwitchableKeyring(keyring.backend.KeyringBackend):
    """A keychain in a dictionary that can be made to raise on every call, as a locked
    Secret Service does. Viable only while a test has it installed (keyring registers
    every backend class for the whole process)."""

    installed = False

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring's is untyped
        self.entries: dict[tuple[str, str], str] = {}
        self.locked = False
        self.calls = 0

    @properties.classproperty
    def priority(cls) -> float:
        if not cls.installed:
            raise RuntimeError("only for the test that installs it")
        return 1.0

    def _check(self) -> None:
        self.calls += 1
        if self.locked:
            raise keyring.errors.KeyringLocked("the collection is locked")

    def get_password(self, service: str, username: str) -> str | None:
        self._check()
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._check()
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._check()
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


@pytest.fixture
def switchable() -> Iterator[SwitchableKeyring]:
    previous = keyring.get_keyring()
    backend = SwitchableKeyring()
    SwitchableKeyring.installed = True
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
        SwitchableKeyring.installed = False


# -- a directory where the token file goes -------------------------------------------------


@posix_only
async def test_a_directory_in_place_of_the_token_file_is_named_until_removed(xdg: Path) -> None:
    store = KeychainStore("file")
    await store.save_tokens(tokens())
    path = only_entry(xdg)
    path.unlink()
    path.mkdir(mode=0o755)
    (path / "yours").write_text("kept")

    with pytest.raises(StorageFailed) as read:
        await store.load_tokens(RESOURCE, ISSUER)
    assert f"{path} is a directory, not a file mcpls wrote; remove it" in read.value.message
    with pytest.raises(StorageFailed) as write:
        await store.save_tokens(tokens("at-5e1d-newer"))
    assert f"could not write {path}: it is a directory" in write.value.message
    assert write.value.message.endswith("remove it")
    # Nothing of the person's touched, no temp file (holding tokens) left beside it.
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert (path / "yours").read_text() == "kept"
    assert [p.name for p in tokens_dir(xdg).iterdir()] == [path.name]

    (path / "yours").unlink()
    path.rmdir()
    await store.save_tokens(tokens("at-5e1d-newer"))
    assert await store.load_tokens(RESOURCE, ISSUER) == tokens("at-5e1d-newer")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- the file beside a keychain --------------------------------------------------------------


async def test_a_damaged_file_beside_a_working_keychain_is_not_hidden_by_the_older_copy(
    xdg: Path, switchable: SwitchableKeyring
) -> None:
    # The keychain locked for a while: the newest tokens went to the file, which is then
    # damaged. The keychain's copy is older (its refresh token may be spent): a refresh must
    # go on from memory, not adopt it.
    store = KeychainStore("auto")
    await store.save_tokens(tokens("at-old"))
    switchable.locked = True
    await store.save_tokens(tokens("at-new"))
    switchable.locked = False
    path = only_entry(xdg)
    path.write_bytes(b'{"version": 1, "key"')

    with pytest.raises(StorageFailed, match="is unreadable"):
        await store.load_tokens(RESOURCE, ISSUER)
    # The next good write (a refresh) goes to the keychain and removes the damaged copy.
    await store.save_tokens(tokens("at-newest"))
    assert not path.exists()
    assert await store.load_tokens(RESOURCE, ISSUER) == tokens("at-newest")


async def test_a_keychain_raising_on_every_call_loses_nothing_and_says_so(
    xdg: Path, switchable: SwitchableKeyring
) -> None:
    log = Log()
    store = KeychainStore("auto", log=log)
    await store.save_tokens(tokens("at-before"))
    switchable.locked = True

    # Read: not "absent", the entry may be behind the lock.
    with pytest.raises(StorageFailed, match="could not be read"):
        await store.load_tokens(RESOURCE, ISSUER)
    # Write, twice (every refresh): to a private file, warned once.
    await store.save_tokens(tokens("at-during"))
    await store.save_tokens(tokens("at-during-2"))
    assert await store.load_tokens(RESOURCE, ISSUER) == tokens("at-during-2")
    # Delete (a logout): the file copy goes, and the person learns the keychain may still
    # hold the entry; otherwise the old sign-in would come back when it opens.
    with pytest.raises(StorageFailed, match="unlock the keychain and try again"):
        await store.delete_tokens(RESOURCE, ISSUER)
    assert list(tokens_dir(xdg).glob("*.json")) == []
    await asyncio.sleep(0)  # warnings from the worker thread arrive through the loop
    assert len([w for w in log.warnings() if "the system keychain failed to" in w]) == 1
    assert switchable.calls >= 5  # the keychain really was asked each time

    # Unlocked: the logout is done again and completes; nothing comes back.
    switchable.locked = False
    await store.delete_tokens(RESOURCE, ISSUER)
    assert switchable.entries == {}
    assert await store.load_tokens(RESOURCE, ISSUER) is None


async def test_file_entries_written_while_the_keychain_raised_move_into_it_when_it_works(
    xdg: Path, switchable: SwitchableKeyring
) -> None:
    store = KeychainStore("auto")
    switchable.locked = True
    await store.save_tokens(tokens("at-fallback"))
    switchable.locked = False
    assert await store.load_tokens(RESOURCE, ISSUER) == tokens("at-fallback")
    assert list(tokens_dir(xdg).glob("*.json")) == []
    assert len(switchable.entries) == 1


# -- the refresh decision after a failed write ---------------------------------------------


def test_an_entry_the_failed_write_could_not_replace_is_not_adopted() -> None:
    old, ours = tokens("at-old", expires_in=-5), tokens("at-ours", expires_in=-5)
    # Without the note, the old entry looks like another window's rotation and is refreshed
    # from (its refresh token is spent); with it, ours is refreshed.
    assert decide_refresh(old, ours, forced=True, now=NOW).tokens == old
    plan = decide_refresh(old, ours, forced=True, now=NOW, unsaved_over="at-old")
    assert (plan.action, plan.tokens) == ("refresh", ours)


def test_an_entry_gone_with_the_fault_is_not_a_sign_out() -> None:
    ours = tokens("at-ours", expires_in=-5)
    assert decide_refresh(None, ours, forced=True, now=NOW).action == "give_up"
    plan = decide_refresh(None, ours, forced=True, now=NOW, unsaved_over="at-old")
    assert (plan.action, plan.tokens) == ("refresh", ours)


def test_another_windows_newer_entry_is_still_adopted_after_a_failed_write() -> None:
    theirs = tokens("at-theirs")
    plan = decide_refresh(
        theirs, tokens("at-ours", expires_in=-5), forced=True, now=NOW, unsaved_over="at-old"
    )
    assert (plan.action, plan.tokens) == ("use", theirs)
