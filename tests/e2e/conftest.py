"""Drive the real `mcpls serve` process as an editor would (pytest-lsp), checking every
`mcp/*` message against schemas/. Everything an editor was shown (log, statuses, messages,
prompts, opened documents, error messages) goes to the suite's secret scan
(tests/secret_scan.py) when the test ends."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

import secret_scan
from contract import validate_error_data, validate_params, validate_result
from lsp_client import on, send_request, stop
from mcpls.lsp.server import raw_converter


class Editor:
    """A scripted editor: requests, the statuses it was told, and its log."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.statuses: list[dict[str, Any]] = []
        self.elicitations: list[dict[str, Any]] = []
        self.elicit_answer: Callable[[dict[str, Any]], dict[str, Any]] = lambda _: {
            "action": "decline"
        }
        self.log: list[str] = []
        self.shown_documents: list[str] = []
        # Messages of the JSON-RPC errors mcpls answered (for the secret scan).
        self.errors: list[str] = []
        self.log_file: Path | None = None
        self.prompts: list[str] = []
        # window/showMessage texts (the device sign-in's code, for one).
        self.messages: list[str] = []
        # What the person picks in the one-time "needs you to sign in" prompt, and when
        # (set `prompt_gate` to hold the answer until the test sets it).
        self.prompt_answer: str | None = "Not now"
        self.prompt_gate: asyncio.Event | None = None
        # What the person's browser does with a sign-in page (None: nothing, tab left open).
        self.browse: Callable[[str], Awaitable[bool]] | None = None
        self._changed = asyncio.Condition()

    async def logged(self, message: str) -> None:
        async with self._changed:
            self.log.append(message)
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        """Until `predicate` holds after some status or log message arrived."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def request(self, method: str, params: object) -> Any:
        """Send `method`; params and result are checked against the contract."""
        if isinstance(params, dict):
            validate_params(method, params)
        try:
            result = await send_request(self.client, method, params)
        except JsonRpcException as exc:
            self.errors.append(f"{exc} {json.dumps(exc.data)}")
            validate_error_data(exc.data)
            raise
        validate_result(method, result)
        return result

    async def raw_request(self, method: str, params: object) -> Any:
        """Send without checking params (for malformed-input tests)."""
        try:
            return await send_request(self.client, method, params)
        except JsonRpcException as exc:
            self.errors.append(f"{exc} {json.dumps(exc.data)}")
            raise

    def shown(self) -> list[tuple[str, str]]:
        """Everything mcpls showed this editor, as (where, text) for the secret scan."""
        return [
            ("window/logMessage", "\n".join(self.log)),
            ("mcp/didChangeStatus", "\n".join(map(json.dumps, self.statuses))),
            ("window/showMessage", "\n".join(self.messages)),
            ("window/showMessageRequest", "\n".join(self.prompts)),
            ("window/showDocument", "\n".join(self.shown_documents)),
            ("a JSON-RPC error", "\n".join(self.errors)),
        ]

    async def status_changed(self, status: dict[str, Any]) -> None:
        validate_params("mcp/didChangeStatus", status)
        async with self._changed:
            self.statuses.append(status)
            self._changed.notify_all()

    def latest(self, server: str) -> dict[str, Any] | None:
        for status in self.statuses[::-1]:  # newest first (mypy makes reversed() of it Any)
            if status["server"] == server:
                return status
        return None

    async def wait_for_state(
        self, server: str, *states: str, timeout: float = 30
    ) -> dict[str, Any]:
        """Wait until the last pushed status of `server` is in one of `states`."""

        def reached() -> bool:
            latest = self.latest(server)
            return latest is not None and latest["state"] in states

        await self.wait_until(reached, timeout)
        latest = self.latest(server)
        assert latest is not None
        return latest

    async def wait_for_log(self, text: str, timeout: float = 15) -> None:
        """Until a `window/logMessage` containing `text` arrived."""
        await self.wait_until(lambda: any(text in line for line in self.log), timeout)

    async def configure(self, settings: dict[str, Any]) -> None:
        self.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings=settings)
        )


def make_editor_client() -> LanguageClient:
    client = LanguageClient(converter_factory=raw_converter)
    # pytest-lsp's defaults, but the log and the windows are the Editor's (tests wait on them).
    ours = {
        types.WINDOW_LOG_MESSAGE,
        types.WINDOW_SHOW_DOCUMENT,
        types.WINDOW_SHOW_MESSAGE,
        types.WINDOW_SHOW_MESSAGE_REQUEST,
    }
    features = {k: v for k, v in DEFAULT_CLIENT_FEATURES.items() if k not in ours}
    register_lsp_features(client, features)
    return client


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(extra or {})
    return env


async def start_editor(
    initialization_options: dict[str, Any] | None,
    *,
    elicitation: bool = False,
    workspace: Path | None = None,
    env: dict[str, str] | None = None,
    log_level: str = "warning",
    log_file: Path | None = None,
) -> Editor:
    client = make_editor_client()
    editor = Editor(client)
    secret_scan.watch(editor.shown)

    @on(client, types.WINDOW_SHOW_DOCUMENT)
    async def on_show_document(
        ls: LanguageClient, params: types.ShowDocumentParams
    ) -> types.ShowDocumentResult:
        assert params.external is True
        async with editor._changed:
            editor.shown_documents.append(params.uri)
            editor._changed.notify_all()
        success = await editor.browse(params.uri) if editor.browse is not None else True
        return types.ShowDocumentResult(success=success)

    @on(client, types.WINDOW_SHOW_MESSAGE_REQUEST)
    async def on_prompt(
        ls: LanguageClient, params: types.ShowMessageRequestParams
    ) -> types.MessageActionItem | None:
        async with editor._changed:
            editor.prompts.append(params.message)
            editor._changed.notify_all()
        if editor.prompt_gate is not None:
            await editor.prompt_gate.wait()
        answer = editor.prompt_answer
        return types.MessageActionItem(title=answer) if answer else None

    @on(client, types.WINDOW_SHOW_MESSAGE)
    async def on_message(ls: LanguageClient, params: types.ShowMessageParams) -> None:
        async with editor._changed:
            editor.messages.append(params.message)
            editor._changed.notify_all()

    @on(client, "mcp/didChangeStatus")
    async def on_status(ls: LanguageClient, params: dict[str, Any]) -> None:
        await editor.status_changed(params)

    @on(client, types.WINDOW_LOG_MESSAGE)
    async def on_log(ls: LanguageClient, params: types.LogMessageParams) -> None:
        await editor.logged(params.message)

    @on(client, "mcp/elicit")
    def on_elicit(ls: LanguageClient, params: dict[str, Any]) -> dict[str, Any]:
        validate_params("mcp/elicit", params)
        editor.elicitations.append(params)
        answer = editor.elicit_answer(params)
        validate_result("mcp/elicit", answer)
        return answer

    editor.log_file = log_file
    logging = ["--log-level", log_level] + (["--log-file", str(log_file)] if log_file else [])
    await client.start_io(sys.executable, "-m", "mcpls", "serve", *logging, env=server_env(env))
    experimental: dict[str, Any] = {"mcpls": {"elicitation": True}} if elicitation else {}
    folders = (
        [types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)] if workspace else None
    )
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                experimental=experimental,
                window=types.WindowClientCapabilities(
                    show_document=types.ShowDocumentClientCapabilities(support=True),
                    work_done_progress=True,
                ),
            ),
            initialization_options=initialization_options,
            workspace_folders=folders,
        )
    )
    assert result.capabilities.experimental == {"mcpls": {"version": 1}}
    return editor


@pytest_asyncio.fixture
async def editor_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start editors (each a real `mcpls serve`, its log at info level in tmp_path, where
    the secret scan reads it)."""
    editors: list[Editor] = []

    async def factory(
        initialization_options: dict[str, Any] | None = None, **kwargs: Any
    ) -> Editor:
        kwargs.setdefault("log_level", "debug" if secret_scan.DEBUG_HUNT else "info")
        kwargs.setdefault("log_file", tmp_path / f"mcpls-{len(editors)}.log")
        editor = await start_editor(initialization_options, **kwargs)
        editors.append(editor)
        return editor

    yield factory
    for editor in editors:
        if editor.client._server is not None and editor.client._server.returncode is None:
            await editor.client.shutdown_session()
        await stop(editor.client)


@pytest.fixture
def http_server_settings() -> Callable[..., dict[str, Any]]:
    def make(**servers: str | dict[str, Any]) -> dict[str, Any]:
        return {
            "servers": {
                name: ({"url": value} if isinstance(value, str) else value)
                for name, value in servers.items()
            }
        }

    return make
