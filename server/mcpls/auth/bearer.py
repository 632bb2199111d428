"""The bearer token on every request to one MCP server, as an `httpx.Auth` (RFC 6750 §2.1).

It attaches the token, and on a 401 cures once by refreshing and retrying; what a refresh
cannot cure reaches the transport, which raises `AuthRequired` with the challenge. The
token goes to the server's own origin only, never to another.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import httpx

from mcpls.auth.tokens import TokenManager

# How many requests of one server carry a token at once: the size of the connection pool
# of its transport (httpx's default, max_connections=100). A request beyond it would wait
# in the pool with its header already set, and go out with a token the server may have
# refused meanwhile; it waits here instead, and takes its token when it can be sent.
MAX_IN_FLIGHT = 100


class BearerAuth(httpx.Auth):
    """OAuth for the requests of one server."""

    def __init__(self, tokens: TokenManager, server_url: str) -> None:
        self._tokens = tokens
        server = httpx.URL(server_url)
        self._origin = (server.scheme, server.host, server.port)
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._same_origin(request.url):
            yield request
            return
        # Held until the answer's headers are in (the retry after a 401 included).
        async with self._in_flight:
            tokens = await self._tokens.usable()
            if tokens is not None:
                request.headers["Authorization"] = f"Bearer {tokens.access_token}"
            response = yield request
            if response.status_code != 401 or tokens is None:
                return
            # Rejected before it expired: refresh once and retry; else the transport says 401.
            refreshed = await self._tokens.refresh(tokens, forced=True)
            if refreshed is not None:
                request.headers["Authorization"] = f"Bearer {refreshed.access_token}"
                yield request

    def _same_origin(self, url: httpx.URL) -> bool:
        return (url.scheme, url.host, url.port) == self._origin
