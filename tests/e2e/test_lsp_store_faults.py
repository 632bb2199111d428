"""Issue 10, through the real `mcpls serve` and the SDK's authorization server: the token
file truncated, overwritten with garbage or replaced by a directory while mcpls runs costs
no sign-in. Calls go on from the tokens in memory, the next refresh writes a good file
(atomically, 0600), the log names the file and what to do (never a token), and once the
fault is gone everything recovers with no restart. The authorization server's count of
authorizations proves that nobody was sent to sign in again."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keychain import lock_keychain, start_secret_service, stored_secrets
from peers.oauth.browser import signs_in

Factory = Callable[..., Any]


def settings(url: str, storage: str = "file") -> dict[str, Any]:
    return {
        "servers": {"svc": {"url": url}},
        "allowInsecureLoopback": True,  # every peer runs on this machine over plain http
        "tokenStorage": storage,
    }


async def echo(editor: Any, text: str) -> None:
    result = await editor.request(
        "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": text}}
    )
    assert result["content"][0]["text"] == text


def token_file(data_home: Path) -> Path:
    """The one entry of kind "tokens" among mcpls's token files."""
    directory = data_home / "mcpls" / "tokens"
    found = [
        path
        for path in directory.glob("*.json")
        if path.is_file() and json.loads(path.read_bytes())["kind"] == "tokens"
    ]
    assert len(found) == 1, found
    return found[0]


def assert_good_file(path: Path) -> None:
    """A complete entry, written by mcpls, readable only by its owner."""
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_bytes())["value"]["refresh_token"]
    assert not list(path.parent.glob(".*.tmp")), "a temporary file was left behind"


async def signed_in(editor_factory: Factory, py_oauth_server: Any) -> Any:
    editor = await editor_factory(settings(py_oauth_server.mcp_url))
    editor.browse = signs_in
    await editor.wait_for_state("svc", "authRequired")
    status = await editor.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected", status
    await echo(editor, "signed in")
    return editor


async def refreshed_call(editor: Any, py_oauth_server: Any, text: str) -> None:
    """A call whose token the server no longer accepts: mcpls must refresh to make it."""
    assert await py_oauth_server.expire_access() >= 1
    await echo(editor, text)
    assert editor.latest("svc")["state"] == "connected"


DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda data: data[: len(data) // 2],
    "emptied": lambda data: b"",
    "garbage": lambda data: b"\x00\xffgarbage" * 64,
}


async def test_a_token_file_damaged_mid_session_costs_no_sign_in_and_before_start_says_why(
    editor_factory: Factory, py_oauth_server: Any, isolated_dirs: Path
) -> None:
    editor = await signed_in(editor_factory, py_oauth_server)
    path = token_file(isolated_dirs / "data")
    for refreshes, (how, damage) in enumerate(DAMAGES.items(), start=1):
        path.write_bytes(damage(path.read_bytes()))
        await refreshed_call(editor, py_oauth_server, f"after the file was {how}")
        # The log names the file and what happens next; the leak scan (editor_factory)
        # proves no token reached it.
        await editor.wait_until(
            lambda n=refreshes: sum("going on with the sign-in" in line for line in editor.log) == n
        )
        warning = [line for line in editor.log if "going on with the sign-in" in line][-1]
        assert path.name in warning, warning
        assert "is unreadable" in warning
        assert "the next sign-in or refresh replaces it" in warning
        # The refresh wrote a good file over the damaged one.
        assert_good_file(path)
        stats = await py_oauth_server.stats()
        assert stats["authorizations"] == 1, how  # no new sign-in
        assert stats["token_requests"]["refresh_token"] == refreshes
    await echo(editor, "still connected")
    await editor.client.shutdown_session()

    # Damaged before a start, with nothing in memory: a clean "authenticate again" with
    # the reason in the log, the file left as it is until a sign-in replaces it.
    damaged = path.read_bytes()[:40]
    path.write_bytes(damaged)
    again = await editor_factory(settings(py_oauth_server.mcp_url))
    again.browse = signs_in
    status = await again.wait_for_state("svc", "authRequired", "connected", "error")
    assert status["state"] == "authRequired", status
    assert status["auth"]["authenticated"] is False
    await again.wait_for_log("is unreadable")
    [warning] = [line for line in again.log if "is unreadable" in line]
    assert path.name in warning
    assert "not valid JSON" in warning
    assert path.read_bytes() == damaged  # not deleted behind the person's back
    assert again.shown_documents == []  # no browser without the person asking
    status = await again.request("mcp/authenticate", {"server": "svc"})
    assert status["state"] == "connected", status
    assert_good_file(path)
    assert (await py_oauth_server.stats())["authorizations"] == 2


