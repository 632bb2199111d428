"""The token store in file mode: durability, privacy, damage containment, cross-process locks;
the `Store` protocol both stores satisfy; the keychain's size limit."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
import pytest
from keyring.compat import properties

from mcpls.errors import StorageFailed
from mcpls.lsp.prompts import PromptState
from mcpls.store import Store
from mcpls.store.layered import KeychainStore
from mcpls.store.memory import MemoryStore
from mcpls.store.records import ClientRegistration, TokenSet
from store_support import Log, place_store, tokens_dir

ACCESS = "at-3c1f0e-unit-access"
REFRESH = "rt-9a7b21-unit-refresh"
CLIENT_SECRET = "cs-77d0c4-unit-client"
RESOURCE = "https://mcp.example.com/mcp"
OTHER_RESOURCE = "https://other.example.org/mcp"
ISSUER = "https://auth.example.com/"
REDIRECT = "http://127.0.0.1:33418/callback"
OTHER_REDIRECT = "http://127.0.0.1:24680/callback"
SECRETS = (ACCESS, REFRESH, CLIENT_SECRET)
posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def tokens(resource: str = RESOURCE, access: str = ACCESS) -> TokenSet:
    return TokenSet(
        access_token=access,
        token_type="Bearer",
        expires_at=1_900_000_000.5,
        refresh_token=REFRESH,
        scope=("mcp:read", "mcp:write"),
        issuer=ISSUER,
        resource=resource,
    )


def registration() -> ClientRegistration:
    return ClientRegistration(
        issuer=ISSUER,
        client_id="mcpls-client",
        client_secret=CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_basic",
        redirect_uris=(REDIRECT,),
        source="dcr",
        client_secret_expires_at=0,
    )


@pytest.fixture(autouse=True)
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return place_store(tmp_path, monkeypatch)


def entry_files(root: Path) -> list[Path]:
    directory = tokens_dir(root)
    return sorted(directory.iterdir()) if directory.exists() else []


async def test_everything_round_trips_through_a_fresh_store(xdg: Path) -> None:
    store = KeychainStore("file")
    await store.save_tokens(tokens())
    await store.save_registration(registration(), REDIRECT)
    await store.save_secret("client-secret|x", CLIENT_SECRET)

    # A new store (another window) reads what the first wrote: nothing is cached.
    other = KeychainStore("file")
    assert await other.load_tokens(RESOURCE, ISSUER) == tokens()
    assert await other.load_registration(ISSUER, REDIRECT) == registration()
    assert await other.load_secret("client-secret|x") == CLIENT_SECRET
    assert await other.load_tokens(OTHER_RESOURCE, ISSUER) is None
    assert store.backend == f"file ({tokens_dir(xdg)})"

    rotated = replace(tokens(), refresh_token="rt-rotated")
    await other.save_tokens(rotated)
    assert await store.load_tokens(RESOURCE, ISSUER) == rotated

    await store.delete_tokens(RESOURCE, ISSUER)
    await store.delete_registration(ISSUER, REDIRECT)
    await store.delete_tokens(RESOURCE, ISSUER)  # already gone: not an error
    assert await other.load_tokens(RESOURCE, ISSUER) is None
    assert await other.load_registration(ISSUER, REDIRECT) is None
    assert len(entry_files(xdg)) == 1  # only the secret is left


async def test_file_mode_warns_once_that_tokens_are_in_a_file() -> None:
    log = Log()
    store = KeychainStore("file", log=log)
    await store.save_tokens(tokens())
    await store.load_tokens(RESOURCE, ISSUER)
    await store.save_registration(registration(), REDIRECT)
    await asyncio.sleep(0)  # warnings from the worker thread arrive through the loop

    [warning] = log.warnings()
    assert "not in the system keychain" in warning
    assert 'tokenStorage is "file"' in warning


@posix_only
async def test_entries_are_private_files_in_a_private_directory(xdg: Path) -> None:
    directory = tokens_dir(xdg)
    directory.mkdir(parents=True, mode=0o755)
    os.chmod(directory, 0o755)  # noqa: S103 - as a careless earlier version or a restore might leave it
    old_umask = os.umask(0)
    try:
        await KeychainStore("file").save_tokens(tokens())
    finally:
        os.umask(old_umask)

    [entry] = entry_files(xdg)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert ACCESS in entry.read_text()  # the entry is the file, so its mode is what protects it


@posix_only
async def test_a_widened_entry_is_narrowed_again_when_read(xdg: Path) -> None:
    await KeychainStore("file").save_tokens(tokens())
    [entry] = entry_files(xdg)
    os.chmod(entry, 0o644)

    assert await KeychainStore("file").load_tokens(RESOURCE, ISSUER) == tokens()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


@pytest.mark.parametrize("failing", ["fsync", "replace"])
async def test_a_full_disk_keeps_the_previous_entry(
    xdg: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    store = KeychainStore("file")
    await store.save_tokens(tokens())
    before = {path.name: path.read_bytes() for path in entry_files(xdg)}

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(os, failing, disk_full)
        with pytest.raises(StorageFailed) as raised:
            await store.save_tokens(tokens(access="at-new-never-written"))

    message = str(raised.value)
    assert "disk is full" in message
    assert "Free some disk space" in message
    assert "previous copy is kept" in message
    assert not any(secret in message for secret in SECRETS)
    # The old entry is untouched and no temp file is left behind.
    assert {path.name: path.read_bytes() for path in entry_files(xdg)} == before
    assert await KeychainStore("file").load_tokens(RESOURCE, ISSUER) == tokens()


async def test_an_unwritable_directory_says_what_to_check(
    xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", denied)
        with pytest.raises(StorageFailed, match="writable by you"):
            await KeychainStore("file").save_tokens(tokens())
    assert entry_files(xdg) == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="cut-in-half"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"\xff\xfe\x00garbage", id="not-utf8"),
        pytest.param(lambda data: b"[1, 2, 3]", id="not-an-object"),
        pytest.param(lambda data: data.replace(b'"version":1', b'"version":99'), id="version"),
        pytest.param(lambda data: data.replace(b'"scope":[', b'"scope":[7,'), id="bad-field"),
    ],
)
async def test_a_damaged_entry_costs_only_that_server(
    xdg: Path, damage: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = KeychainStore("file")
    await store.save_tokens(tokens(OTHER_RESOURCE))
    other_files = set(entry_files(xdg))
    await store.save_tokens(tokens())
    [damaged] = set(entry_files(xdg)) - other_files
    assert callable(damage)
    damaged.write_bytes(damage(damaged.read_bytes()))

    log = Log()
    reader = KeychainStore("file", log=log)
    # Damaged is not absent: a caller holding the sign-in in memory keeps it (tokens.py).
    with pytest.raises(StorageFailed) as raised:
        await reader.load_tokens(RESOURCE, ISSUER)
    assert f"the sign-in for {RESOURCE}" in raised.value.message
    assert "is unreadable (" in raised.value.message
    assert str(damaged) in raised.value.message
    assert "the next sign-in or refresh replaces it" in raised.value.message
    assert damaged.exists()  # nothing deleted on a read
    assert await reader.load_tokens(OTHER_RESOURCE, ISSUER) == tokens(OTHER_RESOURCE)
    await asyncio.sleep(0)  # warnings from the worker thread arrive through the loop

    [_in_files] = log.warnings()
    assert not any(secret in raised.value.message for secret in SECRETS)
    assert not any(secret in message for _, message in log for secret in SECRETS)
    # Signing in again replaces the damaged entry, atomically and 0600.
    await reader.save_tokens(tokens())
    assert await KeychainStore("file").load_tokens(RESOURCE, ISSUER) == tokens()
    if os.name == "posix":
        assert stat.S_IMODE(damaged.stat().st_mode) == 0o600


@posix_only
async def test_a_symlink_in_place_of_an_entry_is_not_followed(xdg: Path, tmp_path: Path) -> None:
    store = KeychainStore("file")
    await store.save_tokens(tokens())
    [entry] = entry_files(xdg)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(entry.read_bytes())
    entry.unlink()
    entry.symlink_to(elsewhere)

    with pytest.raises(StorageFailed, match="unreadable"):
        await KeychainStore("file").load_tokens(RESOURCE, ISSUER)


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    for text in (repr(tokens()), str(tokens()), repr(registration()), str(registration())):
        assert not any(secret in text for secret in SECRETS), text
    assert "issuer='https://auth.example.com/'" in repr(tokens())

    for bad in (
        {**tokens().to_json(), "expires_at": ACCESS},
        {**tokens().to_json(), "scope": ACCESS},
        {**tokens().to_json(), "refresh_token": [REFRESH]},
        {**tokens().to_json(), "access_token": None},
    ):
        with pytest.raises(ValueError, match="expected") as raised:
            TokenSet.from_json(bad)
        assert not any(secret in str(raised.value) for secret in SECRETS)
    with pytest.raises(ValueError, match="source"):
        ClientRegistration.from_json({**registration().to_json(), "source": CLIENT_SECRET})


def test_json_forms_round_trip_and_reject_bad_shapes() -> None:
    assert TokenSet.from_json(tokens().to_json()) == tokens()
    assert ClientRegistration.from_json(registration().to_json()) == registration()
    with pytest.raises(ValueError, match="token set"):
        TokenSet.from_json([])
    with pytest.raises(ValueError, match="expires_at"):
        TokenSet.from_json({**tokens().to_json(), "expires_at": True})


def test_an_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="tokenStorage"):
        KeychainStore("vault")  # type: ignore[arg-type]


# -- the Store protocol ----------------------------------------------------------------------


async def exercise(store: Store) -> None:
    """Everything the OAuth client asks of a store; mypy checks each caller's argument."""
    assert await store.load_tokens(RESOURCE, ISSUER) is None
    await store.save_tokens(tokens())
    assert await store.load_tokens(RESOURCE, ISSUER) == tokens()
    assert await store.load_tokens(OTHER_RESOURCE, ISSUER) is None
    await store.delete_tokens(RESOURCE, ISSUER)
    await store.delete_tokens(RESOURCE, ISSUER)  # already gone: not an error
    assert await store.load_tokens(RESOURCE, ISSUER) is None

    await store.save_registration(registration(), REDIRECT)
    assert await store.load_registration(ISSUER, REDIRECT) == registration()
    await store.delete_registration(ISSUER, REDIRECT)
    assert await store.load_registration(ISSUER, REDIRECT) is None

    await store.save_secret("client-secret|x", CLIENT_SECRET)
    assert await store.load_secret("client-secret|x") == CLIENT_SECRET
    await store.delete_secret("client-secret|x")
    assert await store.load_secret("client-secret|x") is None

    await store.save_state("auth-server|x", '{"issuer": "x"}')
    assert await store.load_state("auth-server|x") == '{"issuer": "x"}'
    await store.delete_state("auth-server|x")
    assert await store.load_state("auth-server|x") is None

    async with store.locked(RESOURCE, ISSUER, timeout=5):
        with pytest.raises(StorageFailed):
            async with store.locked(RESOURCE, ISSUER, timeout=0.05):
                pytest.fail("got a lock this process already holds")
        async with store.locked(OTHER_RESOURCE, ISSUER, timeout=1):
            pass  # another server's lock is independent


