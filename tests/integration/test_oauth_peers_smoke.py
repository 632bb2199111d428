"""Every OAuth peer works end to end, driven by httpx, the test browser and authlib's PKCE
helpers only (no mcpls code): 401 challenge → RFC 9728 and RFC 8414 metadata → dynamic
registration → authorization in the browser → code at a loopback listener → token with PKCE
and `resource` → MCP `initialize` with the bearer token; refresh rotates where it exists.

If one of these fails, the mcpls tests that use the same peer cannot be trusted.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from peers.oauth.browser import Browser, UnsafeRedirect, authorize_in_browser
from peers.oauth.fixtures import (
    OidcPeers,
    OidcProviderFactory,
    PyOAuthServer,
    PyOAuthServerFactory,
    TsOAuthServer,
    TsOAuthServerFactory,
)

PROTOCOL_VERSION = "2025-11-25"
JSON = {"Accept": "application/json"}


# --- a client's side of the flow, written out in the open --------------------------------


class CallbackListener:
    """The client's loopback redirect target: records the first authorization response."""

    def __init__(self) -> None:
        self.received: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self.server: asyncio.Server | None = None
        self.redirect_uri = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.redirect_uri = f"http://127.0.0.1:{port}/callback"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # headers: not needed
        target = request_line.split(" ")[1]
        if not self.received.done():
            self.received.set_result(dict(parse_qsl(urlsplit(target).query)))
        body = b"signed in; you can close this tab"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def callback() -> AsyncIterator[CallbackListener]:
    listener = CallbackListener()
    await listener.start()
    yield listener
    await listener.stop()


@dataclass
class Discovered:
    challenge: str
    resource_metadata: dict[str, Any]
    as_metadata: dict[str, Any]


def auth_params(challenge: str) -> dict[str, str]:
    """`Bearer k="v", k2="v2"` → {k: v, k2: v2} (enough for these servers' headers)."""
    scheme, _, rest = challenge.partition(" ")
    assert scheme.lower() == "bearer", challenge
    params = {}
    for item in rest.split('", '):
        key, _, value = item.partition("=")
        params[key.strip()] = value.strip().strip('"')
    return params


def metadata_url(issuer: str) -> str:
    """RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{path}"


async def discover(http: httpx.AsyncClient, mcp_url: str) -> Discovered:
    """401 from the MCP server → its resource metadata → its authorization server's."""
    unauthenticated = await http.post(mcp_url, json=initialize_request(), headers=MCP_HEADERS)
    assert unauthenticated.status_code == 401
    challenge = unauthenticated.headers["www-authenticate"]
    prm_url = auth_params(challenge)["resource_metadata"]
    prm = (await http.get(prm_url)).raise_for_status().json()
    issuer = prm["authorization_servers"][0]
    as_metadata = (await http.get(metadata_url(issuer))).raise_for_status().json()
    assert as_metadata["issuer"] == issuer
    assert "S256" in as_metadata["code_challenge_methods_supported"]
    return Discovered(challenge, prm, as_metadata)


async def register(
    http: httpx.AsyncClient, as_metadata: dict[str, Any], redirect_uri: str, scope: str
) -> dict[str, Any]:
    response = await http.post(
        as_metadata["registration_endpoint"],
        headers=JSON,
        json={
            "client_name": "mcpls oauth peers smoke test",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": scope,
        },
    )
    assert response.status_code == 201, response.text
    client: dict[str, Any] = response.json()
    assert client["client_id"]
    return client


@dataclass
class Authorization:
    callback: dict[str, str]
    state: str
    verifier: str


async def authorize(
    as_metadata: dict[str, Any],
    client_id: str,
    listener: CallbackListener,
    *,
    scope: str,
    resource: str,
    browser: Browser | None = None,
) -> Authorization:
    verifier = generate_token(64)
    state = secrets.token_urlsafe(16)
    url = httpx.URL(
        as_metadata["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": listener.redirect_uri,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
            "state": state,
            "scope": scope,
            "resource": resource,
        },
    )
    if browser is None:
        result = await authorize_in_browser(str(url), login="alice")
    else:
        result = await browser.authorize(str(url))
    assert result.status == 200, result.text
    assert result.callback_url.startswith(listener.redirect_uri + "?")
    received = await asyncio.wait_for(listener.received, 10)
    assert received == result.params
    assert received.get("state") == state, received
    assert "code" in received, received
    return Authorization(received, state, verifier)


