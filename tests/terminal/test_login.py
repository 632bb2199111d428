"""`mcpls login` and `mcpls logout` against real authorization servers: the browser step is
done by the test's browser, on the address the command printed."""

from __future__ import annotations

import re
import signal
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from peers.oauth.browser import authorize_in_browser
from peers.oauth.fixtures import PyOAuthServer
from terminal.runner import URL_LINE, Cli


async def login_in_browser(cli: Cli, target: str, *args: str) -> tuple[str, str]:
    """Run `mcpls login`, do the browser step on the printed address; (stdout, stderr)."""
    running = await cli.start("login", target, *args)
    url = (await running.line_matching(URL_LINE)).group(1)
    answer = await authorize_in_browser(url)
    assert answer.status == 200, answer.text
    result = await running.finish()
    assert result.code == 0, result.output
    return result.stdout, result.stderr


async def test_login_status_logout(cli: Cli, py_oauth_server: PyOAuthServer) -> None:
    cli.configure({"svc": py_oauth_server.mcp_url})

    before = await cli.run("status", "--json")
    assert before.code == 0, before.output
    assert "auth" not in before.json()["servers"][0]

    stdout, stderr = await login_in_browser(cli, "svc")
    assert "Waiting for the browser sign-in" in stderr
    assert f"✓ Signed in to svc (issuer {py_oauth_server.issuer}" in stdout
    assert re.search(r"✓ Connected to \S+.*: \d+ tools", stdout), stdout

    status = await cli.run("status")
    assert status.code == 0
    row = next(line for line in status.stdout.splitlines() if line.startswith("svc "))
    assert "signed in" in row
    assert py_oauth_server.issuer in row

    # A configured server's URL names that server.
    logout = await cli.run("logout", py_oauth_server.mcp_url)
    assert logout.code == 0, logout.output
    assert "✓ svc signed out" in logout.stdout
    assert (await py_oauth_server.stats())["revocations"]
    after = (await cli.run("status", "--json")).json()["servers"][0]
    assert after["auth"]["authenticated"] is False

    again = await cli.run("logout", "svc")
    assert "had no stored sign-in" in again.stdout


async def test_login_no_browser_reads_the_pasted_address(
    cli: Cli, py_oauth_server: PyOAuthServer
) -> None:
    cli.configure({"svc": py_oauth_server.mcp_url})
    running = await cli.start("login", "svc", "--no-browser")
    url = (await running.line_matching(URL_LINE)).group(1)
    await running.line_matching(re.compile("paste the address"))
    # The browser's last address never reaches this machine's loopback: it is pasted.
    answer = await authorize_in_browser(url, deliver=False)
    forged = re.sub(r"state=[^&]+", "state=forged", answer.callback_url)
    await running.type(forged)
    await running.line_matching(re.compile("state mismatch"))
    await running.type(answer.callback_url)
    result = await running.finish()
    assert result.code == 0, result.output
    assert "✓ Signed in to svc" in result.stdout


async def test_login_to_a_url_not_in_the_settings(cli: Cli, py_oauth_server: PyOAuthServer) -> None:
    cli.configure({})
    stdout, _ = await login_in_browser(cli, py_oauth_server.mcp_url)
    name = f"127.0.0.1-{py_oauth_server.port}"
    assert f"✓ Signed in to {name}" in stdout
    # The sign-in is keyed by the URL: a server configured later with it is signed in.
    cli.configure({"later": py_oauth_server.mcp_url})
    entry = (await cli.run("status", "--json")).json()["servers"][0]
    assert entry["auth"]["authenticated"] is True


async def test_unknown_name_names_the_configured_servers(cli: Cli) -> None:
    cli.configure({"alpha": "http://127.0.0.1:9/mcp", "beta": "http://127.0.0.1:9/mcp"})
    result = await cli.run("login", "gamma")
    assert result.code == 2
    assert "no MCP server named 'gamma'" in result.stderr
    assert "'alpha', 'beta'" in result.stderr


async def test_login_to_a_local_server_says_there_is_nothing_to_do(cli: Cli) -> None:
    cli.configure({"local": {"command": "true"}})
    result = await cli.run("login", "local")
    assert result.code == 1
    assert "does not use OAuth: it is a local (stdio) server" in result.stderr


async def test_login_opens_the_browser_where_there_is_a_display(
    cli: Cli, py_oauth_server: PyOAuthServer
) -> None:
    cli.configure({"svc": py_oauth_server.mcp_url})
    # The "browser" (Python's webbrowser honours $BROWSER) tells the test what it opened.
    opener = "sh -c 'echo \"OPENED $0\" >&2' %s"
    running = await cli.start("login", "svc", env={"DISPLAY": ":0", "BROWSER": opener})
    url = (await running.line_matching(re.compile(r"^OPENED (\S+)"))).group(1)
    assert (await authorize_in_browser(url)).status == 200
    result = await running.finish()
    assert result.code == 0, result.output
    assert "paste the address" not in result.stderr  # a browser here: no paste-back asked
    assert "✓ Signed in to svc" in result.stdout


async def test_ctrl_c_cancels_the_sign_in_and_frees_the_callback_port(
    cli: Cli, py_oauth_server: PyOAuthServer
) -> None:
    cli.configure({"svc": py_oauth_server.mcp_url})
    running = await cli.start("login", "svc")
    url = (await running.line_matching(URL_LINE)).group(1)
    await running.line_matching(re.compile("Waiting for the browser sign-in"))
    running.process.send_signal(signal.SIGINT)
    result = await running.finish()
    assert result.code == 130, result.output
    assert "✗ sign-in cancelled" in result.stderr
    # The listener is gone: the browser's answer reaches nobody, and a new login works.
    redirect = dict(parse_qsl(urlsplit(url).query))["redirect_uri"]
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(redirect)
    stdout, _ = await login_in_browser(cli, "svc")
    assert "✓ Signed in to svc" in stdout
