"""`mcpls status [--json] [--check]`: every configured server, what is stored for it, and
with --check its live state (schemas/cli/status.schema.json)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from mcpls.config import ConfigError, Settings
from mcpls.hub import Hub
from mcpls.terminal import output
from mcpls.terminal.context import EXIT_FAILED, EXIT_OK, load_settings, open_hub

EXAMPLES = """examples:
  mcpls status                 every server in servers.json and its stored sign-in
  mcpls status --check         also connect to each and show its live state
  mcpls status --json | jq '.servers[] | select(.auth.authenticated | not) | .server'
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "status",
        help="list configured servers and their stored sign-ins",
        description="List every server of servers.json: its URL or command, whether a "
        "sign-in is stored, its expiry, scopes and issuer. Nothing is contacted unless "
        "--check is given. With --check the exit status is 1 when an enabled server is "
        "not connected.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON (schemas/cli/status)")
    parser.add_argument(
        "--check", action="store_true", help="connect to each enabled server and report its state"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    entries = asyncio.run(collect(settings, check=args.check))
    if args.json:
        print(json.dumps({"servers": entries}, indent=2))
    else:
        print(render(entries, check=args.check, stream=sys.stdout))
    if args.check and any(
        e.get("enabled") and e.get("live", {}).get("state") != "connected" for e in entries
    ):
        return EXIT_FAILED
    return EXIT_OK


async def collect(settings: Settings, *, check: bool) -> list[dict[str, Any]]:
    """One entry per configured server, sorted by name; with `check`, after connecting."""
    async with open_hub(settings, settings.servers, connect=check) as hub:
        return [await _entry(hub, name, settings, check) for name in sorted(settings.servers)]


async def _entry(hub: Hub, name: str, settings: Settings, check: bool) -> dict[str, Any]:
    server = settings.servers[name]
    connection = hub.get(name)
    entry: dict[str, Any] = {"server": name, "transport": server.transport}
    if isinstance(server, ConfigError):
        if server.url:
            entry["url"] = server.url
        entry["enabled"] = False
        entry["configError"] = server.message
        return entry
    if server.url:
        entry["url"] = server.url
    if server.command:
        entry["command"] = [server.command, *server.args]
    entry["enabled"] = server.enabled
    oauth = connection.oauth
    if oauth is not None:
        await oauth.load()
        if oauth.in_use:
            entry["auth"] = oauth.info().to_status()
    if check:
        entry["live"] = connection.status()
    return entry


def render(entries: list[dict[str, Any]], *, check: bool, stream: Any) -> str:
    """The table a person reads."""
    if not entries:
        from mcpls.config import user_settings_path

        return f"no servers configured (add them to {user_settings_path()})"
    headers = ["SERVER", "URL / COMMAND", "SIGN-IN", "EXPIRES", "SCOPES", "ISSUER"]
    if check:
        headers.append("STATE")
    rows = []
    for e in entries:
        where = e.get("url") or " ".join(e.get("command", []))
        auth = e.get("auth")
        if "configError" in e:
            signed = output.paint("invalid settings", "red", stream)
        elif auth is None:
            signed = "—"  # a local server, or one that never asked for a sign-in
        elif auth["authenticated"]:
            signed = output.paint("signed in", "green", stream)
        else:
            signed = output.paint("not signed in", "yellow", stream)
        if not e.get("enabled", True) and "configError" not in e:
            signed += " (disabled)"
        expires = output.relative(auth["expiresAt"]) if auth and "expiresAt" in auth else ""
        row = [
            e["server"],
            _short(where, 48),
            signed,
            expires,
            " ".join(auth.get("scopes", [])) if auth else "",
            auth.get("issuer", "") if auth else "",
        ]
        if check:
            live = e.get("live", {})
            state = live.get("state", "")
            if live.get("error"):
                state += f": {_short(live['error']['message'], 60)}"
            row.append(state)
        rows.append(row)
    lines = [output.table(headers, rows, stream)]
    lines += [f"{e['server']}: {e['configError']}" for e in entries if "configError" in e]
    return "\n".join(lines)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
