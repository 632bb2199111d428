"""An MCP resource server (official `mcp` SDK) whose tokens come from oidc-provider.

Run: python tests/peers/oauth/oidc_rs.py --port Q --issuer http://127.0.0.1:P
         [--required-scopes "mcp:read"]

Resource `http://127.0.0.1:Q/mcp`; its RFC 9728 metadata names the issuer as the only
authorization server. Bearer tokens must be RFC 9068 JWT access tokens (`typ: at+jwt`)
signed by a key of the issuer's `/jwks`, with `iss` equal to the issuer, `aud` equal to the
resource and `exp` in the future. oidc-provider puts the granted resource scopes (for
example `mcp:read mcp:write`) in the `scope` claim, never `openid`; `mcp:read` is required.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning
from starlette.applications import Starlette

# Run as a script, only this file's folder is on sys.path: tests/ too, for the secret ledger.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from peers import ledger

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)


class JwtAccessTokenVerifier:
    """`TokenVerifier` for RFC 9068 JWT access tokens from one issuer, for one resource."""

    def __init__(self, *, issuer: str, resource: str) -> None:
        self.issuer = issuer
        self.resource = resource
        self._keys: KeySet | None = None

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            async with httpx.AsyncClient(timeout=10) as http:
                metadata = await http.get(f"{self.issuer}/.well-known/openid-configuration")
                metadata.raise_for_status()
                jwks = await http.get(metadata.json()["jwks_uri"])
                jwks.raise_for_status()
            self._keys = KeySet.import_key_set(jwks.json())
        return self._keys

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            try:
                decoded = jwt.decode(token, await self._key_set(), algorithms=["RS256"])
            except JoseError:
                # An unknown `kid` after a key rotation: fetch the keys once more.
                decoded = jwt.decode(token, await self._key_set(refresh=True), algorithms=["RS256"])
            if decoded.header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
                return None
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.resource},
                exp={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError):
            return None
        claims: dict[str, Any] = decoded.claims
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id", "")),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=int(claims["exp"]),
            resource=self.resource,  # `aud` was checked above
            subject=claims.get("sub"),
            claims=claims,
        )


def build_app(*, port: int, issuer: str, required_scopes: list[str]) -> Starlette:
    resource = f"http://127.0.0.1:{port}/mcp"
    verifier = JwtAccessTokenVerifier(issuer=issuer, resource=resource)
    server = MCPServer(
        "mcpls-oidc-resource",
        version="1.0.0",
        log_level="WARNING",
        token_verifier=verifier,
        auth=AuthSettings(
            issuer_url=issuer,  # type: ignore[arg-type]
            resource_server_url=resource,  # type: ignore[arg-type]
            required_scopes=required_scopes,
            validate_token_resource=True,
        ),
    )

    @server.tool()
    async def whoami(ctx: Context) -> dict[str, Any]:
        """Who the bearer token speaks for: client, user, scopes, audience."""
        header = (ctx.headers or {}).get("authorization", "")
        token = await verifier.verify_token(header.partition(" ")[2])
        assert token is not None, "the bearer middleware let an invalid token through"
        return {
            "client_id": token.client_id,
            "subject": token.subject,
            "scopes": token.scopes,
            "resource": token.resource,
        }

    @server.tool()
    def echo(text: str) -> str:
        """Return `text` unchanged."""
        return text

    return server.streamable_http_app(host="127.0.0.1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", required=True, help="oidc-provider issuer, no trailing /")
    parser.add_argument("--required-scopes", default="mcp:read")
    args = parser.parse_args()
    app = build_app(
        port=args.port, issuer=args.issuer, required_scopes=args.required_scopes.split()
    )
    uvicorn.run(
        ledger.wrap(app, f"oidc_rs.py:{args.port}"),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
