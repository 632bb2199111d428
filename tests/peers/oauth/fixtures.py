"""pytest plugin: OAuth-capable peers, each a real process on 127.0.0.1 on free ports.

Register it from tests/conftest.py (which puts tests/ on sys.path):
    pytest_plugins = ["peers.oauth.fixtures"]

- `py_oauth_server` / `py_oauth_server_factory(...)`: py_as_rs.py, the official Python SDK's
  authorization server and an MCP resource server in one app (control API in /_control/).
- `ts_oauth_server` / `ts_oauth_server_factory(strict=...)`: the TypeScript SDK example
  `simpleStreamableHttp.js --oauth`, its demo authorization server on a second port.
- `oidc_provider` / `oidc_provider_factory(...)`: npm oidc-provider as a stand-alone
  authorization server (JWT access tokens, login and consent forms), and oidc_rs.py, a
  Python SDK resource server that accepts its tokens.

Every fixture is function-scoped: tests expire and revoke tokens and count requests, so a
shared server would let one test's leftovers decide another's outcome. Output of every
process goes to tmp_path/peers/ and is attached to the report (pytest shows it on failure).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from peers.managed import (
    HOST,
    LEDGER_PRELOAD,
    NODE,
    PEERS,
    REPO,
    ManagedProcess,
    PeerFailed,
    attach_output,
    free_port,
    missing_node_tools,
    python_peer,
    ts_example_command,
)

OAUTH_PEERS = Path(__file__).resolve().parent
OIDC_PROVIDER_SCRIPT = OAUTH_PEERS / "oidc" / "provider.mjs"
OIDC_PROVIDER_PACKAGE = REPO / ".tools" / "node_modules" / "oidc-provider" / "package.json"
START_TIMEOUT_S = 30.0
BIND_RACES = ("address already in use", "EADDRINUSE", "Errno 98")
PORT_ATTEMPTS = 3

T = TypeVar("T")


def _script(name: str) -> str:
    return str((OAUTH_PEERS / name).relative_to(PEERS))


class PeerProcesses:
    """The processes one test started; all stopped (terminate, then kill) at teardown."""

    def __init__(self, log_dir: Path, item: pytest.Item) -> None:
        self.log_dir = log_dir
        self.item = item
        self.started: list[ManagedProcess] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        ready_url: str,
        env: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        """Start `argv`; return once it listens on `port` and `ready_url` answers 200."""
        process = ManagedProcess(name, argv, log_dir=self.log_dir, port=port, env=env)
        self.started.append(process)
        process.start()
        wait_for_ok(process, ready_url)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            attach_output(self.item, process)


def wait_for_ok(process: ManagedProcess, url: str, timeout: float = START_TIMEOUT_S) -> None:
    """Until GET `url` answers 200 (the port is this peer's, and it is initialised)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if not process.running:
            process.fail(f"exited with status {process.returncode} before {url} answered")
        try:
            response = httpx.get(url, timeout=2)
        except httpx.TransportError as exc:
            last = repr(exc)
        else:
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        if time.monotonic() > deadline:
            process.stop()
            process.fail(f"{url} did not answer 200 within {timeout} s (last: {last})")
        time.sleep(0.05)  # poll interval of the condition above, not a wait for it


def on_free_ports(start: Callable[[], T]) -> T:
    """Run `start` (which picks its own free ports), again if another process took a port
    between the pick and the bind."""
    for attempt in range(PORT_ATTEMPTS):
        try:
            return start()
        except PeerFailed as exc:
            if attempt + 1 == PORT_ATTEMPTS or not any(s in str(exc) for s in BIND_RACES):
                raise
    raise AssertionError("unreachable")


def require_node(*packages: Path) -> None:
    problem = missing_node_tools()
    for package in packages:
        if problem is None and not package.exists():
            problem = (
                f"{package.parent.name} is not installed ({package} is missing): run "
                "./tests/run once, which installs Node and the npm test peers into .tools/"
            )
    if problem is not None:
        pytest.fail(problem)


@pytest.fixture
def oauth_peer_processes(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[PeerProcesses]:
    """The process registry behind the OAuth peer fixtures."""
    peers = PeerProcesses(tmp_path / "peers", request.node)
    yield peers
    peers.stop_all()


# --- Python SDK: authorization server + resource server in one app ------------------------


@dataclass(frozen=True)
class PyOAuthServer:
    """py_as_rs.py: AS and RS on one origin, issuer without a trailing slash."""

    process: ManagedProcess
    port: int
    access_ttl: int
    refresh: bool

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def mcp_url(self) -> str:
        """The MCP endpoint and the RFC 8707 resource its tokens must be issued for."""
        return f"{self.base_url}/mcp"

    @property
    def admin_mcp_url(self) -> str:
        """The same MCP server, but every request needs `mcp:admin` (403 step-up)."""
        return f"{self.base_url}/mcp/admin"

    @property
    def resource_metadata_url(self) -> str:
        return f"{self.base_url}/.well-known/oauth-protected-resource/mcp"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/_control"

    async def stats(self) -> dict[str, Any]:
        """`registrations`, `authorizations`, `token_requests` {grant_type: n},
        `resources` [{endpoint, grant_type, resource}] in arrival order, `revocations`."""
        return await self._control("GET", "stats")

    async def revoke_refresh(self) -> int:
        """Invalidate every refresh token; how many there were."""
        return int((await self._control("POST", "revoke-refresh"))["revoked"])

    async def fail_token_requests(self, status: int, count: int = 1) -> None:
        """The next `count` token requests answer `status` (500, 503, 429...)."""
        await self._control("POST", f"fail-token?status={status}&count={count}")

    async def forget_clients(self) -> int:
        """Drop every client registration; how many there were."""
        return int((await self._control("POST", "forget-clients"))["forgotten"])

    async def expire_access(self) -> int:
        """Make every access token expired now; how many there were."""
        return int((await self._control("POST", "expire-access"))["expired"])

    def start_again(self) -> None:
        """Start the stopped or killed process on the same port; return once it answers.
        Its sign-ins survive only when it was started with `state=`."""
        self.process.start()
        wait_for_ok(self.process, f"{self.base_url}/.well-known/oauth-authorization-server")

    def output(self) -> str:
        return self.process.output()

    async def _control(self, method: str, name: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.request(method, f"{self.control_url}/{name}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


PyOAuthServerFactory = Callable[..., PyOAuthServer]


@pytest.fixture
def py_oauth_server_factory(oauth_peer_processes: PeerProcesses) -> PyOAuthServerFactory:
    """`factory(access_ttl=3600, refresh=True, scopes="mcp:read mcp:write mcp:admin",
    required_scopes="mcp:read", state=None, resumable=False) -> PyOAuthServer`; `state`: a
    file that keeps sign-ins across `start_again()`, `resumable`: an SSE event store."""

    def start(
        *,
        access_ttl: int = 3600,
        refresh: bool = True,
        scopes: str = "mcp:read mcp:write mcp:admin",
        required_scopes: str = "mcp:read",
        state: Path | None = None,
        resumable: bool = False,
    ) -> PyOAuthServer:
        def attempt() -> PyOAuthServer:
            port = free_port()
            args = ["--port", str(port), "--access-ttl", str(access_ttl)]
            args += ["--scopes", scopes, "--required-scopes", required_scopes]
            if not refresh:
                args.append("--no-refresh")
            if state is not None:
                args += ["--state", str(state)]
            if resumable:
                args.append("--resumable")
            process = oauth_peer_processes.start(
                f"py-oauth-{port}",
                python_peer(_script("py_as_rs.py"), *args),
                port=port,
                ready_url=f"http://{HOST}:{port}/.well-known/oauth-authorization-server",
            )
            return PyOAuthServer(process, port, access_ttl, refresh)

        return on_free_ports(attempt)

    return start


@pytest.fixture
def py_oauth_server(py_oauth_server_factory: PyOAuthServerFactory) -> PyOAuthServer:
    """py_as_rs.py with defaults: 1 h access tokens, rotating refresh tokens."""
    return py_oauth_server_factory()


# --- TypeScript SDK example with its demo authorization server -----------------------------


@dataclass(frozen=True)
class TsOAuthServer:
    """simpleStreamableHttp.js --oauth. Its URLs say `localhost` (hard-coded in the
    example) while it listens on 127.0.0.1 only; the issuer has a trailing slash."""

    process: ManagedProcess
    port: int
    auth_port: int
    strict: bool

    @property
    def mcp_url(self) -> str:
        """Also the exact `resource` string the strict mode accepts."""
        return f"http://localhost:{self.port}/mcp"

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.auth_port}/"

    @property
    def resource_metadata_url(self) -> str:
        return f"http://localhost:{self.port}/.well-known/oauth-protected-resource/mcp"

    def output(self) -> str:
        return self.process.output()


TsOAuthServerFactory = Callable[..., TsOAuthServer]


@pytest.fixture
def ts_oauth_server_factory(oauth_peer_processes: PeerProcesses) -> TsOAuthServerFactory:
    """`factory(strict=False) -> TsOAuthServer`; strict adds `--oauth-strict` (RFC 8707:
    the token endpoint refuses a code authorized without the exact `resource`)."""
    require_node()

    def start(*, strict: bool = False) -> TsOAuthServer:
        def attempt() -> TsOAuthServer:
            port, auth_port = free_port(), free_port()
            args = ["--oauth", "--oauth-strict"] if strict else ["--oauth"]
            process = oauth_peer_processes.start(
                f"ts-oauth-{port}",
                ts_example_command(*args),
                port=port,
                ready_url=f"http://{HOST}:{port}/.well-known/oauth-protected-resource/mcp",
                env={"MCP_PORT": str(port), "MCP_AUTH_PORT": str(auth_port)},
            )
            process.wait_until_listening(HOST, auth_port, START_TIMEOUT_S)
            wait_for_ok(
                process, f"http://{HOST}:{auth_port}/.well-known/oauth-authorization-server"
            )
            return TsOAuthServer(process, port, auth_port, strict)

        return on_free_ports(attempt)

    return start


@pytest.fixture
def ts_oauth_server(ts_oauth_server_factory: TsOAuthServerFactory) -> TsOAuthServer:
    """The TypeScript SDK example with `--oauth` (consent at once, no refresh tokens)."""
    return ts_oauth_server_factory()


# --- oidc-provider in front of a Python SDK resource server --------------------------------


@dataclass(frozen=True)
class OidcPeers:
    """oidc-provider (issuer `http://127.0.0.1:P`, no trailing slash; endpoints /auth,
    /token, /reg, /jwks, /token/revocation) and oidc_rs.py (the MCP server); with
    `servers=N`, N resource servers behind the one provider (`mcp_urls`)."""

    provider: ManagedProcess
    resource_server: ManagedProcess
    port: int
    rs_port: int
    access_ttl: int
    rs_ports: tuple[int, ...] = ()

    @property
    def mcp_urls(self) -> list[str]:
        return [f"http://{HOST}:{port}/mcp" for port in self.rs_ports or (self.rs_port,)]

    @property
    def issuer(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def mcp_url(self) -> str:
        """The MCP endpoint, the JWT `aud` and the default resource of the provider."""
        return f"http://{HOST}:{self.rs_port}/mcp"

    @property
    def resource_metadata_url(self) -> str:
        return f"http://{HOST}:{self.rs_port}/.well-known/oauth-protected-resource/mcp"

    def output(self) -> str:
        return f"{self.provider.output()}\n{self.resource_server.output()}"


OidcProviderFactory = Callable[..., OidcPeers]


@pytest.fixture
def oidc_provider_factory(oauth_peer_processes: PeerProcesses) -> OidcProviderFactory:
    """`factory(access_ttl=3600, scopes="mcp:read mcp:write", required_scopes="mcp:read")
    -> OidcPeers`."""
    require_node(OIDC_PROVIDER_PACKAGE)

    def start(
        *,
        access_ttl: int = 3600,
        scopes: str = "mcp:read mcp:write",
        required_scopes: str = "mcp:read",
        servers: int = 1,
        static_clients: list[dict[str, Any]] | None = None,
    ) -> OidcPeers:
        def attempt() -> OidcPeers:
            port = free_port()
            rs_ports = tuple(free_port() for _ in range(servers))
            issuer = f"http://{HOST}:{port}"
            provider = oauth_peer_processes.start(
                f"oidc-provider-{port}",
                [str(NODE), "--require", str(LEDGER_PRELOAD), str(OIDC_PROVIDER_SCRIPT)],
                port=port,
                ready_url=f"{issuer}/.well-known/openid-configuration",
                env={
                    "PORT": str(port),
                    "MCP_RESOURCE": " ".join(f"http://{HOST}:{p}/mcp" for p in rs_ports),
                    "ACCESS_TTL": str(access_ttl),
                    "RESOURCE_SCOPES": scopes,
                    "STATIC_CLIENTS": json.dumps(static_clients or []),
                },
            )
            started = []
            for rs_port in rs_ports:
                args = ["--port", str(rs_port), "--issuer", issuer]
                started.append(
                    oauth_peer_processes.start(
                        f"oidc-rs-{rs_port}",
                        python_peer(
                            _script("oidc_rs.py"), *args, "--required-scopes", required_scopes
                        ),
                        port=rs_port,
                        ready_url=f"http://{HOST}:{rs_port}/.well-known/oauth-protected-resource/mcp",
                    )
                )
            return OidcPeers(provider, started[0], port, rs_ports[0], access_ttl, rs_ports)

        return on_free_ports(attempt)

    return start


@pytest.fixture
def oidc_provider(oidc_provider_factory: OidcProviderFactory) -> OidcPeers:
    """oidc-provider and its resource server with defaults (1 h JWT access tokens)."""
    return oidc_provider_factory()