async def test_memory_and_keychain_stores_both_satisfy_the_store_protocol() -> None:
    await exercise(MemoryStore())
    await exercise(KeychainStore("file"))


@pytest.mark.parametrize(
    "make_store",
    [
        pytest.param(MemoryStore, id="memory"),
        pytest.param(lambda: KeychainStore("file"), id="file"),
    ],
)
async def test_registrations_for_two_redirect_uris_of_one_issuer_are_kept_apart(
    make_store: Callable[[], Store],
) -> None:
    # Two servers behind one authorization server, each with its own client.
    first = registration()
    second = replace(
        registration(),
        client_id="mcpls-client-2",
        client_secret="cs-second-client",
        redirect_uris=(OTHER_REDIRECT,),
    )
    store = make_store()
    await store.save_registration(first, REDIRECT)
    await store.save_registration(second, OTHER_REDIRECT)

    assert await store.load_registration(ISSUER, REDIRECT) == first
    assert await store.load_registration(ISSUER, OTHER_REDIRECT) == second
    assert await store.load_registration(ISSUER, "http://127.0.0.1:9/callback") is None

    # Forgetting one server's client leaves the other's.
    await store.delete_registration(ISSUER, REDIRECT)
    assert await store.load_registration(ISSUER, REDIRECT) is None
    assert await store.load_registration(ISSUER, OTHER_REDIRECT) == second


