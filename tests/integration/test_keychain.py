"""The token store against a real Secret Service (gnome-keyring on a private D-Bus bus)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import keyring.backend
import pytest

from keychain import (
    absent_bus_address,
    isolated_env,
    lock_keychain,
    start_secret_service,
    stored_secrets,
)
from mcpls.errors import StorageFailed
from mcpls.store.layered import KeychainStore
from mcpls.store.records import ClientRegistration, TokenSet

ACCESS = "at-5f2e9c-keychain-access"
REFRESH = "rt-81d7aa-keychain-refresh"
CLIENT_SECRET = "cs-0b44e1-keychain-client"
RESOURCE = "https://mcp.example.com/mcp"
ISSUER = "https://auth.example.com/"
REDIRECT = "http://127.0.0.1:33418/callback"


def tokens(access: str = ACCESS) -> TokenSet:
    return TokenSet(
        access_token=access,
        token_type="Bearer",
        expires_at=1_900_000_000.0,
        refresh_token=REFRESH,
        scope=("mcp:read",),
        issuer=ISSUER,
        resource=RESOURCE,
    )


def registration() -> ClientRegistration:
    return ClientRegistration(
        issuer=ISSUER,
        client_id="mcpls-client",
        client_secret=CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_post",
        redirect_uris=(REDIRECT,),
        source="dcr",
    )


class Log(list[tuple[str, str]]):
    def __call__(self, level: str, message: str) -> None:
        self.append((level, message))

    def warnings(self) -> list[str]:
        return [message for level, message in self if level == "warning"]


def token_files(env: dict[str, str]) -> list[Path]:
    return sorted(Path(env["XDG_DATA_HOME"]).rglob("*.json"))


@pytest.fixture
def use_environment() -> Iterator[Callable[[dict[str, str]], None]]:
    """Point this process (and so keyring) at an environment; restore keyring afterwards.

    keyring picks its backend once per process and caches which backends are viable, so
    both are reset whenever the environment changes.
    """
    previous = keyring.get_keyring()
    with pytest.MonkeyPatch.context() as patch:

        def use(env: dict[str, str]) -> None:
            patch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
            for name, value in env.items():
                patch.setenv(name, value)
            forget_viable_backends()
            keyring.core.init_backend()

        yield use
    forget_viable_backends()
    keyring.set_keyring(previous)


def forget_viable_backends() -> None:
    # keyring computes the viable backends once per process (jaraco.functools.once).
    with contextlib.suppress(KeyError):
        keyring.backend.get_all_keyring.reset()


@pytest.fixture
def secret_service(
    tmp_path: Path, use_environment: Callable[[dict[str, str]], None]
) -> Iterator[dict[str, str]]:
    with start_secret_service(tmp_path) as env:
        use_environment(env)
        yield env


@pytest.fixture
def no_keychain(
    tmp_path: Path, use_environment: Callable[[dict[str, str]], None]
) -> dict[str, str]:
    env = {**isolated_env(tmp_path), "DBUS_SESSION_BUS_ADDRESS": absent_bus_address(tmp_path)}
    use_environment(env)
    return env


async def test_auto_mode_keeps_everything_in_the_keychain_and_nothing_on_disk(
    secret_service: dict[str, str],
) -> None:
    log = Log()
    store = KeychainStore("auto", log=log)

    await store.save_tokens(tokens())
    await store.save_registration(registration(), REDIRECT)
    await store.save_secret("client-secret|x", CLIENT_SECRET)

    assert store.backend.startswith("keyring (SecretService")
    in_keychain = stored_secrets_now(secret_service)
    assert set(in_keychain) == {
        f"tokens|{RESOURCE}|{ISSUER}",
        f"client|{ISSUER}|{REDIRECT}",
        "secret|client-secret|x",
    }
    assert json.loads(in_keychain[f"tokens|{RESOURCE}|{ISSUER}"])["value"]["access_token"] == ACCESS
    assert token_files(secret_service) == []
    # A second process (here a second store) reads the same keychain.
    other = KeychainStore("auto")
    assert await other.load_tokens(RESOURCE, ISSUER) == tokens()
    assert await other.load_registration(ISSUER, REDIRECT) == registration()
    assert await other.load_secret("client-secret|x") == CLIENT_SECRET
    await asyncio.sleep(0)  # warnings from the worker thread arrive through the loop
    assert log.warnings() == []

    await other.delete_tokens(RESOURCE, ISSUER)
    assert f"tokens|{RESOURCE}|{ISSUER}" not in stored_secrets_now(secret_service)
    assert await store.load_tokens(RESOURCE, ISSUER) is None


async def test_a_file_entry_moves_into_the_keychain_once_it_works(
    secret_service: dict[str, str],
) -> None:
    await KeychainStore("file").save_tokens(tokens())
    assert len(token_files(secret_service)) == 1

    store = KeychainStore("auto")
    assert await store.load_tokens(RESOURCE, ISSUER) == tokens()

    assert token_files(secret_service) == []
    assert f"tokens|{RESOURCE}|{ISSUER}" in stored_secrets_now(secret_service)
    assert await KeychainStore("auto").load_tokens(RESOURCE, ISSUER) == tokens()


async def test_a_locked_keychain_falls_back_to_files_with_one_warning(
    secret_service: dict[str, str],
) -> None:
    lock_keychain(secret_service["DBUS_SESSION_BUS_ADDRESS"])
    log = Log()
    store = KeychainStore("auto", log=log)

    await store.save_tokens(tokens())
    await store.save_registration(registration(), REDIRECT)

    assert len(token_files(secret_service)) == 2
    assert await KeychainStore("auto").load_tokens(RESOURCE, ISSUER) == tokens()
    assert await store.load_registration(ISSUER, REDIRECT) == registration()
    await asyncio.sleep(0)  # warnings from the worker thread arrive through the loop
    [warning] = log.warnings()
    assert "keychain failed" in warning
    assert "files" in warning
    assert "falling back to file" in store.backend
    for secret in (ACCESS, REFRESH, CLIENT_SECRET):
        assert secret not in warning


async def test_a_locked_keychain_in_keyring_mode_is_an_error(
    secret_service: dict[str, str],
) -> None:
    lock_keychain(secret_service["DBUS_SESSION_BUS_ADDRESS"])
    store = KeychainStore("keyring")

    with pytest.raises(StorageFailed) as raised:
        await store.save_tokens(tokens())

    message = str(raised.value)
    assert "unlock it" in message
    assert 'set tokenStorage to "file"' in message
    assert ACCESS not in message
    assert REFRESH not in message
    assert token_files(secret_service) == []


async def test_no_keychain_falls_back_to_files_with_a_warning(no_keychain: dict[str, str]) -> None:
    log = Log()
    store = KeychainStore("auto", log=log)

    await store.save_tokens(tokens())

    assert store.backend.startswith("file (")
    assert len(token_files(no_keychain)) == 1
    assert await KeychainStore("auto").load_tokens(RESOURCE, ISSUER) == tokens()
    await asyncio.sleep(0)  # warnings from the worker thread arrive through the loop
    [warning] = log.warnings()
    assert "no system keychain" in warning


async def test_no_keychain_in_keyring_mode_is_an_error(no_keychain: dict[str, str]) -> None:
    store = KeychainStore("keyring")

    with pytest.raises(StorageFailed) as raised:
        await store.save_tokens(tokens())
    with pytest.raises(StorageFailed):
        await store.load_tokens(RESOURCE, ISSUER)

    message = str(raised.value)
    assert "system keychain is not available" in message
    assert 'set tokenStorage to "file"' in message
    assert ACCESS not in message
    assert token_files(no_keychain) == []


def stored_secrets_now(env: dict[str, str]) -> dict[str, str]:
    return stored_secrets(env["DBUS_SESSION_BUS_ADDRESS"])
