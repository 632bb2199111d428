"""Discovery decisions as pure functions: the canonical resource URI (RFC 8707 §2, MCP
"Canonical Server URI"), which metadata URLs to try and in which order (RFC 9728 §3.1,
RFC 8414 §3.1, OIDC Discovery §4), and the checks a fetched document must pass
(RFC 9728 §3.3, RFC 8414 §3.3, MCP PKCE rules, RFC 9207 §2.4).

No I/O: `metadata.py` fetches what these functions name and feeds the answers back.
Every error is a `DiscoveryError`, which is also a `ValueError`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from mcpls.errors import SecurityRefusal

__all__ = [
    "BAD_HOST",
    "LOOPBACK_HOSTS",
    "DiscoveryError",
    "ForbiddenAddress",
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
    "check_network",
    "host_network",
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


class ForbiddenAddress(InsecureEndpoint):
    """An OAuth URL whose host is an address mcpls must not be sent to by a server's
    metadata (SSRF): link-local (cloud metadata services), unspecified, multicast,
    broadcast or reserved; private or loopback while the MCP server is not (`check_network`)."""


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


def check_endpoint(
    url: str,
    what: str,
    *,
    allow_insecure_loopback: bool,
    trusted: Sequence[str] | None = None,
) -> str:
    """OAuth 2.1 §1.5 / MCP security best practices: every URL mcpls sends a person or a
    credential to is https, or http on this machine when `allowInsecureLoopback` is set;
    never javascript:, file:, data: or vbscript:. Scheme compared case-insensitively
    (RFC 3986 §3.1). With `trusted` (the URLs the person configured: the MCP server's,
    authServerMetadataUrl), the host must also pass `check_network`; discovery passes them,
    and every later use of an endpoint reads metadata discovery already checked.
    Raises `InsecureEndpoint` (`ForbiddenAddress` for the network rule)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InsecureEndpoint(f"the {what} {_quote_url(url)} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if trusted is not None and scheme in _DEFAULT_PORTS:
        check_network(url, what, trusted=trusted, allow_insecure_loopback=allow_insecure_loopback)
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


# -- SSRF: which networks an OAuth URL may point into ----------------------------------------

Network = Literal["public", "name", "private", "loopback", "link-local", "special"]
# Where `host_network` says a host is; the reason a refusal gives, by network.
_WHY: dict[Network, str] = {
    "link-local": "a link-local address (169.254.0.0/16, fe80::/10: where cloud metadata "
    "services answer), which no authorization server needs",
    "special": "an unspecified, multicast, broadcast or reserved address, which no "
    "authorization server has",
    "private": "a private-network address (10/8, 172.16/12, 192.168/16, fc00::/7 and the "
    "like) while the MCP server is not on one",
    "loopback": "this machine while the MCP server is not on it; set allowInsecureLoopback "
    "to true to allow it (tests and demos only)",
}
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host": Linux connects 0.x locally
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: an IPv4 address inside IPv6


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """`host` as the C library's inet_aton reads it (the resolver behind every connect):
    1 to 4 parts, each decimal, octal (leading 0) or hex (0x), the last filling the
    remaining bytes, so "2852039166", "0xA9.0xFE.0xA9.0xFE", "0251.0376.0251.0376" and
    "169.254.43518" are all 169.254.169.254. None if it is not such a number."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        lowered = part.lower()
        try:
            if lowered.startswith("0x"):
                value = int(lowered[2:] or "0", 16)
            elif len(lowered) > 1 and lowered.startswith("0"):
                value = int(lowered, 8)
            elif lowered.isdigit():
                value = int(lowered, 10)
            else:
                return None
        except ValueError:
            return None
        values.append(value)
    *head, last = values
    if any(value > 0xFF for value in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = last
    for index, value in enumerate(head):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a URL host stands for, in any spelling a resolver accepts; None for
    a name. IPv6 zones dropped; IPv4 inside IPv6 (mapped, NAT64, 6to4) unwrapped."""
    if ":" in host:
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(
                host.split("%", 1)[0]
            )
        except ValueError:
            return None
        assert isinstance(address, ipaddress.IPv6Address)
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        return address
    return _inet_aton(host)


def host_network(host: str) -> Network:
    """Where a URL's host is: an address's network, or "name" for a host name, which is
    not resolved (see `check_network`). "localhost" and its subdomains (RFC 6761 §6.3)
    are loopback; one trailing dot (the root label) changes nothing."""
    host = host.lower()
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    address = _address(host)
    if address is None:
        return "name"
    if address.is_link_local:
        return "link-local"
    if address.is_loopback:  # before "reserved": ::1 lies in the reserved ::/8
        return "loopback"
    if (
        address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or address in _THIS_NETWORK
        or address == ipaddress.IPv4Address("255.255.255.255")
    ):
        return "special"
    if not address.is_global:
        return "private"
    return "public"


def check_network(
    url: str, what: str, *, trusted: Sequence[str], allow_insecure_loopback: bool
) -> None:
    """MCP security best practices (SSRF): an OAuth URL a server's metadata names must not
    lead mcpls into a network the person did not point it at.

    By the host's network (`host_network`): link-local and special addresses always
    refused; a private address only when a `trusted` URL (the MCP server's, or the
    configured authServerMetadataUrl) is itself on a private address; loopback only with
    `allow_insecure_loopback` or a trusted URL on loopback; public addresses pass.

    Host names pass without a lookup: resolving here and connecting later could give two
    different answers (DNS rebinding, the checklist's TOCTOU warning), so a check on
    names belongs where the connection is made, not in a rule over URLs; and the names of
    internal hosts are the person's own business (a company's MCP server and its
    authorization server are often both internal names). What a URL says literally, in
    any spelling a resolver reads as an address, is judged here.
    Raises `ForbiddenAddress`."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        raise InsecureEndpoint(f"the {what} {_quote_url(url)} is not a valid URL") from None
    if "%" in host and ":" not in host:
        # Percent-encoding has no place in a registered name; a decoder might read an address.
        raise ForbiddenAddress(f"refusing the {what} {_quote_url(url)}: its host is encoded")
    network = host_network(host)
    if network in ("public", "name"):
        return
    near = {host_network(urlsplit(place).hostname or "") for place in trusted}
    if network == "private" and "private" in near:
        return
    if network == "loopback" and (allow_insecure_loopback or "loopback" in near):
        return
    raise ForbiddenAddress(
        f"refusing the {what} {_quote_url(url)}: its host is {_WHY[network]} (the MCP "
        "security best practices' SSRF rule: a server's metadata must not send mcpls there)"
    )


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
    issuer: str,
    metadata: Mapping[str, object],
    *,
    allow_insecure_loopback: bool,
    trusted: Sequence[str] | None = None,
) -> None:
    """The issuer and every endpoint of its metadata follow the same origin policy as the
    issuer (`check_endpoint`, with the network rule when `trusted` is given); a member
    that is present but not a string is refused too. Raises `InsecureEndpoint`."""
    loopback = allow_insecure_loopback
    check_endpoint(issuer, "issuer", allow_insecure_loopback=loopback, trusted=trusted)
    for member in _ENDPOINT_MEMBERS:
        value = metadata.get(member)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InsecureEndpoint(f"the {member} of {_quote_url(issuer)} is not a URL")
        check_endpoint(value, member, allow_insecure_loopback=loopback, trusted=trusted)


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
