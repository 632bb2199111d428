"""The interactive sign-in of one server (OAuth 2.1 authorization code with PKCE):
discovery → registration → browser → loopback callback → tokens. One retry with a new
registration when the authorization server no longer knows the one mcpls made.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from mcpls.auth.challenge import BearerChallenge
from mcpls.auth.device import (
    DeviceCode,
    RequestedMethod,
    choose_method,
    device_flow_offered,
    poll_for_tokens,
    request_device_code,
)
from mcpls.auth.flow import (
    CALLBACK_PATH,
    CLIENT_ERRORS,
    CallbackListener,
    Pkce,
    authorization_url,
    stable_callback_port,
    token_request,
    token_set,
)
from mcpls.auth.metadata import AuthServer, discover
from mcpls.auth.registration import (
    choose_registration,
    metadata_document,
    preregistered,
    register,
)
from mcpls.auth.scopes import select_scopes
from mcpls.auth.tokens import TokenManager
from mcpls.config import AuthPolicy, ServerConfig
from mcpls.errors import ConfigInvalid, OAuthRefused
from mcpls.store import Store
from mcpls.store.records import ClientRegistration

OpenUrl = Callable[[str], Awaitable[None]]
Announce = Callable[[str], None]
# Refusals at the token endpoint that a new dynamic registration can cure, once.
REREGISTER_ERRORS = frozenset({*CLIENT_ERRORS, "invalid_scope"})


def _no_code(code: DeviceCode) -> None:
    """Where nobody shows the device sign-in's code."""


@dataclass(frozen=True)
class SignInMethod:
    """How the person signs in: `browser` (authorization code, loopback callback),
    `device` (RFC 8628: a code entered on any device), or `auto` (the device grant where
    `headless` and the server offers it). `show_code` puts the device grant's user code and
    verification URI in front of the person."""

    requested: RequestedMethod = "browser"
    headless: bool = False
    show_code: Callable[[DeviceCode], None] = _no_code


@dataclass(frozen=True)
class SignInRequest:
    """What one sign-in asks for."""

    challenge: BearerChallenge | None
    required_scopes: tuple[str, ...]
    open_url: OpenUrl
    announce: Announce
    method: SignInMethod = SignInMethod()


class _Reregister(Exception):
    """The sign-in failed in a way a new dynamic registration can cure."""


class _DeviceUnavailable(Exception):
    """The device authorization endpoint refused this client (a configured client made
    without the grant): a sign-in that chose the device grant by itself uses the browser."""


