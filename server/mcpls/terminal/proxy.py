"""`mcpls proxy NAME|URL`: a stdio MCP server that forwards every message to a remote
Streamable HTTP server, a drop-in for `npx mcp-remote URL` in stdio-only MCP clients.

Messages pass through verbatim, with the client's own ids, both ways: the client's
`initialize` and its result, its requests and notifications, the server's requests
(elicitation, sampling, roots) and the client's answers, cancellations. mcpls adds only
what the HTTP side needs, with the code `mcpls serve` uses: `HttpTransport` (session and
protocol-version headers, SSE streams and their resumption) and `OAuthSession` (bearer,
refresh under the cross-process lock, the same store), so a sign-in in the editor is one
here and the other way round. A session the server forgot (404) is opened again with the
client's own `initialize` and `notifications/initialized`, unseen by the client.

stdout carries JSON-RPC only (one message a line, MCP's stdio transport); everything for
a person goes to stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import webbrowser
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from mcpls.auth.device import DeviceCode
from mcpls.auth.session import OAuthSession
from mcpls.auth.signin import SignInMethod as Method
from mcpls.config import (
    ConfigError,
    ServerConfig,
    Settings,
    merge,
    parse_server,
    read_user_file,
    user_settings_path,
)
from mcpls.errors import (
    AuthRequired,
    ConfigInvalid,
    ConnectionFailed,
    InternalError,
    McplsError,
    ProtocolError,
    SessionExpired,
    quote,
)
from mcpls.terminal.context import headless
from mcpls.transport import Message, is_response
from mcpls.transport.http import MAX_MESSAGE_BYTES, HttpTransport

log = logging.getLogger(__name__)

# JSON-RPC codes of the answers the proxy itself gives (-32000…-32099 are the
# implementation's own, JSON-RPC 2.0 §5.1); `data.kind` is mcpls's error kind.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
REMOTE_FAILED = -32000
AUTH_REQUIRED = -32001
# How often one request may meet an expired session or a sign-in before it fails: each
# cure is tried once more, never in a loop.
MAX_ATTEMPTS = 3

WriteMessage = Callable[[Message], Awaitable[None]]
Say = Callable[[str], None]
# How the proxy signs in when `--login` was given: the browser now, the device grant later.
SignInMethod = Callable[[OAuthSession, Say], Awaitable[None]]


def say(text: str) -> None:
    """A line for the person, on stderr (stdout belongs to the MCP client)."""
    print(f"mcpls proxy: {text}", file=sys.stderr, flush=True)


# -- which server ---------------------------------------------------------------------------


def resolve(target: str, user_file: Path | None = None) -> tuple[ServerConfig, Settings]:
    """The server `target` names in the user file, or an ad-hoc one for a URL (with the
    settings of a configured server of that URL, if any), and the file's global settings."""
    path = user_file or user_settings_path()
    raw, warnings = read_user_file(path)
    settings = merge((str(path), raw))
    for warning in (*warnings, *settings.warnings):
        say(warning)
    entry = settings.servers.get(target)
    if entry is None and target.startswith(("http://", "https://")):
        same_url = [
            s for s in settings.servers.values() if isinstance(s, ServerConfig) and s.url == target
        ]
        entry = same_url[0] if same_url else parse_server(target, {"url": target}, where="url")
    if entry is None:
        names = ", ".join(quote(n, 60) for n in sorted(settings.servers)) or "none"
        raise ConfigInvalid(
            f"no server named {quote(target, 60)} in {path} (configured: {names}); "
            "give the server's URL, or add it to that file"
        )
    if isinstance(entry, ConfigError):
        raise ConfigInvalid(f"{entry.message} (in {path})")
    if entry.transport != "http":
        raise ConfigInvalid(
            f"{entry.name} is a local (stdio) server: give your MCP client its command "
            "directly; mcpls proxy is for remote (http) servers"
        )
    return entry, settings


# -- the proxy ----------------------------------------------------------------------------


def _error(request_id: Any, code: int, message: str, kind: str) -> Message:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {"code": code, "message": message, "data": {"kind": kind}},
    }


