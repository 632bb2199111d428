"""One store for the terminal and the editor: a sign-in done by `mcpls login` is used by a
running `mcpls serve` without a new sign-in, and one done in the editor is what
`mcpls status` shows and `mcpls status --check` connects with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contract import validate_cli_output
from peers.oauth.browser import authorize_in_browser
from peers.oauth.fixtures import PyOAuthServer
from terminal.runner import URL_LINE, Cli

Factory = Callable[..., Any]


async def browser(url: str) -> bool:
    return (await authorize_in_browser(url)).status == 200


async def test_terminal_login_is_used_by_a_running_editor(
    cli: Cli, editor_factory: Factory, py_oauth_server: PyOAuthServer
) -> None:
    cli.configure({"svc": py_oauth_server.mcp_url})
    # The editor reads the same servers.json (user file) and store.
    editor = await editor_factory(None)
    await editor.wait_for_state("svc", "authRequired")

    running = await cli.start("login", "svc")
    await authorize_in_browser((await running.line_matching(URL_LINE)).group(1))
    assert (await running.finish()).code == 0

    # No mcp/authenticate: a restart (what the editor's "retry" does) finds the tokens.
    status = await editor.request("mcp/restart", {"server": "svc"})
    assert status["state"] == "connected", status
    assert status["auth"]["authenticated"] is True
    result = await editor.request(
        "mcp/callTool", {"server": "svc", "name": "echo", "arguments": {"text": "hi"}}
    )
    assert result["content"][0]["text"] == "hi"
    assert editor.shown_documents == []
    assert (await py_oauth_server.stats())["authorizations"] == 1


async def test_editor_sign_in_is_what_the_terminal_sees(
    cli: Cli, editor_factory: Factory, py_oauth_server: PyOAuthServer
) -> None:
    cli.configure({"svc": py_oauth_server.mcp_url, "local": {"command": "true"}})
    editor = await editor_factory(None)
    editor.browse = browser
    await editor.wait_for_state("svc", "authRequired")
    signed_in = await editor.request("mcp/authenticate", {"server": "svc"})
    assert signed_in["state"] == "connected"

    listed = await cli.run("status", "--json")
    assert listed.code == 0, listed.output
    document = listed.json()
    validate_cli_output("status", document)
    entries = {e["server"]: e for e in document["servers"]}
    assert entries["svc"]["auth"]["authenticated"] is True
    assert entries["svc"]["auth"]["expiresAt"] == signed_in["auth"]["expiresAt"]
    assert entries["local"]["command"] == ["true"]
    assert "live" not in entries["svc"]  # nothing contacted without --check

    checked = await cli.run("status", "--json", "--check")
    document = checked.json()
    validate_cli_output("status", document)
    live = {e["server"]: e["live"] for e in document["servers"]}
    assert live["svc"]["state"] == "connected"
    assert live["local"]["state"] == "error"  # `true` exits at once: not an MCP server
    assert checked.code == 1  # an enabled server is not connected

    table = await cli.run("status", "--check")
    svc_row = next(line for line in table.stdout.splitlines() if line.startswith("svc "))
    assert "signed in" in svc_row
    assert svc_row.rstrip().endswith("connected")
    assert (await py_oauth_server.stats())["authorizations"] == 1

    # Signed out in the terminal: the editor's next request needs a sign-in again.
    assert (await cli.run("logout", "svc")).code == 0
    restarted = await editor.request("mcp/restart", {"server": "svc"})
    assert restarted["state"] == "authRequired"
