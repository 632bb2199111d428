"""The editor edge: a pygls server whose handlers only translate JSON-RPC to hub calls."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import cattrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcParseError,
)
from pygls.lsp.server import LanguageServer
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    default_converter,
)
from pygls.protocol.language_server import lsp_method

from mcpls import __version__, config, wire
from mcpls.connection import Connection, NotConnected
from mcpls.errors import InternalError, McplsError, RequestTimeout, quote
from mcpls.hub import Hub, UnknownServer
from mcpls.lsp import collector
from mcpls.lsp import params as p
from mcpls.lsp.editor_input import EditorInput
from mcpls.lsp.progress import Progress
from mcpls.lsp.prompts import PromptState

if TYPE_CHECKING:  # for types only: the OAuth stack loads on the first sign-in (start-up)
    from mcpls.auth.device import DeviceCode

log = logging.getLogger(__name__)

# JSON-RPC error codes for mcpls's own failures (the server-defined range).
ERROR_CODES = {
    "authRequired": -32001,
    "connection": -32002,
    "protocol": -32003,
    "other": -32004,
    "timeout": -32005,
}
_LOG_TYPES = {
    "error": types.MessageType.Error,
    "warning": types.MessageType.Warning,
    "info": types.MessageType.Info,
    "debug": types.MessageType.Log,
}
_LEVEL_RANK = {"debug": 0, "info": 1, "warning": 2, "error": 3}
# A server name longer than this is not echoed back in error data (it is not configured).
MAX_ECHOED_NAME = 256
T = TypeVar("T")


def raw_converter() -> cattrs.Converter:
    """lsprotocol's converter, but `mcp/*` params and results stay plain JSON objects."""
    converter: cattrs.Converter = default_converter()  # type: ignore[no-untyped-call]

    def keep(obj: dict[str, Any], cls: type[Any]) -> Any:
        if cls is JsonRPCNotification and "method" not in obj and "error" in obj:
            # An error answer with a null id (JSON-RPC 2.0 §5: to a message that could not
            # be parsed): an answer to nothing, not a notification.
            return converter.structure(obj, types.ResponseErrorMessage)
        # JSON-RPC 2.0 §4: `params` MAY be omitted; every request still gets an answer.
        if cls is not JsonRPCResponseMessage:
            obj = {"params": None, **obj}
        return cls(**obj)

    for message_type in (JsonRPCRequestMessage, JsonRPCNotification, JsonRPCResponseMessage):
        converter.register_structure_hook(message_type, keep)
    return converter


class FrameWriter:
    """stdout for LSP frames (pygls's writer interface, and `write_frame`): a frame's
    header and body pieces leave in one flush without being joined first (a copy). Frames
    are written whole from either thread (the input thread answers `mcp/status`)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close stdout."""
        with self._lock:
            self._out.close()

    def write(self, data: bytes) -> None:
        """Write and flush one frame pygls made."""
        with self._lock:
            self._out.write(data)
            self._out.flush()

    def write_frame(self, header: bytes, body: Iterable[bytes]) -> None:
        """Write and flush one frame: a piece larger than the buffer is written as it is."""
        with self._lock:
            self._out.write(header)
            for piece in body:
                self._out.write(piece)
            self._out.flush()


def _plain_message(data: object) -> dict[str, Any] | None:
    """An `mcp/*` answer or notification as the JSON object pygls would write, when its
    payload is JSON mcpls passes on (a tool result) or builds; None for the rest
    (lsprotocol's types, errors), which pygls's converter writes."""
    kind = type(data)
    if kind is JsonRPCResponseMessage:
        answer: JsonRPCResponseMessage = data  # type: ignore[assignment]
        return {"id": answer.id, "jsonrpc": answer.jsonrpc, "result": answer.result}
    if kind is JsonRPCNotification:
        note: JsonRPCNotification = data  # type: ignore[assignment]
        if isinstance(note.params, dict):
            return {"method": note.method, "jsonrpc": note.jsonrpc, "params": note.params}
    return None


