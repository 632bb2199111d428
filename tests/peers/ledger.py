"""The secret ledger: what a test's peers issued or received, for the suite's leak scan.

Every test gets a ledger file (tests/secret_scan.py names it in $MCPLS_TEST_LEDGER, which
the peers inherit); a peer appends one JSON line `{"kind", "value", "peer"}` per secret.
Python peers wrap their ASGI app in `wrap(app, peer)`; the Node peers are started with
ledger.cjs preloaded, which does the same on the wire. Sniffing HTTP instead of hooking
each server's internals records the same fields whichever server issued them (the SDK's
provider, oidc-provider, the TypeScript demo, the hostile peer) and needs one line per
peer. Without $MCPLS_TEST_LEDGER (a peer started by hand) nothing is recorded.

Recorded: in responses, the JSON fields of RESPONSE_FIELDS, the `code` of a redirect's
Location, the Mcp-Session-Id header; in requests, the form fields of FORM_FIELDS, the
credentials of an Authorization header, the Mcp-Session-Id header.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable
from urllib.parse import parse_qs, unquote, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LEDGER_ENV = "MCPLS_TEST_LEDGER"
# Shorter values (a fixed test string, a counter) would match by chance; no peer issues a
# secret this short.
MIN_LENGTH = 8
# A JSON body larger than this is no token response: not parsed.
BODY_LIMIT = 1 << 20

RESPONSE_FIELDS = {
    "access_token": "access token",
    "refresh_token": "refresh token",
    "id_token": "id token",
    "client_secret": "client secret",
    "device_code": "device code",
    "registration_access_token": "registration access token",
}
FORM_FIELDS = {
    "code": "authorization code",
    "code_verifier": "PKCE code verifier",
    "refresh_token": "refresh token",
    "client_secret": "client secret",
    "device_code": "device code",
    "client_assertion": "client assertion",
}
SESSION_HEADER = "mcp-session-id"


def record(kind: str, value: object, peer: str) -> None:
    """Append one secret to this test's ledger (nothing without one, or for short values)."""
    path = os.environ.get(LEDGER_ENV)
    if not path or not isinstance(value, str) or len(value) < MIN_LENGTH:
        return
    line = json.dumps({"kind": kind, "value": value, "peer": peer}) + "\n"
    # One small O_APPEND write per line: peers writing at once do not interleave.
    with open(path, "a", encoding="utf-8") as ledger:
        ledger.write(line)


def from_json_body(body: bytes, peer: str) -> None:
    """The secrets of a JSON response (token, registration, device authorization)."""
    if len(body) > BODY_LIMIT:
        return
    try:
        document = json.loads(body)
    except ValueError:
        return
    if isinstance(document, dict):
        for field, kind in RESPONSE_FIELDS.items():
            record(kind, document.get(field), peer)


def from_form_body(body: bytes, peer: str) -> None:
    """The secrets of a form request (token, revocation, device authorization)."""
    if len(body) > BODY_LIMIT:
        return
    form = parse_qs(body.decode("utf-8", "replace"))
    for field, kind in FORM_FIELDS.items():
        for value in form.get(field, []):
            record(kind, value, peer)


def from_request_headers(headers: Iterable[tuple[str, str]], peer: str) -> None:
    """Bearer tokens, client credentials and session ids a client sent."""
    for name, value in headers:
        if name == SESSION_HEADER:
            record("MCP session id", value, peer)
        elif name == "authorization":
            scheme, _, credentials = value.partition(" ")
            if scheme.lower() == "bearer":
                record("access token", credentials.strip(), peer)
            elif scheme.lower() == "basic":
                record("client credentials (Basic)", credentials.strip(), peer)
                try:
                    decoded = base64.b64decode(credentials.strip(), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    continue
                record("client secret", unquote(decoded.partition(":")[2]), peer)


def from_response_headers(headers: Iterable[tuple[str, str]], peer: str) -> None:
    """Session ids a server assigned, codes of an authorization redirect."""
    for name, value in headers:
        if name == SESSION_HEADER:
            record("MCP session id", value, peer)
        elif name == "location":
            for code in parse_qs(urlsplit(value).query).get("code", []):
                record("authorization code", code, peer)


def _decoded(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw]


class Sniffer:
    """ASGI middleware recording the secrets of every exchange (see the module docstring)."""

    def __init__(self, app: ASGIApp, peer: str) -> None:
        self.app = app
        self.peer = peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _decoded(scope["headers"])
        from_request_headers(headers, self.peer)
        form = dict(headers).get("content-type", "").startswith("application/x-www-form")
        request_body: list[bytes] = []
        response_body: list[bytes] = []
        is_json = False

        async def tee_receive() -> Message:
            message = await receive()
            if form and message["type"] == "http.request":
                request_body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    from_form_body(b"".join(request_body), self.peer)
            return message

        async def tee_send(message: Message) -> None:
            nonlocal is_json
            if message["type"] == "http.response.start":
                answer = _decoded(message.get("headers", []))
                from_response_headers(answer, self.peer)
                is_json = "json" in dict(answer).get("content-type", "")
            elif message["type"] == "http.response.body" and is_json:
                response_body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    from_json_body(b"".join(response_body), self.peer)
            await send(message)

        await self.app(scope, tee_receive, tee_send)


def wrap(app: ASGIApp, peer: str) -> ASGIApp:
    """`app`, recording into the test's ledger when there is one (else unchanged)."""
    return Sniffer(app, peer) if os.environ.get(LEDGER_ENV) else app
