"""The SSRF rule over OAuth URLs (`discovery.check_network`, spec checklist §1.11): what a
server's metadata names must not lead mcpls to link-local (cloud metadata), special,
private or loopback addresses the person did not point it at, in any spelling a resolver
reads as an address. Pure functions: nothing here resolves or connects."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpls.auth.discovery import (
    ForbiddenAddress,
    InsecureEndpoint,
    check_endpoint,
    check_metadata_endpoints,
    check_network,
    host_network,
)

PUBLIC_SERVER = ("https://mcp.example.com/mcp",)


def refused(url: str, trusted: tuple[str, ...] = PUBLIC_SERVER, *, loopback: bool = False) -> str:
    with pytest.raises(ForbiddenAddress) as raised:
        check_endpoint(url, "token_endpoint", allow_insecure_loopback=loopback, trusted=trusted)
    return raised.value.message


def passes(url: str, trusted: tuple[str, ...] = PUBLIC_SERVER, *, loopback: bool = False) -> bool:
    check_endpoint(url, "token_endpoint", allow_insecure_loopback=loopback, trusted=trusted)
    return True


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254./",  # the root label
        "https://2852039166/",  # one decimal number
        "https://0xA9.0xFE.0xA9.0xFE/",  # hex parts
        "https://0xa9fea9fe/",
        "https://0251.0376.0251.0376/",  # octal parts
        "https://169.254.43518/",  # the last part fills the rest
        "https://[::ffff:169.254.169.254]/",  # IPv4-mapped IPv6
        "https://[::ffff:a9fe:a9fe]/",
        "https://[64:ff9b::a9fe:a9fe]/",  # NAT64
        "https://[2002:a9fe:a9fe::1]/",  # 6to4
        "https://[fe80::1]/",
        "https://[fe80::1%25eth0]:8443/",  # with a zone
        "HTTPS://169.254.169.254:443/token",
    ],
)
def test_link_local_addresses_are_refused_in_every_spelling(url: str) -> None:
    message = refused(url)
    assert "link-local" in message
    assert "cloud metadata" in message
    # Even for a server on a private network, and with the loopback setting.
    refused(url, ("https://10.1.2.3/mcp",), loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://0.0.0.0/",
        "https://0/",
        "https://0.1.2.3/",
        "https://[::]/",
        "https://224.0.0.1/",
        "https://255.255.255.255/",
        "https://240.0.0.1/",
        "https://[ff02::1]/",
    ],
)
def test_unspecified_multicast_broadcast_and_reserved_are_always_refused(url: str) -> None:
    assert "unspecified, multicast, broadcast or reserved" in refused(url)
    refused(url, ("https://10.1.2.3/mcp", "https://127.0.0.1/mcp"), loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/token",
        "https://10.0.0.1./token",
        "https://167772161/token",  # 10.0.0.1
        "https://012.0.0.1/",  # octal 10
        "https://172.16.5.4/",
        "https://172.31.255.254/",
        "https://192.168.1.1:8443/",
        "https://100.64.0.1/",  # carrier-grade NAT
        "https://[fc00::1]/",
        "https://[fd12:3456::1]/",
        "https://[::ffff:10.0.0.1]/",
    ],
)
def test_private_addresses_are_refused_unless_the_server_is_on_one(url: str) -> None:
    assert "private-network address" in refused(url)
    assert "private-network address" in refused(url, ("https://127.0.0.1:9/mcp",), loopback=True)
    assert passes(url, ("https://10.1.2.3/mcp",))
    # The person's own authServerMetadataUrl on a private address trusts that network too.
    assert passes(url, (*PUBLIC_SERVER, "https://192.168.7.7/.well-known/openid-configuration"))


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/token",
        "https://127.1/token",
        "https://2130706433/",
        "https://0x7f.1/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://localhost/",
        "https://LOCALHOST./",
        "https://auth.localhost/",
    ],
)
def test_loopback_needs_the_setting_or_a_server_on_this_machine(url: str) -> None:
    assert "allowInsecureLoopback" in refused(url)
    assert passes(url, loopback=True)
    assert passes(url, ("https://localhost:8443/mcp",))


@pytest.mark.parametrize(
    "url",
    [
        "https://auth.example.com/token",
        "https://93.184.216.34/token",
        "https://[2606:4700:4700::1111]/token",
        # A name is not resolved (check_network's docstring says why).
        "https://auth.internal.corp/token",
        "https://metadata.example/",
    ],
)
def test_public_addresses_and_names_pass(url: str) -> None:
    assert passes(url)


def test_plain_http_on_loopback_keeps_its_rule() -> None:
    trusted = ("http://127.0.0.1:8000/mcp",)
    assert passes("http://127.0.0.1:9000/token", trusted, loopback=True)
    with pytest.raises(InsecureEndpoint, match="allowInsecureLoopback"):
        check_endpoint("http://127.0.0.1:9000/token", "t", allow_insecure_loopback=False)
    # Plain http to a link-local address is refused for that reason first.
    with pytest.raises(ForbiddenAddress):
        check_endpoint("http://169.254.169.254/", "t", allow_insecure_loopback=True, trusted=())


def test_an_encoded_host_is_refused() -> None:
    with pytest.raises(ForbiddenAddress, match="encoded"):
        check_network(
            "https://%31%36%39.254.169.254/", "issuer", trusted=(), allow_insecure_loopback=False
        )


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JaVaScRiPt:alert(1)",
        "file:///etc/passwd",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "VBScript:msgbox(1)",
    ],
)
def test_dangerous_authorization_url_schemes_are_refused(url: str) -> None:
    for trusted in (None, PUBLIC_SERVER):
        with pytest.raises(InsecureEndpoint, match="only https is allowed"):
            check_endpoint(
                url, "authorization_endpoint", allow_insecure_loopback=True, trusted=trusted
            )


def test_every_metadata_endpoint_is_checked_against_the_network() -> None:
    metadata = {
        "authorization_endpoint": "https://auth.example.com/authorize",
        "token_endpoint": "https://auth.example.com/token",
        "revocation_endpoint": "https://[fe80::1]/revoke",
    }
    with pytest.raises(ForbiddenAddress, match="revocation_endpoint"):
        check_metadata_endpoints(
            "https://auth.example.com",
            metadata,
            allow_insecure_loopback=False,
            trusted=PUBLIC_SERVER,
        )
    with pytest.raises(ForbiddenAddress, match="issuer"):
        check_metadata_endpoints(
            "https://10.0.0.1", {}, allow_insecure_loopback=False, trusted=PUBLIC_SERVER
        )


# -- properties ------------------------------------------------------------------------------

addresses = st.integers(min_value=0, max_value=0xFFFFFFFF).map(ipaddress.IPv4Address)


def spellings(address: ipaddress.IPv4Address) -> list[str]:
    """Ways a resolver reads `address`: dotted, one number, hex, octal, short forms, mapped."""
    octets = address.packed
    number = int(address)
    return [
        str(address),
        f"{address}.",
        str(number),
        hex(number),
        ".".join(hex(o) for o in octets),
        ".".join(f"0{o:o}" for o in octets),
        f"{octets[0]}.{int.from_bytes(octets[1:], 'big')}",
        f"{octets[0]}.{octets[1]}.{int.from_bytes(octets[2:], 'big')}",
        f"[::ffff:{address}]",
    ]


def expected_network(address: ipaddress.IPv4Address) -> str:
    return host_network(str(address))


@given(addresses)
def test_every_spelling_of_an_address_is_judged_as_the_address(
    address: ipaddress.IPv4Address,
) -> None:
    expected = expected_network(address)
    for spelling in spellings(address):
        host = spelling.strip("[]")
        assert host_network(host) == expected, spelling


@given(addresses)
def test_the_rule_reads_numbers_as_the_c_resolver_does(address: ipaddress.IPv4Address) -> None:
    # socket.inet_aton is the C library's parser (no lookup): what a connect would reach.
    for spelling in spellings(address)[2:-1]:
        assert ipaddress.IPv4Address(socket.inet_aton(spelling)) == address, spelling


@given(addresses)
def test_no_spelling_of_an_internal_address_passes_for_a_public_server(
    address: ipaddress.IPv4Address,
) -> None:
    network = expected_network(address)
    for spelling in spellings(address):
        url = f"https://{spelling}/token"
        if network == "public":
            assert passes(url)
        else:
            refused(url)


@given(st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){1,3}", fullmatch=True))
def test_names_are_names(name: str) -> None:
    expected = "loopback" if name.endswith(".localhost") else "name"
    assert host_network(name) == expected
