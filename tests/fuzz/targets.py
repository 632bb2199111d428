"""The fuzz targets: one function per parser that reads what others send, bytes in.

Each asserts the parser's contract: it gives a value, or refuses with the exception its
docstring names (an `McplsError` subclass, or `MalformedChallenge` for the strict challenge
grammar); anything else escaping is a defect, and so is a broken invariant of the value.
`tests/fuzz/run.py` drives them with atheris; `tests/unit/test_fuzz_corpus.py` replays the
committed corpus (seeds and every crash found) through them in the suite, without atheris.

The HTTP-facing parsers get their bytes through `httpx.MockTransport`: atheris calls a
target thousands of times a second in one process, and the bytes are the peer here; the
suite's tests against real servers cover the network itself.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

from mcpls import config
from mcpls.auth.challenge import (
    BearerChallenge,
    MalformedChallenge,
    find_bearer_challenge,
    parse_www_authenticate,
)
from mcpls.auth.discovery import check_endpoint
from mcpls.auth.flow import CallbackListener, token_request, token_set
from mcpls.auth.metadata import discover
from mcpls.errors import McplsError
from mcpls.store.records import ClientRegistration, TokenSet
from mcpls.transport import http as http_transport
from mcpls.transport.http import HttpTransport

Target = Callable[[bytes], None]

# Where a part of the input ends and the next begins, for targets fed several documents.
SEPARATOR = b"\xff\xfe"


class ContractBroken(AssertionError):
    """A parser gave a value that breaks its own invariants."""


# -- one event loop for the async targets -------------------------------------------------

_loop: asyncio.AbstractEventLoop | None = None
_loop_errors: list[dict[str, Any]] = []


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` on the shared loop; an exception a background task left unhandled (the
    loop's handler hears of it) counts as escaping the parser."""
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
        _loop.set_exception_handler(lambda _, context: _loop_errors.append(context))
    _loop.run_until_complete(coro)
    if _loop_errors:
        context = _loop_errors.pop()
        _loop_errors.clear()
        exception = context.get("exception")
        raise ContractBroken(f"unhandled in a background task: {context.get('message')}") from (
            exception if isinstance(exception, BaseException) else None
        )


def close() -> None:
    """Close the callback listener and the shared loop (a test replaying the corpus ends
    with it; under atheris the process just exits)."""
    global _loop, _listener
    if _loop is None:
        return
    if _listener is not None:
        _loop.run_until_complete(_listener.close())
        _listener = None
    _loop.close()
    _loop = None


def parts(data: bytes, count: int) -> list[bytes]:
    """`data` cut at SEPARATOR into exactly `count` parts (missing ones empty)."""
    pieces = data.split(SEPARATOR, count - 1)
    return pieces + [b""] * (count - len(pieces))


class Chunks(httpx.AsyncByteStream):
    """A body in chunks of the given size: lines and events cut anywhere."""

    def __init__(self, body: bytes, size: int) -> None:
        self.body = body
        self.size = max(size, 1)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), self.size):
            yield self.body[start : start + self.size]


# -- WWW-Authenticate ------------------------------------------------------------------


def challenge(data: bytes) -> None:
    """`parse_www_authenticate`: challenges or `MalformedChallenge`; `find_bearer_challenge`
    (what mcpls acts on): a `BearerChallenge` or None, never an exception."""
    text = data.decode("latin-1") if data[:1] == b"\x00" else data.decode("utf-8", "replace")
    values = text.split("\n")  # several header lines
    try:
        for parsed in parse_www_authenticate(values):
            if parsed.scheme != parsed.scheme.lower():
                raise ContractBroken("a scheme is not lower-cased")
            if any(key != key.lower() for key in parsed.params):
                raise ContractBroken("a parameter name is not lower-cased")
    except MalformedChallenge:
        pass
    bearer = find_bearer_challenge(values)
    if bearer is not None:
        if not isinstance(bearer, BearerChallenge):
            raise ContractBroken(f"find_bearer_challenge gave {type(bearer).__name__}")
        if any(not scope or any(c.isspace() for c in scope) for scope in bearer.scope):
            raise ContractBroken("a scope token is empty or holds whitespace")


