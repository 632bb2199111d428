"""Streamable HTTP (MCP 2025-03-26 … 2025-11-25, `basic/transports` §Streamable HTTP).

Every message is a POST; a request's answer comes as one JSON object or as an SSE
stream that may first carry the server's own requests and notifications. A stream that
ends early is resumed with GET + `Last-Event-ID` after the server's `retry` delay. A
GET listening stream carries messages the server sends unprompted; 400/404/405 on it
only mean the server offers none. Errors leave as the typed errors of `mcpls.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator

import httpx

from mcpls import wire
from mcpls.errors import (
    JSON_ERRORS,
    AuthRequired,
    ConfigInvalid,
    ConnectionFailed,
    McplsError,
    ProtocolError,
    SessionExpired,
)
from mcpls.net import Client, describe_http_error, read_capped, tls_context
from mcpls.transport import LogSink, Message, ServerMessageHandler
from mcpls.transport.router import Router
from mcpls.transport.sse import Event, read_events

log = logging.getLogger(__name__)

ACCEPT_BOTH = "application/json, text/event-stream"
DEFAULT_RETRY_MS = 1000
# How many times one request's stream may be resumed before we give up on it.
MAX_RESUMES = 5
MAX_LISTEN_FAILURES = 5
# The largest JSON answer read into memory (a tool result); an SSE event is bounded by it too.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# The session-ending DELETE is a courtesy: it never holds up a shutdown for long.
DELETE_TIMEOUT_S = 2.0
# How long the rest of an answered request's stream is read before its connection is
# given up (the server should end it at once).
DRAIN_TIMEOUT_S = 2.0
# httpx keeps up to 20 idle connections per pool: a request tries each of them once when
# the server has closed them all, then a new one.
MAX_STALE_RETRIES = 20


class RetryStaleConnection(httpx.AsyncBaseTransport):
    """Sends a request again when the pooled keep-alive connection it went out on turns
    out closed before the server answered anything.

    A server closes an idle keep-alive connection whenever its timeout says (uvicorn: 5 s);
    when that close crosses our next request on the wire, the request fails with a read or
    write error although the server never read it. A server closing idle connections
    closes all of them at once, so the next pooled one may be just as dead: the request
    goes out again until it fails on a new connection (a real failure, reported as it is)
    or the pool's idle connections are used up (`MAX_STALE_RETRIES`).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        outer_trace = extensions.get("trace")
        new_connection = False

        async def trace(event: str, info: dict[str, object]) -> None:
            nonlocal new_connection
            if event.startswith("connection.connect_tcp."):
                new_connection = True
            if outer_trace is not None:
                await outer_trace(event, info)

        request.extensions = {**extensions, "trace": trace}
        try:
            retries = 0
            while True:
                new_connection = False
                try:
                    return await self._inner.handle_async_request(request)
                except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
                    # Raised before any response header arrived (the response is returned
                    # as soon as its headers are in). A protocol error may also mean a
                    # garbled answer: only a disconnect with nothing at all said counts.
                    nothing_said = not isinstance(exc, httpx.RemoteProtocolError) or (
                        "without sending a response" in str(exc)
                    )
                    if new_connection or not nothing_said or retries == MAX_STALE_RETRIES:
                        raise
                    retries += 1
                    log.debug("stale keep-alive connection (%s); sending again", type(exc).__name__)
        finally:
            request.extensions = extensions

    async def aclose(self) -> None:
        await self._inner.aclose()


def _transport() -> httpx.AsyncBaseTransport:
    """httpx's own transport; httpx over aiohttp (`httpx-aiohttp`) only when asked with
    MCPLS_HTTP_TRANSPORT=aiohttp and installed: it is faster (issue 9), but not yet shown
    against real servers to stream, time out, cap and verify TLS as the default does."""
    if os.environ.get("MCPLS_HTTP_TRANSPORT") == "aiohttp":
        try:
            from httpx_aiohttp import AiohttpTransport
        except ImportError:
            log.warning("MCPLS_HTTP_TRANSPORT=aiohttp, but httpx-aiohttp is not installed")
        else:
            return AiohttpTransport(verify=tls_context())
    return RetryStaleConnection(httpx.AsyncHTTPTransport(verify=tls_context()))