class Proxy:
    """One stdio client, one remote server."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        write: WriteMessage,
        oauth: OAuthSession | None,
        sign_in: SignInMethod | None = None,
        login_hint: str | None = None,
    ) -> None:
        assert config.url is not None
        self.config = config
        self._write = write
        self._oauth = oauth
        self._sign_in = sign_in
        self._login_hint = login_hint or config.name
        self.transport = HttpTransport(
            config.url,
            on_server_message=self._from_server,
            log_sink=self._log,
            headers=dict(config.headers),
            auth=oauth.auth if oauth is not None else None,
        )
        # The client's own handshake, replayed when the server forgets the session.
        self._initialize_params: object = None
        self._initialized: Message | None = None
        # Bumped by every new session and every sign-in: a request that failed in an older
        # one retries without curing again what another request already cured.
        self._session_round = 0
        self._login_round = 0
        self._reinitializations = 0
        self._init_lock = asyncio.Lock()
        self._login_lock = asyncio.Lock()
        self._requests: dict[Any, asyncio.Task[None]] = {}
        # The server's requests waiting for the client's answer, by the server's id.
        self._answers: dict[Any, asyncio.Future[Message | None]] = {}

    def _log(self, level: str, text: str) -> None:
        log.log(logging.getLevelName(level.upper()), "%s: %s", self.config.name, text)

    # -- the client's side -------------------------------------------------------------

    async def run(self, lines: AsyncIterator[bytes]) -> None:
        """Serve the client until its stdin ends, then end the remote session."""
        try:
            if self._oauth is not None:
                await self._oauth.load()
            async for line in lines:
                await self.receive(line)
        finally:
            for task in list(self._requests.values()):
                task.cancel()
            for future in self._answers.values():
                future.cancel()
            await asyncio.gather(*self._requests.values(), return_exceptions=True)
            await self.transport.close()
            if self._oauth is not None:
                await self._oauth.close()

    async def receive(self, line: bytes) -> None:
        """One line from the client."""
        if not line.strip():
            return
        try:
            data = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            await self._write(_error(None, PARSE_ERROR, "not JSON", "protocol"))
            return
        # Batches left MCP in 2025-06-18; a client of an older version may still send one.
        for message in data if isinstance(data, list) else [data]:
            await self._receive_message(message)

    async def _receive_message(self, message: object) -> None:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            await self._write(_error(None, INVALID_REQUEST, "not JSON-RPC 2.0", "protocol"))
            return
        if is_response(message):
            future = self._answers.get(message["id"])
            if future is not None and not future.done():
                future.set_result(message)
            else:
                self._log("debug", "an answer to no pending server request dropped")
            return
        method = message.get("method")
        if not isinstance(method, str):
            await self._write(_error(message.get("id"), INVALID_REQUEST, "no method", "protocol"))
            return
        if "id" in message:
            request_id = message["id"]
            task = asyncio.create_task(self._forward_request(message))
            self._requests[request_id] = task
            task.add_done_callback(lambda done: self._forget_request(request_id, done))
            return
        # A notification is sent before the next line is read: `notifications/initialized`
        # must reach the server before the requests that follow it.
        if method == "notifications/initialized":
            self._initialized = message
        if method == "notifications/cancelled":
            await self._forward_notification(message)
            params = message.get("params")
            cancelled = params.get("requestId") if isinstance(params, dict) else None
            running = self._requests.get(cancelled) if cancelled is not None else None
            if running is not None:
                running.cancel()  # the client expects no answer to a cancelled request
            return
        await self._forward_notification(message)

    def _forget_request(self, request_id: Any, task: asyncio.Task[None]) -> None:
        if self._requests.get(request_id) is task:  # the client may reuse an id later
            del self._requests[request_id]

    async def _forward_request(self, message: Message) -> None:
        request_id = message["id"]
        try:
            response = await self._exchange(message)
        except AuthRequired as exc:
            if self._sign_in is not None:  # without a sign-in, `_authorize` said it already
                say(exc.message)
            response = _error(request_id, AUTH_REQUIRED, exc.message, exc.kind)
        except McplsError as exc:
            say(exc.message)
            response = _error(request_id, REMOTE_FAILED, exc.message, exc.kind)
        except Exception as exc:  # a bug: the client gets an answer, the log the details
            log.exception("forwarding %s", message.get("method"))
            error = InternalError.wrap(exc, f"forwarding {message.get('method')}")
            response = _error(request_id, REMOTE_FAILED, error.message, error.kind)
        await self._write(response)

    async def _exchange(self, message: Message) -> Message:
        """Send one request and return the server's answer, curing an expired session
        and (with --login) a missing sign-in on the way."""
        for _ in range(MAX_ATTEMPTS):
            session_round, login_round = self._session_round, self._login_round
            try:
                if message["method"] == "initialize":
                    return await self._initialize(message)
                return await self.transport.request(message)
            except SessionExpired:
                await self._reinitialize(session_round)
            except AuthRequired as exc:
                await self._authorize(exc, login_round)
        raise ConnectionFailed(
            f"{self.config.name} kept refusing {message['method']} after a new session "
            "and a new sign-in"
        )

    async def _forward_notification(self, message: Message) -> None:
        try:
            await self._send_notification(message)
        except AuthRequired as exc:
            if self._sign_in is not None:  # without a sign-in, `_authorize` said it already
                say(f"could not forward {message.get('method')}: {exc.message}")
        except McplsError as exc:
            say(f"could not forward {message.get('method')}: {exc.message}")

    async def _send_notification(self, message: Message) -> None:
        for _ in range(MAX_ATTEMPTS):
            session_round, login_round = self._session_round, self._login_round
            try:
                await self.transport.send(message)
                return
            except SessionExpired:
                await self._reinitialize(session_round)
                if message.get("method") == "notifications/initialized":
                    return  # the new session was initialized by the replay
            except AuthRequired as exc:
                await self._authorize(exc, login_round)

    # -- sessions --------------------------------------------------------------------------

    async def _initialize(self, message: Message) -> Message:
        """The client's own handshake: verbatim, and the transport learns the version."""
        async with self._init_lock:
            self._initialize_params = message.get("params")
            self._initialized = None
            self.transport.reset_session()
            response = await self.transport.request(message)
            self._started(response)
            return response

    def _started(self, response: Message) -> None:
        result = response.get("result")
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        if isinstance(version, str):
            self.transport.session_started(version)
            self._session_round += 1

    async def _reinitialize(self, failed_round: int) -> None:
        """The server forgot the session: a new one with the client's own initialize."""
        async with self._init_lock:
            if failed_round != self._session_round:
                return  # another request already opened the new session
            if self._initialize_params is None:
                raise ProtocolError(
                    f"{self.config.name} ended a session the client never initialized"
                )
            self._log("info", "the server forgot the session (HTTP 404); starting a new one")
            self._reinitializations += 1
            self.transport.reset_session()
            request: Message = {
                "jsonrpc": "2.0",
                "id": f"mcpls-proxy-reinitialize-{self._reinitializations}",
                "method": "initialize",
                "params": self._initialize_params,
            }
            response = await self.transport.request(request)
            if "error" in response:
                raise ProtocolError(
                    f"{self.config.name} refused to start a new session: "
                    f"{quote(json.dumps(response['error']), 200)}"
                )
            self._started(response)
            if self._initialized is not None:
                await self.transport.send(self._initialized)

    # -- sign-in -----------------------------------------------------------------------------

    async def _authorize(self, exc: AuthRequired, failed_round: int) -> None:
        """With --login, sign in (once for every request that met the same refusal);
        otherwise say what to run, and fail the request."""
        classified = self._oauth.classify(exc) if self._oauth is not None else exc
        if self._oauth is None or self._sign_in is None:
            message = (
                f"{self.config.name} needs you to sign in ({classified.message}): run "
                f"`mcpls login {self._login_hint}` in a terminal, or start the proxy with --login"
                if self._oauth is not None
                else f"{self.config.name} refused the configured Authorization header "
                f"({classified.message}); fix the header in the server's settings"
            )
            say(message)
            raise AuthRequired(message, status_code=exc.status_code)
        async with self._login_lock:
            if failed_round != self._login_round:
                return  # another request signed in meanwhile
            await self._sign_in(self._oauth, say)
            self._login_round += 1

    # -- the server's side -----------------------------------------------------------------

    async def _from_server(self, message: Message) -> Message | None:
        """A request or notification the server sent: to the client; a request's answer
        is the client's, sent back by the transport."""
        if "id" not in message:
            if message.get("method") == "notifications/cancelled":
                params = message.get("params")
                cancelled = params.get("requestId") if isinstance(params, dict) else None
                waiting = self._answers.get(cancelled) if cancelled is not None else None
                if waiting is not None and not waiting.done():
                    waiting.set_result(None)  # the server no longer wants the answer
            await self._write(message)
            return None
        future: asyncio.Future[Message | None] = asyncio.get_running_loop().create_future()
        self._answers[message["id"]] = future
        try:
            await self._write(message)
            return await future
        finally:
            self._answers.pop(message["id"], None)


