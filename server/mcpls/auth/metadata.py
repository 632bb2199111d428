"""Fetching what discovery decides: protected resource metadata (RFC 9728 §3) and
authorization server metadata (RFC 8414 §3, OIDC Discovery §4), in the order and with
the checks of `discovery.py`. The I/O side; every decision is there, tested without
a network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from mcpls.auth.challenge import BearerChallenge
from mcpls.auth.discovery import (
    authorization_server_metadata_urls,
    canonical_resource,
    check_endpoint,
    check_issuer,
    check_metadata_endpoints,
    legacy_fallback_endpoints,
    legacy_metadata_url,
    protected_resource_metadata_urls,
    require_pkce_s256,
    validate_resource,
)
from mcpls.config import OAuthConfig
from mcpls.errors import JSON_ERRORS, ConnectionFailed, McplsError, SecurityRefusal
from mcpls.net import MAX_DOCUMENT_BYTES, fetch


@dataclass(frozen=True)
class AuthServer:
    """Where and how to authorize for one MCP server."""

    issuer: str
    metadata: Mapping[str, Any]
    # The RFC 8707 `resource` value, or None where the settings say to omit it.
    resource: str | None
    prm_scopes: tuple[str, ...] | None = None
    scopes_supported: tuple[str, ...] | None = None
    legacy: bool = False
    store_key: str = field(default="")

    @property
    def authorization_endpoint(self) -> str:
        return str(self.metadata["authorization_endpoint"])

    @property
    def token_endpoint(self) -> str:
        return str(self.metadata["token_endpoint"])

    @property
    def iss_supported(self) -> bool:
        return self.metadata.get("authorization_response_iss_parameter_supported") is True

    def to_json(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "metadata": dict(self.metadata),
            "resource": self.resource,
            "prm_scopes": list(self.prm_scopes) if self.prm_scopes is not None else None,
            "scopes_supported": (
                list(self.scopes_supported) if self.scopes_supported is not None else None
            ),
            "legacy": self.legacy,
            "store_key": self.store_key,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuthServer:
        prm = data.get("prm_scopes")
        supported = data.get("scopes_supported")
        return cls(
            issuer=str(data["issuer"]),
            metadata=dict(data["metadata"]),
            resource=data.get("resource"),
            prm_scopes=tuple(prm) if isinstance(prm, list) else None,
            scopes_supported=tuple(supported) if isinstance(supported, list) else None,
            legacy=bool(data.get("legacy", False)),
            store_key=str(data.get("store_key", "")),
        )


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


class _Tried:
    """What each candidate URL gave, for the error when none worked."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, url: str, what: str) -> None:
        self.notes.append(f"{url}: {what}")

    def summary(self) -> str:
        return "; ".join(self.notes) if self.notes else "nothing was tried"


async def fetch_json(http: httpx.AsyncClient, url: str, tried: _Tried) -> dict[str, Any] | None:
    """GET a metadata document. None when it is not there: a 4xx, a redirect (never
    followed: a document moved elsewhere is not this server's), a server error (the next
    candidate may work) or something that is not a JSON object; each is noted in `tried`.
    A network failure raises `ConnectionFailed`."""
    try:
        answer = await fetch(
            http, "GET", url, headers={"Accept": "application/json"}, max_bytes=MAX_DOCUMENT_BYTES
        )
    except ConnectionFailed:
        raise
    except McplsError as exc:  # too large, or it never finished
        tried.note(url, exc.message)
        return None
    status = answer.status_code
    if 300 <= status < 400:
        tried.note(url, f"HTTP {status} redirect, not followed")
        return None
    if status >= 400:
        tried.note(url, f"HTTP {status}")
        return None
    try:
        data = json.loads(answer.content)
    except JSON_ERRORS:
        tried.note(url, "not JSON")
        return None
    if not isinstance(data, dict):
        tried.note(url, "not a JSON object")
        return None
    return data


def choose_issuer(candidates: tuple[str, ...], oauth: OAuthConfig, where: str) -> str:
    """The authorization server to use: the first listed, or the first trusted one."""
    if oauth.trusted_issuers:
        for issuer in candidates:
            if issuer in oauth.trusted_issuers:
                return issuer
        raise SecurityRefusal(
            f"{where} names the authorization servers {', '.join(candidates)}, none of which "
            "is in oauth.trustedIssuers"
        )
    return candidates[0]


