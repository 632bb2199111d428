"""Hostile HTTP "MCP servers": answers no real server sends on demand, for tests only.

Run as `python tests/peers/hostile_http.py --port P`; it listens on 127.0.0.1 only.

- `/html`          200 text/html to everything
- `/hang`          reads the request, then never answers (until the client goes away)
- `/malformed`     200 application/json whose body is truncated JSON
- `/wrong-id`      200 application/json, valid JSON-RPC but answering another id
- `/unauthorized`  401 with a Bearer challenge (`invalid_token`, `resource_metadata`, scope)
- `/sse-drop`      answers `initialize` (JSON) and accepts notifications, but ends every
                   other request's SSE stream after one notification, without a response
                   and without event ids (a server dying mid-stream; nothing to resume)
- `/evil/<kind>/mcp`  401 leading to hostile OAuth metadata (resource metadata at
                   `/evil/<kind>/prm`, authorization server `/evil/<kind>/as`):
                   `javascript` and `file` authorization endpoints, a `foreign` protected
                   resource, an AS that names another `issuer`, one with `nopkce`;
                   `httpissuer` (a plain-http issuer elsewhere), `httpendpoint` (a plain-http
                   token endpoint elsewhere), `flaky` (the challenge's metadata URL answers
                   503, the well-known one works), `moved` (metadata URLs redirect),
                   `pkjwt` (registration answers with `private_key_jwt`), `huge` (5 MB of
                   authorization server metadata), `noprm` (a bare Bearer challenge and no
                   protected resource metadata anywhere), `noreg` (an AS without a
                   registration endpoint), `device` (an AS with RFC 8628 whose token
                   endpoint answers slow_down, then authorization_pending, then
                   expired_token: what oidc-provider never sends on demand)
- `/trickle`       200, then one byte every half second for a minute
- `/forgetful`     answers `initialize` with a session id, then 404 to everything that
                   carries it except `notifications/initialized` (a server that forgets
                   every session at once)
- `GET /_requests` every request received so far (method, path, headers, body), oldest first
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import uvicorn
from mcp_types import LATEST_PROTOCOL_VERSION
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:  # mypy knows tests/ as the root: this file is `peers.<name>` to it
    from peers import ledger
else:  # run as a script, tests/peers/ is on sys.path
    import ledger

ALL_METHODS = ["GET", "POST", "DELETE"]


class RequestLog:
    """ASGI middleware that records each request before the app sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/_requests":
            await self.app(scope, receive, send)
            return
        record: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            "body": "",
        }
        self.seen.append(record)

        async def receive_and_record() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                record["body"] += message.get("body", b"").decode("utf-8", "replace")
            return message

        await self.app(scope, receive_and_record, send)


async def json_rpc(request: Request) -> dict[str, Any]:
    try:
        message = json.loads(await request.body())
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


async def html(request: Request) -> Response:
    await request.body()
    return Response(
        "<!doctype html><title>Sign in</title><p>Please sign in.</p>", 200, media_type="text/html"
    )


async def hang(request: Request) -> Response:
    await request.body()
    # After the body, the next ASGI message is the client's disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass
    return Response(status_code=204)


async def malformed(request: Request) -> Response:
    await request.body()
    return Response(
        '{"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion"',
        200,
        media_type="application/json",
    )


async def wrong_id(request: Request) -> Response:
    await request.body()
    return JSONResponse({"jsonrpc": "2.0", "id": "wrong", "result": {}})


async def unauthorized(request: Request) -> Response:
    await request.body()
    metadata = f"{request.base_url}.well-known/oauth-protected-resource/unauthorized"
    challenge = f'Bearer error="invalid_token", resource_metadata="{metadata}", scope="mcp:read"'
    return JSONResponse(
        {"error": "invalid_token", "error_description": "Missing or invalid access token"},
        status_code=401,
        headers={"WWW-Authenticate": challenge},
    )


async def sse_drop(request: Request) -> Response:
    if request.method != "POST":
        return Response(status_code=405, headers={"Allow": "POST"})
    message = await json_rpc(request)
    if "id" not in message:
        return Response(status_code=202)
    if message.get("method") == "initialize":
        params = message.get("params") or {}
        return JSONResponse(
            {
                "jsonrpc": "2.0",
                "id": message["id"],
                "result": {
                    "protocolVersion": params.get("protocolVersion", LATEST_PROTOCOL_VERSION),
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "hostile-sse-drop", "version": "0.0.0"},
                },
            }
        )

    async def dying_stream() -> AsyncIterator[bytes]:
        note = {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "info", "data": "working on it"},
        }
        yield f"event: message\ndata: {json.dumps(note)}\n\n".encode()

    return StreamingResponse(dying_stream(), media_type="text/event-stream")


EVIL_AUTHORIZE = {"javascript": "javascript:alert(document.cookie)", "file": "file:///etc/passwd"}


async def evil_mcp(request: Request) -> Response:
    await request.body()
    kind = request.path_params["kind"]
    metadata = f"{request.base_url}evil/{kind}/prm"
    challenge = (
        'Bearer realm="mcp"' if kind == "noprm" else f'Bearer resource_metadata="{metadata}"'
    )
    return Response(status_code=401, headers={"WWW-Authenticate": challenge})


def prm_document(request: Request, kind: str) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    resource = "https://evil.example/mcp" if kind == "foreign" else f"{base}/evil/{kind}/mcp"
    issuer = "http://auth.example.test/as" if kind == "httpissuer" else f"{base}/evil/{kind}/as"
    return {"resource": resource, "authorization_servers": [issuer]}