class SignIn:
    """The sign-in of one server; `pending` is the listener while one waits."""

    def __init__(
        self,
        config: ServerConfig,
        policy: AuthPolicy,
        store: Store,
        tokens: TokenManager,
        http: Callable[[], httpx.AsyncClient],
        log: Callable[[str, str], None],
    ) -> None:
        assert config.url is not None
        self.config = config
        self.policy = policy
        self.store = store
        self.tokens = tokens
        self._http = http
        self.log = log
        self.pending: CallbackListener | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        """The client for the authorization server (made on first use)."""
        return self._http()

    def default_redirect_port(self) -> int:
        return self.config.oauth.callback_port or stable_callback_port(self.tokens.resource)

    def default_redirect_uri(self) -> str:
        """The redirect URI a sign-in registers and uses when its callback port is free."""
        if self.config.oauth.redirect_uri:
            return self.config.oauth.redirect_uri
        host = self.config.oauth.callback_host or self.policy.callback_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.default_redirect_port()}{CALLBACK_PATH}"

    async def run(self, request: SignInRequest) -> None:
        try:
            await self._once(request, fresh=False)
        except _Reregister as exc:
            self.log("info", f"registering mcpls again with the authorization server ({exc})")
            await self._once(request, fresh=True)

    async def _once(self, request: SignInRequest, *, fresh: bool) -> None:
        await self.tokens.load()
        assert self.config.url is not None
        server = await discover(
            self.http,
            self.config.url,
            request.challenge,
            self.config.oauth,
            allow_insecure_loopback=self.policy.allow_insecure_loopback,
        )
        granted = self.tokens.tokens.scope if self.tokens.tokens else ()
        scopes = select_scopes(
            challenge_scope=request.challenge.scope if request.challenge else (),
            prm_scopes_supported=server.prm_scopes,
            as_scopes_supported=server.scopes_supported,
            previously_granted=granted,
            configured=self.config.oauth.scopes,
            required=request.required_scopes,
        )
        method = choose_method(
            request.method.requested,
            offered=device_flow_offered(server.metadata),
            headless=request.method.headless,
        )
        if method == "device":
            try:
                await self._device(server, scopes, request, fresh=fresh)
                return
            except _DeviceUnavailable as exc:
                self.log("info", f"no device sign-in for this client ({exc}); using the browser")
        listener = await self._listener(server)
        self.pending = listener
        try:
            registration = await self._client_for(server, listener.redirect_uri, scopes, fresh)
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
            request.announce(url)
            await request.open_url(url)
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
                )
            except OAuthRefused as exc:
                # A registration we made can be made again: once, with today's scopes and
                # redirect URI (the server forgot it, or it predates a step-up).
                if registration.source == "dcr" and not fresh and exc.error in REREGISTER_ERRORS:
                    raise _Reregister(exc.error or "") from exc
                raise
        finally:
            self.pending = None
            await listener.close()
        await self._save(server, data, scopes, registration, listener.redirect_uri)

    async def _save(
        self,
        server: AuthServer,
        data: dict[str, Any],
        scopes: tuple[str, ...] | None,
        registration: ClientRegistration,
        redirect_uri: str,
    ) -> None:
        """A token response stored as every sign-in's is, whatever the grant."""
        tokens = token_set(
            data,
            issuer=server.issuer,
            resource=self.tokens.resource,
            requested_scopes=scopes,
            registration=registration,
            redirect_uri=redirect_uri,
        )
        async with self.store.locked(self.tokens.resource, server.issuer):
            await self.tokens.save(server, tokens, registration)

    async def _device(
        self,
        server: AuthServer,
        scopes: tuple[str, ...] | None,
        request: SignInRequest,
        *,
        fresh: bool,
    ) -> None:
        """RFC 8628 with the client a browser sign-in would use (same redirect URI, so the
        same registration refreshes and revokes it); the tokens are stored alike."""
        redirect_uri = self.default_redirect_uri()
        registration = await self._client_for(server, redirect_uri, scopes, fresh)
        try:
            try:
                code = await request_device_code(
                    self.http,
                    str(server.metadata["device_authorization_endpoint"]),
                    registration,
                    scopes=scopes,
                    resource=server.resource,
                    allow_insecure_loopback=self.policy.allow_insecure_loopback,
                )
            except OAuthRefused as exc:
                # A registration mcpls made before the server offered the grant lacks it
                # (oidc-provider: invalid_request "… is not allowed for this client"): made
                # again once, with the grant. A configured client is what it is: a sign-in
                # that chose the device grant by itself takes the browser instead.
                if registration.source == "dcr" and not fresh:
                    raise _Reregister(exc.error or "device grant refused") from exc
                if request.method.requested == "auto":
                    raise _DeviceUnavailable(exc.message) from exc
                raise
            request.method.show_code(code)
            data = await poll_for_tokens(
                self.http, server.token_endpoint, registration, code, resource=server.resource
            )
        except OAuthRefused as exc:
            # The token endpoint no longer knows a registration mcpls made: once, anew.
            if registration.source == "dcr" and not fresh and exc.error in REREGISTER_ERRORS:
                raise _Reregister(exc.error or "") from exc
            raise
        await self._save(server, data, scopes, registration, redirect_uri)

    async def _listener(self, server: AuthServer) -> CallbackListener:
        oauth = self.config.oauth
        host = oauth.callback_host or self.policy.callback_host
        fixed = oauth.redirect_uri
        port = self.default_redirect_port()
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
                raise ConfigInvalid(
                    f"the sign-in callback port {listener.port} on {host} is in use; close what "
                    "uses it, or change oauth.callbackPort (and the client's registered "
                    "redirect URI)"
                ) from None
            # Another port is fine only for a registration we make (and re-make) ourselves;
            # it is kept under its own redirect URI, so no other server's is touched.
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
        fresh: bool,
    ) -> ClientRegistration:
        oauth = self.config.oauth
        cimd = self.policy.client_metadata_document_url
        stored = None if fresh else await self.store.load_registration(server.issuer, redirect_uri)
        choice = choose_registration(
            configured_client_id=oauth.client_id,
            cimd_url=cimd,
            cimd_supported=server.metadata.get("client_id_metadata_document_supported") is True,
            stored=stored,
            redirect_uri=redirect_uri,
            fresh=fresh,
            now=time.time(),
        )
        if choice == "preregistered":
            return await preregistered(server, oauth, self.store, bind=True)
        if choice == "cimd":
            assert cimd is not None
            return metadata_document(server, cimd)
        if choice == "stored":
            assert stored is not None
            return stored
        # No `scope` in the registration unless the person configured scopes: servers then
        # allow every scope they have, so a later step-up does not fail with invalid_scope
        # (and cost a second sign-in), and strict servers do not refuse an unknown one.
        registration = await register(
            self.http,
            server,
            oauth,
            redirect_uri,
            scopes if oauth.scopes else None,
            allow_insecure_loopback=self.policy.allow_insecure_loopback,
            device_grant=device_flow_offered(server.metadata),
        )
        await self.store.save_registration(registration, redirect_uri)
        return registration