class McplsProtocol(LanguageServerProtocol):
    """Announces `experimental.mcpls`; on `exit`, hands control back to `serve`; writes
    what it passes on without pygls's converter (issue 9)."""

    exit_requested: asyncio.Event | None = None

    def _send_data(self, data: Any) -> None:
        writer = self.writer
        message = _plain_message(data) if isinstance(writer, FrameWriter) else None
        if not isinstance(writer, FrameWriter) or message is None:
            super()._send_data(data)
            return
        try:
            self.write_plain(message)
        except BrokenPipeError:  # as pygls: the editor is gone
            log.exception("could not write to the editor (broken pipe)")
            raise
        except Exception as error:
            log.exception("could not write to the editor")
            self._server._report_server_error(error, JsonRpcInternalError)

    def write_plain(self, message: dict[str, Any]) -> None:
        """Frame and write a message of plain JSON values (from any thread)."""
        writer = self.writer
        assert isinstance(writer, FrameWriter)
        body: Iterable[bytes]
        small = wire.dumps(message)
        if small is not None:
            size, body = len(small), [small]
        else:  # large (a big tool result), or values only json writes as json does
            default = self._serialize_message
            # ASCII pieces: their length in characters is their length in bytes.
            size = sum(len(piece) for piece in wire.pieces(message, default))
            body = (piece.encode("ascii") for piece in wire.pieces(message, default))
        header = (
            f"Content-Length: {size}\r\n"
            f"Content-Type: {self.CONTENT_TYPE}; charset={self.CHARSET}\r\n\r\n"
        ).encode()
        writer.write_frame(header, body)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        result: types.InitializeResult = yield from super().lsp_initialize(params)
        result.capabilities.experimental = {"mcpls": {"version": 1}}
        return result

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        # pygls would sys.exit() from a callback; `serve` closes the sessions and returns.
        if self.exit_requested is not None:
            self.exit_requested.set()
        yield from ()


