"""The demo's MCP server: the official Python SDK, OAuth-protected, on 127.0.0.1 only.

Run as `python -m mcpls.demo.server --port P`: the MCP endpoint is
`http://127.0.0.1:P/mcp` and the same process is its authorization server (discovery
metadata, dynamic registration, PKCE, refresh, revocation), approving every sign-in.
"""

from __future__ import annotations

import argparse

import uvicorn
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from pydantic import AnyHttpUrl

from mcpls.demo.oauth import DemoProvider

SCOPE = "demo:tools"


def build(port: int, *, access_ttl_s: int = 3600) -> MCPServer:
    """A small server with two tools a newcomer understands at a glance."""
    base = f"http://127.0.0.1:{port}"
    server = MCPServer(
        "mcpls-demo",
        version="1.0.0",
        auth_server_provider=DemoProvider(access_ttl_s),
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(base),
            resource_server_url=AnyHttpUrl(f"{base}/mcp"),
            required_scopes=[SCOPE],
            client_registration_options=ClientRegistrationOptions(
                enabled=True, valid_scopes=[SCOPE], default_scopes=[SCOPE]
            ),
            revocation_options=RevocationOptions(enabled=True),
            validate_token_resource=True,
        ),
    )

    @server.tool()
    def greet(name: str) -> str:
        """Say hello to someone."""
        return f"Hello, {name}! This answer came from the demo MCP server."

    @server.tool()
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="mcpls demo MCP server (OAuth-protected)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-ttl", type=int, default=3600, help="access token lifetime (s)")
    args = parser.parse_args()
    app = build(args.port, access_ttl_s=args.access_ttl).streamable_http_app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
