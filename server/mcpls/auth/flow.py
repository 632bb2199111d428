"""The interactive part of OAuth 2.1: PKCE, the authorization URL, the loopback callback,
and the token endpoint (code exchange, refresh, revocation).

authlib provides PKCE (RFC 7636), the grant URI, the token request body and client
authentication (RFC 6749 §2.3); this module adds what MCP needs on top: `resource`
(RFC 8707) everywhere, the `iss` check (RFC 9207), a callback listener bound to
loopback that serves exactly one flow, and token responses in JSON or form encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from mcpls.auth.client_auth import authenticate
from mcpls.auth.discovery import IssuerMismatch, check_callback_iss, is_loopback_url
from mcpls.errors import (
    JSON_ERRORS,
    ConfigInvalid,
    ConnectionFailed,
    InvalidClient,
    InvalidGrant,
    McplsError,
    OAuthRefused,
    ProtocolError,
    quote,
)
from mcpls.net import fetch
from mcpls.store.records import ClientRegistration, TokenSet

CALLBACK_PATH = "/callback"
CALLBACK_TIMEOUT_S = 300.0
# A port per server that stays the same across runs, so registrations keep matching.
STABLE_PORT_BASE = 20000
STABLE_PORT_SPAN = 10000
# The callback request line and headers: a browser's are a few kilobytes.
MAX_CALLBACK_LINE = 16 * 1024
# OAuth errors at the token endpoint that mean the client itself is refused (RFC 6749 §5.2).
CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})


def stable_callback_port(key: str) -> int:
    """The loopback port for a server: derived from its URL, the same every run."""
    digest = hashlib.sha256(key.encode()).digest()
    return STABLE_PORT_BASE + int.from_bytes(digest[:4], "big") % STABLE_PORT_SPAN


@dataclass(frozen=True)
class Pkce:
    """RFC 7636 verifier and S256 challenge."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(64)[:96]  # 43..128 characters (§4.1)
        return cls(verifier, str(create_s256_code_challenge(verifier)))

    def __repr__(self) -> str:
        return "Pkce(<redacted>)"


