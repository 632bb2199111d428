"""Fixtures shared by every test: isolated user folders, and real MCP peers on 127.0.0.1.

Every peer fixture is function-scoped: tests restart and stop servers, add tools, count
cancelled calls and read the hostile server's request log, so a peer shared between tests
would let one test's leftovers decide another's outcome. A Python peer starts in about a
second, the Node one in less.

The peers (tests/peers/):
- `py_mcp_server`, `py_mcp_server_stateless`, `py_mcp_server_json`: the official Python
  SDK (`mcp` 2.3) over Streamable HTTP, with the tools of tests/peers/tools.py;
- `paged_server`: the SDK's low-level server, 25 tools listed 10 a page;
- `ts_mcp_server`: the TypeScript SDK's simpleStreamableHttp example (`ts_server_launcher`
  starts it with other arguments, e.g. `--oauth`);
- `hostile_server`: answers no real server gives on demand (base URL; see hostile_http.py);
- `stdio_server_command`, `garbage_stdio_command`: command lines of stdio peers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # `peers.*` importable whatever pytest's import mode
    sys.path.insert(0, str(TESTS))

import pytest  # noqa: E402

from peers.managed import (  # noqa: E402
    HOST,
    HttpPeer,
    ManagedProcess,
    attach_output,
    free_port,
    missing_node_tools,
    on_free_ports,
    python_peer,
    ts_example_command,
)

# The OAuth peers (authorization servers, a test browser) are a plugin of their own.
# The secret scan of every test (tests/secret_scan.py) is one too.
pytest_plugins = ["peers.oauth.fixtures", "secret_scan"]

SpawnPeer = Callable[..., ManagedProcess]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the XDG user folders at tmp_path, so no test reads or writes the real ones."""
    root = tmp_path / "xdg"
    for variable, folder in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        path = root / folder
        path.mkdir(parents=True)
        monkeypatch.setenv(variable, str(path))
    return root


@pytest.fixture
def spawn_peer(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SpawnPeer]:
    """Start a peer process; all of them are stopped when the test ends.

    `spawn_peer(name, argv, port=None, env=None)`: with `port`, returns once the
    process listens there. Output goes to tmp_path/peers/ and is attached to the report
    at teardown (pytest shows it only for a failed test; the secret scan skips it).
    """
    started: list[ManagedProcess] = []

    def spawn(
        name: str,
        argv: list[str],
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        process = ManagedProcess(name, argv, log_dir=tmp_path / "peers", port=port, env=env)
        started.append(process)
        process.start()
        return process

    yield spawn
    for process in reversed(started):
        attach_output(request.node, process)


def start_python_http_peer(spawn_peer: SpawnPeer, name: str, script: str, *args: str) -> HttpPeer:
    def start() -> HttpPeer:
        port = free_port()
        argv = python_peer(script, "--port", str(port), *args)
        return HttpPeer(spawn_peer(name, argv, port=port))

    return on_free_ports(start)


@pytest.fixture
def py_mcp_server(spawn_peer: SpawnPeer) -> HttpPeer:
    """Python SDK server, stateful (Mcp-Session-Id), SSE answers; `.restart()` forgets
    every session, so the old session id gets 404."""
    return start_python_http_peer(spawn_peer, "py", "py_server.py")


@pytest.fixture
def py_mcp_server_stateless(spawn_peer: SpawnPeer) -> HttpPeer:
    """Python SDK server without sessions: no Mcp-Session-Id, no server-to-client requests."""
    return start_python_http_peer(spawn_peer, "py-stateless", "py_server.py", "--stateless")


@pytest.fixture
def py_mcp_server_json(spawn_peer: SpawnPeer) -> HttpPeer:
    """Python SDK server, stateful, answering POSTs with application/json instead of SSE."""
    return start_python_http_peer(spawn_peer, "py-json", "py_server.py", "--json-response")


@pytest.fixture
def paged_server(spawn_peer: SpawnPeer) -> HttpPeer:
    """Python SDK low-level server: 25 tools, `tools/list` pages of 10 with nextCursor."""
    return start_python_http_peer(spawn_peer, "paged", "py_paged_server.py")


@pytest.fixture
def hostile_server(spawn_peer: SpawnPeer) -> str:
    """Base URL (no trailing slash) of the hostile HTTP server; see tests/peers/hostile_http.py."""
    return start_python_http_peer(spawn_peer, "hostile", "hostile_http.py").base_url


class TsPeer(HttpPeer):
    """The TypeScript SDK example; `auth_url` is its authorization server with `--oauth`."""

    def __init__(self, process: ManagedProcess, auth_port: int) -> None:
        super().__init__(process)
        self.auth_port = auth_port
        self.auth_url = f"http://{HOST}:{auth_port}/"


@pytest.fixture
def ts_server_launcher(spawn_peer: SpawnPeer) -> Callable[..., TsPeer]:
    """Start the TypeScript SDK example with extra arguments (e.g. "--oauth")."""
    problem = missing_node_tools()
    if problem is not None:
        pytest.fail(problem)

    def launch(*args: str) -> TsPeer:
        def start() -> TsPeer:
            port = free_port()
            auth_port = free_port()
            while auth_port == port:
                auth_port = free_port()
            env = {"MCP_PORT": str(port), "MCP_AUTH_PORT": str(auth_port)}
            process = spawn_peer("ts", ts_example_command(*args), port=port, env=env)
            if "--oauth" in args:
                process.wait_until_listening(HOST, auth_port, process.start_timeout)
            return TsPeer(process, auth_port)

        return on_free_ports(start)

    return launch


@pytest.fixture
def ts_mcp_server(ts_server_launcher: Callable[..., TsPeer]) -> TsPeer:
    """TypeScript SDK example server (tools `greet`, `multi-greet`, …), no OAuth."""
    return ts_server_launcher()


@pytest.fixture
def stdio_server_command() -> list[str]:
    """Command line of the Python SDK stdio server (tools.py plus crash, stderr_line,
    get_env, get_pid)."""
    return python_peer("stdio_server.py")


@pytest.fixture
def garbage_stdio_command() -> list[str]:
    """Command line of a process that writes garbage on stdout and never initializes."""
    return python_peer("garbage_stdio.py")
