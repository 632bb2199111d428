"""Through the real `mcpls serve` with `tokenStorage: "auto"`: the sign-in goes into a real
Secret Service (gnome-keyring on a private D-Bus session bus) and into no file; without a
keychain, or with a locked one, it goes into files readable only by the user, and the
editor's log says so. No token ever reaches a log line, a status or a notification."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from keychain import (
    absent_bus_address,
    isolated_env,
    lock_keychain,
    start_secret_service,
    stored_secrets,
)
from peers.oauth.browser import signs_in

Factory = Callable[..., Any]
FILE_WARNING = "tokens are stored in files readable only by you"


def settings(url: str) -> dict[str, Any]:
    return {
        "servers": {"svc": {"url": url}},
        "allowInsecureLoopback": True,  # every peer runs on this machine over plain http
        "tokenStorage": "auto",
    }


@pytest.fixture
def secret_service(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a session with an unlocked keychain (own HOME and XDG dirs)."""
    with start_secret_service(tmp_path / "session") as env:
        yield env


@pytest.fixture
def no_keychain(tmp_path: Path) -> dict[str, str]:
    """The environment of a session whose D-Bus address leads nowhere: no keychain."""
    env = isolated_env(tmp_path / "session")
    env["DBUS_SESSION_BUS_ADDRESS"] = absent_bus_address(tmp_path)
    return env


async def sign_in(editor_factory: Factory, url: str, env: dict[str, str], log_file: Path) -> Any:
    editor = await editor_factory(settings(url), env=env, log_level="debug", log_file=log_file)
    editor.browse = signs_in
    await editor.wait_for_state("svc", "authRequired")
    status = await editor.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected", status
    await echo(editor, "signed in")
    return editor


async def echo(editor: Any, text: str) -> None:
    result = await editor.request(
        "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": text}}
    )
    assert result["content"][0]["text"] == text


def data_files(*roots: Path) -> list[Path]:
    """Files under `roots` (a root that does not exist holds none)."""
    return sorted(path for root in roots for path in root.rglob("*") if path.is_file())


def token_values(documents: list[str]) -> set[str]:
    """The tokens and client secrets in stored entries (keychain items or files)."""
    found: set[str] = set()
    for document in documents:
        value = json.loads(document)["value"]
        if isinstance(value, dict):
            for key in ("access_token", "refresh_token", "client_secret"):
                if isinstance(value.get(key), str):
                    found.add(value[key])
    return found


def everything_said(editor: Any, log_file: Path) -> str:
    """All a person or a log collector could see: editor log, statuses, mcpls's log file."""
    return "\n".join([*editor.log, *map(str, editor.statuses), log_file.read_text()])


async def test_tokens_live_in_the_keychain_not_in_a_file(
    editor_factory: Factory,
    py_oauth_server: Any,
    secret_service: dict[str, str],
    isolated_dirs: Path,
    tmp_path: Path,
) -> None:
    bus = secret_service["DBUS_SESSION_BUS_ADDRESS"]
    data_home = Path(secret_service["XDG_DATA_HOME"])
    log_file = tmp_path / "first.log"
    editor = await sign_in(editor_factory, py_oauth_server.mcp_url, secret_service, log_file)

    stored = stored_secrets(bus)
    key = f"tokens|{py_oauth_server.mcp_url}|{py_oauth_server.issuer}"
    assert key in stored, sorted(stored)
    tokens = json.loads(stored[key])["value"]
    assert tokens["access_token"]
    assert tokens["refresh_token"]
    # The DCR registration too, under its redirect URI.
    assert any(k.startswith(f"client|{py_oauth_server.issuer}|http://127.0.0.1:") for k in stored)
    # No secret on disk: neither in the session's data dir (where gnome-keyring keeps its
    # own encrypted keyring) nor in the test's own XDG data dir. What is not secret (the
    # discovered metadata) lives in private files under state/, never in the keychain.
    on_disk = data_files(data_home / "mcpls", isolated_dirs / "data")
    assert [p for p in on_disk if p.parent.name != "state"] == []
    assert token_values([p.read_text() for p in on_disk]) == set()
    assert not any(FILE_WARNING in line for line in editor.log), editor.log
    await editor.client.shutdown_session()

    # A restart (or a second window): connected from the keychain, no browser, no prompt.
    again_log = tmp_path / "again.log"
    again = await editor_factory(
        settings(py_oauth_server.mcp_url), env=secret_service, log_level="debug", log_file=again_log
    )
    status = await again.wait_for_state("svc", "connected", "authRequired", "error")
    assert status["state"] == "connected", status
    assert again.shown_documents == []
    assert again.prompts == []
    await echo(again, "restarted")
    assert (await py_oauth_server.stats())["authorizations"] == 1
    await again.client.shutdown_session()

    secrets = token_values(list(stored_secrets(bus).values())) | token_values(list(stored.values()))
    assert len(secrets) >= 2
    seen = everything_said(editor, log_file) + everything_said(again, again_log)
    assert "DEBUG" in seen  # the debug log was really written
    for secret in secrets:
        assert secret not in seen