# -- the keychain's size limit ---------------------------------------------------------------

# Windows Credential Manager's limit, in bytes of UTF-16.
ENTRY_LIMIT = 2560


class DictKeyring(keyring.backend.KeyringBackend):
    """A keychain in a dictionary, in this process.

    keyring registers every backend class for the whole process; this one is viable only
    while a test has it installed, so no other test's backend detection ever picks it.
    """

    installed = False

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring's is untyped
        self.entries: dict[tuple[str, str], str] = {}

    @properties.classproperty
    def priority(cls) -> float:
        if not cls.installed:
            raise RuntimeError("only for the test that installs it")
        return 1.0

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


@pytest.fixture
def dict_keyring() -> Iterator[DictKeyring]:
    previous = keyring.get_keyring()
    backend = DictKeyring()
    DictKeyring.installed = True
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
        DictKeyring.installed = False


async def test_an_entry_too_large_for_the_keychain_goes_to_a_file_with_a_warning(
    xdg: Path, dict_keyring: DictKeyring
) -> None:
    log = Log()
    store = KeychainStore("auto", log=log, entry_limit=ENTRY_LIMIT)
    large = tokens(access="at-large-" + "x" * 2000)  # say, a JWT with many claims
    await store.save_tokens(large)
    await store.save_secret("client-secret|x", CLIENT_SECRET)
    await asyncio.sleep(0)  # warnings from the worker thread arrive through the loop

    # The small entry is in the keychain; the large one in a private file.
    assert set(dict_keyring.entries) == {("mcpls", "secret|client-secret|x")}
    [entry] = entry_files(xdg)
    assert large.access_token in entry.read_text()
    [warning] = log.warnings()
    assert f"the sign-in for {RESOURCE}" in warning
    assert f"larger than {DictKeyring.name} can hold ({ENTRY_LIMIT} bytes)" in warning
    assert "file readable only by you" in warning
    assert not any(secret in warning for secret in (*SECRETS, large.access_token))

    # Another process reads both; the large entry stays in its file (it still does not fit).
    other = KeychainStore("auto", entry_limit=ENTRY_LIMIT)
    assert await other.load_tokens(RESOURCE, ISSUER) == large
    assert await other.load_secret("client-secret|x") == CLIENT_SECRET
    assert entry_files(xdg) == [entry]

    # Saved again: still one warning for that entry.
    await store.save_tokens(large)
    await asyncio.sleep(0)
    assert len(log.warnings()) == 1

    # Its successor fits: it goes to the keychain and the file copy is gone.
    await store.save_tokens(tokens())
    assert entry_files(xdg) == []
    assert ("mcpls", f"tokens|{RESOURCE}|{ISSUER}") in dict_keyring.entries
    assert await other.load_tokens(RESOURCE, ISSUER) == tokens()


