"""Client registration in the spec's order (MCP authorization §Client Registration):
pre-registered credentials from the settings, then a client ID metadata document where
the authorization server supports it, then a cached or new dynamic registration
(RFC 7591). When none applies, the error says what to register where.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx

from mcpls.auth.flow import OAuthFailed, check_endpoint
from mcpls.auth.metadata import AuthServer
from mcpls.auth.store import ClientRegistration, TokenStore
from mcpls.config import OAuthConfig
from mcpls.errors import ConnectionFailed, Other

AUTH_METHOD_PREFERENCE = ("none", "client_secret_post", "client_secret_basic")


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


def preregistered(
    auth_server: AuthServer, oauth: OAuthConfig, store: TokenStore
) -> ClientRegistration | None:
    """`oauth.clientId` from the settings; its secret is kept in the keychain after first use."""
    if not oauth.client_id:
        return None
    secret_name = f"client-secret|{auth_server.issuer}|{oauth.client_id}"
    secret = oauth.client_secret
    if secret:
        if store.load_secret(secret_name) != secret:
            store.save_secret(secret_name, secret)
    else:
        secret = store.load_secret(secret_name)
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
        issuer=auth_server.issuer,
        client_id=oauth.client_id,
        client_secret=secret,
        token_endpoint_auth_method=method,
        redirect_uris=(),
        source="preregistered",
    )


def metadata_document(auth_server: AuthServer, url: str | None) -> ClientRegistration | None:
    """CIMD: the client ID is the HTTPS URL of mcpls's client metadata document."""
    if not url or auth_server.metadata.get("client_id_metadata_document_supported") is not True:
        return None
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
) -> ClientRegistration:
    """RFC 7591 dynamic registration as a native application."""
    endpoint = auth_server.metadata.get("registration_endpoint")
    if not isinstance(endpoint, str):
        raise Other(
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
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "application_type": "native",
    }
    if scopes:
        body["scope"] = " ".join(scopes)
    try:
        response = await http.post(endpoint, json=body, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        from mcpls.transport.http import describe_http_error

        raise ConnectionFailed(describe_http_error(exc, endpoint)) from None
    try:
        data = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if response.status_code >= 400 or not isinstance(data, dict):
        detail = ""
        if isinstance(data, dict):
            detail = f": {data.get('error', '')} {data.get('error_description', '')}".rstrip()
        raise OAuthFailed(
            f"{auth_server.issuer} refused to register mcpls (HTTP {response.status_code}"
            f"{detail}). Register a client there with the redirect URI {redirect_uri} and "
            "set oauth.clientId in this server's settings"
        )
    client_id = data.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise OAuthFailed(f"{auth_server.issuer} registered mcpls but returned no client_id")
    secret = data.get("client_secret")
    returned_method = data.get("token_endpoint_auth_method")
    expires = data.get("client_secret_expires_at")
    uris = data.get("redirect_uris")
    return ClientRegistration(
        issuer=auth_server.issuer,
        client_id=client_id,
        client_secret=secret if isinstance(secret, str) and secret else None,
        # Honour what the server registered, not what we asked for (RFC 7591 §3.2.1).
        token_endpoint_auth_method=(
            returned_method
            if isinstance(returned_method, str)
            else ("none" if not secret else method)
        ),
        redirect_uris=tuple(uris) if isinstance(uris, list) else (redirect_uri,),
        source="dcr",
        client_secret_expires_at=float(expires)
        if isinstance(expires, int | float) and expires
        else None,
    )