async def discover(
    http: httpx.AsyncClient,
    server_url: str,
    challenge: BearerChallenge | None,
    oauth: OAuthConfig,
    *,
    allow_insecure_loopback: bool,
) -> AuthServer:
    """Find the authorization server for `server_url` (MCP authorization §2.3)."""
    store_key = canonical_resource(server_url)
    # The SSRF rule (check_network): metadata may lead only into the networks of the URLs
    # the person configured.
    trusted = tuple(u for u in (server_url, oauth.auth_server_metadata_url) if u)
    header_url = challenge.resource_metadata if challenge else None
    prm: dict[str, Any] | None = None
    prm_url = ""
    tried = _Tried()
    for url in protected_resource_metadata_urls(server_url, header_url):
        check_endpoint(
            url,
            "resource metadata URL",
            allow_insecure_loopback=allow_insecure_loopback,
            trusted=trusted,
        )
        prm = await fetch_json(http, url, tried)
        if prm is not None:
            prm_url = url
            break

    resource: str | None = store_key
    prm_scopes: tuple[str, ...] | None = None
    issuer: str | None = None
    legacy = False
    if prm is not None:
        prm_resource = prm.get("resource")
        if not isinstance(prm_resource, str):
            raise SecurityRefusal(f"{prm_url} has no resource; the server's metadata is broken")
        resource = validate_resource(prm_resource, server_url)
        servers = _strings(prm.get("authorization_servers"))
        if not servers:
            raise SecurityRefusal(f"{prm_url} lists no authorization_servers")
        issuer = choose_issuer(servers, oauth, prm_url)
        prm_scopes = _strings(prm.get("scopes_supported"))
    if oauth.resource is False:
        resource = None
    elif isinstance(oauth.resource, str):
        resource = oauth.resource

    metadata: dict[str, Any] | None = None
    if oauth.auth_server_metadata_url:
        url = check_endpoint(
            oauth.auth_server_metadata_url,
            "authServerMetadataUrl",
            allow_insecure_loopback=allow_insecure_loopback,
        )
        metadata = await fetch_json(http, url, tried)
        if metadata is None or not isinstance(metadata.get("issuer"), str):
            raise SecurityRefusal(
                f"authServerMetadataUrl {url} did not give authorization server metadata "
                f"({tried.summary()})"
            )
        issuer = str(metadata["issuer"])
    elif issuer is not None:
        # The issuer is checked before anything is fetched from it (RFC 8414 §2: https).
        check_endpoint(
            issuer, "issuer", allow_insecure_loopback=allow_insecure_loopback, trusted=trusted
        )
        for url in authorization_server_metadata_urls(issuer):
            metadata = await fetch_json(http, url, tried)
            if metadata is not None:
                break
        if metadata is None:
            raise SecurityRefusal(
                f"the authorization server {issuer} publishes no metadata ({tried.summary()})"
            )
        check_issuer(issuer, metadata)
    else:
        # 2025-03-26 servers: no resource metadata; the AS is at the server's origin.
        legacy = True
        origin = urlsplit(server_url)
        issuer = f"{origin.scheme}://{origin.netloc}"
        check_endpoint(issuer, "issuer", allow_insecure_loopback=allow_insecure_loopback)
        metadata = await fetch_json(http, legacy_metadata_url(server_url), tried)
        if metadata is None:
            metadata = {**legacy_fallback_endpoints(server_url), "issuer": issuer}
            metadata.setdefault("code_challenge_methods_supported", ["S256"])
        issuer = str(metadata.get("issuer") or issuer)

    require_pkce_s256(metadata)
    for key in ("authorization_endpoint", "token_endpoint"):
        if not isinstance(metadata.get(key), str):
            raise SecurityRefusal(f"the authorization server {issuer} has no {key}")
    check_metadata_endpoints(
        issuer, metadata, allow_insecure_loopback=allow_insecure_loopback, trusted=trusted
    )
    return AuthServer(
        issuer=issuer,
        metadata=metadata,
        resource=resource,
        prm_scopes=prm_scopes,
        scopes_supported=_strings(metadata.get("scopes_supported")),
        legacy=legacy,
        store_key=store_key,
    )
