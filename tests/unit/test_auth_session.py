"""The OAuth session's httpx.Auth: where the bearer goes, and where it never goes."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx

from mcpls.auth.bearer import MAX_IN_FLIGHT
from mcpls.auth.metadata import AuthServer
from mcpls.auth.session import OAuthSession
from mcpls.auth.tokens import expiring
from mcpls.config import AuthPolicy, ServerConfig
from mcpls.store.memory import MemoryStore
from mcpls.store.records import TokenSet

SERVER = "https://mcp.example.com/mcp"
ISSUER = "https://auth.example.com"


async def session_with_token(expires_in: float = 3600) -> OAuthSession:
    config = ServerConfig(name="svc", transport="http", url=SERVER)
    session = OAuthSession(config, AuthPolicy(), MemoryStore(), log=lambda level, text: None)
    # A stored sign-in, as a finished login leaves it.
    server = AuthServer(
        issuer=ISSUER,
        metadata={"issuer": ISSUER, "token_endpoint": f"{ISSUER}/token"},
        resource=SERVER,
    )
    await session.tokens.save(
        server,
        TokenSet(
            access_token="secret-access",
            token_type="Bearer",
            expires_at=time.time() + expires_in,
            refresh_token=None,
            scope=("mcp:read",),
            issuer=ISSUER,
            resource=SERVER,
        ),
    )
    return session


async def first_request(session: OAuthSession, url: str) -> httpx.Request:
    flow = session.auth.async_auth_flow(httpx.Request("POST", url))
    request = await flow.__anext__()
    await flow.aclose()
    return request


async def test_bearer_goes_to_the_server_only() -> None:
    session = await session_with_token()
    sent = await first_request(session, SERVER)
    assert sent.headers["Authorization"] == "Bearer secret-access"
    for other in (
        "https://evil.example/mcp",
        "http://mcp.example.com/mcp",
        "https://mcp.example.com:8443/mcp",
    ):
        assert "Authorization" not in (await first_request(session, other)).headers


async def test_a_known_expired_token_is_never_sent() -> None:
    session = await session_with_token(expires_in=-5)  # expired, and no refresh token
    sent = await first_request(session, SERVER)
    assert "Authorization" not in sent.headers


async def test_status_shows_no_secret() -> None:
    info = (await session_with_token()).info().to_status()
    assert info["authenticated"] is True
    assert "secret-access" not in repr(info)


def token(lifetime: float | None, *, obtained: float | None = 1000.0) -> TokenSet:
    return TokenSet(
        access_token="a",
        token_type="Bearer",
        expires_at=None if lifetime is None else 1000.0 + lifetime,
        refresh_token="r",
        scope=(),
        issuer=ISSUER,
        resource=SERVER,
        obtained_at=obtained,
    )


def test_refresh_30_seconds_early_for_long_lived_tokens() -> None:
    hour = token(3600)
    assert not expiring(hour, now=1000.0 + 3600 - 31)
    assert expiring(hour, now=1000.0 + 3600 - 29)


def test_short_lived_tokens_refresh_at_half_life_not_on_every_use() -> None:
    twenty = token(20)
    assert not expiring(twenty, now=1000.0)  # fresh from the server: use it
    assert not expiring(twenty, now=1009.0)
    assert expiring(twenty, now=1011.0)


def test_unknown_issue_time_or_expiry() -> None:
    assert expiring(token(20, obtained=None), now=1000.0)  # old entries: the 30 s rule
    assert not expiring(token(None), now=10**10)  # no expires_in: used until refused


async def test_a_request_beyond_the_pool_takes_its_token_when_one_is_answered() -> None:
    # Else it would wait in the connection pool with its header set, and go out with a
    # token the server may have refused meanwhile (200 calls across an expiry, issue 9).
    session = await session_with_token()
    flows = [
        session.auth.async_auth_flow(httpx.Request("POST", SERVER))
        for _ in range(MAX_IN_FLIGHT + 1)
    ]
    for flow in flows[:-1]:
        assert (await flow.__anext__()).headers["Authorization"] == "Bearer secret-access"
    last = asyncio.ensure_future(flows[-1].__anext__())
    for _ in range(5):  # let it run as far as it can
        await asyncio.sleep(0)
    assert not last.done()
    answered = flows[0]
    with contextlib.suppress(StopAsyncIteration):
        await answered.asend(httpx.Response(200, request=httpx.Request("POST", SERVER)))
    assert (await last).headers["Authorization"] == "Bearer secret-access"
    for flow in flows:
        await flow.aclose()
