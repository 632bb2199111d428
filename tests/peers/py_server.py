"""A Streamable HTTP MCP server from the official Python SDK (`mcp` 2.3), for tests.

Run as `python tests/peers/py_server.py --port P [--stateless] [--json-response]`; it
serves `http://127.0.0.1:P/mcp` on 127.0.0.1 only, with the tools of tools.py.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:  # mypy knows tests/ as the root: this file is `peers.<name>` to it
    from peers import ledger
    from peers.tools import build_server
else:  # run as a script, tests/peers/ is on sys.path
    import ledger
    from tools import build_server


class LogDeletes:
    """Prints every DELETE on stderr: how a test sees a client end its session."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "DELETE":
            has_session = any(name == b"mcp-session-id" for name, _ in scope["headers"])
            print(f"DELETE {scope['path']} session={has_session}", file=sys.stderr, flush=True)
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser(description="mcpls test peer: Python SDK over HTTP")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stateless", action="store_true", help="no Mcp-Session-Id")
    parser.add_argument(
        "--json-response", action="store_true", help="answer POSTs with JSON, not SSE"
    )
    args = parser.parse_args()
    name = "mcpls-test-py" + ("-stateless" if args.stateless else "")
    app = build_server(name).streamable_http_app(
        stateless_http=args.stateless, json_response=args.json_response
    )
    # Open SSE streams would hold a graceful shutdown forever; a test stopping the
    # server wants it gone.
    uvicorn.run(
        ledger.wrap(LogDeletes(app), f"py_server.py:{args.port}"),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