async def test_no_keychain_falls_back_to_a_private_file_with_a_warning(
    editor_factory: Factory, py_oauth_server: Any, no_keychain: dict[str, str], tmp_path: Path
) -> None:
    log_file = tmp_path / "mcpls.log"
    editor = await sign_in(editor_factory, py_oauth_server.mcp_url, no_keychain, log_file)
    await editor.wait_for_log(FILE_WARNING)
    [warning] = [line for line in editor.log if FILE_WARNING in line]
    assert "no system keychain is available" in warning

    secrets = assert_private_files(Path(no_keychain["XDG_DATA_HOME"]) / "mcpls")
    assert (await py_oauth_server.stats())["authorizations"] == 1
    await editor.client.shutdown_session()
    seen = everything_said(editor, log_file)
    for secret in secrets:
        assert secret not in seen


async def test_locked_keychain_falls_back_to_a_private_file_with_a_warning(
    editor_factory: Factory, py_oauth_server: Any, secret_service: dict[str, str], tmp_path: Path
) -> None:
    bus = secret_service["DBUS_SESSION_BUS_ADDRESS"]
    lock_keychain(bus)  # a screen lock or an idle timeout; nobody there to unlock it
    log_file = tmp_path / "mcpls.log"
    editor = await sign_in(editor_factory, py_oauth_server.mcp_url, secret_service, log_file)
    await editor.wait_for_log("the system keychain failed to")
    [warning] = [line for line in editor.log if "the system keychain failed to" in line]
    assert "using files readable only by you" in warning

    secrets = assert_private_files(Path(secret_service["XDG_DATA_HOME"]) / "mcpls")
    assert stored_secrets(bus) == {}  # nothing went into the locked keychain
    await editor.client.shutdown_session()
    seen = everything_said(editor, log_file)
    for secret in secrets:
        assert secret not in seen


def assert_private_files(mcpls_data: Path) -> set[str]:
    """The sign-in is in 0600 files in a 0700 directory; returns the secrets they hold."""
    files = data_files(mcpls_data)
    assert files, "the sign-in must be in a file"
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
    documents = [path.read_text() for path in files]
    assert any(json.loads(d)["kind"] == "tokens" for d in documents)
    secrets = token_values(documents)
    assert len(secrets) >= 2  # access and refresh token
    return secrets


async def test_a_keychain_locked_in_the_middle_of_a_session_loses_nothing(
    editor_factory: Factory, py_oauth_server: Any, secret_service: dict[str, str], tmp_path: Path
) -> None:
    # Issue 10: the keychain starts failing mid-session (a screen lock): the next refresh
    # lands in a private file with a warning, the calls go on, no sign-in is lost.
    bus = secret_service["DBUS_SESSION_BUS_ADDRESS"]
    log_file = tmp_path / "mcpls.log"
    editor = await sign_in(editor_factory, py_oauth_server.mcp_url, secret_service, log_file)
    assert any(key.startswith("tokens|") for key in stored_secrets(bus))
    lock_keychain(bus)
    await py_oauth_server.expire_access()
    result = await editor.request(
        "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": "locked"}}
    )
    assert result["content"][0]["text"] == "locked"
    await editor.wait_for_log("the system keychain failed to")
    assert editor.latest("svc")["state"] == "connected"
    assert (await py_oauth_server.stats())["token_requests"]["refresh_token"] == 1
    secrets = assert_private_files(Path(secret_service["XDG_DATA_HOME"]) / "mcpls")
    await editor.client.shutdown_session()
    seen = everything_said(editor, log_file)
    assert not any(secret in seen for secret in secrets)


async def test_a_keychain_raising_on_every_call_mid_session_refreshes_and_logout_says_so(
    editor_factory: Factory, py_oauth_server: Any, secret_service: dict[str, str], tmp_path: Path
) -> None:
    # Issue 10: locked for good (read, write and delete all raise). Two refreshes go on from
    # memory into a private file; a logout revokes and deletes what it can and says the
    # keychain may still hold the entry, instead of letting it come back when it opens.
    bus = secret_service["DBUS_SESSION_BUS_ADDRESS"]
    log_file = tmp_path / "mcpls.log"
    editor = await sign_in(editor_factory, py_oauth_server.mcp_url, secret_service, log_file)
    lock_keychain(bus)
    for text in ("first refresh", "second refresh"):
        assert await py_oauth_server.expire_access() >= 1
        await echo(editor, text)
    stats = await py_oauth_server.stats()
    assert stats["token_requests"]["refresh_token"] == 2
    assert stats["authorizations"] == 1
    secrets = assert_private_files(Path(secret_service["XDG_DATA_HOME"]) / "mcpls")

    with pytest.raises(JsonRpcException) as raised:
        await editor.request("mcp/logout", {"server": "svc"})
    assert "could not be deleted from the system keychain" in str(raised.value)
    assert "unlock the keychain and try again" in str(raised.value)
    status = await editor.wait_for_state("svc", "disabled")
    assert status["auth"]["authenticated"] is False
    # The file copy is gone; the keychain's (revoked) copy is what the message is about.
    mcpls_data = Path(secret_service["XDG_DATA_HOME"]) / "mcpls"
    assert not any(json.loads(p.read_text())["kind"] == "tokens" for p in data_files(mcpls_data))
    assert (await py_oauth_server.stats())["revocations"] >= 1
    await editor.client.shutdown_session()
    seen = everything_said(editor, log_file)
    assert not any(secret in seen for secret in secrets)