async def token_request(
    http: httpx.AsyncClient, as_metadata: dict[str, Any], form: dict[str, str]
) -> httpx.Response:
    return await http.post(as_metadata["token_endpoint"], data=form, headers=JSON)


async def exchange_code(
    http: httpx.AsyncClient,
    as_metadata: dict[str, Any],
    client_id: str,
    authorization: Authorization,
    redirect_uri: str,
    resource: str,
) -> dict[str, Any]:
    response = await token_request(
        http,
        as_metadata,
        {
            "grant_type": "authorization_code",
            "code": authorization.callback["code"],
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": authorization.verifier,
            "resource": resource,
        },
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["access_token"]
    return tokens


async def refresh(
    http: httpx.AsyncClient,
    as_metadata: dict[str, Any],
    client_id: str,
    refresh_token: str,
    resource: str,
) -> httpx.Response:
    return await token_request(
        http,
        as_metadata,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "resource": resource,
        },
    )


# --- MCP over Streamable HTTP, just enough ------------------------------------------------

MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def initialize_request() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "oauth-peers-smoke-test", "version": "0"},
        },
    }


def rpc_result(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer in a JSON or a complete SSE response body."""
    if response.headers["content-type"].startswith("application/json"):
        message: dict[str, Any] = response.json()
    else:
        events = [
            json.loads(line[5:])
            for line in response.text.splitlines()
            if line.startswith("data:") and line[5:].strip()
        ]
        message = next(m for m in events if "result" in m or "error" in m)
    assert "result" in message, message
    result: dict[str, Any] = message["result"]
    return result


class McpSession:
    def __init__(self, http: httpx.AsyncClient, url: str, access_token: str) -> None:
        self.http = http
        self.url = url
        self.headers = {**MCP_HEADERS, "Authorization": f"Bearer {access_token}"}
        self.next_id = 2

    async def post(self, message: dict[str, Any]) -> httpx.Response:
        return await self.http.post(self.url, json=message, headers=self.headers)

    async def initialize(self) -> dict[str, Any]:
        response = await self.post(initialize_request())
        assert response.status_code == 200, (response.status_code, response.text)
        result = rpc_result(response)
        if session_id := response.headers.get("mcp-session-id"):
            self.headers["Mcp-Session-Id"] = session_id
        self.headers["MCP-Protocol-Version"] = result["protocolVersion"]
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await self.post(initialized)).status_code == 202
        return result

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> httpx.Response:
        self.next_id += 1
        return await self.post(
            {
                "jsonrpc": "2.0",
                "id": self.next_id,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments},
            }
        )


def tool_text(response: httpx.Response) -> str:
    """The text a successful tool call returned."""
    assert response.status_code == 200, (response.status_code, response.text)
    result = rpc_result(response)
    assert not result.get("isError"), result
    text: str = result["content"][0]["text"]
    return text


@dataclass
class SignedIn:
    discovered: Discovered
    client_id: str
    tokens: dict[str, Any]
    authorization: Authorization


async def sign_in(
    http: httpx.AsyncClient, mcp_url: str, listener: CallbackListener, *, scope: str | None = None
) -> SignedIn:
    """The whole interactive flow, with the scopes of the resource metadata by default."""
    discovered = await discover(http, mcp_url)
    resource = discovered.resource_metadata["resource"]
    scope = scope or " ".join(discovered.resource_metadata["scopes_supported"])
    client = await register(http, discovered.as_metadata, listener.redirect_uri, scope)
    authorization = await authorize(
        discovered.as_metadata, client["client_id"], listener, scope=scope, resource=resource
    )
    tokens = await exchange_code(
        http,
        discovered.as_metadata,
        client["client_id"],
        authorization,
        listener.redirect_uri,
        resource,
    )
    return SignedIn(discovered, client["client_id"], tokens, authorization)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15) as client:
        yield client


# --- Python SDK: AS + RS in one app -------------------------------------------------------


async def test_py_sdk_peer_signs_in_and_serves_mcp(
    py_oauth_server: PyOAuthServer, http: httpx.AsyncClient, callback: CallbackListener
) -> None:
    server = py_oauth_server
    signed_in = await sign_in(http, server.mcp_url, callback)
    assert auth_params(signed_in.discovered.challenge)["error"] == "invalid_token"
    assert signed_in.discovered.resource_metadata["resource"] == server.mcp_url
    assert signed_in.discovered.resource_metadata["authorization_servers"] == [server.issuer]
    assert signed_in.discovered.resource_metadata["scopes_supported"] == ["mcp:read"]
    assert signed_in.tokens["scope"] == "mcp:read"
    assert signed_in.tokens["expires_in"] == 3600

    session = McpSession(http, server.mcp_url, signed_in.tokens["access_token"])
    assert (await session.initialize())["serverInfo"]["name"] == "mcpls-oauth-peer"
    assert json.loads(tool_text(await session.call_tool("whoami", {}))) == {
        "client_id": signed_in.client_id,
        "subject": "demo-user",
        "scopes": ["mcp:read"],
        "resource": server.mcp_url,
    }
    assert await server.stats() == {
        "registrations": 1,
        "authorizations": 1,
        "token_requests": {"authorization_code": 1},
        "resources": [
            {"endpoint": "authorize", "grant_type": None, "resource": server.mcp_url},
            {"endpoint": "token", "grant_type": "authorization_code", "resource": server.mcp_url},
        ],
        "revocations": 0,
        "sessions": 2,
        "deletes": [],
        "resumptions": 0,
        "starts": 1,
    }


async def test_py_sdk_peer_rotates_refresh_tokens_and_obeys_the_control_api(
    py_oauth_server: PyOAuthServer, http: httpx.AsyncClient, callback: CallbackListener
) -> None:
    server = py_oauth_server
    signed_in = await sign_in(http, server.mcp_url, callback)
    as_metadata = signed_in.discovered.as_metadata
    first_refresh = signed_in.tokens["refresh_token"]

    assert await server.expire_access() == 1
    expired = McpSession(http, server.mcp_url, signed_in.tokens["access_token"])
    assert (await expired.post(initialize_request())).status_code == 401

    rotated = await refresh(http, as_metadata, signed_in.client_id, first_refresh, server.mcp_url)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first_refresh
    reused = await refresh(http, as_metadata, signed_in.client_id, first_refresh, server.mcp_url)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    await McpSession(http, server.mcp_url, second["access_token"]).initialize()

    assert await server.revoke_refresh() == 1
    revoked = await refresh(
        http, as_metadata, signed_in.client_id, second["refresh_token"], server.mcp_url
    )
    assert (revoked.status_code, revoked.json()["error"]) == (400, "invalid_grant")
    assert (await server.stats())["token_requests"] == {"authorization_code": 1, "refresh_token": 3}


async def test_py_sdk_peer_asks_for_mcp_admin_with_403(
    py_oauth_server: PyOAuthServer, http: httpx.AsyncClient, callback: CallbackListener
) -> None:
    server = py_oauth_server
    signed_in = await sign_in(http, server.mcp_url, callback)
    session = McpSession(http, server.mcp_url, signed_in.tokens["access_token"])
    await session.initialize()
    assert tool_text(await session.call_tool("echo", {"text": "hi"})) == "hi"

    denied = await session.call_tool("admin_echo", {"text": "hi"})
    assert denied.status_code == 403
    challenge = auth_params(denied.headers["www-authenticate"])
    assert challenge["error"] == "insufficient_scope"
    assert challenge["scope"] == "mcp:read mcp:admin"
    assert challenge["resource_metadata"] == server.resource_metadata_url
    whole_endpoint = McpSession(http, server.admin_mcp_url, signed_in.tokens["access_token"])
    assert (await whole_endpoint.post(initialize_request())).status_code == 403

    # Step up: a new authorization with the challenged scopes.
    second_callback = CallbackListener()
    await second_callback.start()
    try:
        stepped_up = await sign_in(http, server.mcp_url, second_callback, scope=challenge["scope"])
    finally:
        await second_callback.stop()
    assert stepped_up.tokens["scope"] == "mcp:read mcp:admin"
    admin = McpSession(http, server.admin_mcp_url, stepped_up.tokens["access_token"])
    await admin.initialize()
    assert tool_text(await admin.call_tool("admin_echo", {"text": "root"})) == "root"


async def test_py_sdk_peer_without_refresh_tokens_and_short_ttl(
    py_oauth_server_factory: PyOAuthServerFactory,
    http: httpx.AsyncClient,
    callback: CallbackListener,
) -> None:
    server = py_oauth_server_factory(access_ttl=5, refresh=False)
    signed_in = await sign_in(http, server.mcp_url, callback)
    assert signed_in.tokens["expires_in"] == 5
    assert "refresh_token" not in signed_in.tokens


# --- TypeScript SDK example ---------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
async def test_ts_sdk_example_signs_in_and_serves_mcp(
    ts_oauth_server_factory: TsOAuthServerFactory,
    http: httpx.AsyncClient,
    callback: CallbackListener,
    strict: bool,
) -> None:
    server: TsOAuthServer = ts_oauth_server_factory(strict=strict)
    signed_in = await sign_in(http, server.mcp_url, callback)
    assert signed_in.discovered.resource_metadata["resource"] == server.mcp_url
    assert signed_in.discovered.as_metadata["issuer"] == server.issuer
    assert "refresh_token" not in signed_in.tokens
    session = McpSession(http, server.mcp_url, signed_in.tokens["access_token"])
    assert (await session.initialize())["protocolVersion"] == PROTOCOL_VERSION


# --- oidc-provider + Python SDK resource server --------------------------------------------


async def test_oidc_provider_signs_in_with_forms_and_rotates_refresh_tokens(
    oidc_provider: OidcPeers, http: httpx.AsyncClient, callback: CallbackListener
) -> None:
    peers = oidc_provider
    signed_in = await sign_in(http, peers.mcp_url, callback)
    as_metadata = signed_in.discovered.as_metadata
    assert as_metadata["issuer"] == peers.issuer
    assert as_metadata["authorization_response_iss_parameter_supported"] is True
    assert signed_in.authorization.callback["iss"] == peers.issuer  # RFC 9207
    assert signed_in.tokens["scope"] == "mcp:read"

    session = McpSession(http, peers.mcp_url, signed_in.tokens["access_token"])
    await session.initialize()
    assert json.loads(tool_text(await session.call_tool("whoami", {}))) == {
        "client_id": signed_in.client_id,
        "subject": "alice",
        "scopes": ["mcp:read"],
        "resource": peers.mcp_url,
    }

    first = signed_in.tokens["refresh_token"]
    rotated = await refresh(http, as_metadata, signed_in.client_id, first, peers.mcp_url)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first
    await McpSession(http, peers.mcp_url, second["access_token"]).initialize()
    reused = await refresh(http, as_metadata, signed_in.client_id, first, peers.mcp_url)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


async def test_oidc_provider_remembers_the_sign_in_in_the_browser(
    oidc_provider: OidcPeers, http: httpx.AsyncClient, callback: CallbackListener
) -> None:
    discovered = await discover(http, oidc_provider.mcp_url)
    as_metadata, resource = discovered.as_metadata, oidc_provider.mcp_url
    client_id = (await register(http, as_metadata, callback.redirect_uri, "mcp:read"))["client_id"]
    async with Browser(login="alice") as browser:
        await authorize(
            as_metadata, client_id, callback, scope="mcp:read", resource=resource, browser=browser
        )
        callback.received = asyncio.get_running_loop().create_future()
        browser.login = "bob"  # never typed: the provider's session cookie says alice
        again = await authorize(
            as_metadata, client_id, callback, scope="mcp:read", resource=resource, browser=browser
        )
    tokens = await exchange_code(
        http, as_metadata, client_id, again, callback.redirect_uri, resource
    )
    session = McpSession(http, oidc_provider.mcp_url, tokens["access_token"])
    await session.initialize()
    assert json.loads(tool_text(await session.call_tool("whoami", {})))["subject"] == "alice"


async def test_oidc_provider_access_ttl_is_configurable(
    oidc_provider_factory: OidcProviderFactory,
    http: httpx.AsyncClient,
    callback: CallbackListener,
) -> None:
    peers = oidc_provider_factory(access_ttl=7)
    signed_in = await sign_in(http, peers.mcp_url, callback)
    assert signed_in.tokens["expires_in"] == 7


async def test_browser_refuses_to_leave_the_machine(
    py_oauth_server: PyOAuthServer, http: httpx.AsyncClient
) -> None:
    with pytest.raises(UnsafeRedirect):
        await authorize_in_browser("https://auth.example.com/authorize?client_id=x")

    discovered = await discover(http, py_oauth_server.mcp_url)
    elsewhere = "https://client.example.com/callback"
    client = await register(http, discovered.as_metadata, elsewhere, "mcp:read")
    url = httpx.URL(
        discovered.as_metadata["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": elsewhere,
            "code_challenge": create_s256_code_challenge(generate_token(64)),
            "code_challenge_method": "S256",
            "state": "s",
            "scope": "mcp:read",
            "resource": py_oauth_server.mcp_url,
        },
    )
    with pytest.raises(UnsafeRedirect, match=r"client\.example\.com"):
        await authorize_in_browser(str(url))
    assert (await py_oauth_server.stats())["authorizations"] == 1