# -- locks ---------------------------------------------------------------------------------

# Each worker repeatedly does what a refresh does: lock, reload, "use" the refresh token,
# store its rotated successor. The shared log is written only inside the critical section.
WORKER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from dataclasses import replace
    from pathlib import Path
    from mcpls.store.layered import KeychainStore

    resource, issuer, log, ready, go, rounds = sys.argv[1:7]

    async def main() -> None:
        store = KeychainStore("file")
        Path(ready).touch()
        deadline = time.monotonic() + 30
        while not Path(go).exists():  # start together, so the workers contend
            assert time.monotonic() < deadline, "never told to go"
            await asyncio.sleep(0.005)
        for _ in range(int(rounds)):
            async with store.locked(resource, issuer, timeout=60):
                current = await store.load_tokens(resource, issuer)
                with open(log, "a") as out:
                    out.write(f"enter {os.getpid()} {current.refresh_token}\\n")
                await asyncio.sleep(0.002)  # widen the window a broken lock would show
                number = int(current.refresh_token.split("-")[1])
                await store.save_tokens(replace(current, refresh_token=f"rt-{number + 1}"))
                with open(log, "a") as out:
                    out.write(f"exit {os.getpid()}\\n")

    asyncio.run(main())
    """
)


def test_processes_never_hold_the_lock_together_and_never_reuse_a_refresh_token(
    tmp_path: Path,
) -> None:
    # A plain test: it waits for the workers with blocking calls, and runs the store's
    # coroutines on loops of its own.
    asyncio.run(KeychainStore("file").save_tokens(replace(tokens(), refresh_token="rt-0")))
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    log, go = tmp_path / "critical.log", tmp_path / "go"
    workers, rounds = 3, 15
    arguments = [
        [RESOURCE, ISSUER, str(log), str(tmp_path / f"ready-{n}"), str(go), str(rounds)]
        for n in range(workers)
    ]
    processes = [subprocess.Popen([sys.executable, str(script), *args]) for args in arguments]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready-{n}").exists() for n in range(workers)):
            assert time.monotonic() < deadline, "workers did not start"
            assert all(process.poll() is None for process in processes), "a worker died"
            time.sleep(0.01)
        go.touch()
        assert [process.wait(timeout=120) for process in processes] == [0] * workers
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()

    lines = [line.split() for line in log.read_text().splitlines()]
    assert len(lines) == 2 * workers * rounds
    used = []
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        # Every enter is followed by the same process's exit: nobody else got in between.
        assert enter[0] == "enter"
        assert leave == ["exit", enter[1]]
        used.append(enter[2])
    assert used == [f"rt-{n}" for n in range(workers * rounds)]  # each used once, in order
    assert len({enter[1] for enter in lines[::2]}) == workers
    final = asyncio.run(KeychainStore("file").load_tokens(RESOURCE, ISSUER))
    assert final is not None
    assert final.refresh_token == f"rt-{workers * rounds}"


HOLDER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from mcpls.store.layered import KeychainStore

    resource, issuer, held, release = sys.argv[1:5]

    async def main() -> None:
        async with KeychainStore("file").locked(resource, issuer):
            Path(held).touch()
            deadline = time.monotonic() + 60
            while not Path(release).exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

    asyncio.run(main())
    """
)


