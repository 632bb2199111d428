"""The demo's MCP server: the official Python SDK, on 127.0.0.1 only.

Run as `python -m mcpls.demo.server --port P`; it serves `http://127.0.0.1:P/mcp`.
"""

from __future__ import annotations

import argparse

import uvicorn
from mcp.server.mcpserver import MCPServer


def build() -> MCPServer:
    """A small server with two tools a newcomer understands at a glance."""
    server = MCPServer("mcpls-demo", version="1.0.0")

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
    parser = argparse.ArgumentParser(description="mcpls demo MCP server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build().streamable_http_app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
