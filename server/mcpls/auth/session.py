"""OAuth for one configured MCP server, as the connection sees it: the `httpx.Auth` its
transport carries (`bearer.py`), the stored sign-in (`tokens.py`), the interactive
sign-in (`signin.py`), and the logout. What `ServerStatus.auth` shows comes from here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import httpx

from mcpls.auth.bearer import BearerAuth
from mcpls.auth.challenge import BearerChallenge, find_bearer_challenge
from mcpls.auth.discovery import canonical_resource, check_endpoint
from mcpls.auth.flow import CallbackListener, revoke
from mcpls.auth.metadata import AuthServer
from mcpls.auth.registration import forget_preregistered, metadata_document, preregistered
from mcpls.auth.signin import SignIn, SignInMethod, SignInRequest
from mcpls.auth.tokens import TokenManager
from mcpls.config import AuthPolicy, ServerConfig
from mcpls.errors import AuthRequired, InsufficientScope, McplsError, NothingToDo, quote
from mcpls.net import Client, tls_context
from mcpls.store import Store
from mcpls.store.records import ClientRegistration, TokenSet

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


class OAuthSession:
    """OAuth for one configured MCP server."""

    def __init__(
        self,
        config: ServerConfig,
        policy: AuthPolicy,
        store: Store,
        *,
        log: Log,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert config.url is not None
        self.config = config
        self.policy = policy
        self.store = store
        self.log = log
        # Made on first use: most servers never need it after their first sign-in (a
        # refresh every hour at most), and making one per server costs ~0.5 ms (httpx reads
        # the proxy variables of the environment) at every start (issue 9, 100 servers).
        self._http = http
        self.tokens = TokenManager(
            name=config.name,
            resource=canonical_resource(config.url),
            store=store,
            http=lambda: self.http,
            registration_for=self._registration_for,
            log=log,
            clock=clock,
        )
        self.auth = BearerAuth(self.tokens, config.url)
        self.signin = SignIn(config, policy, store, self.tokens, lambda: self.http, log)
        self.required_scopes: tuple[str, ...] = ()
        self.last_challenge: BearerChallenge | None = None
        self._challenged = False

    @property
    def http(self) -> httpx.AsyncClient:
        """The client for the authorization server: discovery, registration, tokens."""
        if self._http is None:
            self._http = Client(timeout=30.0, follow_redirects=False, verify=tls_context())
        return self._http

    @property
    def in_use(self) -> bool:
        """Whether the server uses OAuth as far as anyone knows: it asked for a sign-in,
        or one is stored. A server that never did shows no `auth` in its status."""
        return (
            self._challenged
            or self.tokens.tokens is not None
            or (self.tokens.auth_server is not None)
        )

    @property
    def on_change(self) -> Callable[[], None]:
        return self.tokens.on_change

    @on_change.setter
    def on_change(self, callback: Callable[[], None]) -> None:
        self.tokens.on_change = callback

    @property
    def pending(self) -> CallbackListener | None:
        return self.signin.pending

    async def load(self) -> None:
        """Read the stored sign-in: once per process, and again at each connection while
        none is held, so that a sign-in made elsewhere (`mcpls login`, another editor
        window) is used without signing in here."""
        await self.tokens.load(again=self.tokens.tokens is None)

    def info(self) -> AuthInfo:
        """For `ServerStatus.auth`."""
        tokens, server = self.tokens.tokens, self.tokens.auth_server
        return AuthInfo(
            authenticated=tokens is not None,
            expires_at=tokens.expires_at if tokens else None,
            scopes=tokens.scope if tokens else (),
            required_scopes=self.required_scopes,
            issuer=server.issuer if server else None,
        )

    # -- challenges ----------------------------------------------------------------------

    def classify(self, exc: AuthRequired) -> AuthRequired:
        """Remember a 401/403 challenge. A 403 `insufficient_scope` becomes
        `InsufficientScope` (that request fails; the session stays) and sets requiredScopes."""
        challenge = find_bearer_challenge(list(exc.www_authenticate))
        self.last_challenge = challenge
        self._challenged = True
        if exc.status_code == 403 and challenge is not None and challenge.insufficient_scope:
            self.required_scopes = challenge.scope
            # The server's words, bounded: a challenge may ask for a thousand scopes.
            scopes = f" ({quote(' '.join(challenge.scope))})" if challenge.scope else ""
            return InsufficientScope(
                f"{self.config.name} needs more permissions{scopes}: authenticate again",
                required_scopes=challenge.scope,
            )
        return exc

    # -- sign-in ---------------------------------------------------------------------------

    async def login(
        self,
        open_url: OpenUrl,
        *,
        announce: Callable[[str], None],
        method: SignInMethod | None = None,
    ) -> AuthInfo:
        """The interactive sign-in (browser unless `method` says otherwise); afterwards no
        more permission is outstanding."""
        await self.signin.run(
            SignInRequest(
                challenge=self.last_challenge,
                required_scopes=self.required_scopes,
                open_url=open_url,
                announce=announce,
                method=method or SignInMethod(),
            )
        )
        self.required_scopes = ()
        return self.info()

    def complete(self, redirect_url: str) -> None:
        """The pasted final redirect URL of a pending sign-in (no loopback reachable)."""
        listener = self.pending
        if listener is None:
            raise NothingToDo(f"{self.config.name} has no sign-in waiting for its answer")
        listener.deliver(dict(parse_qsl(urlsplit(redirect_url).query)))

    async def _registration_for(
        self, server: AuthServer, tokens: TokenSet
    ) -> ClientRegistration | None:
        """The client that obtained `tokens`: only it may refresh or revoke them."""
        oauth = self.config.oauth
        cimd = self.policy.client_metadata_document_url
        if oauth.client_id and tokens.client_id in (None, oauth.client_id):
            return await preregistered(server, oauth, self.store, bind=False)
        if cimd and tokens.client_id == cimd:
            return metadata_document(server, cimd)
        # Tokens stored before the redirect URI was recorded: the one a sign-in would use.
        redirect_uri = tokens.redirect_uri or self.signin.default_redirect_uri()
        registration = await self.store.load_registration(server.issuer, redirect_uri)
        if registration is None or tokens.client_id not in (None, registration.client_id):
            return None
        return registration

    # -- logout ----------------------------------------------------------------------------

    async def logout(self, *, forget_client: bool) -> None:
        """Revoke the tokens where the server offers it, then delete them; with
        `forget_client`, forget this server's client registration too (no other's)."""
        await self.tokens.load()
        server, tokens = self.tokens.auth_server, self.tokens.tokens
        if server is not None and tokens is not None:
            await self._revoke(server, tokens)
        await self.tokens.forget()
        if forget_client and server is not None:
            if tokens is not None and tokens.redirect_uri:
                await self.store.delete_registration(server.issuer, tokens.redirect_uri)
            await forget_preregistered(self.config.oauth, self.store)
        self.required_scopes = ()

    async def _revoke(self, server: AuthServer, tokens: TokenSet) -> None:
        endpoint = server.metadata.get("revocation_endpoint")
        if not isinstance(endpoint, str):
            return
        try:
            # As a refresh would: a locked keychain must not make the logout skip revoking.
            registration = await self.tokens.client_for(server, tokens)
            if registration is None or registration.secret_expired(time.time()):
                return
            check_endpoint(
                endpoint,
                "revocation endpoint",
                allow_insecure_loopback=self.policy.allow_insecure_loopback,
            )
            if tokens.refresh_token:
                await revoke(
                    self.http, endpoint, registration, tokens.refresh_token, "refresh_token"
                )
            await revoke(self.http, endpoint, registration, tokens.access_token, "access_token")
        except McplsError as exc:
            self.log("warning", f"could not revoke the tokens: {exc.message}")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
