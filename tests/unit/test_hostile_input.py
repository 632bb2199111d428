"""Defects the atheris run of tests/fuzz/ found (issue 10), each pinned at the function that
had it; the inputs themselves are replayed by test_fuzz_corpus.py."""

from __future__ import annotations

import httpx
import pytest

from mcpls.auth.flow import token_set
from mcpls.errors import ConfigInvalid, ProtocolError
from mcpls.net import fetch
from mcpls.store.records import ClientRegistration
from mcpls.transport.http import HttpTransport
from mcpls.transport.router import Router

# A host that urlsplit accepts and httpx cannot encode (not a valid IDNA name).
BAD_HOST_URL = "https://m'c\x92\xd1ample/mcp"
REGISTRATION = ClientRegistration(
    issuer="https://as.example", client_id="c", client_secret=None,
    token_endpoint_auth_method="none", redirect_uris=(), source="dcr",
)  # fmt: skip


async def no_server_messages(message: dict[str, object]) -> None:
    return None


async def test_an_answer_whose_id_is_a_list_is_a_protocol_error() -> None:
    router = Router(no_server_messages, lambda level, text: None, "peer")

    async def reply(message: dict[str, object]) -> None:
        raise AssertionError("nothing to reply to")

    with pytest.raises(ProtocolError, match="an id that is not an id"):
        router.dispatch({"jsonrpc": "2.0", "id": [1], "result": {}}, reply)


async def test_a_url_httpx_cannot_encode_is_refused_before_any_request() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ProtocolError, match="is not a URL that can be requested"):
            await fetch(http, "GET", BAD_HOST_URL)
    transport = HttpTransport(
        BAD_HOST_URL, on_server_message=no_server_messages, log_sink=lambda level, text: None
    )
    try:
        with pytest.raises(ConfigInvalid, match="cannot be used"):
            await transport.request({"jsonrpc": "2.0", "id": 1, "method": "ping"})
    finally:
        await transport.close()


@pytest.mark.parametrize("expires_in", [10**400, "nan", "inf", float("inf"), "1e400"])
def test_an_expiry_that_is_no_time_is_no_expiry(expires_in: object) -> None:
    tokens = token_set(
        {"access_token": "a", "expires_in": expires_in}, issuer="https://as.example",
        resource="https://mcp.example", requested_scopes=None, registration=REGISTRATION,
        redirect_uri=None,
    )  # fmt: skip
    assert tokens.expires_at is None
