"""`mcpls demo`: a local OAuth-protected MCP server and a scripted editor session
against `mcpls serve`.

A newcomer sees what an editor sees: the server needs a sign-in, the person clicks
"Authenticate", the sign-in page opens (here the demo's authorization server approves at
once, and the scripted browser follows it), then the tool list, a tool call, a logout.
Everything runs on 127.0.0.1 with settings and tokens in a temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lsprotocol import types

HEADLINE = "\033[1m{}\033[0m" if sys.stdout.isatty() else "{}"


def say(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_listening(
    port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 30
) -> None:
    """Until a server on 127.0.0.1:`port` accepts connections (or died, or time is up)."""
    async with asyncio.timeout(timeout):
        while True:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the demo server exited with status {process.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return


async def follow_sign_in(url: str) -> bool:
    """Stands in for the person's browser: the demo's authorization server approves at
    once and redirects to mcpls's loopback callback, which the browser then opens."""
    import httpx

    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as browser:
        response = await browser.get(url)
        location = response.headers.get("location", "")
        if not location.startswith("http://127.0.0.1:"):
            say(f"  the sign-in page did not redirect back to mcpls (HTTP {response.status_code})")
            return False
        say("  (browser) the authorization server approved; back to mcpls's callback")
        page = await browser.get(location)
        return page.status_code == 200


def describe(status: dict[str, Any]) -> str:
    text = f"{status['server']}: {status['state']}"
    if "serverInfo" in status:
        info = status["serverInfo"]
        text += f" ({info['name']} {info['version']}, protocol {status.get('protocolVersion')},"
        text += f" {status.get('toolCount', 0)} tools)"
    auth = status.get("auth")
    if auth is not None:
        text += f"  auth: {'signed in' if auth['authenticated'] else 'not signed in'}"
        if auth.get("scopes"):
            text += f" scopes={' '.join(auth['scopes'])}"
    if "error" in status:
        text += f" [{status['error']['kind']}] {status['error']['message']}"
    return text


async def scripted_editor(url: str, env: dict[str, str]) -> int:
    from pygls.lsp.client import LanguageClient

    from mcpls.lsp.server import raw_converter

    client = LanguageClient("mcpls-demo-editor", "1.0", converter_factory=raw_converter)
    settled = asyncio.Event()

    @client.feature("mcp/didChangeStatus")  # type: ignore[untyped-decorator]
    def on_status(ls: LanguageClient, status: dict[str, Any]) -> None:
        say(f"  ← mcp/didChangeStatus  {describe(status)}")
        if status["state"] in ("connected", "authRequired", "error"):
            settled.set()

    @client.feature(types.WINDOW_SHOW_DOCUMENT)  # type: ignore[untyped-decorator]
    async def on_show_document(
        ls: LanguageClient, params: types.ShowDocumentParams
    ) -> types.ShowDocumentResult:
        say(f"  ← window/showDocument  {params.uri[:90]}…")
        return types.ShowDocumentResult(success=await follow_sign_in(params.uri))

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)  # type: ignore[untyped-decorator]
    def on_prompt(
        ls: LanguageClient, params: types.ShowMessageRequestParams
    ) -> types.MessageActionItem | None:
        say(f'  ← window/showMessageRequest  "{params.message}"  (the person picks: Not now)')
        return types.MessageActionItem(title="Not now")

    @client.feature(types.WINDOW_LOG_MESSAGE)  # type: ignore[untyped-decorator]
    def on_log(ls: LanguageClient, params: types.LogMessageParams) -> None:
        say(f"  ← window/logMessage    {params.message}")

    say(HEADLINE.format("2. The editor starts `mcpls serve` and configures the server"))
    await client.start_io(sys.executable, "-m", "mcpls", "serve", env=env)
    # Plain http is allowed here because the demo's servers are on this machine.
    settings = {
        "servers": {"demo": {"url": url}},
        "allowInsecureLoopback": True,
        "tokenStorage": "file",  # into the demo's temporary folder, not your keychain
    }
    say(f"  → initialize           initializationOptions={json.dumps(settings)}")
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(
                    show_document=types.ShowDocumentClientCapabilities(support=True)
                )
            ),
            initialization_options=settings,
        )
    )
    client.initialized(types.InitializedParams())
    try:
        async with asyncio.timeout(30):
            await settled.wait()
        say(HEADLINE.format('3. The person clicks "Authenticate" (no browser opened before)'))
        say('  → mcp/authenticate      {"server": "demo"}')
        status = await client.protocol.send_request_async("mcp/authenticate", {"server": "demo"})
        say(f"  ← result               {describe(status)}")
        say(HEADLINE.format("4. The tool list"))
        tools = await client.protocol.send_request_async("mcp/listTools", {"server": "demo"})
        for tool in tools["tools"]:
            say(f"  • {tool['name']}: {tool.get('description', '').strip()}")
        say(HEADLINE.format("5. A tool call"))
        call = {"server": "demo", "name": "greet", "arguments": {"name": "newcomer"}}
        say(f"  → mcp/callTool         {json.dumps(call)}")
        result = await client.protocol.send_request_async("mcp/callTool", call)
        for item in result["content"]:
            say(f"  ← {item.get('text', item)}")
        say(HEADLINE.format("6. Sign out"))
        status = await client.protocol.send_request_async("mcp/logout", {"server": "demo"})
        say(f"  ← result               {describe(status)}")
        say(HEADLINE.format("7. The editor closes"))
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()  # type: ignore[no-untyped-call]
    except BaseException:
        await client.stop()  # type: ignore[no-untyped-call]
        raise
    say("  mcpls closed the MCP session and exited. That is the whole flow.")
    return 0


def run_demo(port: int = 0) -> int:
    """Run the demo; returns the process exit status."""
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="mcpls-demo-") as home:
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(Path(home, "config")),
            "XDG_DATA_HOME": str(Path(home, "data")),
            "XDG_STATE_HOME": str(Path(home, "state")),
        }
        say(HEADLINE.format("1. A local OAuth-protected MCP server (official Python SDK) starts"))
        server_log = Path(home, "server.log").open("wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [sys.executable, "-m", "mcpls.demo.server", "--port", str(port)],
            env=env,
            stderr=server_log,
        )
        url = f"http://127.0.0.1:{port}/mcp"
        try:
            asyncio.run(wait_listening(port, server, timeout=30))
            say(f"  listening on {url}")
            return asyncio.run(scripted_editor(url, env))
        except (RuntimeError, TimeoutError) as exc:
            say(f"demo failed: {exc or 'timed out'}")
            say(Path(home, "server.log").read_text(errors="replace")[-2000:])
            return 1
        finally:
            server.terminate()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
            server_log.close()
