"""RFC 8628 §3.5 polling against a token endpoint that answers slow_down, then
authorization_pending, then expired_token (the hostile peer: oidc-provider never asks a
client to slow down). The waits are recorded instead of slept."""

from __future__ import annotations

import httpx
import pytest

from mcpls.auth.device import DEVICE_CODE_GRANT, poll_for_tokens, request_device_code
from mcpls.errors import OAuthRefused
from mcpls.store.records import ClientRegistration


async def test_poll_slows_down_by_five_seconds_and_stops_when_the_code_expires(
    hostile_server: str,
) -> None:
    issuer = f"{hostile_server}/evil/device/as"
    client = ClientRegistration(
        issuer=issuer,
        client_id="mcpls-test",
        client_secret=None,
        token_endpoint_auth_method="none",
        redirect_uris=(),
        source="dcr",
    )
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with httpx.AsyncClient() as http:
        code = await request_device_code(
            http,
            f"{issuer}/device",
            client,
            scopes=("mcp:read",),
            resource=f"{hostile_server}/evil/device/mcp",
            allow_insecure_loopback=True,
        )
        assert (code.user_code, code.interval) == ("ABCD-EFGH", 1.0)
        with pytest.raises(OAuthRefused, match="expired before it was approved"):
            await poll_for_tokens(http, f"{issuer}/token", client, code, resource=None, sleep=sleep)
        seen = (await http.get(f"{hostile_server}/_requests")).json()
    # First at the server's interval; after slow_down 5 s more, kept while pending.
    assert waits == [1.0, 6.0, 6.0]
    polls = [r["body"] for r in seen if r["path"] == "/evil/device/as/token"]
    assert len(polls) == 3
    grant = httpx.QueryParams(polls[0])
    assert grant["grant_type"] == DEVICE_CODE_GRANT
    assert grant["device_code"] == "hostile-device-code"
    assert grant["client_id"] == "mcpls-test"
    asked = httpx.QueryParams(next(r["body"] for r in seen if r["path"].endswith("/device")))
    assert asked["scope"] == "mcp:read"
    assert asked["resource"] == f"{hostile_server}/evil/device/mcp"