class McplsServer(LanguageServer):
    """mcpls as the editor sees it."""

    def __init__(self) -> None:
        super().__init__(
            "mcpls",
            __version__,
            protocol_cls=McplsProtocol,
            converter_factory=raw_converter,
        )
        self.hub = Hub(
            on_status=lambda status: self.protocol.notify("mcp/didChangeStatus", status),
            user_log=self.user_log,
            roots=self.roots,
            elicit=self.elicit,
            auto_open=self.open_url,
            on_auth_required=self.offer_sign_in,
        )
        self._prompts: set[asyncio.Task[None]] = set()
        self.prompt_memory = PromptState(log=self.user_log)
        # Progress tokens whose Cancel button cancels a request (the sign-in).
        self.cancellable: dict[str | int, asyncio.Task[Any]] = {}
        self.initialization_options: object = None
        self.editor_settings: object = None
        self.editor_elicitation = False

    def user_log(self, level: str, message: str) -> None:
        """What a person should see: `window/logMessage` from the `logLevel` setting up
        (default info), and our own log (`--log-level`)."""
        getattr(log, level, log.info)(message)
        wanted = _LEVEL_RANK.get(self.hub.settings.log_level, 1)
        if self.protocol.writer is not None and _LEVEL_RANK.get(level, 1) >= wanted:
            self.window_log_message(
                types.LogMessageParams(
                    type=_LOG_TYPES.get(level, types.MessageType.Info), message=message
                )
            )

    def roots(self) -> list[dict[str, str]]:
        """The editor's workspace folders, as MCP roots."""
        try:
            folders = self.workspace.folders
        except RuntimeError:
            return []
        return [{"uri": f.uri, "name": f.name} for f in folders.values()]

    async def elicit(self, server: str, request: dict[str, Any]) -> dict[str, Any]:
        """Pass a server's form to the person (`mcp/elicit`); decline for other editors."""
        if not self.editor_elicitation:
            return {"action": "decline"}
        answer = await self.protocol.send_request_async("mcp/elicit", {"server": server, **request})
        if not isinstance(answer, dict) or answer.get("action") not in (
            "accept",
            "decline",
            "cancel",
        ):
            self.user_log("warning", f"[{server}] the editor's mcp/elicit answer was malformed")
            return {"action": "cancel"}
        return {k: v for k, v in answer.items() if k in ("action", "content")}

    async def open_url(self, url: str) -> None:
        """Open the sign-in page: the editor's `window/showDocument`, else the OS browser."""
        window = self.client_capabilities.window if self.protocol.client_capabilities else None
        if window is not None and window.show_document is not None:
            result = await self.window_show_document_async(
                types.ShowDocumentParams(uri=url, external=True)
            )
            if result.success:
                return
            self.user_log(
                "warning", "the editor could not open the sign-in page; trying the browser"
            )
        import webbrowser

        if not await asyncio.to_thread(webbrowser.open, url):
            self.user_log("warning", f"no browser could be opened; open this address: {url}")

    def offer_sign_in(self, connection: Connection) -> None:
        """The first time a server needs a sign-in: ask once, ever (persisted per server)."""
        task = asyncio.create_task(self._offer_sign_in(connection))
        self._prompts.add(task)
        task.add_done_callback(self._prompts.discard)

    async def _offer_sign_in(self, connection: Connection) -> None:
        key = connection.config.url or connection.name
        prompts = self.prompt_memory
        if prompts.shown(key) or connection.state != "authRequired":
            return  # asked before, or the person already started the sign-in
        prompts.mark_shown(key)
        try:
            answer = await self.window_show_message_request_async(
                types.ShowMessageRequestParams(
                    type=types.MessageType.Info,
                    message=f"{connection.name} needs you to sign in",
                    actions=[
                        types.MessageActionItem("Authenticate"),
                        types.MessageActionItem("Not now"),
                    ],
                )
            )
        except JsonRpcException as exc:  # an editor without message requests (Helix)
            self.user_log("info", f"[{connection.name}] needs you to sign in ({exc.message})")
            return
        if answer is None or answer.title != "Authenticate":
            return
        if connection.state != "authRequired":
            # Answered after the person signed in (or started to) another way.
            self.user_log(
                "info", f"[{connection.name}] already {connection.state}: not asked again"
            )
            return
        try:
            await connection.authenticate(self.open_url, announce=lambda url: None)
        except McplsError as exc:
            self.user_log("warning", f"[{connection.name}] sign-in failed: {exc.message}")

    async def progress_for(self, token: object, title: str) -> Progress:
        """`$/progress` on the editor's token, or one we create, or none at all."""
        return await Progress.start(self, token, title)

    def settings(self) -> config.Settings:
        """All three sources merged, later wins (`config.load`)."""
        user_file, warnings = config.read_user_file()
        return config.load(
            (str(config.user_settings_path()), user_file),
            self.initialization_options,
            self.editor_settings,
            warnings=tuple(warnings),
        )

    def report_server_error(self, error: Exception, source: Any) -> None:
        """A message from the editor that could not be read: a JSON-RPC parse error back
        (JSON-RPC 2.0 §5.1, id null) and a line in the log, never a pop-up."""
        if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
            log.warning("the editor sent a message that is not JSON; answered with a parse error")
            self.protocol._send_response(
                None,  # type: ignore[arg-type]
                error=types.ResponseError(
                    code=JsonRpcParseError.CODE, message="mcpls could not parse that message"
                ),
            )
            return
        log.error("could not handle a message from the editor: %s", type(error).__name__)


def device_code_message(name: str, code: DeviceCode) -> str:
    """The device sign-in's instructions for a person: the user code and where to enter it."""
    text = f"To sign in to {name}, enter the code {code.user_code} at {code.verification_uri}"
    if code.verification_uri_complete:
        text += f" (or open {code.verification_uri_complete})"
    return text


def _error(exc: Exception, server: str | None = None) -> JsonRpcException:
    """Map a failure to a JSON-RPC error whose `data.kind` is the contract's."""
    data: dict[str, Any] = {}
    if server is not None and len(server) <= MAX_ECHOED_NAME:
        data["server"] = server
    if isinstance(exc, p.InvalidParams | UnknownServer):
        return JsonRpcInvalidParams(message=str(exc), data={**data, "kind": "invalidParams"})
    if isinstance(exc, NotConnected):
        data["state"] = exc.state
        kind = {"authRequired": "authRequired", "disabled": "other"}.get(exc.state, "connection")
        return JsonRpcException(
            message=exc.message, code=ERROR_CODES[kind], data={**data, "kind": kind}
        )
    if isinstance(exc, RequestTimeout):
        return JsonRpcException(
            message=exc.message, code=ERROR_CODES["timeout"], data={**data, "kind": "timeout"}
        )
    if isinstance(exc, McplsError):
        return JsonRpcException(
            message=exc.message, code=ERROR_CODES[exc.kind], data={**data, "kind": exc.kind}
        )
    raise exc


