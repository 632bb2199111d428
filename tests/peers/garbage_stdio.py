"""A stdio "server" that never speaks MCP: garbage on stdout, never an initialize answer.

Run as `python tests/peers/garbage_stdio.py`. It prints lines that are not JSON, then a
JSON-RPC-looking line that answers nothing the client asked, then reads stdin until the
client closes it, so the client has to give up on its own.
"""

from __future__ import annotations

import sys

GARBAGE = [
    "Starting up... this server logs to stdout, which a stdio MCP server must not do",
    "\x1b[32mINFO\x1b[0m listening on stdio",
    "{not json at all",
    '{"jsonrpc": "2.0", "id": "not-a-request-you-sent", "result": {}}',
]


def main() -> None:
    for line in GARBAGE:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    for _ in sys.stdin:
        pass


if __name__ == "__main__":
    main()