async def test_a_directory_in_place_of_the_token_file_is_named_and_calls_go_on(
    editor_factory: Factory, py_oauth_server: Any, isolated_dirs: Path
) -> None:
    editor = await signed_in(editor_factory, py_oauth_server)
    path = token_file(isolated_dirs / "data")
    path.unlink()
    path.mkdir()
    (path / "something-of-yours").write_text("kept")  # mcpls must not delete it

    await refreshed_call(editor, py_oauth_server, "with a directory there")
    await editor.wait_for_log("could not be stored")
    [unstored] = [line for line in editor.log if "could not be stored" in line]
    assert "it is a directory, not a file mcpls wrote; remove it" in unstored
    assert path.name in unstored
    assert "kept in memory for this session and stored at the next refresh" in unstored
    assert any("is a directory" in line and "going on with" in line for line in editor.log)
    assert (path / "something-of-yours").read_text() == "kept"
    # A second refresh while it is still there: still no sign-in lost.
    await refreshed_call(editor, py_oauth_server, "still a directory")

    # The person removes it: the next refresh writes the file, no restart, no sign-in.
    shutil.rmtree(path)
    await refreshed_call(editor, py_oauth_server, "directory gone")
    assert_good_file(path)
    stats = await py_oauth_server.stats()
    assert stats["authorizations"] == 1
    assert stats["token_requests"]["refresh_token"] == 3
    await editor.client.shutdown_session()

    # And the file written then is the good one: a restart connects without a sign-in.
    again = await editor_factory(settings(py_oauth_server.mcp_url))
    status = await again.wait_for_state("svc", "connected", "authRequired", "error")
    assert status["state"] == "connected", status
    await echo(again, "restarted")
    assert (await py_oauth_server.stats())["authorizations"] == 1


async def test_the_keychains_fallback_file_damaged_while_the_keychain_is_locked(
    editor_factory: Factory, py_oauth_server: Any, tmp_path: Path
) -> None:
    # The default storage: the sign-in is in the keychain; it locks, a refresh lands in
    # the fallback file, and that file is then damaged. The keychain's copy is older (its
    # refresh token was spent): the next refresh goes on from memory, not from it.
    with start_secret_service(tmp_path / "session") as env:
        bus = env["DBUS_SESSION_BUS_ADDRESS"]
        editor = await editor_factory(settings(py_oauth_server.mcp_url, "auto"), env=env)
        editor.browse = signs_in
        await editor.wait_for_state("svc", "authRequired")
        status = await editor.request("mcp/authenticate", {"server": "svc"})
        assert status["state"] == "connected", status
        assert any(key.startswith("tokens|") for key in stored_secrets(bus))
        lock_keychain(bus)
        await refreshed_call(editor, py_oauth_server, "into the fallback file")
        path = token_file(Path(env["XDG_DATA_HOME"]))
        path.write_bytes(b"\x00" * 100)

        await refreshed_call(editor, py_oauth_server, "after the damage")
        await editor.wait_for_log("going on with the sign-in in memory")
        assert_good_file(path)
        stats = await py_oauth_server.stats()
        assert stats["authorizations"] == 1
        assert stats["token_requests"]["refresh_token"] == 2
        await editor.client.shutdown_session()