async def _answer(server: str | None, call: Awaitable[T]) -> T:
    try:
        return await call
    except asyncio.CancelledError:
        raise
    except (McplsError, p.InvalidParams, UnknownServer) as exc:
        raise _error(exc, server) from None
    except Exception as exc:  # a bug: the editor still gets an answer, the log the details
        log.exception("handling a request for %s", quote(server or ""))
        raise _error(InternalError.wrap(exc, "handling the request"), server) from None


def create_server() -> McplsServer:
    """The server with every handler registered."""
    server = McplsServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: McplsServer, params: types.InitializeParams) -> None:
        ls.initialization_options = params.initialization_options
        experimental = params.capabilities.experimental
        if isinstance(experimental, dict):
            mine = experimental.get("mcpls")
            ls.editor_elicitation = isinstance(mine, dict) and mine.get("elicitation") is True

    @server.feature(types.INITIALIZED)
    async def initialized(ls: McplsServer, params: types.InitializedParams) -> None:
        await ls.hub.apply(ls.settings())
        collector.freeze_what_lives_on()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: McplsServer, params: types.DidChangeConfigurationParams
    ) -> None:
        ls.editor_settings = params.settings
        await ls.hub.apply(ls.settings())

    def handler(
        method: str, allowed: set[str]
    ) -> Callable[[Callable[[McplsServer, dict[str, Any]], Awaitable[Any]]], None]:
        def register(fn: Callable[[McplsServer, dict[str, Any]], Awaitable[Any]]) -> None:
            async def run(ls: McplsServer, params: object) -> Any:
                try:
                    checked = p.params_object(method, params, allowed)
                except p.InvalidParams as exc:
                    raise _error(exc) from None
                name = checked.get("server")
                return await _answer(name if isinstance(name, str) else None, fn(ls, checked))

            server.feature(method)(run)

        return register

    @handler("mcp/status", {"server"})
    async def status(ls: McplsServer, params: dict[str, Any]) -> dict[str, Any]:
        name = p.server_name("mcp/status", params, required=False)
        return {"servers": ls.hub.statuses(name)}

    def lifecycle(method: str, action: Callable[[Any], Awaitable[None]]) -> None:
        @handler(method, {"server"})
        async def run(ls: McplsServer, params: dict[str, Any]) -> dict[str, Any]:
            name = p.server_name(method, params)
            assert name is not None
            connection = ls.hub.get(name)
            await action(connection)
            return connection.status()

    lifecycle("mcp/enable", lambda c: c.enable())
    lifecycle("mcp/disable", lambda c: c.disable())
    lifecycle("mcp/restart", lambda c: c.restart())

    @handler("mcp/authenticate", {"server", "workDoneToken", "method"})
    async def authenticate(ls: McplsServer, params: dict[str, Any]) -> dict[str, Any]:
        name = p.server_name("mcp/authenticate", params)
        assert name is not None
        how = p.optional_choice("mcp/authenticate", params, "method", ("browser", "device"))
        connection = ls.hub.get(name)
        # Imported here for start-up: the OAuth stack (httpx, authlib) loads on first sign-in.
        from mcpls.auth.signin import SignInMethod

        progress = await ls.progress_for(params.get("workDoneToken"), f"Signing in to {name}")
        task = asyncio.current_task()
        if progress.token is not None and task is not None:
            ls.cancellable[progress.token] = task  # the progress bar's Cancel button

        def announce(url: str) -> None:
            progress.report(f"Opening the sign-in page. If it did not open: {url}")

        def show_code(code: DeviceCode) -> None:
            text = device_code_message(name, code)
            progress.report(text)
            ls.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Info, message=text)
            )

        method = SignInMethod(
            requested="device" if how == "device" else "browser", show_code=show_code
        )
        try:
            await connection.authenticate(ls.open_url, announce=announce, method=method)
        finally:
            if progress.token is not None:
                ls.cancellable.pop(progress.token, None)
            progress.end()
        return connection.status()

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def cancel_progress(ls: McplsServer, params: types.WorkDoneProgressCancelParams) -> None:
        task = ls.cancellable.pop(params.token, None)
        if task is not None:
            task.cancel()

    @handler("mcp/completeAuthentication", {"server", "redirectUrl"})
    async def complete(ls: McplsServer, params: dict[str, Any]) -> dict[str, Any]:
        name = p.server_name("mcp/completeAuthentication", params)
        assert name is not None
        redirect = p.string_field("mcp/completeAuthentication", params, "redirectUrl")
        connection = ls.hub.get(name)
        await asyncio.shield(connection.complete_authentication(redirect))
        return connection.status()

    @handler("mcp/logout", {"server", "forgetClient"})
    async def logout(ls: McplsServer, params: dict[str, Any]) -> dict[str, Any]:
        name = p.server_name("mcp/logout", params)
        assert name is not None
        forget = p.optional_bool("mcp/logout", params, "forgetClient")
        connection = ls.hub.get(name)
        await connection.logout(forget_client=forget)
        return connection.status()

    @handler("mcp/listTools", {"server"})
    async def list_tools(ls: McplsServer, params: dict[str, Any]) -> dict[str, Any]:
        name = p.server_name("mcp/listTools", params)
        assert name is not None
        return {"tools": await ls.hub.get(name).list_tools()}

    @handler("mcp/callTool", {"server", "name", "arguments"})
    async def call_tool(ls: McplsServer, params: dict[str, Any]) -> dict[str, Any]:
        name = p.server_name("mcp/callTool", params)
        assert name is not None
        tool = p.string_field("mcp/callTool", params, "name")
        arguments = p.optional_object("mcp/callTool", params, "arguments")
        return await ls.hub.get(name).call_tool(tool, arguments)

    return server


