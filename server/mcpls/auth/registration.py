"""Client registration in the spec's order (MCP authorization §Client Registration):
pre-registered credentials from the settings, then a client ID metadata document where
the authorization server supports it, then a stored or new dynamic registration
(RFC 7591). `choose_registration` decides; the functions after it do the I/O. When none
applies, the error says what to register where.

Registrations are kept per authorization server and per redirect URI: the redirect URI
differs per MCP server (its callback port), so two servers behind one authorization
server each have their own client and never overwrite each other's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

import httpx

from mcpls.auth.client_auth import SUPPORTED_METHODS
from mcpls.auth.device import DEVICE_CODE_GRANT
from mcpls.auth.discovery import check_endpoint
from mcpls.auth.metadata import AuthServer
from mcpls.config import OAuthConfig
from mcpls.errors import (
    JSON_ERRORS,
    NotSupported,
    OAuthRefused,
    ProtocolError,
    RegistrationImpossible,
    SecurityRefusal,
    quote,
)
from mcpls.net import fetch
from mcpls.store import Store
from mcpls.store.records import ClientRegistration

AUTH_METHOD_PREFERENCE = ("none", "client_secret_post", "client_secret_basic")
# Beyond any real unix time (31 million years): a `client_secret_expires_at` past it is junk.
MAX_SECRET_EXPIRY = 1e15

Choice = Literal["preregistered", "cimd", "stored", "register"]


def choose_registration(
    *,
    configured_client_id: str | None,
    cimd_url: str | None,
    cimd_supported: bool,
    stored: ClientRegistration | None,
    redirect_uri: str,
    fresh: bool,
    now: float,
) -> Choice:
    """How mcpls will be known to the authorization server for one sign-in.

    MCP 2025-11-25 §Client Registration Approaches: pre-registered first, then CIMD where
    the server supports it, then dynamic registration. A stored dynamic registration is
    reused only if it was made for this redirect URI, its secret has not expired (RFC 7591
    §3.2.1) and no fresh one was asked for (the server forgot the old one).
    """
    if configured_client_id:
        return "preregistered"
    if cimd_url and cimd_supported:
        return "cimd"
    if (
        stored is not None
        and not fresh
        and redirect_uri in stored.redirect_uris
        and not stored.secret_expired(now)
    ):
        return "stored"
    return "register"


def choose_auth_method(supported: Sequence[str] | None, configured: str | None) -> str:
    """The token endpoint authentication to register with.

    `none` first (a native app keeps no secret); RFC 8414 §2 makes
    `client_secret_basic` the default when the server lists nothing.
    """
    if configured:
        return configured
    if not supported:
        return "client_secret_basic"
    for method in AUTH_METHOD_PREFERENCE:
        if method in supported:
            return method
    return "client_secret_basic"


def _secret_name(client_id: str) -> str:
    return f"client-secret|{client_id}"


def _binding_name(client_id: str) -> str:
    return f"client-binding|{client_id}"


async def preregistered(
    auth_server: AuthServer, oauth: OAuthConfig, store: Store, *, bind: bool
) -> ClientRegistration:
    """`oauth.clientId` from the settings, bound to its authorization server.

    MCP 2026-07-28 §Authorization Server Binding: configured credentials belong to one
    authorization server, the one in `oauth.trustedIssuers` or else the first one they
    were used with; mcpls refuses to send them anywhere else, so a server whose metadata
    now names another authorization server cannot collect the secret. With `bind`, the
    first use records the binding. The secret moves to the keychain after first use.
    """
    client_id = oauth.client_id
    assert client_id is not None
    issuer = auth_server.issuer
    if oauth.trusted_issuers:
        if issuer not in oauth.trusted_issuers:
            raise SecurityRefusal(
                f"the configured oauth.clientId is for {', '.join(oauth.trusted_issuers)} "
                f"(oauth.trustedIssuers), but the server now sends you to {quote(issuer)}; "
                "mcpls will not send the client's credentials there"
            )
    else:
        bound = await store.load_state(_binding_name(client_id))
        if bound is not None and bound != issuer:
            raise SecurityRefusal(
                f"the configured oauth.clientId belongs to the authorization server "
                f"{quote(bound)}, but the server now sends you to {quote(issuer)}; mcpls "
                "will not send the client's credentials there. If the move is expected, "
                "add the new issuer to oauth.trustedIssuers"
            )
        if bound is None and bind:
            await store.save_state(_binding_name(client_id), issuer)
    secret = oauth.client_secret
    if secret:
        if await store.load_secret(_secret_name(client_id)) != secret:
            await store.save_secret(_secret_name(client_id), secret)
    else:
        secret = await store.load_secret(_secret_name(client_id))
    supported = auth_server.metadata.get("token_endpoint_auth_methods_supported")
    if oauth.token_endpoint_auth_method:
        method = oauth.token_endpoint_auth_method
    elif secret is None:
        method = "none"
    elif (
        isinstance(supported, list)
        and "client_secret_basic" not in supported
        and ("client_secret_post" in supported)
    ):
        method = "client_secret_post"
    else:
        method = "client_secret_basic"
    return ClientRegistration(
        issuer=issuer,
        client_id=client_id,
        client_secret=secret,
        token_endpoint_auth_method=method,
        redirect_uris=(),
        source="preregistered",
    )


async def forget_preregistered(oauth: OAuthConfig, store: Store) -> None:
    """Forget the stored secret and binding of a configured client (logout --forget)."""
    if oauth.client_id:
        await store.delete_secret(_secret_name(oauth.client_id))
        await store.delete_state(_binding_name(oauth.client_id))


def metadata_document(auth_server: AuthServer, url: str) -> ClientRegistration:
    """CIMD: the client ID is the HTTPS URL of mcpls's client metadata document."""
    return ClientRegistration(
        issuer=auth_server.issuer,
        client_id=url,
        client_secret=None,
        token_endpoint_auth_method="none",
        redirect_uris=(),
        source="cimd",
    )


