"""The sign-in pieces: PKCE, the authorization URL, the redirect checks, the loopback
listener (a real socket), token responses, registration choices."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcpls.auth.discovery import InsecureEndpoint, check_endpoint
from mcpls.auth.flow import (
    CallbackListener,
    Pkce,
    StateMismatch,
    _parse_token_response,
    authorization_url,
    check_redirect,
    stable_callback_port,
    token_set,
)
from mcpls.auth.registration import choose_auth_method
from mcpls.errors import OAuthRefused, ProtocolError, SecurityRefusal
from mcpls.store.records import ClientRegistration, TokenSet

ISSUER = "https://auth.example.com"
REDIRECT = "http://127.0.0.1:23456/callback"
REGISTRATION = ClientRegistration(
    issuer=ISSUER,
    client_id="mcpls-client",
    client_secret=None,
    token_endpoint_auth_method="none",
    redirect_uris=(REDIRECT,),
    source="dcr",
)


def test_pkce_s256_pair() -> None:
    pkce = Pkce.new()
    assert 43 <= len(pkce.verifier) <= 128
    digest = hashlib.sha256(pkce.verifier.encode()).digest()
    assert pkce.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert pkce.verifier not in repr(pkce)
    assert Pkce.new().verifier != pkce.verifier


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,hi", "/relative", "ftp://h/x"],
)
def test_dangerous_endpoints_are_refused(url: str) -> None:
    with pytest.raises(InsecureEndpoint, match="only https") as raised:
        check_endpoint(url, "authorization endpoint", allow_insecure_loopback=True)
    assert isinstance(raised.value, SecurityRefusal)


def test_plain_http_only_on_loopback_and_only_when_allowed() -> None:
    assert check_endpoint("https://a.example/authorize", "x", allow_insecure_loopback=False)
    assert check_endpoint("http://127.0.0.1:9/authorize", "x", allow_insecure_loopback=True)
    with pytest.raises(InsecureEndpoint, match="allowInsecureLoopback"):
        check_endpoint("http://localhost:9/authorize", "x", allow_insecure_loopback=False)
    with pytest.raises(InsecureEndpoint, match="only https"):
        check_endpoint("http://evil.example/authorize", "x", allow_insecure_loopback=True)


def test_authorization_url_has_pkce_state_resource_and_scope() -> None:
    pkce = Pkce.new()
    url = authorization_url(
        "https://auth.example.com/authorize?tenant=1",
        client_id="cid",
        redirect_uri=REDIRECT,
        scopes=("mcp:read", "mcp:write"),
        state="st",
        pkce=pkce,
        resource="https://mcp.example.com/mcp",
    )
    query = parse_qs(urlsplit(url).query)
    assert query["tenant"] == ["1"]
    assert query["response_type"] == ["code"]
    assert query["code_challenge"] == [pkce.challenge]
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == ["st"]
    assert query["scope"] == ["mcp:read mcp:write"]
    assert query["resource"] == ["https://mcp.example.com/mcp"]
    assert query["redirect_uri"] == [REDIRECT]


def test_authorization_url_omits_scope_and_resource_when_undefined() -> None:
    url = authorization_url(
        "https://a/authorize",
        client_id="c",
        redirect_uri="http://127.0.0.1:1/callback",
        scopes=None,
        state="s",
        pkce=Pkce.new(),
        resource=None,
    )
    query = parse_qs(urlsplit(url).query)
    assert "scope" not in query
    assert "resource" not in query


def test_redirect_state_mismatch() -> None:
    with pytest.raises(StateMismatch, match="state mismatch"):
        check_redirect(
            {"code": "c", "state": "other"}, state="s", issuer=ISSUER, iss_supported=False
        )


def test_redirect_iss_checked_before_the_error_is_shown() -> None:
    forged = {
        "state": "s",
        "error": "access_denied",
        "error_description": "call 555-FAKE",
        "iss": "https://evil.example",
    }
    with pytest.raises(OAuthRefused) as caught:
        check_redirect(forged, state="s", issuer=ISSUER, iss_supported=True)
    assert "wrong issuer" in caught.value.message
    assert "555-FAKE" not in caught.value.message
    genuine = {**forged, "iss": ISSUER}
    with pytest.raises(OAuthRefused, match="555-FAKE"):
        check_redirect(genuine, state="s", issuer=ISSUER, iss_supported=True)


def test_redirect_iss_required_when_the_server_promises_it() -> None:
    with pytest.raises(OAuthRefused, match="wrong issuer"):
        check_redirect({"state": "s", "code": "c"}, state="s", issuer=ISSUER, iss_supported=True)
    result = check_redirect(
        {"state": "s", "code": "c"}, state="s", issuer=ISSUER, iss_supported=False
    )
    assert result.code == "c"


async def test_loopback_listener_serves_one_flow() -> None:
    listener = CallbackListener(
        host="127.0.0.1", port=0, state="s1", issuer=ISSUER, iss_supported=False
    )
    await listener.start()
    assert listener.redirect_uri == f"http://127.0.0.1:{listener.port}/callback"
    async with httpx.AsyncClient() as browser:
        wrong_path = await browser.get(f"http://127.0.0.1:{listener.port}/other")
        assert wrong_path.status_code == 404
        page = await browser.get(f"{listener.redirect_uri}?code=abc&state=s1")
        assert page.status_code == 200
        assert "You can close this tab" in page.text
        again = await browser.get(f"{listener.redirect_uri}?code=zzz&state=s1")
        assert again.status_code == 409
    result = await listener.wait(timeout=1)
    assert result.code == "abc"
    with socket.socket() as probe:  # closed after the flow
        assert probe.connect_ex(("127.0.0.1", listener.port)) != 0


async def test_loopback_listener_rejects_forged_state_and_keeps_waiting() -> None:
    # An answer with a wrong or no `state` (a stale tab, a probe of the port) is refused
    # with 400 and does not end the sign-in: the genuine answer still completes it.
    listener = CallbackListener(
        host="127.0.0.1", port=0, state="good", issuer=ISSUER, iss_supported=False
    )
    await listener.start()
    async with httpx.AsyncClient() as browser:
        forged = await browser.get(f"{listener.redirect_uri}?code=evil&state=bad")
        assert forged.status_code == 400
        assert "does not belong to the sign-in in progress" in forged.text
        stateless = await browser.get(f"{listener.redirect_uri}?code=evil")
        assert stateless.status_code == 400
        assert not listener.result.done()
        with pytest.raises(StateMismatch, match="state mismatch"):
            listener.deliver({"code": "evil", "state": "pasted-from-another-sign-in"})
        assert not listener.result.done()
        genuine = await browser.get(f"{listener.redirect_uri}?code=abc&state=good")
        assert genuine.status_code == 200
    result = await listener.wait(timeout=1)
    assert result.code == "abc"


async def test_loopback_listener_times_out() -> None:
    listener = CallbackListener(
        host="127.0.0.1", port=0, state="s", issuer=ISSUER, iss_supported=False
    )
    await listener.start()
    with pytest.raises(OAuthRefused, match="no sign-in answer"):
        await listener.wait(timeout=0.05)


def test_stable_port_is_stable_and_in_range() -> None:
    port = stable_callback_port("https://mcp.linear.app/mcp")
    assert port == stable_callback_port("https://mcp.linear.app/mcp")
    assert 20000 <= port < 30000
    assert port != stable_callback_port("https://mcp.notion.com/mcp")


def test_token_response_json_and_form() -> None:
    as_json = '{"access_token": "a", "token_type": "bearer"}'
    assert _parse_token_response(200, "application/json", as_json)["access_token"] == "a"
    as_form = "access_token=b&token_type=bearer&scope=repo"
    assert _parse_token_response(200, "application/x-www-form-urlencoded", as_form) == {
        "access_token": "b",
        "token_type": "bearer",
        "scope": "repo",
    }


def test_token_set_keeps_old_refresh_token_and_handles_missing_expiry() -> None:
    previous = TokenSet(
        access_token="old",
        token_type="Bearer",
        expires_at=1.0,
        refresh_token="r1",
        scope=("a",),
        issuer=ISSUER,
        resource="https://m/mcp",
    )
    fresh = token_set(
        {"access_token": "new", "token_type": "bearer"},
        issuer=ISSUER,
        resource="https://m/mcp",
        requested_scopes=None,
        registration=REGISTRATION,
        redirect_uri=REDIRECT,
        previous=previous,
    )
    assert (fresh.access_token, fresh.refresh_token, fresh.expires_at) == ("new", "r1", None)
    assert fresh.scope == ("a",)
    # The client that obtained it is recorded: only it may refresh it.
    assert (fresh.client_id, fresh.redirect_uri) == ("mcpls-client", REDIRECT)
    timed = token_set(
        {"access_token": "x", "expires_in": 60},
        issuer=ISSUER,
        resource="https://m/mcp",
        requested_scopes=("s",),
        registration=REGISTRATION,
        redirect_uri=None,
    )
    assert timed.expires_at is not None
    assert 50 < timed.expires_at - time.time() <= 60
    assert timed.scope == ("s",)


def test_token_set_refuses_non_bearer_and_missing_token() -> None:
    with pytest.raises(ProtocolError, match="Bearer"):
        token_set(
            {"access_token": "x", "token_type": "mac"},
            issuer=ISSUER,
            resource="r",
            requested_scopes=None,
            registration=REGISTRATION,
            redirect_uri=REDIRECT,
        )
    with pytest.raises(ProtocolError, match="without an access_token"):
        token_set(
            {"token_type": "bearer"},
            issuer=ISSUER,
            resource="r",
            requested_scopes=None,
            registration=REGISTRATION,
            redirect_uri=REDIRECT,
        )


@pytest.mark.parametrize(
    ("supported", "configured", "expected"),
    [
        (["client_secret_basic", "none"], None, "none"),
        (["client_secret_basic", "client_secret_post"], None, "client_secret_post"),
        (["client_secret_basic"], None, "client_secret_basic"),
        (None, None, "client_secret_basic"),
        (["none"], "client_secret_post", "client_secret_post"),
    ],
)
def test_registration_auth_method(
    supported: list[str] | None, configured: str | None, expected: str
) -> None:
    assert choose_auth_method(supported, configured) == expected


async def test_listener_binds_loopback_only() -> None:
    listener = CallbackListener(
        host="127.0.0.1", port=0, state="s", issuer=ISSUER, iss_supported=False
    )
    await listener.start()
    try:
        assert listener._server is not None
        addresses = {sock.getsockname()[0] for sock in listener._server.sockets}
        assert addresses == {"127.0.0.1"}
    finally:
        await listener.close()
