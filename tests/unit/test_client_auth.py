"""Client authentication at the token and revocation endpoints (RFC 6749 §2.3.1, §3.2):
the request a strict authorization server receives, per method."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, unquote_plus

import pytest

from mcpls.auth.client_auth import authenticate, basic_credentials
from mcpls.errors import NotSupported
from mcpls.store.records import ClientRegistration

SECRET = "a+b/c=%2 x:y"


def client(method: str, secret: str | None = SECRET) -> ClientRegistration:
    return ClientRegistration(
        issuer="https://as.example",
        client_id="id:with space",
        client_secret=secret,
        token_endpoint_auth_method=method,
        redirect_uris=(),
        source="preregistered",
    )


def decode_basic(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(encoded).decode("ascii").partition(":")
    return unquote_plus(user), unquote_plus(password)


@pytest.mark.parametrize("secret", ["a+b/c=%2 x:y", "sécret✓ 日本", "plain"])
def test_basic_credentials_are_form_encoded_then_base64(secret: str) -> None:
    headers, body = authenticate(client("client_secret_basic", secret), {"grant_type": "x"})
    assert decode_basic(headers["Authorization"]) == ("id:with space", secret)
    # With Basic, the body carries no client credentials at all (strict servers refuse both).
    assert dict(parse_qsl(body.decode())) == {"grant_type": "x"}


def test_client_secret_post_sends_each_parameter_once() -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "r", "client_id": "stale"}
    _, body = authenticate(client("client_secret_post"), form)
    pairs = parse_qsl(body.decode())
    assert [name for name, _ in pairs].count("client_id") == 1
    assert dict(pairs)["client_id"] == "id:with space"
    assert dict(pairs)["client_secret"] == "a+b/c=%2 x:y"


def test_a_public_client_sends_only_its_id() -> None:
    headers, body = authenticate(client("none", None), {"grant_type": "x"})
    assert "Authorization" not in headers
    assert dict(parse_qsl(body.decode())) == {"grant_type": "x", "client_id": "id:with space"}


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_missing_secret_is_a_clear_error_never_the_text_none(method: str) -> None:
    with pytest.raises(NotSupported, match="has no secret"):
        authenticate(client(method, None), {"grant_type": "x"})


def test_an_unknown_method_is_refused_by_name() -> None:
    with pytest.raises(NotSupported, match="private_key_jwt"):
        authenticate(client("private_key_jwt"), {"grant_type": "x"})


def test_basic_credentials_of_rfc_6749_appendix_b_characters() -> None:
    assert basic_credentials("a b", "c+d") == "Basic " + base64.b64encode(b"a+b:c%2Bd").decode()
