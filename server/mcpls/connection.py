"""One configured MCP server: its lifecycle as an explicit state machine, and its requests.

States (what the editor shows):
    disabled → connecting → connected | authRequired | error
The transition table is data (`TRANSITIONS`); `next_state` is a pure function over it,
so every transition is tested without a network. `Connection` does the I/O around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mcpls.config import ConfigError, ServerConfig
from mcpls.errors import (
    AuthRequired,
    ConfigInvalid,
    ConnectionFailed,
    InsufficientScope,
    InternalError,
    McplsError,
    NothingToDo,
    RequestTimeout,
    SignInExpired,
)
from mcpls.protocol import McpSession, ServerHooks
from mcpls.transport import Transport
from mcpls.transport.stdio import describe_exit

if TYPE_CHECKING:  # for types only: httpx and authlib load when an HTTP server needs them
    from mcpls.auth.session import OAuthSession, OpenUrl
    from mcpls.auth.signin import SignInMethod

log = logging.getLogger(__name__)

State = Literal["disabled", "connecting", "connected", "authRequired", "authenticating", "error"]
Event = Literal[
    "enable",  # the server should run: start connecting
    "connected",  # initialize succeeded
    "auth_required",  # 401/403 from the server
    "failed",  # transport, protocol or configuration failure
    "disable",  # the person (or a config change) turned it off
    "authenticate",  # an interactive login started (OAuth issue)
    "more_scope",  # one request needs more permission (403 insufficient_scope)
]

TRANSITIONS: dict[tuple[State, Event], State] = {
    ("disabled", "enable"): "connecting",
    ("disabled", "failed"): "error",  # invalid configuration is reported even when off
    ("connecting", "connected"): "connected",
    ("connecting", "auth_required"): "authRequired",
    ("connecting", "failed"): "error",
    ("connecting", "disable"): "disabled",
    ("connecting", "enable"): "connecting",
    ("connected", "auth_required"): "authRequired",
    ("connected", "failed"): "error",
    ("connected", "disable"): "disabled",
    ("connected", "enable"): "connecting",  # restart
    ("connected", "authenticate"): "authenticating",  # step-up or a new account
    # Step-up: that request failed; the session and every other tool keep working.
    ("connected", "more_scope"): "connected",
    ("connecting", "more_scope"): "authRequired",  # the handshake itself needs more
    ("authenticating", "more_scope"): "authRequired",
    ("authRequired", "enable"): "connecting",
    ("authRequired", "disable"): "disabled",
    ("authRequired", "authenticate"): "authenticating",
    ("authRequired", "failed"): "error",
    ("authenticating", "enable"): "connecting",  # signed in: a new MCP session
    ("authenticating", "auth_required"): "authRequired",
    ("authenticating", "failed"): "error",
    ("authenticating", "disable"): "disabled",
    ("error", "enable"): "connecting",
    ("error", "disable"): "disabled",
    ("error", "failed"): "error",
    ("error", "auth_required"): "authRequired",
    ("error", "authenticate"): "authenticating",
    ("disabled", "authenticate"): "authenticating",  # sign in again after a logout
}


class InvalidTransition(Exception):
    """A bug: an event that the current state does not accept."""


def next_state(state: State, event: Event) -> State:
    """The state after `event`; raises `InvalidTransition` for an impossible pair."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(f"{event!r} is not possible in state {state!r}") from None


def event_for(state: State, error: McplsError) -> Event:
    """The state machine's event for a failure: every failure moves the state, decided on
    the error's type and kind alone."""
    if isinstance(error, InsufficientScope):
        return "more_scope"
    if error.kind == "authRequired":
        return "auth_required"
    return "failed"


# Automatic sign-ins for one operation (step-up with allowAutoReauthentication).
MAX_AUTO_AUTHORIZATIONS = 3
# Backoff between automatic reconnection attempts after a transport failure.
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 60.0


def backoff_delay(attempt: int) -> float:
    """Exponential backoff: 1, 2, 4, … seconds, capped at a minute."""
    return float(min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** max(attempt, 0)))


@dataclass
class StatusError:
    kind: str
    message: str


TransportFactory = Callable[["Connection"], Transport]