async def evil_prm(request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind == "flaky":
        return Response("upstream down", status_code=503)
    if kind == "moved":
        return Response(status_code=302, headers={"Location": "https://elsewhere.example/prm"})
    if kind == "noprm":
        return Response(status_code=404)
    return JSONResponse(prm_document(request, kind))


async def evil_prm_well_known(request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind == "flaky":
        return JSONResponse(prm_document(request, kind))
    if kind == "moved":
        return Response(status_code=301, headers={"Location": "https://elsewhere.example/prm"})
    return Response(status_code=404)


async def evil_register(request: Request) -> Response:
    await request.body()
    if request.path_params["kind"] != "pkjwt":
        return Response(status_code=404)
    return JSONResponse(
        {
            "client_id": "hostile-client",
            "redirect_uris": [],
            "token_endpoint_auth_method": "private_key_jwt",
        },
        status_code=201,
    )


async def forgetful(request: Request) -> Response:
    if request.method != "POST":
        return Response(status_code=405)
    message = await json_rpc(request)
    if message.get("method") == "initialize":
        params = message.get("params") or {}
        result = {
            "protocolVersion": params.get("protocolVersion", LATEST_PROTOCOL_VERSION),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "hostile-forgetful", "version": "0.0.0"},
        }
        return JSONResponse(
            {"jsonrpc": "2.0", "id": message["id"], "result": result},
            headers={"Mcp-Session-Id": "s-" + str(len(request.app.state.request_log.seen))},
        )
    if "id" not in message:
        return Response(status_code=202)
    return Response("session not found", status_code=404)


async def trickle(request: Request) -> Response:
    async def drip() -> AsyncIterator[bytes]:
        for _ in range(120):
            yield b" "
            await asyncio.sleep(0.5)

    return StreamingResponse(drip(), media_type="application/json")


async def evil_as(request: Request) -> Response:
    kind = request.path_params["kind"]
    base = str(request.base_url).rstrip("/")
    issuer = f"{base}/evil/{kind}/as"
    metadata: dict[str, Any] = {
        "issuer": "https://evil.example" if kind == "issuer" else issuer,
        "authorization_endpoint": EVIL_AUTHORIZE.get(kind, f"{issuer}/authorize"),
        "token_endpoint": (
            "http://auth.example.test/token" if kind == "httpendpoint" else f"{issuer}/token"
        ),
        "registration_endpoint": f"{issuer}/register",
        "response_types_supported": ["code"],
    }
    if kind == "noreg":
        del metadata["registration_endpoint"]
    if kind == "device":
        metadata["device_authorization_endpoint"] = f"{issuer}/device"
    if kind != "nopkce":
        metadata["code_challenge_methods_supported"] = ["S256"]
    if kind == "huge":
        metadata["padding"] = "x" * (5 * 1024 * 1024)
    return JSONResponse(metadata)


async def device_authorization(request: Request) -> Response:
    await request.body()
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "device_code": "hostile-device-code",
            "user_code": "ABCD-EFGH",
            "verification_uri": f"{base}/evil/device/as/verify",
            "expires_in": 60,
            "interval": 1,
        }
    )


DEVICE_POLL_ANSWERS = ("slow_down", "authorization_pending", "expired_token")


async def device_token(request: Request) -> Response:
    await request.body()
    polls = request.app.state.device_polls = getattr(request.app.state, "device_polls", 0) + 1
    error = DEVICE_POLL_ANSWERS[min(polls, len(DEVICE_POLL_ANSWERS)) - 1]
    return JSONResponse({"error": error}, status_code=400)


async def requests_seen(request: Request) -> Response:
    return JSONResponse(request.app.state.request_log.seen)


def build() -> ASGIApp:
    app = Starlette(
        routes=[
            Route("/html", html, methods=ALL_METHODS),
            Route("/hang", hang, methods=ALL_METHODS),
            Route("/malformed", malformed, methods=ALL_METHODS),
            Route("/wrong-id", wrong_id, methods=ALL_METHODS),
            Route("/unauthorized", unauthorized, methods=ALL_METHODS),
            Route("/sse-drop", sse_drop, methods=ALL_METHODS),
            Route("/evil/{kind}/mcp", evil_mcp, methods=ALL_METHODS),
            Route("/evil/{kind}/prm", evil_prm, methods=["GET"]),
            Route("/.well-known/oauth-protected-resource/evil/{kind}/mcp", evil_prm_well_known),
            Route("/evil/{kind}/as/register", evil_register, methods=["POST"]),
            Route("/evil/device/as/device", device_authorization, methods=["POST"]),
            Route("/evil/device/as/token", device_token, methods=["POST"]),
            Route("/trickle", trickle, methods=ALL_METHODS),
            Route("/forgetful", forgetful, methods=ALL_METHODS),
            Route("/.well-known/oauth-authorization-server/evil/{kind}/as", evil_as),
            Route("/_requests", requests_seen, methods=["GET"]),
        ]
    )
    request_log = RequestLog(app)
    app.state.request_log = request_log
    return request_log


def main() -> None:
    parser = argparse.ArgumentParser(description="mcpls test peer: hostile HTTP responses")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = ledger.wrap(build(), f"hostile_http.py:{args.port}")
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="warning", timeout_graceful_shutdown=1
    )


if __name__ == "__main__":
    main()
