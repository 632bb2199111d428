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

    @client.feature(types.WINDOW_LOG_MESSAGE)  # type: ignore[untyped-decorator]
    def on_log(ls: LanguageClient, params: types.LogMessageParams) -> None:
        log(f"mcpls: {params.message}")

    await client.start_io(sys.executable, "-m", "mcpls", "serve", "--log-level", "info")
    settings = {"servers": {"conformance": {"url": url, "timeoutMs": 20000}}}
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(experimental={"mcpls": {"elicitation": True}}),
            initialization_options=settings,
        )
    )
    client.initialized(types.InitializedParams())
    try:
        status = await asyncio.wait_for(settled.get(), 25)
        if status["state"] != "connected":
            log(f"not connected: {status.get('error')}")
            return 1
        call = TOOL_CALLS.get(scenario)
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
