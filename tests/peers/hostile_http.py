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
                   expired_token: what oidc-provider never sends on demand);
                   `ssrf-*` (an OAuth URL on a link-local, private or otherwise internal
                   address, spelled to slip past a check: see SSRF_ENDPOINTS), `vbscript`
                   and `data` authorization endpoints
- `/trickle`       200, then one byte every half second for a minute
- `/forgetful`     answers `initialize` with a session id, then 404 to everything that
                   carries it except `notifications/initialized` (a server that forgets
                   every session at once)
- `GET /_requests` every request received so far (method, path, headers, body), oldest first

Stream faults (issue 10), each an MCP server that answers `initialize` (with a session id),
notifications (202) and a `tools/call` of `echo` normally, and misbehaves on other tools:
- `/faults/endless`   a `tools/call` answered by an SSE stream of notifications and
                      keep-alive comments that never carries the answer and never ends
- `/faults/huge-json` a 100 MB JSON answer, chunked (no Content-Length), generated as sent
- `/faults/huge-sse`  an SSE stream whose one event carries a 100 MB answer
- `/faults/controls`  a tool result (and a log notification before it) whose text holds
                      CR LF and a `Set-Cookie:` line, ANSI escapes, NUL and other C0 codes;
                      the tool `fail` answers a JSON-RPC error with that text and 100 kB more
- `/faults/resume-lost` the answer's stream carries an event id and ends before the
                      answer; the GET that resumes it answers 404 (the server restarted and
                      forgot the session after taking the request)
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
    metadata = SSRF_PRM_URL.get(kind, metadata)
    challenge = (
        'Bearer realm="mcp"' if kind == "noprm" else f'Bearer resource_metadata="{metadata}"'
    )
    return Response(status_code=401, headers={"WWW-Authenticate": challenge})


def prm_document(request: Request, kind: str) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    resource = "https://evil.example/mcp" if kind == "foreign" else f"{base}/evil/{kind}/mcp"
    issuer = "http://auth.example.test/as" if kind == "httpissuer" else f"{base}/evil/{kind}/as"
    issuer = SSRF_ISSUER.get(kind, issuer)
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
    metadata.update(SSRF_ENDPOINTS.get(kind, {}))
    return JSONResponse(metadata)


# -- issue 10: SSRF and dangerous schemes (kinds `ssrf-*`, `vbscript`, `data`) -------------
# OAuth URLs on addresses a public server's metadata must not lead mcpls to, in the
# spellings that try to slip past a check; mcpls must refuse them before connecting. The
# challenge's resource metadata URL, the resource metadata's authorization server, or an
# endpoint of the authorization server's metadata, by kind.
SSRF_PRM_URL = {"ssrf-prm": "https://169.254.169.254/latest/meta-data/prm"}
SSRF_ISSUER = {"ssrf-issuer": "https://10.0.0.1/as"}
SSRF_ENDPOINTS: dict[str, dict[str, str]] = {
    "ssrf-metadata": {"token_endpoint": "https://169.254.169.254/latest/meta-data/iam/"},
    "ssrf-private": {"token_endpoint": "https://10.0.0.1/token"},
    "ssrf-ipv6": {"registration_endpoint": "https://[fe80::1]/register"},
    "ssrf-decimal": {"token_endpoint": "https://2852039166/token"},
    "ssrf-hex": {"authorization_endpoint": "https://0xA9.0xFE.0xA9.0xFE/authorize"},
    "ssrf-mapped": {"token_endpoint": "https://[::ffff:169.254.169.254]/token"},
    "ssrf-dot": {"revocation_endpoint": "https://169.254.169.254./revoke"},
    "vbscript": {"authorization_endpoint": "vbscript:msgbox(1)"},
    "data": {"authorization_endpoint": "data:text/html,<script>alert(1)</script>"},
}
# -- end of issue 10's kinds ---------------------------------------------------------------


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


# --- stream faults (issue 10): /faults/<kind> --------------------------------------------

