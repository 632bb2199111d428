"""Typed failures. Each maps to the `error.kind` an editor sees; none carries a secret."""

from __future__ import annotations

from typing import ClassVar, Literal

ErrorKind = Literal["authRequired", "connection", "protocol", "other"]


class McplsError(Exception):
    """Base of every failure mcpls reports to an editor."""

    kind: ClassVar[ErrorKind] = "other"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthRequired(McplsError):
    """The server answered 401/403: the person must (re-)authenticate."""

    kind = "authRequired"

    def __init__(
        self,
        message: str,
        *,
        www_authenticate: tuple[str, ...] = (),
        status_code: int = 401,
    ) -> None:
        super().__init__(message)
        # Raw challenge header values, kept for the OAuth layer to parse.
        self.www_authenticate = www_authenticate
        self.status_code = status_code


class ConnectionFailed(McplsError):
    """The server could not be reached or the transport broke."""

    kind = "connection"


class ProtocolError(McplsError):
    """The server answered something that is not valid MCP / JSON-RPC."""

    kind = "protocol"


class Other(McplsError):
    """Anything else: invalid configuration, unsupported feature."""

    kind = "other"


class RequestTimeout(ConnectionFailed):
    """No answer within the server's `timeoutMs`."""


class SessionExpired(Exception):
    """HTTP 404 on a request that carried an `Mcp-Session-Id`: start a new session.

    Internal to the transport/protocol pair; never reaches an editor.
    """


class RemoteError(McplsError):
    """The MCP server answered a request with a JSON-RPC error object (a valid answer)."""

    kind = "other"

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(f"server error {code}: {message}")
        self.code = code
        self.remote_message = message
        self.data = data