# -- stdio ----------------------------------------------------------------------------------


async def stdin_lines() -> AsyncIterator[bytes]:
    """stdin, a line at a time, read by a thread: non-blocking mode on a terminal's stdin
    would also hit stderr, which shares it."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)

    def read() -> None:
        stdin = sys.stdin.buffer
        while True:
            line = stdin.readline(MAX_MESSAGE_BYTES)
            try:
                asyncio.run_coroutine_threadsafe(queue.put(line or None), loop).result()
            except RuntimeError:
                return  # the proxy has ended (its loop is closed)
            if not line:
                return

    threading.Thread(target=read, name="mcpls-proxy-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


def stdout_writer() -> WriteMessage:
    """One JSON-RPC message a line on stdout, in order, without blocking the loop."""
    lock = asyncio.Lock()
    stdout = sys.stdout.buffer

    def write_line(data: bytes) -> None:
        try:
            stdout.write(data)
            stdout.flush()
        except (BrokenPipeError, ValueError):
            # The client went away (or closed our stdout): its stdin ends the proxy next.
            log.debug("stdout is closed; a message to the client dropped")

    async def write(message: Message) -> None:
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        async with lock:
            await asyncio.to_thread(write_line, data)

    return write


async def browser_sign_in(oauth: OAuthSession, tell: Say) -> None:
    """The interactive sign-in: in the person's browser (the URL is on stderr too, for a
    browser that did not open), or, with no display or over SSH where the authorization
    server offers it, the device grant (RFC 8628), whose code is shown on stderr."""

    def announce(url: str) -> None:
        tell(f"sign in to {oauth.config.name} in your browser: {url}")

    async def open_url(url: str) -> None:
        # A daemon thread: a BROWSER command may run until the person closes it.
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    def show_code(code: DeviceCode) -> None:
        where = code.verification_uri_complete or code.verification_uri
        tell(f"to sign in to {oauth.config.name}, open {where} and enter {code.user_code}")

    method = Method(requested="auto", headless=headless(), show_code=show_code)
    await oauth.login(open_url, announce=announce, method=method)
    tell(f"signed in to {oauth.config.name}")


async def serve(target: str, *, sign_in: SignInMethod | None) -> int:
    """`mcpls proxy`: exit status 0 when the client closed stdin, 1 when the token store
    cannot be read, 2 for a target that names no usable server. `sign_in` (None: fail
    and name `mcpls login`) is how the proxy signs in when the server asks for it."""
    try:
        config, settings = resolve(target)
    except ConfigInvalid as exc:
        say(exc.message)
        return 2
    oauth: OAuthSession | None = None
    if not config.has_authorization_header:
        # The store `mcpls serve` uses, with the same settings: tokens are shared.
        from mcpls.store.layered import KeychainStore

        store = KeychainStore(settings.token_storage, log=lambda level, text: say(text))
        oauth = OAuthSession(config, settings.policy, store, log=_oauth_log(config.name))
    proxy = Proxy(
        config,
        write=stdout_writer(),
        oauth=oauth,
        sign_in=sign_in,
        login_hint=target,
    )
    try:
        await proxy.run(stdin_lines())
    except McplsError as exc:  # the stored sign-in could not be read: nothing to serve
        say(exc.message)
        return 1
    return 0


def _oauth_log(name: str) -> Callable[[str, str], None]:
    def write(level: str, text: str) -> None:
        log.log(logging.getLevelName(level.upper()), "%s: %s", name, text)

    return write


def run_proxy(target: str, *, login: bool, sign_in: SignInMethod = browser_sign_in) -> int:
    """Entry point of `mcpls proxy` (the command line); with `login`, sign in by `sign_in`
    (the browser; a device grant is another `SignInMethod`)."""
    try:
        return asyncio.run(serve(target, sign_in=sign_in if login else None))
    except KeyboardInterrupt:
        return 130