# -- protected resource and authorization server metadata ------------------------------

SERVER_URL = "https://mcp.example/mcp"


def metadata(data: bytes) -> None:
    """`discover` over fuzzed documents: an `AuthServer` whose endpoints pass the origin
    policy, or an `McplsError`. Byte 0 picks the flags; then the protected resource
    metadata, the authorization server metadata and a `WWW-Authenticate` value."""
    flags = data[0] if data else 0
    prm, as_metadata, header = parts(data[1:], 3)
    loopback_ok = bool(flags & 1)
    no_prm = bool(flags & 2)
    oauth = config.OAuthConfig(
        trusted_issuers=("https://as.example",) if flags & 4 else (),
        auth_server_metadata_url="https://as.example/meta" if flags & 8 else None,
        resource=False if flags & 16 else None,
    )

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/.well-known/oauth-protected-resource"):
            if no_prm:
                return httpx.Response(404)
            return httpx.Response(200, content=prm)
        return httpx.Response(200, content=as_metadata)

    async def go() -> None:
        challenge_value = find_bearer_challenge(header.decode("latin-1")) if header else None
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            try:
                found = await discover(
                    http, SERVER_URL, challenge_value, oauth, allow_insecure_loopback=loopback_ok
                )
            except McplsError:
                return
        for endpoint in (found.authorization_endpoint, found.token_endpoint, found.issuer):
            try:
                check_endpoint(endpoint, "endpoint", allow_insecure_loopback=loopback_ok)
            except McplsError as exc:
                raise ContractBroken(f"discover accepted an endpoint it refuses: {exc}") from None

    run(go())


# -- settings --------------------------------------------------------------------------


def settings(data: bytes) -> None:
    """The user file read from disk and every settings source merged: a `Settings` with
    warnings at worst, never an exception (a bad entry is a `ConfigError` value)."""
    user_file, init_options, editor = parts(data, 3)
    with tempfile.TemporaryDirectory(prefix="mcpls-fuzz-") as tmp:
        path = Path(tmp) / "servers.json"
        path.write_bytes(user_file)
        raw, warnings = config.read_user_file(path)

    def decoded(part: bytes) -> object:
        try:
            return json.loads(part)
        except (ValueError, RecursionError):  # not what this target is about: the editor
            return None  # sends parsed JSON, which pygls decoded

    merged = config.load(
        (str(path), raw), decoded(init_options), decoded(editor), warnings=tuple(warnings)
    )
    if not all(isinstance(w, str) for w in merged.warnings):
        raise ContractBroken("a warning that is not text")
    for name, server in merged.servers.items():
        if not isinstance(server, config.ServerConfig | config.ConfigError):
            raise ContractBroken(f"server {name!r} is a {type(server).__name__}")


# -- the loopback callback -------------------------------------------------------------

_listener: CallbackListener | None = None
CALLBACK_ANSWERS = (b"HTTP/1.1 200 ", b"HTTP/1.1 400 ", b"HTTP/1.1 404 ", b"HTTP/1.1 405 ",
                    b"HTTP/1.1 409 ", b"HTTP/1.1 431 ")  # fmt: skip


def callback(data: bytes) -> None:
    """Whatever a local process writes to the sign-in callback port: one of the listener's
    answers (or the connection closed), and the listener still serving. A fresh listener
    replaces one whose sign-in completed, so the code and error paths stay reachable."""

    async def go() -> None:
        global _listener
        if _listener is None or _listener.result.done():
            if _listener is not None:
                if not _listener.result.cancelled():
                    _listener.result.exception()  # what `wait` would have read
                await _listener.close()
            _listener = CallbackListener(
                host="127.0.0.1", port=0, state="s", issuer="https://as.example",
                iss_supported=bool(data[:1] == b"i"),
            )  # fmt: skip
            await _listener.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", _listener.port)
        writer.write(data)
        if not data.endswith(b"\n\n") and not data.endswith(b"\r\n\r\n"):
            writer.write(b"\r\n\r\n")  # end the headers: the listener must not wait 10 s
        try:
            await writer.drain()
            answer = await reader.read()
        except ConnectionResetError:  # it answered and closed before reading all we sent
            answer = b""
        writer.close()
        if answer and not answer.startswith(CALLBACK_ANSWERS):
            raise ContractBroken(f"unexpected answer {answer[:40]!r}")
        if not _listener.listening:
            raise ContractBroken("the listener stopped")

    run(go())


