"""The registry of configured servers: applies settings, routes requests, fans out status."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mcpls.config import ConfigError, ServerConfig, Settings
from mcpls.connection import Connection
from mcpls.errors import printable, quote
from mcpls.protocol import ElicitationHandler, ServerHooks
from mcpls.transport import Transport
from mcpls.transport.stdio import StdioTransport

if TYPE_CHECKING:  # for types only: the OAuth stack loads when a server needs it
    from mcpls.auth.session import OAuthSession, OpenUrl
    from mcpls.store.layered import KeychainStore

log = logging.getLogger(__name__)

StatusListener = Callable[[dict[str, Any]], None]
# (level, message) for what a person should see in the editor's log.
UserLog = Callable[[str, str], None]


class UnknownServer(LookupError):
    """No server of that name is configured."""

    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(quote(k, 60) for k in sorted(known)[:20]) or "none are configured"
        more = f" and {len(known) - 20} more" if len(known) > 20 else ""
        super().__init__(f"no MCP server named {quote(name, 60)} (configured: {listed}{more})")
        self.name = name


class Hub:
    """Every configured server by name."""

    def __init__(
        self,
        *,
        on_status: StatusListener,
        user_log: UserLog,
        roots: Callable[[], list[dict[str, str]]],
        elicit: ElicitationHandler | None = None,
        auto_open: OpenUrl | None = None,
        on_auth_required: Callable[[Connection], None] = lambda connection: None,
    ) -> None:
        self._on_status = on_status
        self._auto_open = auto_open
        self._on_auth_required = on_auth_required
        self._store: KeychainStore | None = None
        self._user_log = user_log
        self._roots = roots
        self.elicit = elicit
        self.settings = Settings()
        self.connections: dict[str, Connection] = {}
        # Every server's status as last announced: replaced whole, never changed in place,
        # so that the thread reading the editor's input can answer `mcp/status` from it
        # (lsp/editor_input.py). Its names are always those of `connections`.
        self.published: Mapping[str, dict[str, Any]] = {}

    # -- settings -----------------------------------------------------------------------

    async def apply(self, settings: Settings) -> None:
        """Connect added servers, stop removed ones, restart changed ones; leave the rest.

        A server is changed when the options derived for it changed: its own settings, or
        the global ones its OAuth uses; a new `tokenStorage` opens a new store, so every
        server that signs in restarts on it."""
        storage_changed = settings.token_storage != self.settings.token_storage
        old_policy = self.settings.policy
        self.settings = settings
        if storage_changed:
            self._store = None
        for warning in settings.warnings:
            self._user_log("warning", warning)
        removed = [name for name in self.connections if name not in settings.servers]
        for name in removed:
            connection = self.connections.pop(name)
            self.published = {n: status for n, status in self.published.items() if n != name}
            await connection.stop()
        starting = []
        for name, config in settings.servers.items():
            current = self.connections.get(name)
            if current is not None and current.config == config:
                uses_oauth = current.oauth is not None
                if not uses_oauth or (not storage_changed and old_policy == settings.policy):
                    continue
            if current is not None:
                await current.stop()
            connection = self._new_connection(config)
            self.connections[name] = connection
            if isinstance(config, ServerConfig) and not config.enabled:
                self._push(connection)  # nothing else will announce it
            else:  # shown as it starts (announced once it moves)
                self.published = {**self.published, name: connection.status()}
            starting.append(connection.start())
        await asyncio.gather(*starting)

    def _new_connection(self, config: ServerConfig | ConfigError) -> Connection:
        hooks = ServerHooks(
            roots=self._roots,
            elicit=self._elicit_for(config.name) if self.elicit else None,
            # What a server says (its log notifications, its stderr) is shown escaped.
            log=lambda level, text: self._user_log(level, f"[{config.name}] {printable(text)}"),
        )
        connection = Connection(
            config,
            transport_factory=self._make_transport,
            hooks=hooks,
            on_change=self._push,
            oauth=self._oauth_for(config),
            auto_open=self._auto_open,
            on_auth_required=self._on_auth_required,
        )
        if connection.oauth is not None:
            connection.oauth.on_change = lambda: self._push(connection)
        return connection

    @property
    def store(self) -> KeychainStore:
        """The token store, opened on first use (keyring is slow to import: start-up)."""
        if self._store is None:
            from mcpls.store.layered import KeychainStore

            self._store = KeychainStore(self.settings.token_storage, log=self._user_log)
        return self._store

    def _oauth_for(self, config: ServerConfig | ConfigError) -> OAuthSession | None:
        # OAuth is for remote servers; a configured Authorization header bypasses it.
        if not isinstance(config, ServerConfig) or config.transport != "http":
            return None
        if config.has_authorization_header:
            return None
        # Imported here for start-up: httpx and authlib load only when a server needs OAuth.
        from mcpls.auth.session import OAuthSession

        return OAuthSession(
            config,
            self.settings.policy,
            self.store,
            log=lambda level, text: self._user_log(level, f"[{config.name}] {text}"),
        )

    def _elicit_for(self, name: str) -> ElicitationHandler:
        elicit = self.elicit
        assert elicit is not None

        async def forward(message: str, schema: dict[str, Any]) -> dict[str, Any]:
            return await elicit(name, {"message": message, "requestedSchema": schema})

        return forward

    def _make_transport(self, connection: Connection) -> Transport:
        config = connection.config
        assert isinstance(config, ServerConfig)
        session = connection.session_handler
        if config.transport == "stdio":
            assert config.command is not None
            return StdioTransport(
                config.command,
                list(config.args),
                env=dict(config.env),
                on_server_message=session,
                log_sink=connection.log,
                on_exit=connection.process_exited,
                name=config.name,
                cwd=config.cwd,
            )
        from mcpls.transport.http import HttpTransport

        assert config.url is not None
        return HttpTransport(
            config.url,
            on_server_message=session,
            log_sink=connection.log,
            headers=dict(config.headers),
            auth=connection.oauth.auth if connection.oauth is not None else None,
        )

    # -- status -------------------------------------------------------------------------

    def _push(self, connection: Connection) -> None:
        if self.connections.get(connection.name) is not connection:
            return  # a replaced or removed connection no longer speaks for its name
        status = connection.status()
        if self.published.get(connection.name) == status:
            return
        self.published = {**self.published, connection.name: status}
        self._on_status(status)

    def get(self, name: str) -> Connection:
        """The connection named `name`, or `UnknownServer` naming the configured ones."""
        connection = self.connections.get(name)
        if connection is None:
            raise UnknownServer(name, list(self.connections))
        return connection

    def statuses(self, name: str | None = None) -> list[dict[str, Any]]:
        """`ServerStatus` of one server or of all, sorted by name, as last published."""
        published = self.published
        if name is not None:
            self.get(name)
            return [published[name]]
        return [published[n] for n in sorted(published)]

    async def shutdown(self) -> None:
        """Close every session (HTTP DELETE, processes terminated)."""
        await asyncio.gather(*(c.stop() for c in self.connections.values()))
