"""The tool set every Python test peer offers, registered on a real `mcp` 2.3 `MCPServer`.

The HTTP peer (py_server.py) and the stdio peer (stdio_server.py) share these definitions.
Server-to-client messages go on the tool call's own stream by default (the spec lets a
server send requests and notifications related to a request before answering it), so a
test does not depend on when the client opened its GET stream; `standalone=True` uses the
SDK's default channel instead (the GET stream over HTTP, dropped or refused without one).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.shared.message import ServerMessageMetadata

# Logging, roots and sampling are deprecated for 2026-07-28 but are what 2025-11-25
# clients (mcpls) speak; the warnings would only be noise on the peer's stderr.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

NAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {
            "type": "string",
            "title": "Name",
            "description": "What should the server call you?",
            "default": "anonymous",
        }
    },
    "required": ["name"],
}


@dataclass
class SlowCalls:
    """What happened to `slow` calls in this process, read back through tools."""

    running: int = 0
    cancelled: int = 0


def build_server(name: str) -> MCPServer:
    """An `MCPServer` that announces `tools.listChanged` and has the shared tools."""
    server = MCPServer(name, version="1.0.0", log_level="WARNING")
    announce_tools_list_changed(server)
    register(server)
    return server


def announce_tools_list_changed(server: MCPServer) -> None:
    """Make `initialize` announce `tools.listChanged: true`, since `add_tool` sends it.

    MCPServer builds its initialization options with default `NotificationOptions`
    (every listChanged false) and has no public setting for them (mcp 2.3).
    """
    lowlevel = server._lowlevel_server
    default_options = lowlevel.create_initialization_options

    def with_tools_changed(
        notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        options = notification_options or NotificationOptions(tools_changed=True)
        return default_options(options, *args, **kwargs)

    lowlevel.create_initialization_options = with_tools_changed  # type: ignore[method-assign]


def _scoped(ctx: Context, standalone: bool) -> ServerMessageMetadata | None:
    return None if standalone else ServerMessageMetadata(related_request_id=ctx.request_id)


def register(server: MCPServer) -> None:
    """Register the shared tools on `server`."""
    slow_calls = SlowCalls()

    @server.tool()
    def echo(text: str) -> str:
        """Return `text` unchanged."""
        return text

    @server.tool()
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    @server.tool()
    def big(size: int) -> str:
        """Return a string of exactly `size` bytes."""
        return "x" * size

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep `seconds`; a cancellation (`notifications/cancelled`) is counted."""
        slow_calls.running += 1
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            slow_calls.cancelled += 1
            raise
        finally:
            slow_calls.running -= 1
        return f"slept {seconds} s"

    @server.tool()
    def running_count() -> int:
        """How many `slow` calls are running now."""
        return slow_calls.running

    @server.tool()
    def cancelled_count() -> int:
        """How many `slow` calls ended by cancellation."""
        return slow_calls.cancelled

    @server.tool()
    def was_cancelled() -> bool:
        """Whether any `slow` call ended by cancellation."""
        return slow_calls.cancelled > 0

    @server.tool()
    async def ask_name(ctx: Context) -> str:
        """Ask the person for a name (form-mode elicitation); return the answer as JSON."""
        try:
            result = await ctx.session.elicit_form(
                "What is your name?", NAME_SCHEMA, related_request_id=ctx.request_id
            )
        except Exception as exc:
            return f"elicitation failed: {type(exc).__name__}: {exc}"
        return json.dumps({"action": result.action, "content": result.content})

    @server.tool()
    async def add_tool(name: str, ctx: Context, standalone: bool = False) -> str:
        """Register a tool called `name` and send `notifications/tools/list_changed`."""

        def added() -> str:
            return f"I am {name}, added at runtime"

        server.add_tool(added, name=name, description=f"Added at runtime as {name}")
        if standalone:
            await ctx.session.send_tool_list_changed()
        else:
            await ctx.session.send_notification(
                types.ToolListChangedNotification(), related_request_id=ctx.request_id
            )
        return f"added {name}"

    @server.tool()
    async def log_something(text: str, ctx: Context, level: str = "info") -> str:
        """Send `text` to the client as a `notifications/message` log entry."""
        await ctx.log(level, text)  # type: ignore[arg-type]
        return "logged"

    @server.tool()
    async def list_roots(ctx: Context, standalone: bool = False) -> str:
        """Ask the client for its roots (`roots/list`); return their URIs, one a line."""
        try:
            result = await ctx.session.send_request(
                types.ListRootsRequest(),
                types.ListRootsResult,
                metadata=_scoped(ctx, standalone),
            )
        except Exception as exc:
            return f"roots/list failed: {type(exc).__name__}: {exc}"
        return "\n".join(str(root.uri) for root in result.roots)

    @server.tool()
    async def ping_client(ctx: Context, standalone: bool = False) -> str:
        """Send `ping` to the client; "ok" when it answered."""
        try:
            await ctx.session.send_request(
                types.PingRequest(), types.EmptyResult, metadata=_scoped(ctx, standalone)
            )
        except Exception as exc:
            return f"ping failed: {type(exc).__name__}: {exc}"
        return "ok"

    @server.tool()
    async def sample(ctx: Context) -> str:
        """Send `sampling/createMessage`; return the error the client answered with."""
        request = types.CreateMessageRequest(
            params=types.CreateMessageRequestParams(
                messages=[
                    types.SamplingMessage(
                        role="user", content=types.TextContent(type="text", text="Say hi")
                    )
                ],
                max_tokens=10,
            )
        )
        try:
            result = await ctx.session.send_request(
                request, types.CreateMessageResult, metadata=_scoped(ctx, False)
            )
        except Exception as exc:
            return f"sampling failed: {type(exc).__name__}: {exc}"
        return f"unexpected sampling result: {result.model_dump_json()}"
