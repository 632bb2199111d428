"""The device authorization grant (RFC 8628): sign in on another device, for machines where
no loopback callback can reach the person's browser (SSH, containers, no display).

The decisions are pure functions (is the grant offered, which method a sign-in uses, what
a token endpoint answer means for the poll); `request_device_code` and `poll_for_tokens`
do the I/O with the same client authentication and token endpoint code as the browser
sign-in (`flow.py`), so the tokens are stored exactly alike.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from mcpls.auth.client_auth import authenticate
from mcpls.auth.discovery import check_endpoint
from mcpls.auth.flow import token_request
from mcpls.errors import (
    JSON_ERRORS,
    ConnectionFailed,
    NotSupported,
    OAuthRefused,
    ProtocolError,
    quote,
)
from mcpls.net import fetch
from mcpls.store.records import ClientRegistration

# RFC 8628 §3.4: the grant type of the token request.
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default."
DEFAULT_INTERVAL_S = 5.0
# RFC 8628 §3.5: on slow_down "the interval MUST be increased by 5 seconds".
SLOW_DOWN_STEP_S = 5.0
# When the server gives no expires_in: long enough for a person, not forever.
DEFAULT_EXPIRES_S = 600.0

Method = Literal["browser", "device"]
RequestedMethod = Literal["auto", "browser", "device"]


def device_flow_offered(metadata: Mapping[str, object]) -> bool:
    """Whether the authorization server offers the device grant: RFC 8628 §4 metadata
    `device_authorization_endpoint`, and the grant in `grant_types_supported` where that
    list is given (RFC 8414 §2)."""
    if not isinstance(metadata.get("device_authorization_endpoint"), str):
        return False
    grants = metadata.get("grant_types_supported")
    return not isinstance(grants, list) or DEVICE_CODE_GRANT in grants


def choose_method(requested: RequestedMethod, *, offered: bool, headless: bool) -> Method:
    """Which sign-in to run. `auto` takes the device grant only where no browser on this
    machine can reach the loopback callback (`headless`) and the server offers it; an
    explicit `device` on a server without it is refused with what to do instead."""
    if requested == "device":
        if not offered:
            raise NotSupported(
                "the authorization server offers no device sign-in (its metadata has no "
                "device_authorization_endpoint); sign in with the browser instead, or paste "
                "the final redirect URL back (mcpls login --no-browser)"
            )
        return "device"
    if requested == "auto" and headless and offered:
        return "device"
    return "browser"


@dataclass(frozen=True)
class DeviceCode:
    """RFC 8628 §3.2 device authorization response. `device_code` is a secret: never shown."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float

    def __repr__(self) -> str:
        return f"DeviceCode(user_code={self.user_code!r}, <redacted>)"


def parse_device_code(data: Mapping[str, Any], *, allow_insecure_loopback: bool) -> DeviceCode:
    """Check a device authorization response; the verification URIs are shown to a person,
    so they pass the same https rule as every endpoint (`check_endpoint`)."""
    device_code, user_code = data.get("device_code"), data.get("user_code")
    uri = data.get("verification_uri")
    if not (
        isinstance(device_code, str)
        and device_code
        and isinstance(user_code, str)
        and user_code
        and isinstance(uri, str)
        and uri
    ):
        raise ProtocolError(
            "the device authorization endpoint answered without device_code, user_code or "
            "verification_uri (RFC 8628 §3.2)"
        )
    check_endpoint(uri, "verification_uri", allow_insecure_loopback=allow_insecure_loopback)
    complete = data.get("verification_uri_complete")
    if isinstance(complete, str) and complete:
        check_endpoint(
            complete, "verification_uri_complete", allow_insecure_loopback=allow_insecure_loopback
        )
    else:
        complete = None
    return DeviceCode(
        device_code=device_code,
        user_code=user_code,
        verification_uri=uri,
        verification_uri_complete=complete,
        expires_in=_positive(data.get("expires_in"), DEFAULT_EXPIRES_S),
        interval=_positive(data.get("interval"), DEFAULT_INTERVAL_S),
    )