FAULT_SIZE = 100 * 1024 * 1024  # a 100 MB tool result
FAULT_CHUNK = 1024 * 1024
# What a tool result may carry that must reach the editor as data, never as a header, a
# terminal command or a cut in a log line.
CONTROL_TEXT = (
    "ok\r\nSet-Cookie: session=stolen; Path=/\r\n\r\n"
    "\x1b[2J\x1b[31mred\x1b[0m \x1b]0;title\x07 nul:\x00 bell:\x07 del:\x7f end"
)


def fault_initialize(message: dict[str, Any], kind: str) -> Response:
    params = message.get("params") or {}
    result = {
        "protocolVersion": params.get("protocolVersion", LATEST_PROTOCOL_VERSION),
        "capabilities": {"tools": {}, "logging": {}},
        "serverInfo": {"name": f"hostile-{kind}", "version": "0.0.0"},
    }
    return JSONResponse(
        {"jsonrpc": "2.0", "id": message["id"], "result": result},
        headers={"Mcp-Session-Id": f"fault-{kind}"},
    )


def sse_event(message: dict[str, Any], event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: message\ndata: {json.dumps(message)}\n\n".encode()


def text_result(request_id: object, text: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "result": {"content": [{"type": "text", "text": text}], "isError": False},
    }


async def huge_text_result(request_id: object, before: bytes, after: bytes) -> AsyncIterator[bytes]:
    """A JSON-RPC answer whose text is FAULT_SIZE bytes, generated a chunk at a time (the
    peer never holds it), between `before` and `after` (an SSE frame, or nothing)."""
    head = json.dumps(text_result(request_id, "")).encode()
    cut = head.index(b'"text": ""') + len(b'"text": "')
    yield before + head[:cut]
    block = b"x" * FAULT_CHUNK
    for _ in range(FAULT_SIZE // FAULT_CHUNK):
        yield block
    yield head[cut:] + after


async def stream_fault(request: Request) -> Response:
    kind = request.path_params["kind"]
    if request.method == "GET":
        if kind == "resume-lost" and request.headers.get("last-event-id"):
            return Response("session not found", status_code=404)
        return Response(status_code=405, headers={"Allow": "POST"})
    if request.method == "DELETE":
        return Response(status_code=200)
    message = await json_rpc(request)
    if message.get("method") == "initialize":
        return fault_initialize(message, kind)
    if "id" not in message:
        return Response(status_code=202)
    request_id = message["id"]
    params = message.get("params") or {}
    if message.get("method") != "tools/call" or params.get("name") == "echo":
        if message.get("method") == "tools/list":
            tools = [{"name": "echo", "inputSchema": {"type": "object"}}]
            return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": {"tools": tools}})
        text = str((params.get("arguments") or {}).get("text", ""))
        return JSONResponse(text_result(request_id, text))
    if kind == "endless":

        async def endless() -> AsyncIterator[bytes]:
            note = {
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": {"level": "debug", "data": "still working"},
            }
            while True:  # until the client goes away
                yield sse_event(note)
                yield b": keep-alive\n\n"
                await asyncio.sleep(0.05)

        return StreamingResponse(endless(), media_type="text/event-stream")
    if kind == "huge-json":
        return StreamingResponse(
            huge_text_result(request_id, b"", b""), media_type="application/json"
        )
    if kind == "huge-sse":
        return StreamingResponse(
            huge_text_result(request_id, b"event: message\ndata: ", b"\n\n"),
            media_type="text/event-stream",
        )
    if kind == "controls" and params.get("name") == "fail":
        error = {"code": -32000, "message": CONTROL_TEXT + "x" * 100_000}
        return JSONResponse({"jsonrpc": "2.0", "id": request_id, "error": error})
    if kind == "controls":
        log = {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "warning", "data": CONTROL_TEXT},
        }
        frames = sse_event(log) + sse_event(text_result(request_id, CONTROL_TEXT))
        return Response(frames, media_type="text/event-stream")
    if kind == "resume-lost":
        note = {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "info", "data": "taken"},
        }
        return Response(sse_event(note, "e1") + b"retry: 50\n\n", media_type="text/event-stream")
    return Response(status_code=404)


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
            # --- stream faults (issue 10) ---
            Route("/faults/{kind}", stream_fault, methods=ALL_METHODS),
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
