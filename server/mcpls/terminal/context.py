"""What every terminal command starts from: the settings `mcpls serve` reads (the user
file), the server a NAME or URL stands for, and a hub over them, so that sign-ins, tokens
and locks are the editor's own."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from mcpls import config
from mcpls.config import ConfigError, ServerConfig, Settings
from mcpls.errors import quote
from mcpls.hub import Hub, UnknownServer

# Exit statuses of the terminal commands.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


def load_settings() -> Settings:
    """The user file, as `mcpls serve` reads it before any editor settings arrive."""
    raw, warnings = config.read_user_file()
    return config.load(
        (str(config.user_settings_path()), raw), None, None, warnings=tuple(warnings)
    )


def is_url(target: str) -> bool:
    return urlsplit(target).scheme in ("http", "https")


def ad_hoc_name(url: str) -> str:
    """The name of a server given by URL only: its host, and its port when it has one."""
    parts = urlsplit(url)
    host = parts.hostname or "server"
    return f"{host}-{parts.port}" if parts.port else host


def resolve(target: str, settings: Settings) -> ServerConfig | ConfigError:
    """The server `target` names: a configured name, a configured server's URL, or any
    other http(s) URL as an ad-hoc server (same store: its sign-in is keyed by its URL).
    Raises `UnknownServer` naming the configured servers."""
    found = settings.servers.get(target)
    if found is not None:
        return found
    if not is_url(target):
        raise UnknownServer(target, list(settings.servers))
    from mcpls.auth.discovery import InvalidUrl, canonical_resource

    try:
        wanted = canonical_resource(target)
    except InvalidUrl as exc:
        return ConfigError(name=ad_hoc_name(target), message=exc.message, url=target)
    for server in settings.servers.values():
        if server.url is not None:
            with contextlib.suppress(InvalidUrl):
                if canonical_resource(server.url) == wanted:
                    return server
    return config.parse_server(ad_hoc_name(target), {"url": target}, where="command line")


def is_headless(environ: Mapping[str, str], platform: str) -> bool:
    """Whether a browser on this machine cannot take part in a sign-in: an SSH session
    (the person's browser is on another machine), or Linux without a display."""
    if environ.get("SSH_CONNECTION") or environ.get("SSH_TTY"):
        return True
    if platform.startswith("linux"):
        return not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    return False


def headless() -> bool:
    """`is_headless` for this process."""
    return is_headless(os.environ, sys.platform)


def say(text: str) -> None:
    """A line for the person (stderr: stdout carries results)."""
    print(text, file=sys.stderr, flush=True)


def user_log(level: str, message: str) -> None:
    """The hub's log for a person: warnings and errors only (the rest is for editors)."""
    if level in ("warning", "error"):
        say(f"mcpls: {level}: {message}")


@contextlib.asynccontextmanager
async def open_hub(
    settings: Settings,
    servers: Mapping[str, ServerConfig | ConfigError],
    *,
    connect: bool,
    on_status: Callable[[dict[str, Any]], None] = lambda status: None,
) -> AsyncIterator[Hub]:
    """A hub over `servers` with the global settings of `settings`. Without `connect`
    every server stays disabled (nothing is contacted until a command asks); the hub is
    shut down (sessions closed) on the way out."""
    hub = Hub(on_status=on_status, user_log=user_log, roots=list)
    if not connect:
        servers = {
            name: replace(server, enabled=False) if isinstance(server, ServerConfig) else server
            for name, server in servers.items()
        }
    try:
        await hub.apply(replace(settings, servers=dict(servers)))
        yield hub
    finally:
        await hub.shutdown()


def unknown(exc: UnknownServer) -> int:
    """Report a name that is neither configured nor a URL."""
    say(
        f"mcpls: {exc}. Give a configured name or the server's URL "
        f"(servers live in {config.user_settings_path()})"
    )
    return EXIT_USAGE


def describe_config_error(server: ConfigError) -> str:
    return f"{quote(server.name, 60)} cannot be used: {server.message}"