async def register(
    http: httpx.AsyncClient,
    auth_server: AuthServer,
    oauth: OAuthConfig,
    redirect_uri: str,
    scopes: tuple[str, ...] | None,
    *,
    allow_insecure_loopback: bool,
    device_grant: bool = False,
) -> ClientRegistration:
    """RFC 7591 dynamic registration as a native application; with `device_grant` (the
    server offers RFC 8628) the client may use the device grant too, so one registration
    serves both sign-ins and the refreshes after either."""
    endpoint = auth_server.metadata.get("registration_endpoint")
    if not isinstance(endpoint, str):
        raise RegistrationImpossible(
            f"{auth_server.issuer} offers no dynamic client registration. Register an OAuth "
            f"client there with the redirect URI {redirect_uri}, then set oauth.clientId "
            "(and oauth.clientSecret for a confidential client) in this server's settings"
        )
    check_endpoint(
        endpoint, "registration endpoint", allow_insecure_loopback=allow_insecure_loopback
    )
    supported = auth_server.metadata.get("token_endpoint_auth_methods_supported")
    method = choose_auth_method(
        supported if isinstance(supported, list) else None, oauth.token_endpoint_auth_method
    )
    body: dict[str, object] = {
        "client_name": oauth.client_name or "mcpls",
        "redirect_uris": [redirect_uri],
        "grant_types": [
            "authorization_code",
            "refresh_token",
            *([DEVICE_CODE_GRANT] if device_grant else []),
        ],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "application_type": "native",
    }
    if scopes:
        body["scope"] = " ".join(scopes)
    answer = await fetch(
        http,
        "POST",
        endpoint,
        headers={"Accept": "application/json", "Content-Type": "application/json"},
        content=json.dumps(body).encode(),
    )
    try:
        data = json.loads(answer.content)
    except JSON_ERRORS:
        data = None
    if answer.status_code >= 400 or not isinstance(data, dict):
        detail = ""
        if isinstance(data, dict):
            error = f"{data.get('error', '')} {data.get('error_description', '')}".strip()
            detail = f": {quote(error)}" if error else ""
        raise OAuthRefused(
            f"{auth_server.issuer} refused to register mcpls (HTTP {answer.status_code}"
            f"{detail}). Register a client there with the redirect URI {redirect_uri} and "
            "set oauth.clientId in this server's settings"
        )
    client_id = data.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise ProtocolError(f"{auth_server.issuer} registered mcpls but returned no client_id")
    secret = data.get("client_secret")
    returned_method = data.get("token_endpoint_auth_method")
    # Honour what the server registered, not what we asked for (RFC 7591 §3.2.1), if it is
    # a method mcpls can use.
    final_method = (
        returned_method if isinstance(returned_method, str) else ("none" if not secret else method)
    )
    if final_method not in SUPPORTED_METHODS:
        raise NotSupported(
            f"{auth_server.issuer} registered mcpls for {quote(final_method, 40)} token "
            f"endpoint authentication, which mcpls does not do ({', '.join(SUPPORTED_METHODS)}). "
            f"Register a client there with the redirect URI {redirect_uri} and one of those "
            "methods, then set oauth.clientId"
        )
    expires = data.get("client_secret_expires_at")
    uris = data.get("redirect_uris")
    return ClientRegistration(
        issuer=auth_server.issuer,
        client_id=client_id,
        client_secret=secret if isinstance(secret, str) and secret else None,
        token_endpoint_auth_method=final_method,
        redirect_uris=tuple(uris) if isinstance(uris, list) else (redirect_uri,),
        source="dcr",
        client_secret_expires_at=float(expires)
        # Bounded: a 400-digit integer overflows float(), NaN compares false to any time.
        if isinstance(expires, int | float)
        and not isinstance(expires, bool)
        and expires
        and -MAX_SECRET_EXPIRY < expires < MAX_SECRET_EXPIRY
        else None,
    )
