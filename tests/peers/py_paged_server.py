"""A Streamable HTTP MCP server whose `tools/list` is paginated, for tests.

MCPServer answers `tools/list` in one page (mcp 2.3), so this peer uses the SDK's
low-level `Server`: 25 tools `tool_00` … `tool_24`, 10 a page, with `nextCursor`.
Run as `python tests/peers/py_paged_server.py --port P`; it serves
`http://127.0.0.1:P/mcp` on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import mcp_types as types
import uvicorn
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError

if TYPE_CHECKING:  # mypy knows tests/ as the root: this file is `peers.<name>` to it
    from peers import ledger
else:  # run as a script, tests/peers/ is on sys.path
    import ledger

TOOL_COUNT = 25
PAGE_SIZE = 10

TOOLS = [
    types.Tool(
        name=f"tool_{index:02d}",
        description=f"Tool number {index}; echoes its argument",
        input_schema={
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    )
    for index in range(TOOL_COUNT)
]


async def list_tools(
    ctx: Any, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    cursor = params.cursor if params is not None else None
    try:
        start = int(cursor) if cursor is not None else 0
    except ValueError:
        raise MCPError(types.INVALID_PARAMS, f"unknown cursor {cursor!r}") from None
    end = start + PAGE_SIZE
    return types.ListToolsResult(
        tools=TOOLS[start:end], next_cursor=str(end) if end < TOOL_COUNT else None
    )


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    text = str((params.arguments or {}).get("text", ""))
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"{params.name}: {text}")]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="mcpls test peer: paginated tools/list")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = Server(
        "mcpls-test-paged", version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool
    )
    app = server.streamable_http_app()
    uvicorn.run(
        ledger.wrap(app, f"py_paged_server.py:{args.port}"),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