class Connection:
    """The lifecycle of one configured server and the requests routed to it."""

    def __init__(
        self,
        config: ServerConfig | ConfigError,
        *,
        transport_factory: TransportFactory,
        hooks: ServerHooks,
        on_change: Callable[[Connection], None],
        oauth: OAuthSession | None = None,
        auto_open: OpenUrl | None = None,
        on_auth_required: Callable[[Connection], None] = lambda connection: None,
    ) -> None:
        self.config = config
        self.oauth = oauth
        # Opens a browser without a person asking: used only with allowAutoReauthentication.
        self._auto_open = auto_open
        self._on_auth_required = on_auth_required
        self._login: asyncio.Task[None] | None = None
        self.name = config.name
        self._transport_factory = transport_factory
        self._hooks = hooks
        self._on_change = on_change
        self.state: State = "disabled"
        self.error: StatusError | None = None
        self.session: McpSession | None = None
        self.tools: list[dict[str, Any]] | None = None
        self._attempt = 0
        self._lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        # The reconnection under way (the backoff timer's, or one a request started; see
        # `_session_for_request`), which the requests arriving meanwhile wait for.
        self._reconnect: asyncio.Task[Any] | None = None
        self._refresh_tools: asyncio.Task[None] | None = None

    # -- status -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The `ServerStatus` object of the contract (schemas/server-status.schema.json)."""
        status: dict[str, Any] = {
            "server": self.name,
            "transport": self.config.transport,
            "state": self.state,
        }
        if self.config.url:
            status["url"] = self.config.url
        if self.error is not None:
            status["error"] = {"kind": self.error.kind, "message": self.error.message}
        if (
            self.session is not None
            and self.session.initialized is not None
            and (self.state == "connected")
        ):
            status["serverInfo"] = dict(self.session.initialized.server_info)
            status["protocolVersion"] = self.session.initialized.protocol_version
        if self.tools is not None and self.state == "connected":
            status["toolCount"] = len(self.tools)
        if self.oauth is not None and self.oauth.in_use:
            status["auth"] = self.oauth.info().to_status()
        return status

    def _move(self, event: Event, error: McplsError | None = None) -> None:
        self.state = next_state(self.state, event)
        # A connected server shows no error: a step-up failed one request, not the server.
        if error is None or self.state == "connected":
            self.error = None
        else:
            self.error = StatusError(error.kind, error.message)
        self._on_change(self)

    def _failed(self, error: McplsError) -> None:
        self._move(event_for(self.state, error), error)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect if enabled; report an invalid configuration as an error."""
        if isinstance(self.config, ConfigError):
            self._move("failed", ConfigInvalid(self.config.message))
            return
        if not self.config.enabled:
            return
        await self._connect()

    async def _connect(self) -> None:
        async with self._lock:
            await self._close_session()
            self._move("enable")
            assert isinstance(self.config, ServerConfig)
            session = McpSession(
                self._transport_factory(self),
                hooks=self._with_tool_refresh(self._hooks),
                timeout_s=self.config.timeout_ms / 1000,
            )
            self.session = session
            try:
                if self.oauth is not None:
                    await self.oauth.load()
                await session.transport.open()
                await session.initialize()
                self.tools = await session.list_tools()
            except McplsError as exc:
                await self._fail(exc)
                return
            except Exception as exc:  # a bug must not leave the server "connecting"
                log.exception("connecting to %s", self.name)
                await self._fail(InternalError.wrap(exc, "connecting"))
                return
            self._attempt = 0
            self._move("connected")

    async def _fail(self, exc: McplsError) -> None:
        await self._close_session()
        if isinstance(exc, AuthRequired):
            if self.oauth is not None:
                exc = self.oauth.classify(exc)
            first = self.state == "connecting"
            self._failed(_auth_message(self.name, exc))
            if first and self.state == "authRequired":
                self._on_auth_required(self)
            return
        self._failed(exc)
        if isinstance(exc, ConnectionFailed):
            self._schedule_retry()

    def _schedule_retry(self) -> None:
        delay = backoff_delay(self._attempt)
        self._attempt += 1
        if self.error is not None:
            self.error = StatusError(
                self.error.kind, f"{self.error.message}; retrying in {delay:g} s"
            )
            self._on_change(self)
        self._cancel_retry()
        self._retry = asyncio.create_task(self._retry_after(delay))

    async def _retry_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._retry = None
        # Requests arriving while this attempt runs wait for it (`_session_for_request`)
        # rather than fail with "connecting".
        self._reconnect = asyncio.current_task()
        await self._connect()

    def _cancel_retry(self) -> None:
        if self._retry is not None and self._retry is not asyncio.current_task():
            self._retry.cancel()
        self._retry = None

    def process_exited(self, returncode: int) -> None:
        """A stdio server died on its own: report it and restart with backoff."""
        if self.state != "connected":
            return  # while connecting, the failed handshake reports it already
        self.tools = None
        self._move("failed", ConnectionFailed(f"the server process {describe_exit(returncode)}"))
        self._schedule_retry()

    async def restart(self) -> None:
        """Disconnect and connect again (also re-enables a disabled server)."""
        self._cancel_retry()
        self._attempt = 0
        if isinstance(self.config, ConfigError):
            await self.start()
            return
        await self._connect()

    async def enable(self) -> None:
        """Turn the server on for this editor session."""
        if self.state in ("disabled", "error", "authRequired"):
            await self.restart()

    async def disable(self) -> None:
        """Turn the server off: end its session, keep its configuration."""
        self._cancel_retry()
        async with self._lock:
            await self._close_session()
            if self.state != "disabled":
                self._move("disable")

    async def stop(self) -> None:
        """Shut down for good (editor exit, server removed from the settings)."""
        self._cancel_retry()
        for task in (self._refresh_tools, self._login, self._reconnect):
            if task is not None:
                task.cancel()
        await self._close_session()
        if self.oauth is not None:
            await self.oauth.close()

    async def _close_session(self) -> None:
        session, self.session = self.session, None
        self.tools = None
        if session is not None:
            with contextlib.suppress(Exception):
                await session.close()

    # -- authentication -------------------------------------------------------------------

    async def authenticate(
        self,
        open_url: OpenUrl,
        *,
        announce: Callable[[str], None],
        method: SignInMethod | None = None,
    ) -> None:
        """Sign in (a person asked, or allowAutoReauthentication); a second call joins the
        first rather than opening another browser tab. `method`: browser unless it says
        otherwise (the device grant)."""
        if isinstance(self.config, ConfigError):
            raise ConfigInvalid(f"{self.name} cannot sign in: {self.config.message}")
        if self.oauth is None:
            reason = (
                "it is a local (stdio) server"
                if self.config.transport == "stdio"
                else "its settings give an Authorization header"
            )
            raise NothingToDo(f"{self.name} does not use OAuth: {reason}")
        if self._login is None or self._login.done():
            self._login = asyncio.create_task(self._sign_in(open_url, announce, method))
        login = self._login
        try:
            await asyncio.shield(login)
        except asyncio.CancelledError:
            login.cancel()  # the person cancelled: stop listening, back to authRequired
            raise

    async def _sign_in(
        self,
        open_url: OpenUrl,
        announce: Callable[[str], None],
        method: SignInMethod | None,
    ) -> None:
        assert self.oauth is not None
        self._cancel_retry()
        async with self._lock:
            await self._close_session()
            self._move("authenticate")
        try:
            await self.oauth.login(open_url, announce=announce, method=method)
        except asyncio.CancelledError:
            self._move("auth_required", AuthRequired(f"{self.name}: sign-in cancelled"))
            raise
        except McplsError as exc:
            # A refusal or a broken store leaves the server needing a sign-in (the person
            # can fix and retry); an unreachable server is an error with retries.
            self._move("failed" if isinstance(exc, ConnectionFailed) else "auth_required", exc)
            raise
        except Exception as exc:  # a bug must not leave the server "authenticating"
            log.exception("signing in to %s", self.name)
            error = InternalError.wrap(exc, "signing in")
            self._move("auth_required", error)
            raise error from None
        # A new MCP session: the old one may hold the old identity (issue: stale sessions).
        await self._connect()
        if self.state == "error" and self.error is not None:
            raise ConnectionFailed(self.error.message)
        if self.state == "authRequired":
            raise AuthRequired(self.error.message if self.error else "still not authorized")

    def complete_authentication(self, redirect_url: str) -> asyncio.Task[None]:
        """The pasted redirect URL of the pending sign-in; returns the sign-in to await."""
        if self.oauth is None or self._login is None or self._login.done():
            raise NothingToDo(f"{self.name} has no sign-in waiting; call mcp/authenticate first")
        self.oauth.complete(redirect_url)
        return self._login

    async def logout(self, *, forget_client: bool) -> None:
        """The session ended (its DELETE still carries the token), then the tokens revoked
        where possible and deleted; the server is disabled."""
        if self.oauth is None:
            raise NothingToDo(f"{self.name} does not use OAuth; there is nothing to sign out of")
        if self._login is not None and not self._login.done():
            self._login.cancel()
        self._cancel_retry()
        async with self._lock:
            await self._close_session()
        try:
            await self.oauth.logout(forget_client=forget_client)
        finally:
            # Signed out here even when the store could not delete its copy (a locked
            # keychain): the error says so, and the server must not reconnect meanwhile.
            # One status for the editor: disabled and signed out together.
            await self.disable()
            self._on_change(self)  # already disabled: the signed-out auth still needs a push

    # -- what the transport hands up ---------------------------------------------------

    async def session_handler(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """A message the server sent on its own, for the current session to answer."""
        session = self.session
        if session is None:
            return None
        return await session.handle_server_message(message)

    def log(self, level: str, text: str) -> None:
        """A line from the server side (stdio stderr, transport notes) for the editor log."""
        self._hooks.log(level, text)

    # -- requests -----------------------------------------------------------------------

    async def _session_for_request(self) -> McpSession:
        """The session a request goes out on. A server waiting out its backoff after a
        connection failure is tried again now: the network may be back long before the
        timer (up to a minute) fires, and a person asking for a tool is the moment to
        find out. One attempt at a time, shared by the requests that arrive meanwhile;
        when it fails, the request fails with the new reason and the backoff goes on.
        A request arriving while the timer's own attempt runs waits for it too."""
        idle = self._reconnect is None or self._reconnect.done()
        if self.state == "error" and self._retry is not None and idle:
            self._cancel_retry()
            self._reconnect = asyncio.create_task(self._connect())
        if self._reconnect is not None and not self._reconnect.done():
            # Shielded: the request being cancelled does not stop the reconnection.
            await asyncio.shield(self._reconnect)
        return self._require_connected()

    def _require_connected(self) -> McpSession:
        if self.state != "connected" or self.session is None:
            reason = self.error.message if self.error else f"the server is {self.state}"
            raise NotConnected(self.state, f"{self.name} is not connected: {reason}")
        return self.session

    async def list_tools(self) -> list[dict[str, Any]]:
        """The cached tool list (refreshed on `notifications/tools/list_changed`)."""
        session = await self._session_for_request()
        if self.tools is None:
            self.tools = await self._guard(session.list_tools())
        return self.tools

    async def call_tool(self, name: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
        """Call a tool; a 401/403 on the way moves the server to authRequired.

        With `allowAutoReauthentication`, mcpls signs in again by itself (asking for the
        union of granted and required scopes) and retries, at most a few times.
        """
        for _ in range(MAX_AUTO_AUTHORIZATIONS):
            session = await self._session_for_request()
            try:
                result: dict[str, Any] = await self._guard(session.call_tool(name, arguments))
                return result
            except AuthRequired:
                if not self._may_reauthenticate():
                    raise
                assert self._auto_open is not None
                await self.authenticate(self._auto_open, announce=lambda url: None)
        session = self._require_connected()
        result = await self._guard(session.call_tool(name, arguments))
        return result

    def _may_reauthenticate(self) -> bool:
        return (
            isinstance(self.config, ServerConfig)
            and self.config.allow_auto_reauthentication
            and self.oauth is not None
            and self._auto_open is not None
        )

    async def _guard(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except AuthRequired as exc:
            classified = self.oauth.classify(exc) if self.oauth is not None else exc
            if isinstance(classified, InsufficientScope) and self.state == "connected":
                # Step-up: only this request fails; the session and the other tools stay.
                self._failed(classified)
                raise classified from None
            await self._fail(classified)
            raise _auth_message(self.name, classified) from None
        except ConnectionFailed as exc:
            if self.state == "connected" and not _is_timeout(exc):
                await self._fail(exc)
            raise
        except McplsError:
            raise
        except Exception as exc:  # a bug: the request gets an answer, the log the details
            log.exception("request to %s", self.name)
            raise InternalError.wrap(exc, f"talking to {self.name}") from None

    def _with_tool_refresh(self, hooks: ServerHooks) -> ServerHooks:
        return ServerHooks(
            roots=hooks.roots,
            elicit=hooks.elicit,
            log=hooks.log,
            tools_changed=self._tools_changed,
        )

    def _tools_changed(self) -> None:
        if self._refresh_tools is not None and not self._refresh_tools.done():
            return
        self._refresh_tools = asyncio.create_task(self._reload_tools())

    async def _reload_tools(self) -> None:
        session = self.session
        if session is None or self.state != "connected":
            return
        try:
            tools = await session.list_tools()
        except McplsError as exc:
            self._hooks.log("warning", f"{self.name}: could not refresh the tool list: {exc}")
            return
        changed = tools != self.tools
        self.tools = tools
        if changed:
            self._on_change(self)


def _auth_message(name: str, exc: AuthRequired) -> AuthRequired:
    if isinstance(exc, SignInExpired | InsufficientScope):
        return exc
    return AuthRequired(f"{name} needs you to sign in (HTTP {exc.status_code})")


def _is_timeout(exc: Exception) -> bool:
    return isinstance(exc, RequestTimeout)


class NotConnected(McplsError):
    """A request for a server that is not connected; `state` says why."""

    def __init__(self, state: State, message: str) -> None:
        super().__init__(message)
        self.state = state
