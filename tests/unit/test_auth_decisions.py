"""The OAuth client's decisions as pure functions, per rule: when to refresh, which client
registration to use, which URLs an authorization server may hand out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mcpls.auth.discovery import InsecureEndpoint, check_endpoint, check_metadata_endpoints
from mcpls.auth.registration import choose_registration
from mcpls.auth.tokens import decide_refresh
from mcpls.store.records import ClientRegistration, TokenSet

NOW = 1_900_000_000.0
REDIRECT = "http://127.0.0.1:23456/callback"


def tokens(access: str = "a1", *, expires_in: float = 3600, refresh: str | None = "r1") -> TokenSet:
    return TokenSet(
        access_token=access,
        token_type="Bearer",
        expires_at=NOW + expires_in,
        refresh_token=refresh,
        scope=(),
        issuer="https://as.example",
        resource="https://rs.example/mcp",
        obtained_at=NOW - 60,
    )


def test_a_fresh_token_is_used_as_it_is() -> None:
    assert decide_refresh(tokens(), tokens(), forced=False, now=NOW).action == "use"


def test_a_token_close_to_expiry_or_refused_is_refreshed() -> None:
    due = tokens(expires_in=10)
    assert decide_refresh(due, due, forced=False, now=NOW).action == "refresh"
    assert decide_refresh(tokens(), tokens(), forced=True, now=NOW).action == "refresh"


def test_a_token_another_window_rotated_is_adopted_not_refreshed_again() -> None:
    theirs = tokens("a2")
    plan = decide_refresh(theirs, tokens("a1", expires_in=10), forced=True, now=NOW)
    assert (plan.action, plan.tokens) == ("use", theirs)


def test_a_rotated_token_that_is_itself_due_is_refreshed_from_theirs() -> None:
    theirs = tokens("a2", expires_in=5)
    plan = decide_refresh(theirs, tokens("a1"), forced=True, now=NOW)
    assert (plan.action, plan.tokens) == ("refresh", theirs)


def test_signed_out_elsewhere_or_no_refresh_token_means_sign_in() -> None:
    assert decide_refresh(None, tokens(), forced=False, now=NOW).action == "give_up"
    once = tokens(refresh=None)
    assert decide_refresh(once, once, forced=True, now=NOW).action == "give_up"
    assert decide_refresh(once, once, forced=False, now=NOW).action == "use"


def registration(*, redirect: str = REDIRECT, expires: float | None = None) -> ClientRegistration:
    return ClientRegistration(
        issuer="https://as.example",
        client_id="c",
        client_secret="s",
        token_endpoint_auth_method="client_secret_post",
        redirect_uris=(redirect,),
        source="dcr",
        client_secret_expires_at=expires,
    )


def choose(**overrides: object) -> str:
    arguments: dict[str, object] = {
        "configured_client_id": None,
        "cimd_url": None,
        "cimd_supported": False,
        "stored": registration(),
        "redirect_uri": REDIRECT,
        "fresh": False,
        "now": NOW,
    }
    arguments.update(overrides)
    return choose_registration(**arguments)  # type: ignore[arg-type]


def test_registration_priority_preregistered_then_cimd_then_dynamic() -> None:
    assert (
        choose(configured_client_id="mine", cimd_url="https://c.example/m", cimd_supported=True)
        == "preregistered"
    )
    assert choose(cimd_url="https://c.example/m", cimd_supported=True) == "cimd"
    assert choose(cimd_url="https://c.example/m") == "stored"  # CIMD not supported: DCR
    assert choose(stored=None) == "register"


def test_a_stored_registration_is_reused_only_for_its_redirect_uri_and_while_valid() -> None:
    assert choose() == "stored"
    assert choose(stored=registration(redirect="http://127.0.0.1:1/callback")) == "register"
    assert choose(stored=registration(expires=NOW - 1)) == "register"  # RFC 7591 §3.2.1
    assert choose(stored=registration(expires=NOW + 60)) == "stored"
    assert choose(fresh=True) == "register"


@pytest.mark.parametrize(
    "url", ["HTTPS://as.example/token", "https://as.example/token", "Https://as.example"]
)
def test_https_endpoints_pass_whatever_the_scheme_case(url: str) -> None:
    assert check_endpoint(url, "token endpoint", allow_insecure_loopback=False) == url


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://as.example/token", True),  # plain http elsewhere: never
        ("http://127.0.0.1:9/token", False),  # loopback http: only when allowed
        ("javascript:alert(1)", True),
        ("data:text/html,x", True),
        ("file:///etc/passwd", True),
    ],
)
def test_other_endpoints_are_refused(url: str, allow: bool) -> None:
    with pytest.raises(InsecureEndpoint):
        check_endpoint(url, "token endpoint", allow_insecure_loopback=allow)


def test_every_endpoint_of_the_metadata_follows_the_issuer_policy() -> None:
    metadata = {
        "authorization_endpoint": "https://as.example/authorize",
        "token_endpoint": "https://as.example/token",
        "revocation_endpoint": "http://as.example/revoke",
    }
    with pytest.raises(InsecureEndpoint, match="revocation_endpoint"):
        check_metadata_endpoints("https://as.example", metadata, allow_insecure_loopback=True)
    with pytest.raises(InsecureEndpoint, match="issuer"):
        check_metadata_endpoints("http://as.example", {}, allow_insecure_loopback=True)
    good = {**metadata, "revocation_endpoint": "https://as.example/revoke"}
    check_metadata_endpoints("https://as.example", good, allow_insecure_loopback=False)
    with pytest.raises(InsecureEndpoint, match="is not a URL"):
        check_metadata_endpoints(
            "https://as.example", {**good, "jwks_uri": 42}, allow_insecure_loopback=False
        )


def test_token_sets_remember_the_client_that_may_refresh_them() -> None:
    stored = replace(tokens(), client_id="c", redirect_uri=REDIRECT)
    assert TokenSet.from_json(stored.to_json()) == stored