def _positive(value: object, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


@dataclass(frozen=True)
class PollStep:
    """What to do after one token request: `wait` `interval` seconds and ask again."""

    interval: float


# RFC 8628 §3.5: the token endpoint's answers that belong to the poll itself.
POLL_ERRORS = frozenset({"authorization_pending", "slow_down", "expired_token", "access_denied"})


def next_poll(error: str | None, interval: float) -> PollStep:
    """RFC 8628 §3.5, for a token endpoint answer with the OAuth `error` code: keep polling
    at `interval` (`authorization_pending`), slow down by 5 s (`slow_down`), or raise:
    `expired_token` and `access_denied` end the sign-in with words for the person; any
    other error is the server's refusal."""
    if error == "authorization_pending":
        return PollStep(interval)
    if error == "slow_down":
        return PollStep(interval + SLOW_DOWN_STEP_S)
    if error == "expired_token":
        raise OAuthRefused(
            "the sign-in code expired before it was approved; sign in again for a new code",
            error=error,
        )
    if error == "access_denied":
        raise OAuthRefused("the sign-in was denied on the verification page", error=error)
    raise OAuthRefused(
        f"the token endpoint refused the device sign-in ({quote(error or 'no error code', 40)})",
        error=error,
    )


async def request_device_code(
    http: httpx.AsyncClient,
    endpoint: str,
    registration: ClientRegistration,
    *,
    scopes: tuple[str, ...] | None,
    resource: str | None,
    allow_insecure_loopback: bool,
) -> DeviceCode:
    """RFC 8628 §3.1, with RFC 8707 `resource` and the registration's client authentication."""
    check_endpoint(
        endpoint, "device authorization endpoint", allow_insecure_loopback=allow_insecure_loopback
    )
    form = {"scope": " ".join(scopes) if scopes else None, "resource": resource}
    headers, body = authenticate(registration, {k: v for k, v in form.items() if v})
    answer = await fetch(http, "POST", endpoint, headers=headers, content=body)
    if answer.status_code >= 500:
        raise ConnectionFailed(
            f"the device authorization endpoint {endpoint} failed with HTTP {answer.status_code}"
        )
    try:
        data = json.loads(answer.content)
    except JSON_ERRORS:
        data = None
    if not isinstance(data, dict):
        raise ProtocolError(
            f"the device authorization endpoint answered HTTP {answer.status_code} with "
            "something that is not a JSON object"
        )
    if answer.status_code >= 400 or "error" in data:
        error = str(data.get("error", f"HTTP {answer.status_code}"))
        description = data.get("error_description")
        raise OAuthRefused(
            f"the device authorization endpoint refused ({quote(error, 40)}"
            + (f": {quote(description)})" if isinstance(description, str) else ")"),
            error=error[:64],
        )
    return parse_device_code(data, allow_insecure_loopback=allow_insecure_loopback)


Sleep = Callable[[float], Awaitable[None]]


async def poll_for_tokens(
    http: httpx.AsyncClient,
    token_endpoint: str,
    registration: ClientRegistration,
    code: DeviceCode,
    *,
    resource: str | None,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """RFC 8628 §3.4-3.5: ask the token endpoint every `interval` seconds until the person
    approved (the token response), denied, or the code expired."""
    deadline = clock() + code.expires_in
    interval = code.interval
    while True:
        await sleep(interval)
        try:
            return await token_request(
                http,
                token_endpoint,
                registration,
                DEVICE_CODE_GRANT,
                device_code=code.device_code,
                resource=resource,
            )
        except OAuthRefused as exc:
            if exc.error not in POLL_ERRORS:
                raise  # the server's own refusal (invalid_grant, invalid_client…), in its words
            interval = next_poll(exc.error, interval).interval
        if clock() + interval > deadline:
            next_poll("expired_token", interval)
