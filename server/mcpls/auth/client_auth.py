"""Client authentication at the token and revocation endpoints (RFC 6749 §2.3.1, §3.2).

Written here rather than taken from authlib, whose encoders do not form-encode Basic
credentials and add `client_id` a second time to a body that already has it.
"""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

from mcpls.errors import NotSupported
from mcpls.store.records import ClientRegistration

SUPPORTED_METHODS = ("none", "client_secret_basic", "client_secret_post")


def _form_encode(value: str) -> str:
    # RFC 6749 §2.3.1 / Appendix B: application/x-www-form-urlencoded, UTF-8, then Basic.
    return quote(value, safe="").replace("%20", "+")


def basic_credentials(client_id: str, client_secret: str) -> str:
    """The `Authorization` value for `client_secret_basic` (RFC 6749 §2.3.1)."""
    pair = f"{_form_encode(client_id)}:{_form_encode(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")


def authenticate(
    registration: ClientRegistration, form: dict[str, str]
) -> tuple[dict[str, str], bytes]:
    """Headers and form body of a request to the token or revocation endpoint, with the
    registration's client authentication. `form` must not hold `client_id`: it is added
    here, exactly once where the method puts it in the body (RFC 6749 §3.2: no parameter
    may be sent more than once), and never beside Basic credentials."""
    method = registration.token_endpoint_auth_method
    body = {k: v for k, v in form.items() if k not in ("client_id", "client_secret")}
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    if method == "client_secret_basic":
        if not registration.client_secret:
            raise NotSupported(
                "the client is registered for client_secret_basic but has no secret; "
                "set oauth.clientSecret, or oauth.tokenEndpointAuthMethod to none"
            )
        headers["Authorization"] = basic_credentials(
            registration.client_id, registration.client_secret
        )
    elif method == "client_secret_post":
        if not registration.client_secret:
            raise NotSupported(
                "the client is registered for client_secret_post but has no secret; "
                "set oauth.clientSecret, or oauth.tokenEndpointAuthMethod to none"
            )
        body["client_id"] = registration.client_id
        body["client_secret"] = registration.client_secret
    elif method == "none":
        body["client_id"] = registration.client_id
    else:
        raise NotSupported(
            f"the client is registered for {method!r} token endpoint authentication, which "
            f"mcpls does not do (it does {', '.join(SUPPORTED_METHODS)})"
        )
    return headers, urlencode(body).encode("ascii")
