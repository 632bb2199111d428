"""A real Secret Service keychain for tests: gnome-keyring on a private D-Bus session bus.

Nothing here touches the user's own session: the bus, the keyring files, HOME and the
XDG directories all live in the test's temporary directory. The bus has no service
directories, so it activates nothing on its own (no password prompter, no second keyring).

Needs the Debian packages `dbus-daemon` and `gnome-keyring`, and the `secretstorage` and
`jeepney` Python packages (dependencies of `keyring` on Linux).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import secretstorage
from jeepney import DBusAddress, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection

SECRETS_NAME = "org.freedesktop.secrets"
KEYRING_PASSWORD = "mcpls-test-keyring"  # unlocks the throwaway login keyring

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def isolated_env(tmp_path: Path) -> dict[str, str]:
    """HOME and XDG directories inside `tmp_path`, so no real keychain or file is touched."""
    env: dict[str, str] = {}
    for name, sub in [
        ("HOME", "home"),
        ("XDG_DATA_HOME", "xdg-data"),
        ("XDG_CONFIG_HOME", "xdg-config"),
        ("XDG_STATE_HOME", "xdg-state"),
        ("XDG_CACHE_HOME", "xdg-cache"),
    ]:
        path = tmp_path / sub
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    return env


def absent_bus_address(tmp_path: Path) -> str:
    """A D-Bus address where no bus listens: a machine without a keychain."""
    return f"unix:path={tmp_path / 'no-bus-here'}"


@contextlib.contextmanager
def start_secret_service(tmp_path: Path, *, timeout: float = 20.0) -> Iterator[dict[str, str]]:
    """Run a private bus and an unlocked gnome-keyring on it; yield the environment to use.

    The environment has `DBUS_SESSION_BUS_ADDRESS`, `XDG_RUNTIME_DIR` and the isolated HOME
    and XDG directories. Both daemons are stopped on exit.
    """
    if not sys.platform.startswith("linux"):
        pytest.skip("the Secret Service is the Linux keychain")
    for program, package in [
        ("dbus-daemon", "dbus-daemon"),
        ("gnome-keyring-daemon", "gnome-keyring"),
    ]:
        if shutil.which(program) is None:
            pytest.fail(f"{program} is missing: apt-get install {package}")

    env = isolated_env(tmp_path)
    # Unix socket paths are limited to about 100 bytes, and pytest's tmp_path can be longer.
    runtime = Path(tempfile.mkdtemp(prefix="mcpls-bus-"))
    env["XDG_RUNTIME_DIR"] = str(runtime)
    config = tmp_path / "session-bus.conf"
    config.write_text(_BUS_CONFIG.format(socket=runtime / "bus"))
    logs = tmp_path / "daemons.log"
    processes: list[subprocess.Popen[bytes]] = []
    with logs.open("ab") as log:
        try:
            bus = subprocess.Popen(
                ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
                stdout=subprocess.PIPE,
                stderr=log,
            )
            processes.append(bus)
            env["DBUS_SESSION_BUS_ADDRESS"] = _read_address(bus, timeout, logs)

            daemon_env = {**os.environ, **env}
            # No display: if anything asks for a password prompt, it fails instead of waiting.
            for name in ("DISPLAY", "WAYLAND_DISPLAY", "GNOME_KEYRING_CONTROL"):
                daemon_env.pop(name, None)
            keyring_daemon = subprocess.Popen(
                [
                    "gnome-keyring-daemon",
                    "--replace",
                    "--unlock",
                    "--components=secrets",
                    "--foreground",
                ],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                env=daemon_env,
            )
            processes.append(keyring_daemon)
            assert keyring_daemon.stdin is not None
            # --unlock reads the login keyring's password from stdin, up to end of file.
            keyring_daemon.stdin.write(KEYRING_PASSWORD.encode())
            keyring_daemon.stdin.close()
            _wait_for_default_collection(env["DBUS_SESSION_BUS_ADDRESS"], processes, timeout, logs)
            yield env
        finally:
            for process in reversed(processes):
                _stop(process)
            shutil.rmtree(runtime, ignore_errors=True)


def lock_keychain(address: str) -> None:
    """Lock the default collection, as a screen lock or an idle timeout would."""
    with _connection(address) as connection:
        collection = secretstorage.get_default_collection(connection)
        collection.lock()
        assert collection.is_locked()


def stored_secrets(address: str, service: str = "mcpls") -> dict[str, str]:
    """Every item the keychain holds for `service`, by username, read straight from D-Bus."""
    with _connection(address) as connection:
        collection = secretstorage.get_default_collection(connection)
        items = collection.search_items({"service": service})
        return {
            item.get_attributes()["username"]: item.get_secret().decode("utf-8") for item in items
        }


@contextlib.contextmanager
def _connection(address: str) -> Iterator[DBusConnection]:
    connection = open_dbus_connection(address)
    try:
        yield connection
    finally:
        connection.close()


def _read_address(bus: subprocess.Popen[bytes], timeout: float, logs: Path) -> str:
    assert bus.stdout is not None
    ready, _, _ = select.select([bus.stdout], [], [], timeout)
    line = bus.stdout.readline().decode().strip() if ready else ""
    if not line:
        pytest.fail(f"dbus-daemon printed no address within {timeout} s:\n{logs.read_text()}")
    return line


def _wait_for_default_collection(
    address: str, processes: list[subprocess.Popen[bytes]], timeout: float, logs: Path
) -> None:
    """Until the Secret Service is on the bus and its default collection exists."""
    deadline = time.monotonic() + timeout
    with _connection(address) as connection:
        while time.monotonic() < deadline:
            for process in processes:
                if process.poll() is not None:
                    program = cast("list[str]", process.args)[0]  # each started from a list
                    pytest.fail(f"{program} exited early:\n{logs.read_text()}")
            owned = connection.send_and_get_reply(message_bus.NameHasOwner(SECRETS_NAME)).body[0]
            if owned:
                service = DBusAddress(
                    "/org/freedesktop/secrets", SECRETS_NAME, "org.freedesktop.Secret.Service"
                )
                reply = connection.send_and_get_reply(
                    new_method_call(service, "ReadAlias", "s", ("default",))
                )
                if reply.body[0] != "/":
                    return
            time.sleep(0.05)
    pytest.fail(f"no Secret Service on the private bus after {timeout} s:\n{logs.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()
