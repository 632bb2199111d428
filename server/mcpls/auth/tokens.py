"""The tokens of one server: when to refresh (pure decisions), and the refresh itself with
its locks, store and HTTP around them.

One refresh at a time per server, across processes (several editor windows share the
store): reload under the lock, adopt a token another process already rotated, refresh
only what is still ours, write. A refused refresh says why in words and leaves the server
needing a sign-in, never retrying in a loop; a network failure keeps the tokens.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import httpx

from mcpls.auth.flow import token_request, token_set
from mcpls.auth.metadata import AuthServer
from mcpls.errors import InvalidClient, InvalidGrant, OAuthRefused, SignInExpired, StorageFailed
from mcpls.store import Store
from mcpls.store.records import ClientRegistration, TokenSet

REFRESH_LEAD_S = 30.0
Log = Callable[[str, str], None]
# The registration that obtained `tokens` (None: it is gone).
RegistrationFor = Callable[[AuthServer, TokenSet], Awaitable[ClientRegistration | None]]


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


def expired(tokens: TokenSet, now: float) -> bool:
    return tokens.expires_at is not None and tokens.expires_at <= now


@dataclass(frozen=True)
class RefreshPlan:
    """What to do with a token: `use` it, `refresh` it, or `give_up` (sign in again)."""

    action: Literal["use", "refresh", "give_up"]
    tokens: TokenSet | None = None


def decide_refresh(
    stored: TokenSet | None,
    seen: TokenSet,
    *,
    forced: bool,
    now: float,
    unsaved_over: str | None = None,
) -> RefreshPlan:
    """The refresh decision, taken under the cross-process lock.

    `stored` is what the store holds now, `seen` the token the caller used or was about
    to use, `forced` whether the server already refused `seen` (a 401). `unsaved_over` is
    set when this process's last write failed (a directory in the file's place, a full
    disk): the access token of the entry its newer tokens could not replace.
    """
    if unsaved_over is not None and (stored is None or stored.access_token == unsaved_over):
        # What the store holds is older than `seen` (or gone with the fault that kept it
        # from being written): not a sign-out, not another window's rotation. Adopting the
        # old entry would spend a refresh token the server already rotated.
        stored = seen
    if stored is None:
        return RefreshPlan("give_up")  # signed out in another window
    base = seen
    if stored.access_token != seen.access_token:
        # Another window rotated it: theirs is newer than ours, and not yet refused.
        if not expiring(stored, now):
            return RefreshPlan("use", stored)
        base, forced = stored, False
    if not base.refresh_token:
        if forced or expired(base, now):
            return RefreshPlan("give_up")
        return RefreshPlan("use", base)
    if forced or expiring(base, now):
        return RefreshPlan("refresh", base)
    return RefreshPlan("use", base)


class TokenManager:
    """The stored sign-in of one server: its authorization server and its tokens."""

    def __init__(
        self,
        *,
        name: str,
        resource: str,
        store: Store,
        http: Callable[[], httpx.AsyncClient],
        registration_for: RegistrationFor,
        log: Log,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        # Wall-clock time, which jumps when a laptop wakes up: tests inject it.
        self.clock = clock
        self.resource = resource
        self.store = store
        self._http = http
        self._registration_for = registration_for
        self.log = log
        self.auth_server: AuthServer | None = None
        self.tokens: TokenSet | None = None
        self._lock = asyncio.Lock()
        self._loaded = False
        # The client that obtained the tokens, as last seen: a refresh still has it when
        # the keychain holding the registration is locked mid-session.
        self._client: ClientRegistration | None = None
        # The access token a server refused (401) while its cure is under way: requests
        # that would carry it wait for the cure instead of being sent to fail as well.
        self._refused: str | None = None
        # Set while the newest tokens live only in memory because writing them failed: the
        # access token of the stored entry they should have replaced (`decide_refresh`).
        self._unsaved_over: str | None = None
        # Told when the stored sign-in changes (refresh, login, adoption), to push the status.
        self.on_change: Callable[[], None] = lambda: None

    @property
    def http(self) -> httpx.AsyncClient:
        """The client for the authorization server (made on first use)."""
        return self._http()

    def _state_name(self) -> str:
        return f"auth-server|{self.resource}"

    async def load(self, *, again: bool = False) -> None:
        """The authorization server and tokens from the store, once per process; `again`
        reads them anew (another process, such as `mcpls login`, may have signed in)."""
        if self._loaded and not again:
            return
        self._loaded = True
        raw = await self.store.load_state(self._state_name())
        if raw:
            try:
                self.auth_server = AuthServer.from_json(json.loads(raw))
            except (ValueError, KeyError, TypeError):
                self.log("warning", "the stored authorization server record is unreadable")
        if self.auth_server is not None:
            try:
                self.tokens = await self.store.load_tokens(self.resource, self.auth_server.issuer)
            except StorageFailed as exc:
                # A locked keychain at start: signed out until it opens or a new sign-in.
                self.log("warning", exc.message)

    async def save(
        self, server: AuthServer, tokens: TokenSet, client: ClientRegistration | None = None
    ) -> None:
        """A new sign-in by `client` (call under the store lock)."""
        self._client = client
        await self.store.save_state(self._state_name(), json.dumps(server.to_json()))
        await self.store.save_tokens(tokens)
        self.auth_server, self.tokens = server, tokens
        self._unsaved_over = None
        self.on_change()

    async def forget(self) -> None:
        """Delete the tokens (the authorization server record stays: it is not a secret).
        Silent: the caller (a logout) tells the editor once, with the new state."""
        try:
            if self.auth_server is not None:
                await self.store.delete_tokens(self.resource, self.auth_server.issuer)
        finally:
            # Signed out here even when the store could not delete its copy (a locked
            # keychain): the error tells the person to try again once it opens.
            self.tokens = None
            self._unsaved_over = None

    def _set(self, tokens: TokenSet | None) -> None:
        changed = tokens != self.tokens
        self.tokens = tokens
        if changed:
            self.on_change()

    async def usable(self) -> TokenSet | None:
        """A token that is not known to be expired, refreshing when it is close."""
        await self.load()
        tokens = self.tokens
        if tokens is None:
            return None
        if tokens.access_token == self._refused:
            return await self.refresh(tokens, forced=True)
        if expiring(tokens, self.clock()):
            return await self.refresh(tokens, forced=False)
        return tokens

    async def refresh(self, seen: TokenSet, *, forced: bool) -> TokenSet | None:
        """Refresh `seen`, or adopt what another task or process already got instead."""
        if forced:
            self._refused = seen.access_token
        async with self._lock:
            if self.tokens is not None and self.tokens.access_token != seen.access_token:
                return self.tokens  # another task in this process refreshed meanwhile
            server = self.auth_server
            if server is None:
                return None
            async with self.store.locked(self.resource, server.issuer):
                try:
                    stored = await self.store.load_tokens(self.resource, server.issuer)
                except StorageFailed as exc:
                    # The keychain locked, or the token file damaged or replaced, while
                    # mcpls runs: the tokens in memory are the newest this process knows;
                    # refresh from them, and the write below replaces the damaged entry.
                    self.log("warning", f"{exc.message}; going on with the sign-in in memory")
                    stored = self.tokens or seen
                plan = decide_refresh(
                    stored, seen, forced=forced, now=self.clock(), unsaved_over=self._unsaved_over
                )
                if plan.action != "refresh":
                    self._set(plan.tokens)
                    return plan.tokens
                assert plan.tokens is not None
                refreshed = await self._refresh_grant(server, plan.tokens)
                self._set(refreshed)
                await self._store_refreshed(refreshed, replacing=plan.tokens)
                return refreshed

    async def _store_refreshed(self, refreshed: TokenSet, *, replacing: TokenSet) -> None:
        """Write a refreshed token set. If the write fails the server has already rotated
        the refresh token, so memory holds the only good copy: keep using it, say so, and
        write it again at the next refresh (once the fault is gone, no sign-in is lost)."""
        try:
            await self.store.save_tokens(refreshed)
        except StorageFailed as exc:
            if self._unsaved_over is None:
                self._unsaved_over = replacing.access_token
            self.log(
                "warning",
                f"{self.name}: the refreshed sign-in could not be stored ({exc.message}); "
                "it is kept in memory for this session and stored at the next refresh",
            )
        else:
            self._unsaved_over = None

    async def client_for(self, server: AuthServer, tokens: TokenSet) -> ClientRegistration | None:
        """The registration that obtained `tokens` (to refresh or revoke them): from the
        store, or as last seen when the store cannot give it back (a locked keychain)."""
        registration = await self._registration_for(server, tokens)
        known = self._client
        if registration is None and known is not None and known.client_id == tokens.client_id:
            registration = known
        return registration

    async def _refresh_grant(self, server: AuthServer, tokens: TokenSet) -> TokenSet:
        registration = await self.client_for(server, tokens)
        self._client = registration
        if registration is None or registration.secret_expired(self.clock()):
            await self._drop(server, tokens, registration)
            raise SignInExpired(
                f"{self.name}: mcpls's registration with {server.issuer} expired or is gone; "
                "authenticate again to register anew"
            )
        assert tokens.refresh_token is not None
        try:
            data = await token_request(
                self.http,
                server.token_endpoint,
                registration,
                "refresh_token",
                refresh_token=tokens.refresh_token,
                resource=server.resource,
            )
        except InvalidGrant:
            await self._drop(server, tokens, None)
            raise SignInExpired(
                f"{self.name}: the sign-in expired or was revoked; authenticate again"
            ) from None
        except InvalidClient as exc:
            # The server dropped the registration, or the secret expired: a registration
            # mcpls made is made again at the next sign-in; a configured one must be fixed.
            await self._drop(server, tokens, registration)
            fix = (
                "authenticate again to register anew"
                if registration.source == "dcr"
                else "check oauth.clientId and oauth.clientSecret, then authenticate again"
            )
            raise SignInExpired(
                f"{self.name}: {server.issuer} no longer accepts mcpls's client "
                f"({exc.error}); {fix}"
            ) from None
        except OAuthRefused as exc:
            await self._drop(server, tokens, None)
            raise SignInExpired(
                f"{self.name}: the authorization server refused to refresh the sign-in "
                f"({exc.message}); authenticate again"
            ) from None
        return token_set(
            data,
            issuer=server.issuer,
            resource=self.resource,
            requested_scopes=None,
            registration=registration,
            redirect_uri=tokens.redirect_uri,
            previous=tokens,
        )

    async def _drop(
        self, server: AuthServer, tokens: TokenSet, registration: ClientRegistration | None
    ) -> None:
        self._unsaved_over = None
        try:
            await self.store.delete_tokens(self.resource, server.issuer)
            if registration is not None and registration.source == "dcr" and tokens.redirect_uri:
                await self.store.delete_registration(server.issuer, tokens.redirect_uri)
        except StorageFailed as exc:
            # The sign-in is over either way; what the store kept is unusable, and the
            # next sign-in replaces it. The person learns why the store was not cleaned.
            self.log("warning", exc.message)
        self._set(None)
        self.log("warning", "the stored sign-in can no longer be used; authenticate again")