async def test_a_lock_held_elsewhere_times_out_naming_the_lock_file(tmp_path: Path) -> None:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    held, release = tmp_path / "held", tmp_path / "release"
    holder = await asyncio.create_subprocess_exec(
        sys.executable, str(script), RESOURCE, ISSUER, str(held), str(release)
    )
    try:
        deadline = time.monotonic() + 60
        while not held.exists():
            assert time.monotonic() < deadline, "the holder never took the lock"
            assert holder.returncode is None, "the holder died"
            await asyncio.sleep(0.01)
        store = KeychainStore("file")

        with pytest.raises(StorageFailed) as raised:
            async with store.locked(RESOURCE, ISSUER, timeout=0.3):
                pytest.fail("got a lock another process holds")
        message = str(raised.value)
        assert "another mcpls process" in message
        assert "xdg_state_home/mcpls/locks/" in message
        assert RESOURCE in message

        # Another server's lock is independent.
        async with store.locked(OTHER_RESOURCE, ISSUER, timeout=1):
            pass
        release.touch()
        async with store.locked(RESOURCE, ISSUER, timeout=30):
            # The holder is gone while we hold it.
            assert await asyncio.wait_for(holder.wait(), timeout=30) == 0
    finally:
        release.touch()
        if holder.returncode is None:
            holder.kill()
            await holder.wait()


async def test_coroutines_of_one_process_exclude_each_other_and_a_cancelled_wait_frees_it() -> None:
    store = KeychainStore("file")
    events: list[str] = []

    async def critical(name: str) -> None:
        async with store.locked(RESOURCE, ISSUER, timeout=10):
            events.append(f"enter {name}")
            await asyncio.sleep(0.02)
            events.append(f"exit {name}")

    await asyncio.gather(*(critical(str(n)) for n in range(4)))
    for enter, leave in zip(events[::2], events[1::2], strict=True):
        assert leave == enter.replace("enter", "exit")

    async with store.locked(RESOURCE, ISSUER):
        waiter = asyncio.create_task(critical("cancelled"))
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with store.locked(RESOURCE, ISSUER, timeout=0.5):
        pass  # the cancelled waiter left nothing held
    assert "enter cancelled" not in events


# -- the one-time prompt ---------------------------------------------------------------------


def test_prompt_state_persists_across_instances(xdg: Path) -> None:
    first = PromptState()
    assert not first.shown(RESOURCE)
    first.mark_shown(RESOURCE)
    first.mark_shown(RESOURCE)
    assert first.shown(RESOURCE)

    second = PromptState()
    assert second.shown(RESOURCE)
    assert not second.shown(OTHER_RESOURCE)
    second.mark_shown(OTHER_RESOURCE)
    assert PromptState().shown(RESOURCE)
    assert PromptState().shown(OTHER_RESOURCE)
    state_file = xdg / "xdg_state_home" / "mcpls" / "prompts.json"
    assert RESOURCE not in state_file.read_text()  # URLs are stored hashed


def test_damaged_prompt_state_is_ignored_not_fatal(xdg: Path) -> None:
    state_file = xdg / "xdg_state_home" / "mcpls" / "prompts.json"
    state_file.parent.mkdir(parents=True)
    state_file.write_text('{"shown": ["abc"')
    log = Log()
    prompts = PromptState(log=log)

    assert not prompts.shown(RESOURCE)
    prompts.mark_shown(RESOURCE)
    assert PromptState().shown(RESOURCE)
    assert log.warnings()
