"""An authorization server and an MCP resource server in one app, from the official `mcp` SDK.

Run: python tests/peers/oauth/py_as_rs.py --port P [--access-ttl S] [--no-refresh]
         [--scopes "mcp:read mcp:write mcp:admin"] [--required-scopes "mcp:read"]
         [--state FILE] [--resumable]

`--state FILE` keeps the registrations, tokens and sign-in counters in FILE, written before
each answer that changes them and read at start: a process killed (SIGKILL) and started
again on the same port still knows every sign-in, as a real server's database would, while
its MCP sessions are gone. `--resumable` gives the MCP endpoint an event store (SSE event
ids, `retry`, GET + `Last-Event-ID` replay; SEP-1699), in memory like the sessions.

The SDK provides the HTTP layer (RFC 8414 metadata, /authorize, /token with the PKCE check,
/register, /revoke, RFC 9728 metadata, bearer checks with the RFC 8707 audience check);
behind it is the demo's in-memory provider (`mcpls.demo.oauth`) with counters and
controls. Its one user approves every request at once, so `/authorize` redirects straight
to the client's callback with `code` and `state`.

Step-up (MCP 2025-11-25 §Scope Challenge Handling): calling the tool `admin_echo`, or any
request to `/mcp/admin`, without `mcp:admin` answers 403 with
`WWW-Authenticate: Bearer error="insufficient_scope", scope="<required> mcp:admin", ...`.
The SDK's `RequireAuthMiddleware` can only guard a whole route and omits `scope=` from its
challenge, so a small ASGI wrapper inside it does this.

`/_control/` is a test-only JSON API (no auth): `GET stats`, `POST revoke-refresh`,
`POST expire-access`, `POST forget-clients`, `POST fail-token?status=S&count=N` (the
next N token requests answer S; 429 with `Retry-After: 1`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import uvicorn
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import JSONRPCMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcpls.demo.oauth import DemoProvider

# Run as a script, only this file's folder is on sys.path: tests/ too, for the secret ledger.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from peers import ledger

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

ADMIN_SCOPE = "mcp:admin"
ADMIN_TOOLS = frozenset({"admin_echo"})


@dataclass
class Stats:
    """What the authorization server saw, for tests to assert on."""

    registrations: int = 0
    authorizations: int = 0
    token_requests: Counter[str] = field(default_factory=Counter)
    # Every `resource` parameter received, in order: {"endpoint", "grant_type", "resource"}.
    resources: list[dict[str, str | None]] = field(default_factory=list)
    revocations: int = 0
    # MCP sessions started (`initialize` requests) and the status of every session DELETE.
    sessions: int = 0
    deletes: list[int] = field(default_factory=list)
    # Token requests still to be answered with this status (a failing or busy server).
    failing: list[int] = field(default_factory=list)
    # GET requests to the MCP endpoint with `Last-Event-ID` (stream resumptions).
    resumptions: int = 0
    # How many times this server was started with the same `--state` file.
    starts: int = 1

    def as_json(self) -> dict[str, Any]:
        return {
            "registrations": self.registrations,
            "authorizations": self.authorizations,
            "token_requests": dict(self.token_requests),
            "resources": self.resources,
            "revocations": self.revocations,
            "sessions": self.sessions,
            "deletes": self.deletes,
            "resumptions": self.resumptions,
            "starts": self.starts,
        }


class MemoryProvider(DemoProvider):
    """The demo's in-memory provider (single-use codes, expiring access tokens, refresh
    tokens that rotate), counting what it sees and letting tests expire or revoke."""

    def __init__(
        self, *, access_ttl_s: int, issue_refresh: bool, stats: Stats, state: Path | None = None
    ) -> None:
        super().__init__(access_ttl_s, issue_refresh=issue_refresh)
        self.stats = stats
        self.state = state
        if state is not None and state.exists():
            self._load(state)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.stats.registrations += 1
        await super().register_client(client_info)
        self.save()

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        self.stats.authorizations += 1
        self.stats.resources.append(
            {"endpoint": "authorize", "grant_type": None, "resource": params.resource}
        )
        redirect = await super().authorize(client, params)
        self.save()
        return redirect

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        token = await super().exchange_authorization_code(client, authorization_code)
        self.save()
        return token

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        token = await super().exchange_refresh_token(client, refresh_token, scopes)
        self.save()
        return token

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.stats.revocations += 1
        await super().revoke_token(token)
        self.save()

    def save(self) -> None:
        """Write what a restart must not lose (with `--state`), before the answer leaves:
        a temporary file renamed over the old one, so a kill never leaves half a file."""
        if self.state is None:
            return
        document = {
            "clients": {k: v.model_dump(mode="json") for k, v in self.clients.items()},
            "codes": {k: v.model_dump(mode="json") for k, v in self.codes.items()},
            "access": {k: v.model_dump(mode="json") for k, v in self.access.items()},
            "refresh": {k: v.model_dump(mode="json") for k, v in self.refresh.items()},
            "registrations": self.stats.registrations,
            "authorizations": self.stats.authorizations,
            "token_requests": dict(self.stats.token_requests),
            "starts": self.stats.starts,
        }
        temporary = self.state.with_name(f"{self.state.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(document))
        os.replace(temporary, self.state)

    def _load(self, state: Path) -> None:
        document = json.loads(state.read_text())
        self.clients = {
            k: OAuthClientInformationFull.model_validate(v) for k, v in document["clients"].items()
        }
        self.codes = {k: AuthorizationCode.model_validate(v) for k, v in document["codes"].items()}
        self.access = {k: AccessToken.model_validate(v) for k, v in document["access"].items()}
        self.refresh = {k: RefreshToken.model_validate(v) for k, v in document["refresh"].items()}
        self.stats.registrations = document["registrations"]
        self.stats.authorizations = document["authorizations"]
        self.stats.token_requests.update(document["token_requests"])
        self.stats.starts = document["starts"] + 1
        self.save()

    def expire_access(self) -> int:
        """Make every access token expired now; how many there were."""
        past = int(time.time()) - 1
        for key, token in self.access.items():
            self.access[key] = token.model_copy(update={"expires_at": past})
        self.save()
        return len(self.access)

    def forget_clients(self) -> int:
        """Drop every client registration, as servers that garbage-collect them do."""
        count = len(self.clients)
        self.clients.clear()
        self.save()
        return count

    def revoke_refresh(self) -> int:
        """Forget every refresh token; how many there were."""
        count = len(self.refresh)
        self.refresh.clear()
        self.save()
        return count


class MemoryEventStore(EventStore):
    """Every SSE event of every stream, in memory, for `Last-Event-ID` replay (the SDK
    ships only the interface)."""

    def __init__(self) -> None:
        self.events: list[tuple[StreamId, EventId, JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = str(len(self.events) + 1)
        self.events.append((stream_id, event_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        found = [i for i, (_, event_id, _) in enumerate(self.events) if event_id == last_event_id]
        if not found:
            return None
        stream_id = self.events[found[0]][0]
        for stream, event_id, message in self.events[found[0] + 1 :]:
            if stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


async def read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a `receive` that hands it on unchanged."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


class CountTokenRequests:
    """Records `grant_type` and `resource` of every POST /token before the SDK handles it
    (the SDK does not pass the token request's `resource` to the provider)."""

    def __init__(self, app: ASGIApp, stats: Stats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/token" and scope["method"] == "POST":
            body, receive = await read_body(receive)
            form = parse_qs(body.decode("utf-8", "replace"))
            grant_type = form.get("grant_type", ["?"])[0]
            self.stats.token_requests[grant_type] += 1
            resource = form.get("resource", [None])[0]
            self.stats.resources.append(
                {"endpoint": "token", "grant_type": grant_type, "resource": resource}
            )
            if self.stats.failing:
                status = self.stats.failing.pop(0)
                headers = [(b"retry-after", b"1")] if status == 429 else []
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": b"busy"})
                return
        await self.app(scope, receive, send)


class CountSessions:
    """Counts `initialize` requests and records the status of each DELETE to the MCP
    endpoint (a session ended: 200 with the bearer, 401 without)."""

    def __init__(self, app: ASGIApp, stats: Stats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/mcp"):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST":
            body, receive = await read_body(receive)
            if b'"initialize"' in body:
                self.stats.sessions += 1
        if scope["method"] == "GET" and any(k == b"last-event-id" for k, _ in scope["headers"]):
            self.stats.resumptions += 1
        if scope["method"] != "DELETE":
            await self.app(scope, receive, send)
            return

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.stats.deletes.append(int(message["status"]))
            await send(message)

        await self.app(scope, receive, record)


def tool_calls(body: bytes) -> set[str]:
    """Names of the tools a JSON-RPC message (or batch) calls."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return set()
    messages = parsed if isinstance(parsed, list) else [parsed]
    return {
        str(m.get("params", {}).get("name"))
        for m in messages
        if isinstance(m, dict) and m.get("method") == "tools/call"
    }


class StepUpChallenge:
    """403 `insufficient_scope` naming the scopes needed, for requests that need `mcp:admin`:
    every request when `whole_endpoint`, otherwise only calls of the admin tools."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        base_scopes: list[str],
        resource_metadata_url: str,
        whole_endpoint: bool,
    ) -> None:
        self.app = app
        self.challenge_scope = " ".join([*base_scopes, ADMIN_SCOPE])
        self.resource_metadata_url = resource_metadata_url
        self.whole_endpoint = whole_endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if isinstance(user, AuthenticatedUser) and ADMIN_SCOPE not in user.scopes:
            needs_admin = self.whole_endpoint
            if not needs_admin and scope.get("method") == "POST":
                body, receive = await read_body(receive)
                needs_admin = bool(tool_calls(body) & ADMIN_TOOLS)
            if needs_admin:
                await self._forbid(send)
                return
        await self.app(scope, receive, send)

    async def _forbid(self, send: Send) -> None:
        description = f"Required scope: {ADMIN_SCOPE}"
        challenge = (
            f'Bearer error="insufficient_scope", scope="{self.challenge_scope}", '
            f'resource_metadata="{self.resource_metadata_url}", '
            f'error_description="{description}"'
        )
        body = json.dumps({"error": "insufficient_scope", "error_description": description})
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", challenge.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


def build_app(
    *,
    port: int,
    access_ttl_s: int,
    issue_refresh: bool,
    scopes: list[str],
    required_scopes: list[str],
    state: Path | None = None,
    resumable: bool = False,
) -> Starlette:
    """The Starlette app: AS routes, PRM, `/mcp`, `/mcp/admin`, `/_control/*`."""
    origin = f"http://127.0.0.1:{port}"
    resource = f"{origin}/mcp"
    stats = Stats()
    provider = MemoryProvider(
        access_ttl_s=access_ttl_s, issue_refresh=issue_refresh, stats=stats, state=state
    )
    server = MCPServer(
        "mcpls-oauth-peer",
        version="1.0.0",
        log_level="WARNING",
        auth_server_provider=provider,
        auth=AuthSettings(
            issuer_url=origin,  # type: ignore[arg-type]
            resource_server_url=resource,  # type: ignore[arg-type]
            required_scopes=required_scopes,
            client_registration_options=ClientRegistrationOptions(
                enabled=True, valid_scopes=scopes, default_scopes=scopes
            ),
            revocation_options=RevocationOptions(enabled=True),
            validate_token_resource=True,
        ),
    )

    def bearer(ctx: Context) -> AccessToken:
        header = (ctx.headers or {}).get("authorization", "")
        token = provider.access.get(header.partition(" ")[2])
        assert token is not None, "the bearer middleware let an unknown token through"
        return token

    @server.tool()
    def whoami(ctx: Context) -> dict[str, Any]:
        """Who the bearer token speaks for: client, user, scopes, resource."""
        token = bearer(ctx)
        return {
            "client_id": token.client_id,
            "subject": token.subject,
            "scopes": token.scopes,
            "resource": token.resource,
        }

    @server.tool()
    def echo(text: str) -> str:
        """Return `text` unchanged."""
        return text

    @server.tool()
    def admin_echo(text: str) -> str:
        """Return `text`; needs the `mcp:admin` scope (step-up)."""
        return text

    @server.tool()
    async def working(seconds: float, ctx: Context) -> str:
        """Say "working" on the call's own stream, then take `seconds` to answer (a slow
        tool whose stream a test can break in the middle)."""
        await ctx.log("info", "working")
        await anyio.sleep(seconds)
        return f"worked {seconds} s"

    @server.tool()
    async def hand_off(text: str, ctx: Context) -> str:
        """Say "before", close this call's stream (SEP-1699: the client comes back with
        `Last-Event-ID`; a no-op without `--resumable`), say "after", then return `text`."""
        await ctx.log("info", "before")
        await ctx.close_sse_stream()
        await anyio.sleep(0.2)
        await ctx.log("info", "after")
        return text

    async def control_stats(request: Request) -> Response:
        return JSONResponse(stats.as_json())

    async def control_revoke_refresh(request: Request) -> Response:
        return JSONResponse({"revoked": provider.revoke_refresh()})

    async def control_expire_access(request: Request) -> Response:
        return JSONResponse({"expired": provider.expire_access()})

    async def control_fail_token(request: Request) -> Response:
        status = int(request.query_params.get("status", "500"))
        stats.failing.extend([status] * int(request.query_params.get("count", "1")))
        return JSONResponse({"failing": len(stats.failing)})

    async def control_forget_clients(request: Request) -> Response:
        return JSONResponse({"forgotten": provider.forget_clients()})

    # The event store makes every SSE event carry an id and the stream resumable; 100 ms
    # is the `retry` a client waits before it comes back.
    app = server.streamable_http_app(
        host="127.0.0.1",
        event_store=MemoryEventStore() if resumable else None,
        retry_interval=100 if resumable else None,
    )
    app.router.routes += [
        Route("/_control/stats", control_stats, methods=["GET"]),
        Route("/_control/revoke-refresh", control_revoke_refresh, methods=["POST"]),
        Route("/_control/expire-access", control_expire_access, methods=["POST"]),
        Route("/_control/forget-clients", control_forget_clients, methods=["POST"]),
        Route("/_control/fail-token", control_fail_token, methods=["POST"]),
    ]
    mcp_route = next(r for r in app.router.routes if isinstance(r, Route) and r.path == "/mcp")
    guard = mcp_route.app
    assert isinstance(guard, RequireAuthMiddleware)
    metadata_url = str(guard.resource_metadata_url)
    streamable = guard.app
    guard.app = StepUpChallenge(
        streamable,
        base_scopes=required_scopes,
        resource_metadata_url=metadata_url,
        whole_endpoint=False,
    )
    admin_guard = RequireAuthMiddleware(
        StepUpChallenge(
            streamable,
            base_scopes=required_scopes,
            resource_metadata_url=metadata_url,
            whole_endpoint=True,
        ),
        required_scopes,
        guard.resource_metadata_url,
    )
    app.router.routes.append(Route("/mcp/admin", endpoint=admin_guard))
    app.add_middleware(CountTokenRequests, stats=stats)
    app.add_middleware(CountSessions, stats=stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-ttl", type=int, default=3600, help="seconds")
    parser.add_argument("--no-refresh", action="store_true", help="issue no refresh tokens")
    parser.add_argument("--scopes", default=f"mcp:read mcp:write {ADMIN_SCOPE}")
    parser.add_argument("--required-scopes", default="mcp:read")
    parser.add_argument("--state", type=Path, help="keep sign-ins in this file across restarts")
    parser.add_argument("--resumable", action="store_true", help="an SSE event store")
    args = parser.parse_args()
    app = build_app(
        port=args.port,
        access_ttl_s=args.access_ttl,
        issue_refresh=not args.no_refresh,
        scopes=args.scopes.split(),
        required_scopes=args.required_scopes.split(),
        state=args.state,
        resumable=args.resumable,
    )
    # A stopped server must not wait for open SSE streams (a test stops it mid-call).
    uvicorn.run(
        ledger.wrap(app, f"py_as_rs.py:{args.port}"),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