def serve() -> int:
    """Run over stdio until `exit` or end of input, closing every MCP session first.

    Returns the LSP exit code: 0 after `shutdown` then `exit`, 1 otherwise.
    """
    server = create_server()
    collector.configure()
    return asyncio.run(_serve_io(server))


async def _serve_io(server: McplsServer) -> int:
    protocol = server.protocol
    assert isinstance(protocol, McplsProtocol)
    protocol.exit_requested = asyncio.Event()
    writer = FrameWriter(sys.stdout.buffer)
    server.protocol.set_writer(writer)
    ended = asyncio.Event()

    def deliver(messages: list[Any]) -> None:
        # What pygls's own reader does with a body, and its errors reported the same way,
        # except that only the message itself is structured: pygls passes its structuring
        # as json's object_hook, which reads EVERY nested object with a "jsonrpc" key as a
        # message too (a tool argument, a workDoneToken `{"jsonrpc": 0}`): the arguments
        # were altered, or the request was lost without an answer.
        for data in messages:
            if isinstance(data, Exception):  # not JSON: read on the input thread
                server.report_server_error(data, JsonRpcException)
                continue
            try:
                protocol.handle_message(
                    protocol.structure_message(data) if isinstance(data, dict) else data
                )
            except Exception as exc:
                server.report_server_error(exc, JsonRpcException)

    def answer(request_id: int | str, result: dict[str, Any]) -> None:
        protocol.write_plain({"jsonrpc": "2.0", "id": request_id, "result": result})

    EditorInput(
        sys.stdin.buffer.fileno(),
        asyncio.get_running_loop(),
        deliver=deliver,
        ended=ended.set,
        statuses=lambda: server.hub.published,
        answer=answer,
    ).start()
    quiet_collector = collector.QuietCollector(asyncio.get_running_loop())
    quiet_collector.start()
    end_task = asyncio.create_task(ended.wait())
    exit_task = asyncio.create_task(protocol.exit_requested.wait())
    try:
        # The input ends, even in the middle of a message (the editor went away): the same
        # as `exit` without `shutdown`.
        await asyncio.wait({end_task, exit_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        quiet_collector.stop()
        for task in (end_task, exit_task):
            task.cancel()
        # `exit`, or end of input without it (the editor is gone): close sessions all the same.
        await server.hub.shutdown()
    return 0 if protocol._shutdown else 1