def new_client() -> Client:
    """The HTTP client of one MCP server: its own connection pool (keep-alive), no
    redirects followed, 30 s to connect/write/pool and no read timeout (a tool may run long
    and an SSE stream stays open; `timeoutMs` bounds a request), stale connections retried."""
    return Client(
        timeout=httpx.Timeout(30.0, read=None),
        follow_redirects=False,
        verify=tls_context(),
        transport=_transport(),
    )


def _snippet(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace").strip().replace("\n", " ")
    return text if len(body) <= 200 else text + "…"


class HttpTransport:
    """One MCP session over Streamable HTTP."""

    def __init__(
        self,
        url: str,
        *,
        on_server_message: ServerMessageHandler,
        log_sink: LogSink,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self._on_server_message = on_server_message
        self._log = log_sink
        self._headers = dict(headers or {})
        self._auth = auth
        self._client = client or new_client()
        self._owns_client = client is None
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._router = Router(on_server_message, log_sink, url)
        self._listener: asyncio.Task[None] | None = None
        self._closing = False

    # -- Transport protocol -------------------------------------------------------------

    async def open(self) -> None:
        """Nothing to do before the first POST."""

    def session_started(self, protocol_version: str) -> None:
        self.protocol_version = protocol_version
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="mcp-http-listen")

    def reset_session(self) -> None:
        self.session_id = None
        self.protocol_version = None
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None

    async def request(self, message: Message) -> Message:
        request_id = message["id"]
        future = self._router.expect(request_id)
        try:
            stream_state = await self._post(message, answered=future)
            resumes = 0
            method = message.get("method", "the request")
            while not future.done():
                last_id, retry_ms = stream_state
                if last_id is None or resumes >= MAX_RESUMES:
                    raise ConnectionFailed(
                        f"{self.url} closed the response stream before answering {method} "
                        "(the server stopped, or the connection dropped): whether it was "
                        "carried out is unknown"
                    )
                resumes += 1
                # The server asked us to wait `retry` ms before polling again (SEP-1699).
                await asyncio.sleep(retry_ms / 1000)
                try:
                    stream_state = await self._resume(last_id, retry_ms, future)
                except SessionExpired:
                    # The server took the request, then forgot the session (a restart).
                    # Sending it again in a new session, as a 404 on a POST does, could
                    # carry out twice what may already have been done once.
                    raise ConnectionFailed(
                        f"{self.url} lost the session while answering {method} (it may have "
                        "restarted): whether it was carried out is unknown"
                    ) from None
                except ConnectionFailed as exc:
                    raise ConnectionFailed(
                        f"the answer to {method} was cut off and could not be resumed: "
                        f"{exc.message}"
                    ) from None
            return future.result()
        finally:
            self._router.forget(request_id)

    async def send(self, message: Message) -> None:
        await self._post(message, answered=None)

    async def close(self) -> None:
        self._closing = True
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None
        self._router.close()
        if self.session_id is not None:
            # Tell the server the session is over, with the same credentials as every other
            # request (a protected server refuses an anonymous DELETE); 405 and errors are fine.
            with contextlib.suppress(httpx.HTTPError, McplsError, TimeoutError):
                async with asyncio.timeout(DELETE_TIMEOUT_S):
                    request = self._client.build_request(
                        "DELETE", self.url, headers=self._request_headers()
                    )
                    response = await self._client.send(
                        request, auth=self._auth or httpx.USE_CLIENT_DEFAULT
                    )
                    self._log("debug", f"session ended: HTTP {response.status_code}")
            self.session_id = None
        if self._owns_client:
            await self._client.aclose()

    # -- internals ----------------------------------------------------------------------

    def _request_headers(self, accept: str = ACCEPT_BOTH) -> dict[str, str]:
        headers = {**self._headers, "Accept": accept}
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version is not None:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    async def _send(
        self, method: str, headers: dict[str, str], body: bytes | None = None
    ) -> httpx.Response:
        """The response, its body still to read: the caller closes it."""
        try:
            request = self._client.build_request(method, self.url, headers=headers, content=body)
        except httpx.InvalidURL as exc:  # not an HTTPError: a URL httpx cannot encode
            raise ConfigInvalid(f"the server URL {self.url!r} cannot be used: {exc}") from None
        try:
            return await self._client.send(
                request, stream=True, auth=self._auth or httpx.USE_CLIENT_DEFAULT
            )
        except httpx.HTTPError as exc:
            raise ConnectionFailed(describe_http_error(exc, self.url)) from None

    @contextlib.asynccontextmanager
    async def _open(
        self, method: str, headers: dict[str, str], body: bytes | None = None
    ) -> AsyncIterator[httpx.Response]:
        response = await self._send(method, headers, body)
        try:
            yield response
        finally:
            await response.aclose()

    async def _post(
        self, message: Message, *, answered: asyncio.Future[Message] | None
    ) -> tuple[str | None, int]:
        body = json.dumps(message, separators=(",", ":")).encode()
        headers = self._request_headers()
        headers["Content-Type"] = "application/json"
        had_session = self.session_id is not None
        response = await self._send("POST", headers, body)
        handed_off = False
        try:
            await self._check_status(response, had_session=had_session)
            session_id = response.headers.get("mcp-session-id")
            if session_id is not None:
                self.session_id = session_id
            if answered is None:
                return None, DEFAULT_RETRY_MS
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type == "text/event-stream":
                last_id, retry_ms, rest = await self._read_stream(
                    response, DEFAULT_RETRY_MS, answered
                )
                if rest is not None:
                    self._router.spawn(self._drain(response, rest))
                    handed_off = True
                return last_id, retry_ms
            if content_type == "application/json":
                data = await self._read_body(response)
                self._dispatch_json(data)
                return None, DEFAULT_RETRY_MS
            if response.status_code == 202:
                raise ProtocolError(
                    f"{self.url} accepted a request with 202 and no answer; "
                    "a request needs a JSON or SSE response"
                )
            raise ProtocolError(
                f"{self.url} answered {content_type or 'no content type'}, not MCP "
                "(JSON or an event stream). Is this the MCP endpoint?"
            )
        finally:
            if not handed_off:
                await response.aclose()

    async def _drain(self, response: httpx.Response, rest: AsyncIterator[Event]) -> None:
        """Read a request's stream to its end after its answer came, in the background.

        The server closes the stream right after the answer (it SHOULD); reading up to
        that end lets the connection go back to the pool, where closing the stream early
        would close the connection too, and cost every call a new one."""
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                async for event in rest:
                    self._dispatch_event(event)
        except (httpx.HTTPError, McplsError, TimeoutError) as exc:
            self._log("debug", f"rest of an answered stream from {self.url}: {exc!r}")
        finally:
            await response.aclose()

    async def _read_body(self, response: httpx.Response) -> object:
        try:
            raw = await read_capped(response, MAX_MESSAGE_BYTES, self.url)
        except httpx.HTTPError as exc:
            raise ConnectionFailed(describe_http_error(exc, self.url)) from None
        try:
            return wire.loads(raw)
        except JSON_ERRORS:
            raise ProtocolError(
                f"{self.url} answered with malformed JSON: {_snippet(raw)!r}"
            ) from None

    async def _check_status(self, response: httpx.Response, *, had_session: bool) -> None:
        status = response.status_code
        if status < 300:
            return
        challenges = tuple(response.headers.get_list("www-authenticate"))
        if status == 401 or (status == 403 and challenges):
            raise AuthRequired(
                f"{self.url} requires authentication (HTTP {status})",
                www_authenticate=challenges,
                status_code=status,
            )
        if status == 404 and had_session:
            raise SessionExpired()
        try:
            body = await read_capped(response, 4096, self.url)
        except (McplsError, httpx.HTTPError):
            body = b""
        reason = f"HTTP {status} {response.reason_phrase}".strip()
        detail = f": {_snippet(body)}" if body else ""
        if status >= 500:
            raise ConnectionFailed(f"{self.url} failed with {reason}{detail}")
        raise ProtocolError(f"{self.url} refused the request with {reason}{detail}")

    async def _read_stream(
        self,
        response: httpx.Response,
        retry_ms: int,
        answered: asyncio.Future[Message] | None = None,
    ) -> tuple[str | None, int, AsyncIterator[Event] | None]:
        """Dispatch events until the stream ends or `answered` is resolved.

        Returns what a resumption needs (last event id, retry ms) and, when `answered`
        came before the end of the stream, the events still to read.
        """
        last_id: str | None = None
        events = read_events(response, MAX_MESSAGE_BYTES, self.url)
        try:
            async for event in events:
                if event.retry is not None:
                    retry_ms = event.retry
                if event.id and event.id.isascii() and event.id.isprintable():
                    # Only an id that fits in a header can resume the stream (found by
                    # the property test of issue 10: "\x80" raised out of the request).
                    last_id = event.id
                self._dispatch_event(event)
                if answered is not None and answered.done():
                    return last_id, retry_ms, events
        except httpx.HTTPError as exc:
            level = "debug" if self._closing else "warning"
            self._log(level, f"event stream from {self.url} broke: {type(exc).__name__}")
        return last_id, retry_ms, None

    async def _resume(
        self, last_event_id: str, retry_ms: int, answered: asyncio.Future[Message]
    ) -> tuple[str | None, int]:
        headers = self._request_headers("text/event-stream")
        headers["Last-Event-ID"] = last_event_id
        async with self._open("GET", headers) as response:
            await self._check_status(response, had_session=self.session_id is not None)
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            if content_type != "text/event-stream":
                raise ProtocolError(
                    f"{self.url} answered a stream resumption with {content_type or 'nothing'}"
                )
            last_id, retry_ms, _ = await self._read_stream(response, retry_ms, answered)
            return last_id or last_event_id, retry_ms

    def _dispatch_event(self, event: Event) -> None:
        if event.event not in ("", "message"):
            return  # other event types carry no JSON-RPC
        text = event.data
        if not text or text.isspace():
            return  # priming events carry no JSON-RPC
        try:
            data = wire.loads(text)
        except JSON_ERRORS:
            raise ProtocolError(
                f"{self.url} sent an event that is not JSON: {_snippet(text.encode())!r}"
            ) from None
        self._dispatch_json(data)

    def _dispatch_json(self, data: object) -> None:
        self._router.dispatch(data, self.send)

    async def _listen(self) -> None:
        """The optional GET stream for messages the server sends unprompted."""
        failures = 0
        last_id: str | None = None
        retry_ms = DEFAULT_RETRY_MS
        while failures < MAX_LISTEN_FAILURES:
            headers = self._request_headers("text/event-stream")
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                async with self._open("GET", headers) as response:
                    if response.status_code in (400, 404, 405):
                        return  # the server offers no listening stream: not an error
                    if response.status_code != 200:
                        failures += 1
                    else:
                        failures = 0
                        new_id, retry_ms, _ = await self._read_stream(response, retry_ms)
                        last_id = new_id or last_id
            except (ConnectionFailed, ProtocolError) as exc:
                failures += 1
                self._log("debug", f"listening stream: {exc}")
            await asyncio.sleep(retry_ms / 1000 * (2 ** min(failures, 5)))
