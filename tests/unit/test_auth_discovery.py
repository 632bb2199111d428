"""Discovery decisions: canonical resource URIs (RFC 8707), metadata URL orders
(RFC 9728 §3.1, RFC 8414 §3.1, OIDC Discovery §4) as the conformance suite's
metadata-* scenarios expect them, and the checks a fetched document must pass."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpls.auth.discovery import (
    DiscoveryError,
    InvalidUrl,
    IssuerMismatch,
    PkceUnsupported,
    ResourceMismatch,
    authorization_server_metadata_urls,
    canonical_resource,
    check_callback_iss,
    check_issuer,
    legacy_fallback_endpoints,
    legacy_metadata_url,
    protected_resource_metadata_urls,
    require_pkce_s256,
    validate_resource,
)

P = "http://localhost:45297"  # an MCP server as the conformance suite starts it
A = "http://localhost:45298"  # its authorization server

# --- canonical_resource (RFC 8707 §2, MCP "Canonical Server URI") ----------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp"),
        ("HTTPS://MCP.Example.COM/MCP", "https://mcp.example.com/MCP"),  # path keeps case
        ("https://mcp.example.com:443/mcp", "https://mcp.example.com/mcp"),
        ("http://mcp.example.com:80/mcp", "http://mcp.example.com/mcp"),
        ("https://mcp.example.com:8443", "https://mcp.example.com:8443"),
        ("http://mcp.example.com:443/x", "http://mcp.example.com:443/x"),  # not http's default
        ("https://mcp.example.com/", "https://mcp.example.com"),
        ("https://mcp.example.com", "https://mcp.example.com"),
        ("https://mcp.example.com/mcp/", "https://mcp.example.com/mcp/"),  # no slash games
        ("https://mcp.example.com/mcp#frag", "https://mcp.example.com/mcp"),
        ("https://mcp.example.com/mcp?tenant=a", "https://mcp.example.com/mcp?tenant=a"),
        ("https://mcp.example.com/?tenant=a", "https://mcp.example.com?tenant=a"),
        ("https://user:secret@mcp.example.com/mcp", "https://mcp.example.com/mcp"),
        ("http://[::1]:8080/mcp", "http://[::1]:8080/mcp"),
        ("http://[::1]:80/mcp", "http://[::1]/mcp"),
        (f"{P}/mcp", f"{P}/mcp"),
    ],
)
def test_canonical_resource(url: str, canonical: str) -> None:
    assert canonical_resource(url) == canonical


@pytest.mark.parametrize(
    "url",
    [
        "mcp.example.com/mcp",
        "/mcp",
        "//mcp.example.com/mcp",
        "ftp://mcp.example.com/mcp",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https:///mcp",
        "https://mcp.example.com:99999/mcp",
        "https://mcp.example.com:port/mcp",
        "",
    ],
)
def test_canonical_resource_refuses_non_http_urls(url: str) -> None:
    with pytest.raises(ValueError, match="server URL"):
        canonical_resource(url)


@given(
    st.sampled_from(["http", "HTTP", "https", "Https"]),
    st.sampled_from(["example.com", "EXAMPLE.com", "127.0.0.1", "[::1]"]),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    st.sampled_from(["", "/", "/mcp", "/a/b/", "/MCP"]),
    st.sampled_from(["", "?x=1"]),
    st.sampled_from(["", "#f"]),
)
@settings(deadline=None)
def test_canonical_resource_is_idempotent_and_fragment_free(
    scheme: str, host: str, port: str, path: str, query: str, fragment: str
) -> None:
    canonical = canonical_resource(f"{scheme}://{host}{port}{path}{query}{fragment}")
    assert canonical_resource(canonical) == canonical
    assert "#" not in canonical
    assert not canonical.endswith("/") or path == "/a/b/"
    # RFC 8707 §2 / MCP: scheme and host case do not matter; the path's does.
    shouted = canonical_resource(f"{scheme.upper()}://{host.upper()}{port}{path}{query}")
    assert shouted == canonical
    assert canonical.endswith(f"{'' if path == '/' else path}{query}")


# --- protected_resource_metadata_urls (checklist §1.2) --------------------------------


def test_prm_urls_spec_example() -> None:
    assert protected_resource_metadata_urls("https://example.com/public/mcp", None) == [
        "https://example.com/.well-known/oauth-protected-resource/public/mcp",
        "https://example.com/.well-known/oauth-protected-resource",
    ]


def test_prm_urls_header_first() -> None:
    header = "https://example.com/custom/metadata/location.json"
    assert protected_resource_metadata_urls("https://example.com/public/mcp", header) == [
        header,
        "https://example.com/.well-known/oauth-protected-resource/public/mcp",
        "https://example.com/.well-known/oauth-protected-resource",
    ]


@pytest.mark.parametrize("server", ["https://example.com", "https://example.com/"])
def test_prm_urls_server_at_root_skips_path_insertion(server: str) -> None:
    assert protected_resource_metadata_urls(server, None) == [
        "https://example.com/.well-known/oauth-protected-resource",
    ]


def test_prm_urls_keep_query_and_trailing_slash() -> None:
    # RFC 9728 §3.1: inserted between the host and the path and/or query components.
    assert protected_resource_metadata_urls("https://Example.com:443/mcp/?t=1", None) == [
        "https://example.com/.well-known/oauth-protected-resource/mcp/?t=1",
        "https://example.com/.well-known/oauth-protected-resource",
    ]


def test_conformance_metadata_default() -> None:
    # PRM announced in WWW-Authenticate and at the path-based URL: no URL twice.
    header = f"{P}/.well-known/oauth-protected-resource/mcp"
    assert protected_resource_metadata_urls(f"{P}/mcp", header) == [
        header,
        f"{P}/.well-known/oauth-protected-resource",
    ]


def test_conformance_metadata_var1_and_var2_prm() -> None:
    # Not in WWW-Authenticate: path-based first (var1 serves it), root next (var2's).
    assert protected_resource_metadata_urls(f"{P}/mcp", None) == [
        f"{P}/.well-known/oauth-protected-resource/mcp",
        f"{P}/.well-known/oauth-protected-resource",
    ]


def test_conformance_metadata_var3_prm() -> None:
    header = f"{P}/custom/metadata/location.json"
    assert protected_resource_metadata_urls(f"{P}/mcp", header)[0] == header


# --- authorization_server_metadata_urls (checklist §1.3) ------------------------------


def test_as_urls_issuer_with_path() -> None:
    assert authorization_server_metadata_urls("https://auth.example.com/tenant1") == [
        "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
        "https://auth.example.com/.well-known/openid-configuration/tenant1",
        "https://auth.example.com/tenant1/.well-known/openid-configuration",
    ]


def test_as_urls_issuer_without_path() -> None:
    assert authorization_server_metadata_urls("https://auth.example.com") == [
        "https://auth.example.com/.well-known/oauth-authorization-server",
        "https://auth.example.com/.well-known/openid-configuration",
    ]


def test_as_urls_trailing_slash_issuer_has_no_path() -> None:
    # The Python SDK, the TypeScript demo and FastMCP publish issuers like this.
    assert authorization_server_metadata_urls("http://localhost:9000/") == [
        "http://localhost:9000/.well-known/oauth-authorization-server",
        "http://localhost:9000/.well-known/openid-configuration",
    ]


def test_as_urls_trailing_slash_after_a_path_is_removed() -> None:
    # OIDC Discovery §4.1: "any terminating / MUST be removed before appending".
    assert authorization_server_metadata_urls("https://kc.example.com/realms/r/") == [
        "https://kc.example.com/.well-known/oauth-authorization-server/realms/r",
        "https://kc.example.com/.well-known/openid-configuration/realms/r",
        "https://kc.example.com/realms/r/.well-known/openid-configuration",
    ]


def test_conformance_metadata_var1_as() -> None:
    # The AS serves only OIDC discovery at the root: it is the second candidate.
    assert authorization_server_metadata_urls(A) == [
        f"{A}/.well-known/oauth-authorization-server",
        f"{A}/.well-known/openid-configuration",
    ]


def test_conformance_metadata_var2_and_var3_as_never_touch_the_root() -> None:
    urls = authorization_server_metadata_urls(f"{A}/tenant1")
    # var2 serves the first, var3 only the third.
    assert urls[0] == f"{A}/.well-known/oauth-authorization-server/tenant1"
    assert urls[2] == f"{A}/tenant1/.well-known/openid-configuration"
    # The suite traps the root URL as a FAILURE.
    assert f"{A}/.well-known/oauth-authorization-server" not in urls
    assert f"{A}/.well-known/openid-configuration" not in urls
    assert len(urls) == 3


@pytest.mark.parametrize(
    "issuer", ["auth.example.com", "ftp://auth.example.com", "https://a.example?x=1", "https://a#f"]
)
def test_as_urls_refuse_bad_issuers(issuer: str) -> None:
    with pytest.raises(InvalidUrl, match="issuer"):
        authorization_server_metadata_urls(issuer)


# --- validate_resource (RFC 9728 §3.3, conformance auth/resource-mismatch) --------------


@pytest.mark.parametrize(
    ("prm_resource", "server_url"),
    [
        (f"{P}/mcp", f"{P}/mcp"),  # metadata-default
        (P, f"{P}/mcp"),  # metadata-var2: the root PRM names the origin
        (f"{P}/", f"{P}/mcp"),
        ("https://api.github.com/mcp/", "https://api.github.com/mcp"),  # GitHub's slash
        ("https://api.github.com/mcp", "https://api.github.com/mcp/"),
        ("https://example.com/a", "https://example.com/a/b/c"),
        ("HTTPS://Example.COM:443/mcp", "https://example.com/mcp"),
        ("https://example.com/mcp", "https://EXAMPLE.com:443/mcp#x"),
        ("https://example.com/mcp?t=1", "https://example.com/mcp?t=1"),
    ],
)
def test_validate_resource_accepts_and_returns_the_prm_resource(
    prm_resource: str, server_url: str
) -> None:
    assert validate_resource(prm_resource, server_url) == prm_resource


@pytest.mark.parametrize(
    ("prm_resource", "server_url", "why"),
    [
        ("https://evil.example.com/mcp", f"{P}/mcp", "scheme, host or port differs"),
        ("https://example.com/mcp", "http://example.com/mcp", "scheme, host or port differs"),
        ("https://example.com:8443/mcp", "https://example.com/mcp", "host or port"),
        ("https://sub.example.com/mcp", "https://example.com/mcp", "host or port"),
        ("https://example.com/mc", "https://example.com/mcp", "path"),  # not a segment
        ("https://example.com/mcp/v2", "https://example.com/mcp", "path"),
        ("https://example.com/MCP", "https://example.com/mcp", "path"),
        ("https://example.com/mcp?t=2", "https://example.com/mcp?t=1", "query"),
        ("https://example.com/?t=1", "https://example.com/mcp?t=1", "query"),
        ("https://example.com/mcp#x", "https://example.com/mcp", "fragment"),
        ("urn:example:mcp", "https://example.com/mcp", "not an absolute http"),
        ("", "https://example.com/mcp", "not an absolute http"),
    ],
)
def test_validate_resource_refuses_other_resources(
    prm_resource: str, server_url: str, why: str
) -> None:
    with pytest.raises(ResourceMismatch) as caught:
        validate_resource(prm_resource, server_url)
    message = str(caught.value)
    assert why in message
    assert repr(server_url) in message
    assert repr(prm_resource) in message


def test_conformance_resource_mismatch() -> None:
    with pytest.raises(ResourceMismatch, match=r"evil\.example\.com"):
        validate_resource("https://evil.example.com/mcp", f"{P}/mcp")


def test_errors_are_value_errors_and_discovery_errors() -> None:
    for error in (ResourceMismatch, IssuerMismatch, PkceUnsupported, InvalidUrl):
        assert issubclass(error, DiscoveryError)
        assert issubclass(error, ValueError)


def test_long_urls_are_shortened_in_messages() -> None:
    long = "https://example.com/" + "a" * 5000
    with pytest.raises(ResourceMismatch) as caught:
        validate_resource("https://evil.example.com/", long)
    assert "a" * 100 not in str(caught.value)


# --- legacy 2025-03-26 fallback (checklist §1.3) ---------------------------------------


def test_legacy_metadata_url_drops_the_path() -> None:
    assert legacy_metadata_url(f"{P}/mcp") == f"{P}/.well-known/oauth-authorization-server"
    assert (
        legacy_metadata_url("HTTPS://Example.com:443/a/b?q#f")
        == "https://example.com/.well-known/oauth-authorization-server"
    )


def test_legacy_fallback_endpoints() -> None:
    assert legacy_fallback_endpoints(f"{P}/mcp") == {
        "authorization_endpoint": f"{P}/authorize",
        "token_endpoint": f"{P}/token",
        "registration_endpoint": f"{P}/register",
    }


# --- check_issuer (RFC 8414 §3.3) -------------------------------------------------------


def test_check_issuer_accepts_identical() -> None:
    check_issuer("http://localhost:9000/", {"issuer": "http://localhost:9000/"})
    check_issuer(f"{A}/tenant1", {"issuer": f"{A}/tenant1", "token_endpoint": "x"})


@pytest.mark.parametrize(
    "published",
    [
        "http://localhost:9000",  # trailing slash differs: no normalization
        "HTTP://localhost:9000/",
        "http://localhost:9000/oauth",  # conformance 0.1.16 backcompat's issuer
        "https://evil.example.com/",
    ],
)
def test_check_issuer_refuses_anything_else(published: str) -> None:
    with pytest.raises(IssuerMismatch) as caught:
        check_issuer("http://localhost:9000/", {"issuer": published})
    assert repr(published) in str(caught.value)
    assert "'http://localhost:9000/'" in str(caught.value)


@pytest.mark.parametrize("metadata", [{}, {"issuer": None}, {"issuer": ["x"]}])
def test_check_issuer_refuses_missing(metadata: dict[str, object]) -> None:
    with pytest.raises(IssuerMismatch, match="names no issuer"):
        check_issuer("https://auth.example.com", metadata)


# --- require_pkce_s256 (MCP "Authorization Code Protection") ----------------------------


@pytest.mark.parametrize("methods", [["S256"], ["plain", "S256"], ("S256",)])
def test_pkce_s256_accepted(methods: object) -> None:
    require_pkce_s256({"issuer": A, "code_challenge_methods_supported": methods})


def test_pkce_absent_is_refused_and_names_the_issuer() -> None:
    with pytest.raises(PkceUnsupported, match="does not advertise PKCE") as caught:
        require_pkce_s256({"issuer": A})
    assert A in str(caught.value)
    assert "code_challenge_methods_supported" in str(caught.value)


@pytest.mark.parametrize("methods", [["plain"], [], "S256x", {"S256": True}, ["s256"]])
def test_pkce_without_s256_is_refused(methods: object) -> None:
    with pytest.raises(PkceUnsupported, match=r"does not support PKCE with S256") as caught:
        require_pkce_s256({"issuer": A, "code_challenge_methods_supported": methods})
    assert A in str(caught.value)


def test_pkce_refusal_without_issuer_still_reads() -> None:
    with pytest.raises(PkceUnsupported, match="no issuer given"):
        require_pkce_s256({})


# --- check_callback_iss (RFC 9207 §2.4, checklist §1.10) --------------------------------

ISSUER = "https://auth.example.com/tenant1"


@pytest.mark.parametrize("supported", [True, False])
def test_iss_present_and_equal_is_accepted(supported: bool) -> None:
    check_callback_iss(iss=ISSUER, issuer=ISSUER, iss_supported=supported)


def test_iss_absent_when_not_advertised_is_accepted() -> None:
    check_callback_iss(iss=None, issuer=ISSUER, iss_supported=False)


def test_iss_absent_when_advertised_is_refused() -> None:
    with pytest.raises(IssuerMismatch, match="has no iss"):
        check_callback_iss(iss=None, issuer=ISSUER, iss_supported=True)


@pytest.mark.parametrize("supported", [True, False])
@pytest.mark.parametrize(
    "iss",
    [
        "https://evil.example.com/tenant1",  # iss-wrong-issuer / iss-unexpected
        "HTTPS://auth.example.com/tenant1",  # iss-normalized: no case folding
        "https://auth.example.com:443/tenant1",  # no default-port elision
        "https://auth.example.com/tenant1/",  # no trailing-slash games
        "https://auth.example.com/tenant%31",  # no percent-decoding
        "",
    ],
)
def test_iss_mismatch_is_refused(iss: str, supported: bool) -> None:
    with pytest.raises(IssuerMismatch) as caught:
        check_callback_iss(iss=iss, issuer=ISSUER, iss_supported=supported)
    assert repr(ISSUER) in str(caught.value)


# --- Hostile input -----------------------------------------------------------------------


def test_credentials_in_a_url_never_reach_a_message() -> None:
    with pytest.raises(InvalidUrl) as caught:
        canonical_resource("https://alice:hunter2@mcp.example.com:bad/mcp")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ResourceMismatch) as mismatch:
        validate_resource("https://bob:s3cret@evil.example.com/", "https://mcp.example.com/")
    assert "s3cret" not in str(mismatch.value)


@pytest.mark.parametrize(
    "url", ["http://[::1", "https://exa mple.com/", 'https://a"b.com/', "https://a<b>/"]
)
def test_urls_with_impossible_hosts_are_refused(url: str) -> None:
    with pytest.raises(InvalidUrl):
        canonical_resource(url)


url_soup = st.text(alphabet="htps:/[]@?#%:.-aA1 \"\t'", max_size=30) | st.text(max_size=30)


@given(url_soup, url_soup)
@settings(max_examples=500, deadline=None)
def test_any_text_gives_an_answer_or_a_discovery_error(text: str, other: str) -> None:
    calls = (
        lambda: canonical_resource(text),
        lambda: protected_resource_metadata_urls(text, other or None),
        lambda: authorization_server_metadata_urls(text),
        lambda: validate_resource(text, other),
        lambda: validate_resource(other, f"https://example.com/{text}"),
        lambda: legacy_metadata_url(text),
        lambda: legacy_fallback_endpoints(text),
        lambda: check_callback_iss(iss=text, issuer=other, iss_supported=True),
    )
    for call in calls:
        message = ""
        try:
            call()
        except DiscoveryError as exc:
            message = str(exc)
        # Two URLs of at most 80 characters each, and the wording.
        assert len(message) < 500