# -- the Streamable HTTP response: SSE and JSON ----------------------------------------

REQUEST = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}


def sse(data: bytes) -> None:
    """A POST's answer as an event stream (or JSON): `request` returns the answer to its
    own id, or raises `McplsError`; nothing escapes from the tasks reading the rest."""
    kind = data[0] if data else 0
    content_type = "application/json" if kind & 1 else "text/event-stream"
    chunk = (data[1] if len(data) > 1 else 0) + 1
    body = data[2:]

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return httpx.Response(405)
        return httpx.Response(
            200, headers={"content-type": content_type}, stream=Chunks(body, chunk)
        )

    async def ignore(message: dict[str, Any]) -> None:
        return None

    async def go() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        transport = HttpTransport(
            "http://127.0.0.1:9/mcp",
            on_server_message=ignore,
            log_sink=lambda level, text: None,
            client=client,
        )
        # One stream: a resumption would wait the server's `retry` delay (whatever it says)
        # before a GET the fuzzer cannot steer; the suite tests resumption against servers.
        resumes, http_transport.MAX_RESUMES = http_transport.MAX_RESUMES, 0
        try:
            try:
                result = await transport.request(dict(REQUEST))
            except McplsError:
                return
            if result.get("id") != 1 or not ("result" in result or "error" in result):
                raise ContractBroken(f"an answer that is not to this request: {result!r:.80}")
            # The rest of the stream is read in the background: it too must end cleanly.
            pending = list(transport._router._tasks)
            if pending:
                await asyncio.wait(pending)
        finally:
            http_transport.MAX_RESUMES = resumes
            await transport.close()
            await client.aclose()

    run(go())


# -- token responses -------------------------------------------------------------------

TOKEN_STATUSES = (200, 200, 200, 400, 401, 429, 500)
TOKEN_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain", "")
REGISTRATION = ClientRegistration(
    issuer="https://as.example", client_id="mcpls", client_secret=None,
    token_endpoint_auth_method="none", redirect_uris=("http://127.0.0.1:1/callback",),
    source="dcr",
)  # fmt: skip


def token(data: bytes) -> None:
    """A token endpoint's answer through `token_request` and `token_set`: a `TokenSet`
    that the store can hold (a finite expiry or none) or an `McplsError`."""
    status = TOKEN_STATUSES[data[0] % len(TOKEN_STATUSES)] if data else 200
    content_type = TOKEN_TYPES[data[1] % len(TOKEN_TYPES)] if len(data) > 1 else ""
    body = data[2:]
    previous = TokenSet(
        access_token="old", token_type="Bearer", expires_at=1.0, refresh_token="r",
        scope=("a",), issuer="https://as.example", resource=SERVER_URL,
    )  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"content-type": content_type}, content=body)

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            try:
                response = await token_request(
                    http, "https://as.example/token", REGISTRATION, "refresh_token",
                    refresh_token="r",
                )  # fmt: skip
                tokens = token_set(
                    response, issuer="https://as.example", resource=SERVER_URL,
                    requested_scopes=None, registration=REGISTRATION, redirect_uri=None,
                    previous=previous,
                )  # fmt: skip
            except McplsError:
                return
        if not tokens.access_token:
            raise ContractBroken("a token set without an access token")
        if tokens.expires_at is not None and not math.isfinite(tokens.expires_at):
            raise ContractBroken(f"an expiry that is not a time: {tokens.expires_at}")
        if TokenSet.from_json(json.loads(json.dumps(tokens.to_json()))) != tokens:
            raise ContractBroken("the token set does not survive the store")

    run(go())


TARGETS: dict[str, Target] = {
    "challenge": challenge,
    "metadata": metadata,
    "settings": settings,
    "callback": callback,
    "sse": sse,
    "token": token,
}