def authorization_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: tuple[str, ...] | None,
    state: str,
    pkce: Pkce,
    resource: str | None,
) -> str:
    """The URL the person opens (RFC 6749 §4.1.1 + PKCE + RFC 8707 `resource`)."""
    extra: dict[str, str] = {
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    if resource is not None:
        extra["resource"] = resource
    url: str = prepare_grant_uri(
        endpoint,
        client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=" ".join(scopes) if scopes else None,
        state=state,
        **extra,
    )
    return url


# -- the callback -----------------------------------------------------------------------


class StateMismatch(OAuthRefused):
    """An answer that is not for this sign-in: stale, or sent by someone else."""


@dataclass(frozen=True)
class CallbackResult:
    """What came back to the redirect URI, checked."""

    code: str


def check_redirect(
    query: Mapping[str, str],
    *,
    state: str,
    issuer: str,
    iss_supported: bool,
) -> CallbackResult:
    """Validate an authorization response: `state`, then `iss` (RFC 9207 §2.4), then code.

    The AS's `error_description` is shown only after `iss` passed, so that a forged
    response cannot put words in front of the person.
    """
    if query.get("state") != state:
        raise StateMismatch(
            "the sign-in answer did not match the request (state mismatch); "
            "it may be stale or forged. Authenticate again."
        )
    try:
        check_callback_iss(iss=query.get("iss"), issuer=issuer, iss_supported=iss_supported)
    except IssuerMismatch as exc:
        raise OAuthRefused(f"the sign-in answer came from the wrong issuer: {exc}") from None
    error = query.get("error")
    if error:
        description = query.get("error_description", "")
        text = f"the authorization server refused: {error}"
        raise OAuthRefused(
            text + (f" ({quote(description)})" if description else ""), error=error[:64]
        )
    code = query.get("code")
    if not code:
        raise OAuthRefused("the sign-in answer carried no authorization code")
    return CallbackResult(code)


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>mcpls</title></head>
<body style="font-family:sans-serif;margin:3em"><h2>{title}</h2><p>{text}</p></body></html>"""


class CallbackListener:
    """One loopback HTTP listener for one flow. Only an answer with this flow's `state`
    ends it: anything else (a stale tab, another page or process probing the port) gets
    400 and the listener keeps waiting for the real answer."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        state: str,
        issuer: str,
        iss_supported: bool,
        redirect_uri: str | None = None,
    ) -> None:
        # A configured redirect URI is served exactly (its path); one that does not point
        # at this machine (a relay, SSH) has no listener: the answer is pasted back.
        self._fixed_redirect_uri = redirect_uri
        if redirect_uri is not None and is_loopback_url(redirect_uri):
            parts = urlsplit(redirect_uri)
            host = parts.hostname or host
            port = parts.port or 80
        if not is_loopback_url(f"http://{_bracketed(host)}/"):
            raise ConfigInvalid(
                f"the sign-in callback host {quote(host)} is not this machine; mcpls listens "
                "on loopback only (callbackHost: 127.0.0.1, localhost or ::1)"
            )
        self.host = host
        self.port = port
        self.state = state
        self.path = urlsplit(redirect_uri).path or "/" if redirect_uri else CALLBACK_PATH
        self._issuer = issuer
        self._iss_supported = iss_supported
        self._server: asyncio.Server | None = None
        self.result: asyncio.Future[CallbackResult] = asyncio.get_running_loop().create_future()

    @property
    def redirect_uri(self) -> str:
        if self._fixed_redirect_uri is not None:
            return self._fixed_redirect_uri
        return f"http://{_bracketed(self.host)}:{self.port}{CALLBACK_PATH}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Bind a loopback address only; OSError when the port is taken."""
        if self._fixed_redirect_uri is not None and not is_loopback_url(self._fixed_redirect_uri):
            return
        # "localhost" is how the redirect URI is spelt; the socket binds the address itself.
        address = "127.0.0.1" if self.host == "localhost" else self.host
        self._server = await asyncio.start_server(
            self._serve, address, self.port, limit=MAX_CALLBACK_LINE
        )
        sockets = self._server.sockets
        if self.port == 0 and sockets:
            self.port = int(sockets[0].getsockname()[1])

    def deliver(self, query: Mapping[str, str]) -> CallbackResult:
        """Check an answer (from the listener or pasted back) and resolve the flow. An
        answer for another sign-in (wrong or no `state`) is refused and changes nothing."""
        try:
            result = check_redirect(
                query, state=self.state, issuer=self._issuer, iss_supported=self._iss_supported
            )
        except StateMismatch:
            raise
        except OAuthRefused as exc:
            if not self.result.done():
                self.result.set_exception(exc)
            raise
        if not self.result.done():
            self.result.set_result(result)
        return result

    async def wait(self, timeout: float = CALLBACK_TIMEOUT_S) -> CallbackResult:
        """The code, or OAuthRefused; gives up after five minutes."""
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self.result)
        except TimeoutError:
            raise OAuthRefused(
                f"no sign-in answer within {timeout / 60:g} minutes; authenticate again"
            ) from None
        finally:
            await self.close()

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request_line = await reader.readline()
                while (await reader.readline()).strip():
                    pass  # headers: nothing in them matters here
            status, title, text = self._answer(request_line.decode("latin-1"))
        except (ValueError, asyncio.LimitOverrunError):
            # A line longer than any browser sends (StreamReader raises ValueError).
            status, title, text = "431 Request Header Fields Too Large", "Not here", "Too long."
        except (TimeoutError, ConnectionError, UnicodeError):
            writer.close()
            return
        body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        with contextlib.suppress(ConnectionError):
            writer.write(head + body)
            await writer.drain()
        writer.close()

    def _answer(self, request_line: str) -> tuple[str, str, str]:
        parts = request_line.split()
        if len(parts) < 2 or parts[0] != "GET":
            return "405 Method Not Allowed", "Not here", "This address only takes the sign-in."
        target = urlsplit(parts[1])
        if target.path != self.path:
            return "404 Not Found", "Not here", "This address only takes the sign-in."
        if self.result.done():
            return "409 Conflict", "Already done", "This sign-in was already completed."
        try:
            self.deliver(dict(parse_qsl(target.query)))
        except StateMismatch:
            return (
                "400 Bad Request",
                "Not this sign-in",
                "This answer does not belong to the sign-in in progress; it was ignored.",
            )
        except OAuthRefused as exc:
            return "400 Bad Request", "Sign-in failed", exc.message
        return "200 OK", "Signed in", "mcpls has the sign-in. You can close this tab."


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# -- the token endpoint ----------------------------------------------------------------


