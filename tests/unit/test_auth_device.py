"""RFC 8628 decisions without a network: when the device grant is offered and chosen, the
device authorization response's checks, and the poll schedule (§3.5)."""

from __future__ import annotations

import pytest

from mcpls.auth.device import (
    DEFAULT_INTERVAL_S,
    DEVICE_CODE_GRANT,
    choose_method,
    device_flow_offered,
    next_poll,
    parse_device_code,
)
from mcpls.auth.discovery import InsecureEndpoint
from mcpls.errors import NotSupported, OAuthRefused, ProtocolError
from mcpls.terminal.context import ad_hoc_name, is_headless

ENDPOINT = {"device_authorization_endpoint": "https://as.example/device/auth"}


def test_offered_only_with_the_endpoint_and_the_grant_where_grants_are_listed() -> None:
    assert device_flow_offered(ENDPOINT)
    assert not device_flow_offered({})
    assert device_flow_offered({**ENDPOINT, "grant_types_supported": [DEVICE_CODE_GRANT]})
    assert not device_flow_offered({**ENDPOINT, "grant_types_supported": ["authorization_code"]})


@pytest.mark.parametrize(
    ("requested", "offered", "headless", "chosen"),
    [
        ("auto", True, True, "device"),
        ("auto", True, False, "browser"),
        ("auto", False, True, "browser"),  # then the pasted address is the way
        ("browser", True, True, "browser"),
        ("device", True, False, "device"),
    ],
)
def test_choose_method(requested: str, offered: bool, headless: bool, chosen: str) -> None:
    assert choose_method(requested, offered=offered, headless=headless) == chosen  # type: ignore[arg-type]


def test_device_where_not_offered_is_refused_with_what_to_do() -> None:
    with pytest.raises(NotSupported, match="--no-browser"):
        choose_method("device", offered=False, headless=True)


def test_poll_schedule() -> None:
    assert next_poll("authorization_pending", 5.0).interval == 5.0
    assert next_poll("slow_down", 5.0).interval == 10.0  # §3.5: plus 5 seconds, each time
    assert next_poll("slow_down", 10.0).interval == 15.0
    with pytest.raises(OAuthRefused, match="expired before it was approved") as expired:
        next_poll("expired_token", 5.0)
    assert expired.value.error == "expired_token"
    with pytest.raises(OAuthRefused, match="denied") as denied:
        next_poll("access_denied", 5.0)
    assert denied.value.error == "access_denied"


def test_device_authorization_response() -> None:
    code = parse_device_code(
        {
            "device_code": "secret-device-code",
            "user_code": "ABCD-EFGH",
            "verification_uri": "https://as.example/device",
            "verification_uri_complete": "https://as.example/device?user_code=ABCD-EFGH",
            "expires_in": 600,
        },
        allow_insecure_loopback=False,
    )
    assert code.interval == DEFAULT_INTERVAL_S  # §3.2: 5 when not given
    assert code.expires_in == 600
    assert "secret-device-code" not in repr(code)
    with pytest.raises(ProtocolError, match="user_code"):
        parse_device_code({"device_code": "x"}, allow_insecure_loopback=False)
    with pytest.raises(InsecureEndpoint):
        parse_device_code(
            {"device_code": "x", "user_code": "y", "verification_uri": "javascript:alert(1)"},
            allow_insecure_loopback=False,
        )


@pytest.mark.parametrize(
    ("environ", "platform", "headless"),
    [
        ({}, "linux", True),
        ({"DISPLAY": ":0"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"DISPLAY": ":0", "SSH_CONNECTION": "1 2 3 4"}, "linux", True),
        ({"SSH_TTY": "/dev/pts/1"}, "darwin", True),
        ({}, "darwin", False),
        ({}, "win32", False),
    ],
)
def test_headless(environ: dict[str, str], platform: str, headless: bool) -> None:
    assert is_headless(environ, platform) is headless


def test_ad_hoc_names_come_from_the_host() -> None:
    assert ad_hoc_name("https://mcp.example.com/mcp") == "mcp.example.com"
    assert ad_hoc_name("http://127.0.0.1:8123/mcp") == "127.0.0.1-8123"
