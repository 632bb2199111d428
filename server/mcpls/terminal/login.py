"""`mcpls login NAME|URL` and `mcpls logout NAME|URL`: the editor's mcp/authenticate and
mcp/logout, in a terminal, on the same store (a running editor uses the result)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from mcpls.config import ConfigError, ServerConfig
from mcpls.connection import Connection
from mcpls.errors import McplsError, NothingToDo
from mcpls.hub import UnknownServer
from mcpls.terminal import output
from mcpls.terminal.context import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    describe_config_error,
    headless,
    load_settings,
    open_hub,
    resolve,
    say,
    unknown,
)

if TYPE_CHECKING:  # for types only: the OAuth stack loads when a command needs it
    from mcpls.auth.device import DeviceCode, RequestedMethod

LOGIN_EXAMPLES = """examples:
  mcpls login linear                        open the browser, wait for the sign-in
  mcpls login https://mcp.example.com/mcp   a server that is not in servers.json
  mcpls login linear --no-browser           print the address; paste the final one back
  mcpls login linear --device               a code to enter on any device (RFC 8628)

Over SSH, or on Linux without a display, mcpls uses the device sign-in by itself when the
server offers it (--browser overrides), and otherwise waits for the pasted address.
"""
LOGOUT_EXAMPLES = """examples:
  mcpls logout linear                   revoke and delete the stored tokens
  mcpls logout linear --forget-client   also forget mcpls's client registration there
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    login = commands.add_parser(
        "login",
        help="sign in to a server (browser, pasted address, or device code)",
        description="Sign in to an MCP server, as an editor's Authenticate does: the "
        "tokens go to the same store, so running editors use them at once.",
        epilog=LOGIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    login.add_argument("server", metavar="NAME|URL", help="a configured name, or a server URL")
    how = login.add_mutually_exclusive_group()
    how.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a browser: print the address, then read the final address back",
    )
    how.add_argument(
        "--device", action="store_true", help="sign in with a code on another device (RFC 8628)"
    )
    how.add_argument(
        "--browser", action="store_true", help="always the browser sign-in, even over SSH"
    )
    login.set_defaults(run=run_login)

    logout = commands.add_parser(
        "logout",
        help="revoke and delete a server's stored sign-in",
        description="Revoke the tokens where the authorization server offers it, and delete "
        "them from the store (every editor using them needs a new sign-in).",
        epilog=LOGOUT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    logout.add_argument("server", metavar="NAME|URL", help="a configured name, or a server URL")
    logout.add_argument(
        "--forget-client",
        action="store_true",
        help="also forget this server's client registration (a new one is made next time)",
    )
    logout.set_defaults(run=run_logout)


def _target(name: str) -> ServerConfig | int:
    try:
        server = resolve(name, load_settings())
    except UnknownServer as exc:
        return unknown(exc)
    if isinstance(server, ConfigError):
        say(f"mcpls: {describe_config_error(server)}")
        return EXIT_USAGE
    return server


def run_login(args: argparse.Namespace) -> int:
    server = _target(args.server)
    if isinstance(server, int):
        return server
    requested: RequestedMethod = (
        "device" if args.device else "browser" if (args.browser or args.no_browser) else "auto"
    )
    try:
        return asyncio.run(_login(server, requested, no_browser=args.no_browser))
    except KeyboardInterrupt:
        say(f"{output.FAIL} sign-in cancelled")
        return EXIT_CANCELLED


async def _login(server: ServerConfig, requested: RequestedMethod, *, no_browser: bool) -> int:
    from mcpls.auth.signin import SignInMethod

    line = output.ProgressLine(sys.stderr)
    without_display = headless()
    paste_back = no_browser or (without_display and requested != "browser")

    def on_status(status: dict[str, Any]) -> None:
        if status["state"] == "connecting":  # the tokens are stored: a new MCP session
            line.set("Signed in; connecting")

    settings = load_settings()
    async with open_hub(settings, {server.name: server}, connect=False, on_status=on_status) as hub:
        connection = hub.get(server.name)
        pasted: PastedAnswers | None = None

        def announce(url: str) -> None:
            nonlocal pasted
            line.say(f"Sign in to {server.name} at this address:\n\n  {url}\n")
            if paste_back and pasted is None:
                line.say(
                    "If the browser cannot reach this machine, paste the address it ends on "
                    "(it starts with http://127.0.0.1) here and press Enter."
                )
                pasted = PastedAnswers(connection, line)
            line.set("Waiting for the browser sign-in (Ctrl-C cancels)")

        async def open_url(url: str) -> None:
            if paste_back:
                return
            import webbrowser

            if not await asyncio.to_thread(webbrowser.open, url):
                line.say("No browser could be opened: open the address above yourself.")

        def show_code(code: DeviceCode) -> None:
            text = f"To sign in to {server.name}, open {code.verification_uri}\nand enter the code"
            line.say(f"{text}  {output.paint(code.user_code, 'bold', sys.stderr)}")
            if code.verification_uri_complete:
                line.say(f"(or open {code.verification_uri_complete})")
            line.set(f"Waiting for the code {code.user_code} to be approved (Ctrl-C cancels)")

        method = SignInMethod(requested=requested, headless=without_display, show_code=show_code)
        line.set("Finding the authorization server")
        try:
            await connection.authenticate(open_url, announce=announce, method=method)
        except McplsError as exc:
            line.close()
            say(f"{output.mark(False, sys.stderr)} Sign-in to {server.name} failed: {exc.message}")
            if not isinstance(exc, NothingToDo):
                say(f"  To see why step by step: mcpls doctor {server.name}")
            return EXIT_FAILED
        finally:
            line.close()
            if pasted is not None:
                pasted.stop()
        print(describe_login(connection.status()))
    return EXIT_OK


def describe_login(status: dict[str, Any]) -> str:
    """The result of a sign-in in two lines: the token, then the connection."""
    name = status["server"]
    auth = status.get("auth", {})
    parts = [f"issuer {auth['issuer']}"] if auth.get("issuer") else []
    if auth.get("scopes"):
        parts.append(f"scopes {' '.join(auth['scopes'])}")
    if auth.get("expiresAt"):
        parts.append(f"token expires {output.relative(auth['expiresAt'], time.time())}")
    lines = [f"{output.mark(True, sys.stdout)} Signed in to {name} ({', '.join(parts)})"]
    if status["state"] == "connected":
        info = status.get("serverInfo", {})
        tools = status.get("toolCount")
        server = f"{info.get('name', '?')} {info.get('version', '')}".strip()
        lines.append(
            f"{output.mark(True, sys.stdout)} Connected to {server}"
            + (f": {tools} tools" if tools is not None else "")
        )
    else:
        error = status.get("error", {}).get("message", status["state"])
        lines.append(f"{output.mark(False, sys.stdout)} Not connected: {error}")
    return "\n".join(lines)


class PastedAnswers:
    """Lines typed or pasted on stdin, each tried as the final redirect address of the
    sign-in in progress (mcp/completeAuthentication). A daemon thread reads them: a read
    that never returns must not keep the process alive after the sign-in."""

    def __init__(self, connection: Connection, line: output.ProgressLine) -> None:
        self._connection = connection
        self._line = line
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        threading.Thread(target=self._read, name="mcpls-paste", daemon=True).start()

    def stop(self) -> None:
        self._stopped = True

    def _read(self) -> None:
        for text in sys.stdin:
            if self._stopped:
                return
            if text.strip():
                self._loop.call_soon_threadsafe(self._deliver, text.strip())

    def _deliver(self, text: str) -> None:
        if self._stopped:
            return
        try:
            self._connection.complete_authentication(text)
        except McplsError as exc:
            self._line.say(f"{output.FAIL} {exc.message}")


def run_logout(args: argparse.Namespace) -> int:
    server = _target(args.server)
    if isinstance(server, int):
        return server
    return asyncio.run(_logout(server, forget_client=args.forget_client))


async def _logout(server: ServerConfig, *, forget_client: bool) -> int:
    settings = load_settings()
    async with open_hub(settings, {server.name: server}, connect=False) as hub:
        connection = hub.get(server.name)
        oauth = connection.oauth
        had = False
        if oauth is not None:
            await oauth.load()
            had = oauth.tokens.tokens is not None
        try:
            await connection.logout(forget_client=forget_client)
        except McplsError as exc:
            say(f"{output.mark(False, sys.stderr)} {exc.message}")
            return EXIT_FAILED
    done = "signed out: tokens revoked where the server allows it, and deleted"
    if not had:
        done = "had no stored sign-in"
    if forget_client:
        done += "; client registration forgotten"
    print(f"{output.mark(True, sys.stdout)} {server.name} {done}")
    return EXIT_OK
