"""Conformance client adapter: the official suite drives mcpls as an editor would.

`conformance client --command "python tests/conformance/client.py"` appends the server
URL as the last argument and names the scenario in MCP_CONFORMANCE_SCENARIO. This
adapter is a scripted editor: it starts the real `mcpls serve`, configures the server,
and uses only the `mcp/*` methods an extension uses. Where the suite needs a person
(the elicitation form), the adapter answers as a person accepting a pre-filled form.
Exit 0 when the scenario's steps succeeded; logs go to stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from mcpls.lsp.server import raw_converter

# scenario -> (tool to call, arguments); None: only connect and list tools.
TOOL_CALLS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "initialize": None,
    "tools_call": ("add_numbers", {"a": 5, "b": 3}),
    "sse-retry": ("test_reconnection", {}),
    "elicitation-sep1034-client-defaults": ("test_client_elicitation_defaults", {}),
}


def log(text: str) -> None:
    print(f"[adapter] {text}", file=sys.stderr, flush=True)


CIMD_URL = "https://conformance-test.local/client-metadata.json"


def server_settings(url: str, context: dict[str, Any]) -> dict[str, Any]:
    """What a person would put in their settings for this server."""
    entry: dict[str, Any] = {"url": url, "timeoutMs": 20000, "allowAutoReauthentication": True}
    if "client_id" in context:
        oauth = {"clientId": context["client_id"]}
        if "client_secret" in context:
            oauth["clientSecret"] = context["client_secret"]
        entry["oauth"] = oauth
    return {
        "servers": {"conformance": entry},
        "clientMetadataDocumentUrl": CIMD_URL,
        "allowInsecureLoopback": True,
        "tokenStorage": "file",
    }


async def browse(url: str) -> bool:
    """The person's browser: the mock AS approves at once and redirects to mcpls's
    loopback callback, which the browser then opens."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as browser:
        response = await browser.get(url)
        location = response.headers.get("location")
        if response.status_code not in (301, 302, 303, 307) or not location:
            log(f"authorization page answered {response.status_code} without a redirect")
            return False
        callback = await browser.get(location)
        log(f"callback page: {callback.status_code}")
        return callback.status_code == 200


def accept_with_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """What a person does with a pre-filled form: accept it as it stands."""
    properties = schema.get("properties", {})
    content = {
        name: spec["default"]
        for name, spec in properties.items()
        if isinstance(spec, dict) and "default" in spec
    }
    return {"action": "accept", "content": content}


async def run(url: str, scenario: str) -> int:
    client = LanguageClient("conformance-editor", "1.0", converter_factory=raw_converter)
    settled: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @client.feature("mcp/didChangeStatus")  # type: ignore[untyped-decorator]
    def on_status(ls: LanguageClient, status: dict[str, Any]) -> None:
        log(f"status {json.dumps(status)}")
        if status["state"] in ("connected", "authRequired", "error"):
            settled.put_nowait(status)

    @client.feature("mcp/elicit")  # type: ignore[untyped-decorator]
    def on_elicit(ls: LanguageClient, params: dict[str, Any]) -> dict[str, Any]:
        answer = accept_with_defaults(params["requestedSchema"])
        log(f"elicitation answered {json.dumps(answer)}")
        return answer

    @client.feature(types.WINDOW_SHOW_DOCUMENT)  # type: ignore[untyped-decorator]
    async def on_show_document(
        ls: LanguageClient, params: types.ShowDocumentParams
    ) -> types.ShowDocumentResult:
        return types.ShowDocumentResult(success=await browse(params.uri))

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)  # type: ignore[untyped-decorator]
    def on_prompt(
        ls: LanguageClient, params: types.ShowMessageRequestParams
    ) -> types.MessageActionItem | None:
        return None  # "Not now": the adapter signs in explicitly, as a person would

    @client.feature(types.WINDOW_LOG_MESSAGE)  # type: ignore[untyped-decorator]
    def on_log(ls: LanguageClient, params: types.LogMessageParams) -> None:
        log(f"mcpls: {params.message}")

    await client.start_io(sys.executable, "-m", "mcpls", "serve", "--log-level", "info")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(
                    show_document=types.ShowDocumentClientCapabilities(support=True)
                ),
                experimental={"mcpls": {"elicitation": True}},
            ),
            initialization_options=server_settings(url, context),
        )
    )
    client.initialized(types.InitializedParams())
    try:
        status = await asyncio.wait_for(settled.get(), 25)
        if status["state"] == "authRequired":
            # The person clicks "Authenticate".
            status = await client.protocol.send_request_async(
                "mcp/authenticate", {"server": "conformance"}
            )
        if status["state"] != "connected":
            log(f"not connected: {status.get('error')}")
            return 1
        if scenario in TOOL_CALLS:
            call = TOOL_CALLS[scenario]
        else:  # auth scenarios: list the tools and call the first one
            tools = await client.protocol.send_request_async(
                "mcp/listTools", {"server": "conformance"}
            )
            call = (tools["tools"][0]["name"], {}) if tools["tools"] else None
        if call is not None:
            name, arguments = call
            result = await client.protocol.send_request_async(
                "mcp/callTool", {"server": "conformance", "name": name, "arguments": arguments}
            )
            log(f"tool result {json.dumps(result)[:500]}")
        return 0
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()  # type: ignore[no-untyped-call]


def main() -> int:
    url = sys.argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    with tempfile.TemporaryDirectory(prefix="mcpls-conformance-") as home:
        for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            os.environ[var] = str(Path(home, var.lower()))
        return asyncio.run(run(url, scenario))


if __name__ == "__main__":
    sys.exit(main())
