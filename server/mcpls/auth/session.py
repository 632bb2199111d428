"""One server's OAuth state as an `httpx.Auth`: attach the bearer, refresh before it
expires (one refresh at a time, across processes), refresh once on a 401; plus the
interactive login and the logout that the editor asks for.

The transport never mentions OAuth: it has `auth=`. A 401/403 that refreshing cannot
cure reaches the transport, which raises `AuthRequired` with the challenge.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import httpx

from mcpls.auth.challenge import BearerChallenge, MalformedChallenge, find_bearer_challenge
from mcpls.auth.discovery import canonical_resource
from mcpls.auth.flow import (
    CallbackListener,
    InvalidGrant,
    OAuthFailed,
    Pkce,
    authorization_url,
    check_endpoint,
    is_loopback_url,
    revoke,
    stable_callback_port,
    token_request,
    token_set,
)
from mcpls.auth.metadata import AuthServer, discover
from mcpls.auth.registration import metadata_document, preregistered, register
from mcpls.auth.scopes import select_scopes
from mcpls.auth.store import ClientRegistration, StoreError, TokenSet, TokenStore
from mcpls.config import ServerConfig, Settings
from mcpls.errors import AuthRequired, McplsError, Other

REFRESH_LEAD_S = 30.0
REREGISTER_ERRORS = ("invalid_client", "unauthorized_client", "invalid_scope")
Log = Callable[[str, str], None]
OpenUrl = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class AuthInfo:
    """What `ServerStatus.auth` shows; never a secret."""

    authenticated: bool
    expires_at: float | None = None
    scopes: tuple[str, ...] = ()
    required_scopes: tuple[str, ...] = ()
    issuer: str | None = None

    def to_status(self) -> dict[str, object]:
        status: dict[str, object] = {"authenticated": self.authenticated}
        if self.expires_at is not None:
            status["expiresAt"] = int(self.expires_at)
        if self.scopes:
            status["scopes"] = list(self.scopes)
        if self.required_scopes:
            status["requiredScopes"] = list(self.required_scopes)
        if self.issuer:
            status["issuer"] = self.issuer
        return status


def parse_challenge(values: tuple[str, ...]) -> BearerChallenge | None:
    """The Bearer challenge of a 401/403, or None (absent or malformed: fall back)."""
    if not values:
        return None
    try:
        return find_bearer_challenge(list(values))
    except MalformedChallenge:
        return None


class OAuthSession(httpx.Auth):
    """OAuth for one configured MCP server."""

    def __init__(
        self,
        config: ServerConfig,
        settings: Settings,
        store: TokenStore,
        *,
        log: Log,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        assert config.url is not None
        self.config = config
        self.settings = settings
        self.store = store
        self.log = log
        self.server_url = config.url
        self.store_key = canonical_resource(config.url)
        self.http = http or httpx.AsyncClient(timeout=30.0, follow_redirects=False)
        self.auth_server: AuthServer | None = None
        self.tokens: TokenSet | None = None
        self.required_scopes: tuple[str, ...] = ()
        self.last_challenge: BearerChallenge | None = None
        self.pending: CallbackListener | None = None
        self._refresh_lock = asyncio.Lock()
        self._loaded = False
        # Told when the stored sign-in changes (refresh, login), to push the status.
        self.on_change: Callable[[], None] = lambda: None

    # -- persisted state -----------------------------------------------------------------

    def _binding_name(self) -> str:
        return f"auth-server|{self.store_key}"

    def _load(self) -> None:
        """Tokens and the authorization server from the store, once per process."""
        if self._loaded:
            return
        self._loaded = True
        try:
            raw = self.store.load_secret(self._binding_name())
            if raw:
                self.auth_server = AuthServer.from_json(json.loads(raw))
            if self.auth_server is not None:
                self.tokens = self.store.load_tokens(self.store_key, self.auth_server.issuer)
        except (StoreError, ValueError, KeyError, TypeError) as exc:
            self.log("warning", f"stored sign-in unreadable, treated as absent: {exc}")
            self.auth_server, self.tokens = None, None

    def _save(self, tokens: TokenSet) -> None:
        assert self.auth_server is not None
        self.store.save_secret(self._binding_name(), json.dumps(self.auth_server.to_json()))
        self.store.save_tokens(tokens)
        self.tokens = tokens
        self.on_change()  # expiresAt and scopes are part of the status the editor shows

    def info(self) -> AuthInfo:
        """For `ServerStatus.auth`."""
        self._load()
        tokens = self.tokens
        return AuthInfo(
            authenticated=tokens is not None,
            expires_at=tokens.expires_at if tokens else None,
            scopes=tokens.scope if tokens else (),
            required_scopes=self.required_scopes,
            issuer=self.auth_server.issuer if self.auth_server else None,
        )

    # -- httpx.Auth ----------------------------------------------------------------------

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        tokens = await self.usable_tokens()
        if tokens is not None and self._same_origin(request.url):
            request.headers["Authorization"] = f"Bearer {tokens.access_token}"
        response = yield request
        if response.status_code != 401 or tokens is None:
            return
        # Rejected before it expired: refresh once and retry; else the transport says 401.
        refreshed = await self._refresh(tokens, forced=True)
        if refreshed is not None:
            request.headers["Authorization"] = f"Bearer {refreshed.access_token}"
            yield request

    def _same_origin(self, url: httpx.URL) -> bool:
        # The bearer token is for this server only, never for another origin.
        server = httpx.URL(self.server_url)
        return (url.scheme, url.host, url.port) == (server.scheme, server.host, server.port)

    async def usable_tokens(self) -> TokenSet | None:
        """A token that is not known to be expired, refreshing when it is close."""
        self._load()
        tokens = self.tokens
        if tokens is None:
            return None
        if expiring(tokens):
            return await self._refresh(tokens, forced=False)
        return tokens

    async def _refresh(self, seen: TokenSet, *, forced: bool) -> TokenSet | None:
        """Refresh `seen`, or adopt what another task or process already got instead."""
        async with self._refresh_lock:
            if self.tokens is not None and self.tokens.access_token != seen.access_token:
                return self.tokens  # another task in this process refreshed meanwhile
            server = self.auth_server
            if server is None:
                return None
            async with self.store.locked(self.store_key, server.issuer):
                # Another editor window may have rotated the refresh token: use theirs.
                current = self.store.load_tokens(self.store_key, server.issuer)
                if current is not None and current.access_token != seen.access_token:
                    if not expiring(current):
                        self.tokens = current
                        return current
                    seen = current
                elif current is None:
                    self.tokens = None
                    return None
                if not seen.refresh_token:
                    return None if forced or _expired(seen) else seen
                try:
                    refreshed = await self._refresh_grant(server, seen)
                except InvalidGrant:
                    # The grant is gone (revoked, rotated elsewhere): sign in again.
                    self.store.delete_tokens(self.store_key, server.issuer)
                    self.tokens = None
                    self.log("warning", "the sign-in expired or was revoked; authenticate again")
                    raise SignInExpired(
                        f"{self.config.name}: the sign-in expired or was revoked; "
                        "authenticate again"
                    ) from None
                self._save(refreshed)
                return refreshed

    async def _refresh_grant(self, server: AuthServer, tokens: TokenSet) -> TokenSet:
        registration = self._registration(server)
        if registration is None:
            raise InvalidGrant("no client registration to refresh with")
        assert tokens.refresh_token is not None
        data = await token_request(
            self.http,
            server.token_endpoint,
            registration,
            "refresh_token",
            refresh_token=tokens.refresh_token,
            resource=server.resource,
        )
        return token_set(
            data,
            issuer=server.issuer,
            resource=self.store_key,
            requested_scopes=None,
            previous=tokens,
        )

    def _registration(self, server: AuthServer) -> ClientRegistration | None:
        return (
            preregistered(server, self.config.oauth, self.store)
            or metadata_document(server, self.settings.client_metadata_document_url)
            or self.store.load_registration(server.issuer)
        )

    # -- step-up -------------------------------------------------------------------------

    def note_challenge(self, values: tuple[str, ...]) -> None:
        """Remember a 401/403 challenge; an `insufficient_scope` one sets requiredScopes."""
        challenge = parse_challenge(values)
        self.last_challenge = challenge
        if challenge is not None and challenge.insufficient_scope:
            self.required_scopes = challenge.scope

    # -- interactive login -----------------------------------------------------------------

    async def login(self, open_url: OpenUrl, *, announce: Callable[[str], None]) -> AuthInfo:
        """Discovery → registration → browser → callback → tokens. One retry with a new
        registration if the server no longer knows ours."""
        try:
            return await self._login_once(open_url, announce, fresh_registration=False)
        except _Reregister as exc:
            self.log("info", f"registering mcpls again with the authorization server ({exc})")
            return await self._login_once(open_url, announce, fresh_registration=True)

    async def _login_once(
        self, open_url: OpenUrl, announce: Callable[[str], None], *, fresh_registration: bool
    ) -> AuthInfo:
        self._load()
        server = await discover(
            self.http,
            self.server_url,
            self.last_challenge,
            self.config.oauth,
            allow_insecure_loopback=self.settings.allow_insecure_loopback,
        )
        previous = self.tokens.scope if self.tokens else ()
        challenge_scope = self.last_challenge.scope if self.last_challenge else ()
        scopes = select_scopes(
            challenge_scope=tuple(dict.fromkeys((*challenge_scope, *self.required_scopes))),
            prm_scopes_supported=server.prm_scopes,
            as_scopes_supported=server.scopes_supported,
            previously_granted=previous,
            configured=self.config.oauth.scopes,
        )
        if self.required_scopes:
            # Step-up: what the server said this operation needs is asked for, always,
            # configured scopes or not (MCP 2025-11-25 §Scope Challenge Handling).
            scopes = tuple(dict.fromkeys((*(scopes or ()), *self.required_scopes)))
        listener = await self._listener(server)
        self.pending = listener
        try:
            registration = await self._client_for(
                server, listener.redirect_uri, scopes, fresh=fresh_registration
            )
            pkce = Pkce.new()
            url = authorization_url(
                server.authorization_endpoint,
                client_id=registration.client_id,
                redirect_uri=listener.redirect_uri,
                scopes=scopes,
                state=listener.state,
                pkce=pkce,
                resource=server.resource,
            )
            announce(url)
            await open_url(url)
            try:
                result = await listener.wait()
                data = await token_request(
                    self.http,
                    server.token_endpoint,
                    registration,
                    "authorization_code",
                    code=result.code,
                    redirect_uri=listener.redirect_uri,
                    code_verifier=pkce.verifier,
                    resource=server.resource,
                    client_id=(
                        registration.client_id
                        if registration.token_endpoint_auth_method != "none"
                        else None
                    ),
                )
            except OAuthFailed as exc:
                # A registration we made can be made again: once, with today's scopes and
                # redirect URI (the server forgot it, or it predates a step-up).
                if (
                    registration.source == "dcr"
                    and not fresh_registration
                    and exc.error in REREGISTER_ERRORS
                ):
                    raise _Reregister(exc.error or "") from exc
                raise
        finally:
            self.pending = None
            await listener.close()
        tokens = token_set(
            data, issuer=server.issuer, resource=self.store_key, requested_scopes=scopes
        )
        self.auth_server = server
        async with self.store.locked(self.store_key, server.issuer):
            self._save(tokens)
        self.required_scopes = ()
        return self.info()

    async def _listener(self, server: AuthServer) -> CallbackListener:
        oauth = self.config.oauth
        host = oauth.callback_host or self.settings.callback_host
        fixed = oauth.redirect_uri
        if fixed is not None:
            port = (urlsplit(fixed).port or 80) if is_loopback_url(fixed) else 0
        else:
            port = oauth.callback_port or stable_callback_port(self.store_key)
        listener = CallbackListener(
            host=host,
            port=port,
            state=secrets.token_urlsafe(32),
            issuer=server.issuer,
            iss_supported=server.iss_supported,
            redirect_uri=fixed,
        )
        try:
            await listener.start()
        except OSError:
            if oauth.callback_port or fixed or oauth.client_id:
                raise Other(
                    f"the sign-in callback port {port} on {host} is in use; close what uses "
                    "it, or change oauth.callbackPort (and the client's registered redirect URI)"
                ) from None
            # Another port is fine only for a registration we make (and re-make) ourselves.
            listener = CallbackListener(
                host=host,
                port=0,
                state=listener.state,
                issuer=server.issuer,
                iss_supported=server.iss_supported,
            )
            await listener.start()
        return listener

    async def _client_for(
        self,
        server: AuthServer,
        redirect_uri: str,
        scopes: tuple[str, ...] | None,
        *,
        fresh: bool,
    ) -> ClientRegistration:
        fixed = preregistered(server, self.config.oauth, self.store) or metadata_document(
            server, self.settings.client_metadata_document_url
        )
        if fixed is not None:
            return fixed
        cached = None if fresh else self.store.load_registration(server.issuer)
        if cached is not None and redirect_uri in cached.redirect_uris:
            return cached
        # No `scope` in the registration unless the person configured scopes: servers then
        # allow every scope they have, so a later step-up does not fail with invalid_scope
        # (and cost a second sign-in), and strict servers do not refuse an unknown one.
        # With configured scopes, register what this sign-in asks for (step-up included).
        registration = await register(
            self.http,
            server,
            self.config.oauth,
            redirect_uri,
            scopes if self.config.oauth.scopes else None,
            allow_insecure_loopback=self.settings.allow_insecure_loopback,
        )
        self.store.save_registration(registration)
        return registration

    def complete(self, redirect_url: str) -> None:
        """The pasted final redirect URL of a pending sign-in (no loopback reachable)."""
        listener = self.pending
        if listener is None:
            raise Other(f"{self.config.name} has no sign-in waiting for its answer")
        query = dict(parse_qsl(urlsplit(redirect_url).query))
        listener.deliver(query)

    # -- logout ----------------------------------------------------------------------------

    async def logout(self, *, forget_client: bool) -> None:
        """Delete tokens (revoking them where the server offers it); maybe the client too."""
        self._load()
        server, tokens = self.auth_server, self.tokens
        if server is not None:
            endpoint = server.metadata.get("revocation_endpoint")
            registration = self._registration(server)
            if tokens is not None and isinstance(endpoint, str) and registration is not None:
                try:
                    check_endpoint(
                        endpoint,
                        "revocation endpoint",
                        allow_insecure_loopback=self.settings.allow_insecure_loopback,
                    )
                    if tokens.refresh_token:
                        await revoke(
                            self.http,
                            endpoint,
                            registration,
                            tokens.refresh_token,
                            "refresh_token",
                        )
                    await revoke(
                        self.http, endpoint, registration, tokens.access_token, "access_token"
                    )
                except McplsError as exc:
                    self.log("warning", f"could not revoke the tokens: {exc.message}")
            self.store.delete_tokens(self.store_key, server.issuer)
            if forget_client:
                self.store.delete_registration(server.issuer)
        self.tokens = None
        self.required_scopes = ()

    async def close(self) -> None:
        await self.http.aclose()


class SignInExpired(AuthRequired):
    """The refresh token was refused (revoked, expired, rotated elsewhere)."""


class _Reregister(Exception):
    """The sign-in failed in a way a new dynamic registration can cure."""


def _expired(tokens: TokenSet) -> bool:
    return tokens.expires_at is not None and tokens.expires_at <= time.time()


def refresh_lead(tokens: TokenSet) -> float:
    """How long before expiry to refresh: 30 s, or half the lifetime of a shorter-lived
    token (else a token that lives 20 s would be refreshed on every request)."""
    if tokens.expires_at is None or tokens.obtained_at is None:
        return REFRESH_LEAD_S
    return min(REFRESH_LEAD_S, max(0.0, (tokens.expires_at - tokens.obtained_at) / 2))


def expiring(tokens: TokenSet, now: float | None = None) -> bool:
    """Close enough to expiry that it should be refreshed before use."""
    if tokens.expires_at is None:
        return False
    return tokens.expires_at - (time.time() if now is None else now) < refresh_lead(tokens)
