"""Typed failures: the one closed hierarchy that crosses layers.

Every failure that leaves a module is an `McplsError`; its `kind` is the `error.kind` an
editor sees (schemas/server-status.schema.json), so the state machine and the LSP edge
branch on `kind` alone and nothing slips past them. The class names say what happened,
for a person reading a log and for the code that must tell a security refusal from a
network failure. No message carries a secret; messages quote untrusted text only through
`quote`, which bounds it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

ErrorKind = Literal["authRequired", "connection", "protocol", "other"]

# What `json.loads` raises on text a peer or a person wrote: ValueError (a JSONDecodeError,
# a UnicodeDecodeError, an integer of more than 4,300 digits) and RecursionError (arrays or
# objects nested deeper than the decoder's stack). A caller catches all of them, never one.
JSON_ERRORS: tuple[type[Exception], ...] = (ValueError, RecursionError)

# How much of an untrusted value (a server's text, a name from the editor) a message quotes.
QUOTE_LIMIT = 120
# How much of a server's own error message (meant for the person) an error shows.
REMOTE_MESSAGE_LIMIT = 1000


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`value` as a bounded repr for a message: untrusted input never floods a message."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text)


def printable(text: str) -> str:
    """`text` (a line a server sent for the log) with every character that is not
    printable, tab aside, shown as an escape: no ANSI sequence reaches a terminal and no
    CR or LF cuts a log line or forges the next one."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() or char == "\t" else repr(char)[1:-1] for char in text
    )


class McplsError(Exception):
    """Base of every failure mcpls reports to an editor."""

    kind: ClassVar[ErrorKind] = "other"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- the person must sign in ------------------------------------------------------------------


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


class InsufficientScope(AuthRequired):
    """A 403 `insufficient_scope` on one request (step-up): that request fails, the session
    and the connection stay; `required_scopes` is what the server asked for."""

    def __init__(self, message: str, *, required_scopes: tuple[str, ...]) -> None:
        super().__init__(message, status_code=403)
        self.required_scopes = required_scopes


class SignInExpired(AuthRequired):
    """The stored sign-in can no longer be used (refresh refused, registration gone)."""


class OAuthRefused(AuthRequired):
    """The authorization server refused a request; `error` is its OAuth error code."""

    def __init__(self, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


class InvalidGrant(OAuthRefused):
    """The refresh token (or code) is no longer valid (RFC 6749 §5.2 `invalid_grant`)."""


class InvalidClient(OAuthRefused):
    """The authorization server no longer knows the client (`invalid_client`,
    `unauthorized_client`) or its secret expired."""


# -- the network and the peer -----------------------------------------------------------------


class ConnectionFailed(McplsError):
    """The server could not be reached or the transport broke."""

    kind = "connection"


class RequestTimeout(ConnectionFailed):
    """No answer within the server's `timeoutMs` (or an outbound call's deadline)."""


class ProtocolError(McplsError):
    """The server answered something that is not valid MCP / JSON-RPC."""

    kind = "protocol"


class ResponseTooLarge(ProtocolError):
    """A peer sent more than mcpls reads for that kind of answer."""


class RemoteError(McplsError):
    """The MCP server answered a request with a JSON-RPC error object (a valid answer)."""

    kind = "other"

    def __init__(self, code: int, message: str, data: object = None) -> None:
        # The server's words are for the person, so they are shown, but bounded and with
        # control characters escaped: they reach pop-ups, statuses and logs.
        shown = message[:REMOTE_MESSAGE_LIMIT] + (
            "…" if len(message) > REMOTE_MESSAGE_LIMIT else ""
        )
        super().__init__(f"server error {code}: {printable(shown)}")
        self.code = code
        self.remote_message = message
        self.data = data


# -- refusals and local problems --------------------------------------------------------------


class ConfigInvalid(McplsError):
    """The server's settings cannot be used; the message names the field."""


class SecurityRefusal(McplsError):
    """mcpls refuses to go on because going on would be unsafe: metadata for another
    resource, an issuer that does not match, an endpoint that is not https, credentials
    bound to another authorization server, no PKCE."""


class RegistrationImpossible(McplsError):
    """No way to be known to the authorization server: the message says what to register."""


class NotSupported(McplsError):
    """The peer asks for something mcpls does not do (say, `private_key_jwt`)."""


class StorageFailed(McplsError):
    """The token store could not do what was asked (keychain locked, disk full, lock held
    too long). The message is for a person and holds no secret."""


class NothingToDo(McplsError):
    """The request does not apply to this server (no OAuth, no sign-in waiting)."""


class InternalError(McplsError):
    """A bug: an exception that no layer expected. Reported, never left to hang a state."""

    @classmethod
    def wrap(cls, exc: BaseException, doing: str) -> InternalError:
        """`exc` as a report; only its type is named (its text may hold anything)."""
        return cls(f"internal error while {doing} ({type(exc).__name__}); see mcpls's log")


class SessionExpired(Exception):
    """HTTP 404 on a request that carried an `Mcp-Session-Id`: start a new session.

    Internal to the transport/protocol pair; never reaches an editor.
    """
