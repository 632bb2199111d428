"""The MCP client protocol over any transport (`basic/lifecycle`, `server/tools`).

Initialization and version negotiation, request ids, timeouts and cancellation,
transparent re-initialization when an HTTP session expires, tools pagination, and the
answers to what the server asks of us (ping, roots, elicitation; the rest is declined).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mcpls import __version__
from mcpls.errors import McplsError, ProtocolError, RemoteError, RequestTimeout, SessionExpired
from mcpls.transport import Message, Transport

LATEST_PROTOCOL_VERSION = "2025-11-25"
SUPPORTED_PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
METHOD_NOT_FOUND = -32601
MAX_TOOL_PAGES = 1000

RootsProvider = Callable[[], list[dict[str, str]]]
# (message, requestedSchema) -> {"action": ..., "content"?: ...}
ElicitationHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
LogHandler = Callable[[str, str], None]


@dataclass
class ServerHooks:
    """How the session answers the server: everything optional."""

    roots: RootsProvider = list
    elicit: ElicitationHandler | None = None
    log: LogHandler = lambda level, text: None
    tools_changed: Callable[[], None] = lambda: None


@dataclass
class InitializeResult:
    """What the server said about itself."""

    protocol_version: str
    server_info: dict[str, str]
    capabilities: dict[str, Any] = field(default_factory=dict)
    instructions: str | None = None


def _result_of(response: Message) -> dict[str, Any]:
    if "error" in response:
        error = response["error"]
        if not isinstance(error, dict):
            raise ProtocolError("the server sent a malformed error object")
        code = error.get("code")
        message = error.get("message")
        return_code = code if isinstance(code, int) else -32603
        raise RemoteError(return_code, str(message or "no message"), error.get("data"))
    result = response.get("result")
    if not isinstance(result, dict):
        raise ProtocolError("the server answered with a result that is not an object")
    return result


def _log_level(level: object) -> str:
    # MCP uses syslog levels; the editor has four.
    if level in ("emergency", "alert", "critical", "error"):
        return "error"
    if level in ("warning", "notice"):
        return "warning" if level == "warning" else "info"
    return "debug" if level == "debug" else "info"


class McpSession:
    """One MCP client session; re-initializes itself when the server forgets it."""

    def __init__(
        self,
        transport: Transport,
        *,
        hooks: ServerHooks,
        timeout_s: float,
        client_name: str = "mcpls",
    ) -> None:
        self.transport = transport
        self.hooks = hooks
        self.timeout_s = timeout_s
        self.client_name = client_name
        self.initialized: InitializeResult | None = None
        self._ids = itertools.count(1)
        self._init_lock = asyncio.Lock()

    # -- lifecycle ----------------------------------------------------------------------

    def _capabilities(self) -> dict[str, Any]:
        capabilities: dict[str, Any] = {"roots": {"listChanged": False}}
        if self.hooks.elicit is not None:
            capabilities["elicitation"] = {"form": {}}
        return capabilities

    async def initialize(self) -> InitializeResult:
        """Handshake (`basic/lifecycle` §Initialization): version, capabilities, initialized."""
        self.transport.reset_session()
        params = {
            "protocolVersion": LATEST_PROTOCOL_VERSION,
            "capabilities": self._capabilities(),
            "clientInfo": {"name": self.client_name, "version": __version__},
        }
        result = await self._request_once("initialize", params, self.timeout_s)
        version = result.get("protocolVersion")
        if version not in SUPPORTED_PROTOCOL_VERSIONS:
            # The client SHOULD disconnect when it does not support the server's version.
            raise ProtocolError(
                f"the server speaks MCP protocol version {version!r}; mcpls supports "
                f"{', '.join(SUPPORTED_PROTOCOL_VERSIONS)}"
            )
        info = result.get("serverInfo")
        server_info = (
            {"name": str(info.get("name", "")), "version": str(info.get("version", ""))}
            if isinstance(info, dict)
            else {"name": "", "version": ""}
        )
        capabilities = result.get("capabilities")
        instructions = result.get("instructions")
        self.initialized = InitializeResult(
            protocol_version=str(version),
            server_info=server_info,
            capabilities=capabilities if isinstance(capabilities, dict) else {},
            instructions=instructions if isinstance(instructions, str) else None,
        )
        self.transport.session_started(str(version))
        try:
            await self.transport.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        except SessionExpired:
            raise ProtocolError(
                "the server forgot the new session before it was initialized (HTTP 404)"
            ) from None
        return self.initialized

    async def request(
        self, method: str, params: dict[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Send a request; a server that lost our session gets a new one, once."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            return await self._request_once(method, params, timeout)
        except SessionExpired:
            pass
        # Once per request, so a server that forgets every session causes no storm.
        try:
            async with self._init_lock:
                await self.initialize()
            return await self._request_once(method, params, timeout)
        except SessionExpired:
            raise ProtocolError(
                "the server forgot the session mcpls had just started (HTTP 404 again); "
                "it may be restarting, or it keeps no sessions: try mcp/restart"
            ) from None

    async def _request_once(
        self, method: str, params: dict[str, Any] | None, timeout: float
    ) -> dict[str, Any]:
        request_id = next(self._ids)
        message: Message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        # `initialize` MUST NOT be cancelled (`utilities/cancellation`), whatever its id: a
        # re-initialize after an expired session is not request 1.
        cancellable = method != "initialize"
        try:
            async with asyncio.timeout(timeout):
                response = await self.transport.request(message)
        except TimeoutError:
            if cancellable:
                await self._cancelled(request_id, "timed out")
            raise RequestTimeout(
                f"{method} got no answer within {timeout:g} s (timeoutMs in the server's settings)"
            ) from None
        except asyncio.CancelledError:
            if cancellable:
                await asyncio.shield(self._cancelled(request_id, "cancelled by the user"))
            raise
        return _result_of(response)

    async def _cancelled(self, request_id: int, reason: str) -> None:
        notification: Message = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": request_id, "reason": reason},
        }
        try:
            async with asyncio.timeout(5):
                await self.transport.send(notification)
        except (McplsError, SessionExpired, TimeoutError) as exc:
            self.hooks.log("debug", f"could not tell the server about the cancellation: {exc}")

    async def close(self) -> None:
        """End the session and release the transport."""
        await self.transport.close()

    # -- tools ---------------------------------------------------------------------------

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every tool, following `nextCursor` until the last page."""
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_TOOL_PAGES):
            result = await self.request("tools/list", {"cursor": cursor} if cursor else None)
            page = result.get("tools")
            if not isinstance(page, list) or not all(isinstance(t, dict) for t in page):
                raise ProtocolError("the server's tools/list answer has no list of tools")
            tools.extend(page)
            next_cursor = result.get("nextCursor")
            if not next_cursor:
                return tools
            if not isinstance(next_cursor, str) or next_cursor in seen:
                raise ProtocolError("the server's tools/list pagination goes in a circle")
            seen.add(next_cursor)
            cursor = next_cursor
        raise ProtocolError(f"the server's tools/list has more than {MAX_TOOL_PAGES} pages")

    async def call_tool(self, name: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
        """`tools/call`; the result is returned verbatim."""
        params: dict[str, Any] = {"name": name}
        if arguments is not None:
            params["arguments"] = arguments
        return await self.request("tools/call", params)

    # -- what the server asks of us -----------------------------------------------------

    async def handle_server_message(self, message: Message) -> Message | None:
        """Answer a server request, or act on a notification (returns None)."""
        method = message.get("method")
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if "id" not in message:
            if method == "notifications/message":
                text = params.get("data")
                logger = params.get("logger")
                shown = text if isinstance(text, str) else repr(text)
                prefix = f"[{logger}] " if isinstance(logger, str) else ""
                self.hooks.log(_log_level(params.get("level")), prefix + shown)
            elif method == "notifications/tools/list_changed":
                self.hooks.tools_changed()
            return None
        request_id = message["id"]
        try:
            result = await self._answer(str(method), params)
        except _MethodNotFound:
            return {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": METHOD_NOT_FOUND, "message": f"mcpls does not offer {method}"},
            }
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    async def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "ping":
            return {}
        if method == "roots/list":
            return {"roots": self.hooks.roots()}
        if method == "elicitation/create" and params.get("mode", "form") == "form":
            if self.hooks.elicit is None:
                return {"action": "decline"}
            schema = params.get("requestedSchema")
            return await self.hooks.elicit(
                str(params.get("message", "")), schema if isinstance(schema, dict) else {}
            )
        raise _MethodNotFound


class _MethodNotFound(Exception):
    pass
