"""Discovery decisions as pure functions: the canonical resource URI (RFC 8707 §2, MCP
"Canonical Server URI"), which metadata URLs to try and in which order (RFC 9728 §3.1,
RFC 8414 §3.1, OIDC Discovery §4), and the checks a fetched document must pass
(RFC 9728 §3.3, RFC 8414 §3.3, MCP PKCE rules, RFC 9207 §2.4).

No I/O: `metadata.py` fetches what these functions name and feeds the answers back.
Every error is a `DiscoveryError`, which is also a `ValueError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import SplitResult, urlsplit

from mcpls.errors import SecurityRefusal

__all__ = [
    "BAD_HOST",
    "LOOPBACK_HOSTS",
    "DiscoveryError",
    "InsecureEndpoint",
    "InvalidUrl",
    "IssuerMismatch",
    "PkceUnsupported",
    "ResourceMismatch",
    "authorization_server_metadata_urls",
    "canonical_resource",
    "check_callback_iss",
    "check_endpoint",
    "check_issuer",
    "check_metadata_endpoints",
    "is_loopback_url",
    "legacy_fallback_endpoints",
    "legacy_metadata_url",
    "protected_resource_metadata_urls",
    "require_pkce_s256",
    "validate_resource",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PRM_SUFFIX = "/.well-known/oauth-protected-resource"  # RFC 9728 §3
_OAUTH_SUFFIX = "/.well-known/oauth-authorization-server"  # RFC 8414 §3
_OIDC_SUFFIX = "/.well-known/openid-configuration"  # OIDC Discovery 1.0 §4
# How much of an untrusted value an error message may quote.
_QUOTE = 80
# RFC 3986 §3.2.2 has no room for these in a host; urlsplit lets them through.
BAD_HOST = re.compile(r"[\x00-\x20\x7f<>\"{}|\\^`]")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#]*@")


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class DiscoveryError(SecurityRefusal, ValueError):
    """Metadata or a URL that an OAuth client must not proceed with."""


class InsecureEndpoint(DiscoveryError):
    """An endpoint that is not https (nor loopback http where that is allowed)."""


class InvalidUrl(DiscoveryError):
    """A URL that is not an absolute http(s) URL, or has parts its role forbids."""


class ResourceMismatch(DiscoveryError):
    """Protected resource metadata describes a different resource (RFC 9728 §3.3)."""


class IssuerMismatch(DiscoveryError):
    """An issuer other than the expected one (RFC 8414 §3.3, RFC 9207 §2.4)."""


class PkceUnsupported(DiscoveryError):
    """The authorization server does not advertise PKCE with S256 (MCP §PKCE)."""


def canonical_resource(url: str) -> str:
    """The canonical URI of an MCP server, used as RFC 8707 `resource` and as a store key.

    Lower-case scheme and host, no default port, no fragment, no user information; path
    and query kept as given, except that a path of just "/" is dropped (MCP "Canonical
    Server URI": the form without the trailing slash). Raises `InvalidUrl` (a
    `ValueError`) for anything but an absolute http(s) URL.
    """
    parts = _split_http_url(url, "server URL")
    path = "" if parts.path == "/" else parts.path
    query = f"?{parts.query}" if parts.query else ""
    return f"{_origin(parts)}{path}{query}"


def protected_resource_metadata_urls(server_url: str, header_url: str | None) -> list[str]:
    """Where to look for protected resource metadata, in the order to try.

    MCP 2025-11-25 "Protected Resource Metadata Discovery Requirements": the
    `resource_metadata` URL of the challenge first, then the well-known URI inserted
    before the server's path (RFC 9728 §3.1; skipped for a server at the root, where it
    is the next one), then the well-known URI at the root. No URL appears twice.
    """
    parts = _split_http_url(server_url, "server URL")
    origin = _origin(parts)
    urls: list[str] = []
    if header_url:
        urls.append(header_url)
    # RFC 9728 §3.1: inserted between the host and the path and/or query components.
    path = "" if parts.path == "/" else parts.path
    query = f"?{parts.query}" if parts.query else ""
    if path or query:
        urls.append(f"{origin}{_PRM_SUFFIX}{path}{query}")
    urls.append(f"{origin}{_PRM_SUFFIX}")
    return list(dict.fromkeys(urls))


def authorization_server_metadata_urls(issuer: str) -> list[str]:
    """Where to look for an authorization server's metadata, in the order to try.

    MCP 2025-11-25 "Authorization Server Metadata Discovery". For an issuer with a path:
    RFC 8414 path insertion, OIDC path insertion (RFC 8414 §5), OIDC path appending
    (OIDC Discovery §4), and never a root URL, which would belong to another issuer.
    Without a path (a lone trailing "/" counts as none): RFC 8414, then OIDC. A trailing
    "/" is removed before building (RFC 8414 §3.1, OIDC Discovery §4.1).
    """
    parts = _split_http_url(issuer, "issuer")
    # RFC 8414 §2: the issuer has no query or fragment component.
    if parts.query or parts.fragment:
        raise InvalidUrl(
            f"the issuer {_quote_url(issuer)} has a query or fragment, "
            "which RFC 8414 §2 forbids; the authorization server's metadata is broken"
        )
    origin = f"{parts.scheme.lower()}://{parts.netloc}"
    path = parts.path.rstrip("/")
    if not path:
        return [f"{origin}{_OAUTH_SUFFIX}", f"{origin}{_OIDC_SUFFIX}"]
    return [
        f"{origin}{_OAUTH_SUFFIX}{path}",
        f"{origin}{_OIDC_SUFFIX}{path}",
        f"{origin}{path}{_OIDC_SUFFIX}",
    ]


def validate_resource(prm_resource: str, server_url: str) -> str:
    """Check that protected resource metadata is about this MCP server; return the
    `resource` value to send (the metadata's own, unchanged).

    Accepted when scheme, host and port are equal and the metadata's path is a whole-
    segment prefix of the server's path: RFC 9728 §3.3 asks for identity, relaxed as the
    official SDKs do because servers publish their origin as the resource (conformance
    `auth/metadata-var2`). A query in the metadata's resource must match exactly.
    Raises `ResourceMismatch` otherwise, naming both URLs.
    """
    server = _split_http_url(server_url, "server URL")
    try:
        resource = _split_http_url(prm_resource, "resource")
    except InvalidUrl:
        raise _mismatch(prm_resource, server_url, "it is not an absolute http(s) URL") from None
    # RFC 8707 §2 and RFC 9728 §2: a resource identifier has no fragment.
    if resource.fragment:
        raise _mismatch(prm_resource, server_url, "it has a fragment")
    if _origin(resource) != _origin(server):
        raise _mismatch(prm_resource, server_url, "the scheme, host or port differs")
    resource_path = resource.path.rstrip("/")
    server_path = server.path
    if resource.query:
        same = resource_path == server_path.rstrip("/") and resource.query == server.query
        if not same:
            raise _mismatch(prm_resource, server_url, "the path or query differs")
        return prm_resource
    if resource_path and not (
        server_path == resource_path or server_path.startswith(resource_path + "/")
    ):
        raise _mismatch(prm_resource, server_url, "its path does not contain the server's path")
    return prm_resource


def legacy_metadata_url(server_url: str) -> str:
    """The 2025-03-26 authorization server metadata URL: the RFC 8414 well-known URI at
    the MCP server's origin (path dropped), for servers without resource metadata."""
    return f"{_origin(_split_http_url(server_url, 'server URL'))}{_OAUTH_SUFFIX}"


def legacy_fallback_endpoints(server_url: str) -> dict[str, str]:
    """The 2025-03-26 default endpoints at the MCP server's origin, keyed by their
    RFC 8414 §2 metadata names, for when no metadata document exists at all."""
    origin = _origin(_split_http_url(server_url, "server URL"))
    return {
        "authorization_endpoint": f"{origin}/authorize",
        "token_endpoint": f"{origin}/token",
        "registration_endpoint": f"{origin}/register",
    }


def check_issuer(expected: str, metadata: Mapping[str, object]) -> None:
    """RFC 8414 §3.3 / OIDC Discovery §4.3: the document's `issuer` must be identical to
    the issuer its URL was built from (MCP 2026-07-28: otherwise it MUST NOT be used).
    Simple string comparison, no normalization. Raises `IssuerMismatch`."""
    issuer = metadata.get("issuer")
    if not isinstance(issuer, str):
        raise IssuerMismatch(
            f"the metadata of the authorization server {_quote(expected)} names no issuer; "
            "it cannot be trusted"
        )
    if issuer != expected:
        raise IssuerMismatch(
            f"the metadata fetched for the authorization server {_quote(expected)} "
            f"says its issuer is {_quote(issuer)}; they must be identical (RFC 8414 §3.3). "
            "To use that document anyway, set the server's oauth.authServerMetadataUrl"
        )


def require_pkce_s256(metadata: Mapping[str, object]) -> None:
    """MCP 2025-11-25 "Authorization Code Protection": refuse an authorization server
    whose metadata lacks `code_challenge_methods_supported` or does not list S256.
    Raises `PkceUnsupported`."""
    issuer = metadata.get("issuer")
    name = _quote(issuer) if isinstance(issuer, str) else "(no issuer given)"
    methods = metadata.get("code_challenge_methods_supported")
    if methods is None:
        raise PkceUnsupported(
            f"the authorization server {name} does not advertise PKCE "
            "(its metadata has no code_challenge_methods_supported), and MCP clients must "
            "refuse to proceed without it"
        )
    if not isinstance(methods, list | tuple) or "S256" not in methods:
        raise PkceUnsupported(
            f"the authorization server {name} does not support PKCE with S256 "
            "(code_challenge_methods_supported lacks it), which MCP clients require"
        )


def check_callback_iss(*, iss: str | None, issuer: str, iss_supported: bool) -> None:
    """RFC 9207 §2.4 on an authorization response, before the code is redeemed.

    `iss` present: it must equal `issuer` by simple string comparison, whatever the
    metadata says. Absent: an error when the metadata's
    `authorization_response_iss_parameter_supported` is true, else accepted.
    Raises `IssuerMismatch`.
    """
    if iss is None:
        if iss_supported:
            raise IssuerMismatch(
                f"the authorization response has no iss, but the authorization server "
                f"{_quote(issuer)} promises one (RFC 9207 §2.4); it may be forged"
            )
        return
    # RFC 9207 §2.4: no case folding, port elision or slash normalization.
    if iss != issuer:
        raise IssuerMismatch(
            f"the authorization response comes from the issuer {_quote(iss)}, "
            f"not from {_quote(issuer)} where the sign-in started (RFC 9207 §2.4)"
        )


def is_loopback_url(url: str) -> bool:
    """http(s) to 127.0.0.1, ::1 or localhost."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host in LOOPBACK_HOSTS


def check_endpoint(url: str, what: str, *, allow_insecure_loopback: bool) -> str:
    """OAuth 2.1 §1.5 / MCP security best practices: every URL mcpls sends a person or a
    credential to is https, or http on this machine when `allowInsecureLoopback` is set;
    never javascript:, file: or data:. Scheme compared case-insensitively (RFC 3986 §3.1).
    Raises `InsecureEndpoint`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InsecureEndpoint(f"the {what} {_quote_url(url)} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return url
    if scheme == "http" and is_loopback_url(url):
        if allow_insecure_loopback:
            return url
        raise InsecureEndpoint(
            f"the {what} {_quote_url(url)} is plain http; set allowInsecureLoopback to true "
            "to allow http on this machine (tests and demos only)"
        )
    shown = f"{scheme}:…" if scheme not in ("http", "https") else _quote_url(url)
    raise InsecureEndpoint(f"refusing the {what} {shown} (only https is allowed)")


# RFC 8414 §2 / RFC 8628 §4 / OIDC Discovery §3: metadata members that are URLs mcpls may use.
_ENDPOINT_MEMBERS = (
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "device_authorization_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "end_session_endpoint",
)


def check_metadata_endpoints(
    issuer: str, metadata: Mapping[str, object], *, allow_insecure_loopback: bool
) -> None:
    """The issuer and every endpoint of its metadata follow the same origin policy as the
    issuer (`check_endpoint`); a member that is present but not a string is refused too.
    Raises `InsecureEndpoint`."""
    check_endpoint(issuer, "issuer", allow_insecure_loopback=allow_insecure_loopback)
    for member in _ENDPOINT_MEMBERS:
        value = metadata.get(member)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InsecureEndpoint(f"the {member} of {_quote_url(issuer)} is not a URL")
        check_endpoint(value, member, allow_insecure_loopback=allow_insecure_loopback)


def _split_http_url(url: str, role: str) -> SplitResult:
    """`url` split, if it is an absolute http(s) URL with a plausible host and a valid
    port (the security best practices: validate every URL a server hands out)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        raise InvalidUrl(f"the {role} {_quote_url(url)} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidUrl(f"the {role} {_quote_url(url)} is not an absolute http(s) URL")
    if BAD_HOST.search(parts.hostname):
        raise InvalidUrl(f"the {role} {_quote_url(url)} has a host that is not a host name")
    try:
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        raise InvalidUrl(f"the {role} {_quote_url(url)} has an invalid port") from None
    return parts


def _origin(parts: SplitResult) -> str:
    """scheme://host[:port], lower-cased, default port dropped, user information dropped."""
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal (RFC 3986 §3.2.2)
        host = f"[{host}]"
    port = parts.port
    suffix = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{suffix}"


def _mismatch(prm_resource: str, server_url: str, why: str) -> ResourceMismatch:
    return ResourceMismatch(
        f"the server {_quote_url(server_url)} published metadata for the resource "
        f"{_quote_url(prm_resource)}, which is not this server: {why} (RFC 9728 §3.3)"
    )


def _quote_url(url: str) -> str:
    """`url` quoted for a message, with any user:password@ part hidden."""
    return _quote(_USERINFO.sub(r"\1…@", url))


def _quote(value: str) -> str:
    """`value` quoted for a message, shortened: it may come from an untrusted server."""
    if len(value) > _QUOTE:
        value = value[: _QUOTE - 1] + "…"
    return repr(value)
