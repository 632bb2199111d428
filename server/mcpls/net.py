"""Outbound HTTP to peers mcpls does not trust: a size cap on what is read, one overall
deadline per call, and failures in words. Shared by the transport and the OAuth client,
which know nothing of each other.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from mcpls.errors import ConnectionFailed, ProtocolError, RequestTimeout, ResponseTooLarge, quote

# Limits for the small documents of OAuth: metadata, token, registration responses.
MAX_DOCUMENT_BYTES = 1024 * 1024
# One call, from connect to the last byte: a peer trickling a byte at a time cannot outlive it.
CALL_DEADLINE_S = 30.0


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings of every client mcpls makes: httpx's default verification (certifi's
    CA bundle, SSL_CERT_FILE/SSL_CERT_DIR), built once. Each client building its own costs
    ~50 ms and a copy of the CA store, per server."""
    return httpx.create_ssl_context()


class Client(httpx.AsyncClient):
    """httpx's client, whose responses leave no reference cycle behind once closed.

    httpx links a response and its stream both ways (the stream times the response), so a
    response it no longer needs is freed only by a garbage collection, and with it all it
    holds: request, headers, the pool's request and, for a connection closed after the
    answer, the connection and its socket. That is 53-55 objects a request, ~20,000 a second
    at the ~400 calls a second of 1,000 in flight; a full collection of them held every
    thread, the one answering `mcp/status` too, for up to 0.3 s (issue 10). Here the link is
    undone when the response closes, and what a request made is freed at once by its
    reference count."""

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = await super().send(request, **kwargs)
        if response.is_closed:  # read whole (not streamed)
            response.stream = CLOSED
        elif isinstance(response.stream, httpx.AsyncByteStream):  # always, from this client
            response.stream = _Unlinking(response, response.stream)
        return response


# What a closed response's stream is: httpx refuses to read a closed response anyway.
CLOSED = httpx.ByteStream(b"")


class _Unlinking(httpx.AsyncByteStream):
    """A streamed response's stream, which unlinks the response from it when closed."""

    def __init__(self, response: httpx.Response, inner: httpx.AsyncByteStream) -> None:
        self._response: httpx.Response | None = response
        self._inner = inner

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._inner.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._response is not None:
                self._response.stream = CLOSED
                self._response = None


def describe_http_error(exc: httpx.HTTPError, url: str) -> str:
    """Say in words why a request to `url` failed, without headers or bodies."""
    cause = exc.__cause__ or exc.__context__
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        if "Name or service not known" in text or "nodename nor servname" in text:
            return f"cannot resolve the host of {url} (DNS lookup failed)"
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
            return f"TLS error talking to {url}: {text}"
        return f"cannot connect to {url}: connection refused or unreachable ({text})"
    if isinstance(exc, httpx.TimeoutException):
        return f"{url} did not answer in time ({type(exc).__name__})"
    if isinstance(exc, httpx.RemoteProtocolError):
        # h11's text quotes the offending header line: the peer's bytes, bounded here.
        return f"{url} broke the connection: {quote(text)}"
    return f"request to {url} failed: {text}" + (f" ({cause})" if cause else "")


@dataclass(frozen=True)
class Answer:
    """A whole, size-checked response."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def content_type(self) -> str:
        value: str = self.headers.get("content-type", "")
        return value.split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def too_large(url: str, max_bytes: int, what: str = "") -> ResponseTooLarge:
    """The error for a peer that sent more than mcpls reads: the limit in bytes and MiB."""
    mib = f" ({max_bytes / (1024 * 1024):g} MiB)" if max_bytes >= 1024 * 1024 else ""
    return ResponseTooLarge(
        f"{url} sent {what}more than the {max_bytes} bytes{mib} mcpls reads for one answer"
    )


async def read_capped(response: httpx.Response, max_bytes: int, url: str) -> bytes:
    """The body of a streamed response, refusing to hold more than `max_bytes`."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(url, max_bytes, f"{declared} bytes, ")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            # The traceback keeps this frame (and so `chunks`) alive until the cyclic
            # garbage collector runs: let the bytes go now.
            chunks.clear()
            raise too_large(url, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    deadline_s: float = CALL_DEADLINE_S,
) -> Answer:
    """One request to an untrusted peer: never follows redirects, reads at most
    `max_bytes`, and ends within `deadline_s` whatever the peer does."""
    try:
        async with asyncio.timeout(deadline_s):
            request = http.build_request(method, url, headers=headers, content=content)
            response = await http.send(request, stream=True, follow_redirects=False)
            try:
                body = await read_capped(response, max_bytes, url)
            finally:
                await response.aclose()
    except TimeoutError:
        raise RequestTimeout(f"{url} did not finish answering within {deadline_s:g} s") from None
    except httpx.HTTPError as exc:
        raise ConnectionFailed(describe_http_error(exc, url)) from None
    except httpx.InvalidURL:
        # Not an HTTPError: a URL a peer handed out that passed the scheme checks but that
        # httpx cannot encode (a host that is not a valid IDNA name, a bad port).
        raise ProtocolError(f"{quote(url)} is not a URL that can be requested") from None
    return Answer(response.status_code, response.headers, body)