def _parse_token_response(status: int, content_type: str, text: str) -> dict[str, Any]:
    if content_type == "application/x-www-form-urlencoded" or (
        content_type != "application/json" and "=" in text and not text.lstrip().startswith("{")
    ):
        return dict(parse_qsl(text))
    try:
        data = json.loads(text)
    except JSON_ERRORS:
        raise ProtocolError(
            f"the token endpoint answered HTTP {status} with something that "
            "is neither JSON nor a form"
        ) from None
    if not isinstance(data, dict):
        raise ProtocolError("the token endpoint answered with JSON that is not an object")
    return data


async def token_request(
    http: httpx.AsyncClient,
    endpoint: str,
    registration: ClientRegistration,
    grant_type: str,
    **params: str | None,
) -> dict[str, Any]:
    """POST to the token endpoint with the registered client authentication (RFC 6749
    §3.2); the answer is read with a size cap and one deadline (`net.fetch`)."""
    form = {"grant_type": grant_type, **{k: v for k, v in params.items() if v}}
    headers, body = authenticate(registration, form)
    answer = await fetch(http, "POST", endpoint, headers=headers, content=body)
    if answer.status_code >= 500 or answer.status_code == 429:
        # The server is down or busy (RFC 6585 §4): the sign-in is still good, try later.
        wait = answer.headers.get("retry-after")
        raise ConnectionFailed(
            f"the token endpoint {endpoint} answered HTTP {answer.status_code}"
            + (f" (retry after {quote(wait, 20)} s)" if wait else "")
            + "; the sign-in is kept and mcpls tries again"
        )
    data = _parse_token_response(answer.status_code, answer.content_type, answer.text)
    if answer.status_code >= 400 or "error" in data:
        error = str(data.get("error", f"HTTP {answer.status_code}"))
        description = data.get("error_description")
        text = f"the token endpoint refused ({quote(error, 40)}" + (
            f": {quote(description)})" if isinstance(description, str) else ")"
        )
        if error == "invalid_grant":
            raise InvalidGrant(text, error=error)
        if error in CLIENT_ERRORS:
            raise InvalidClient(text, error=error)
        raise OAuthRefused(text, error=error[:64])
    return data


def token_set(
    data: Mapping[str, Any],
    *,
    issuer: str,
    resource: str,
    requested_scopes: tuple[str, ...] | None,
    registration: ClientRegistration,
    redirect_uri: str | None,
    previous: TokenSet | None = None,
) -> TokenSet:
    """A stored token from a token response; keeps the old refresh token if none came."""
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProtocolError("the token endpoint answered without an access_token")
    token_type = str(data.get("token_type", "Bearer"))
    if token_type.lower() != "bearer":
        raise ProtocolError(
            f"the token endpoint issued a {quote(token_type, 40)} token; mcpls uses Bearer"
        )
    now = time.time()
    expires_in = data.get("expires_in")
    try:
        expires_at = now + float(expires_in) if expires_in is not None else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past any float
        expires_at = None
    if expires_at is not None and not math.isfinite(expires_at):
        expires_at = None  # "inf" or "nan": no expiry a refresh could be planned on
    refresh = data.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        refresh = previous.refresh_token if previous else None
    scope_text = data.get("scope")
    if isinstance(scope_text, str):
        scope = tuple(scope_text.split())
    elif previous is not None and not requested_scopes:
        scope = previous.scope
    else:
        scope = requested_scopes or ()
    return TokenSet(
        access_token=access,
        token_type="Bearer",
        expires_at=expires_at,
        refresh_token=refresh,
        scope=scope,
        issuer=issuer,
        resource=resource,
        obtained_at=now,
        client_id=registration.client_id,
        redirect_uri=redirect_uri,
    )


async def revoke(
    http: httpx.AsyncClient,
    endpoint: str,
    registration: ClientRegistration,
    token: str,
    hint: str,
) -> None:
    """RFC 7009 revocation, with the same client authentication as the token endpoint.
    Failures are not the person's problem (the tokens are deleted all the same)."""
    headers, body = authenticate(registration, {"token": token, "token_type_hint": hint})
    with contextlib.suppress(McplsError):
        await fetch(http, "POST", endpoint, headers=headers, content=body)
