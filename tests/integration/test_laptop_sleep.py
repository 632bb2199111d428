"""A laptop that sleeps past a token's expiry (the wall clock jumps) wakes up to a refresh
before the next request, never to a request with a token it knows has expired; against the
official SDK's authorization server and MCP server, with the clock injected."""

from __future__ import annotations

import time
from typing import Any

from mcpls.auth.session import OAuthSession
from mcpls.config import AuthPolicy, ServerConfig, parse_server
from mcpls.protocol import McpSession, ServerHooks
from mcpls.store.memory import MemoryStore
from mcpls.transport.http import HttpTransport
from peers.oauth.browser import authorize_in_browser
from peers.oauth.fixtures import PyOAuthServer


async def test_a_clock_jump_past_expiry_refreshes_before_the_next_request(
    py_oauth_server: PyOAuthServer,
) -> None:
    config = parse_server("svc", {"url": py_oauth_server.mcp_url})
    assert isinstance(config, ServerConfig)
    now = [time.time()]
    oauth = OAuthSession(
        config,
        AuthPolicy(allow_insecure_loopback=True),
        MemoryStore(),
        log=lambda level, text: None,
        clock=lambda: now[0],
    )

    async def browser(url: str) -> None:
        assert (await authorize_in_browser(url)).status == 200

    await oauth.login(browser, announce=lambda url: None)

    async def no_server_requests(message: dict[str, Any]) -> None:
        return None

    transport = HttpTransport(
        config.url or "",
        on_server_message=no_server_requests,
        log_sink=lambda level, text: None,
        auth=oauth.auth,
    )
    session = McpSession(transport, hooks=ServerHooks(), timeout_s=10)
    try:
        await session.initialize()
        before = await session.call_tool("echo", {"text": "before"})
        assert before["content"][0]["text"] == "before"
        assert "refresh_token" not in (await py_oauth_server.stats())["token_requests"]

        now[0] += 2 * 3600  # the lid was closed for two hours; tokens live one
        after = await session.call_tool("echo", {"text": "after"})
        assert after["content"][0]["text"] == "after"
        stats = await py_oauth_server.stats()
        assert stats["token_requests"]["refresh_token"] == 1
        expires_at = oauth.info().expires_at
        assert expires_at is not None
        assert expires_at > time.time()  # the new token, by the real clock
    finally:
        await session.close()
        await oauth.close()
