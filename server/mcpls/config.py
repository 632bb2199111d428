"""Settings: the one place that turns editor settings and files into typed objects.

Sources, later wins: the user file `<user config dir>/mcpls/servers.json`, then the
editor's `initializationOptions`, then `workspace/didChangeConfiguration` (section
`mcpls`). Shapes accepted: `{"servers": …}` (mcpls and VS Code `mcp.json`, with
`"type"`) and `{"mcpServers": …}` (Claude/Cursor). A server defined by a later source
replaces the earlier definition whole; global settings are replaced key by key.
An invalid entry never hides the others: it becomes a `ConfigError` for that server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from mcpls.auth.discovery import BAD_HOST
from mcpls.errors import JSON_ERRORS

TransportKind = Literal["http", "stdio"]
TokenStorage = Literal["auto", "keyring", "file"]
LogLevel = Literal["debug", "info", "warning", "error"]

DEFAULT_TIMEOUT_MS = 60_000
_HTTP_TYPES = {"http", "streamable-http"}
_STDIO_TYPES = {"stdio"}
_TOKEN_STORAGE = ("auto", "keyring", "file")
_LOG_LEVELS = ("debug", "info", "warning", "error")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
_SERVER_KEYS = {
    "type",
    "url",
    "serverUrl",
    "command",
    "args",
    "env",
    "headers",
    "enabled",
    "disabled",
    "timeoutMs",
    "allowAutoReauthentication",
    "oauth",
    "cwd",
    # Accepted for compatibility with other clients' files, without effect here.
    "envFile",
    "description",
    "autoApprove",
    "alwaysAllow",
}
_OAUTH_KEYS = {
    "clientId": "string",
    "clientSecret": "string",
    "scopes": "list",
    "callbackPort": "port",
    "callbackHost": "string",
    "redirectUri": "string",
    "authServerMetadataUrl": "string",
    "resource": "resource",
    "clientName": "string",
    "tokenEndpointAuthMethod": "auth_method",
    "trustedIssuers": "list",
}
_GLOBAL_KEYS = {
    "servers",
    "mcpServers",
    "inputs",
    "tokenStorage",
    "clientMetadataDocumentUrl",
    "callbackHost",
    "allowInsecureLoopback",
    "logLevel",
}


@dataclass(frozen=True)
class OAuthConfig:
    """Per-server OAuth settings; every field optional."""

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] | None = None
    callback_port: int | None = None
    callback_host: str | None = None
    redirect_uri: str | None = None
    auth_server_metadata_url: str | None = None
    resource: str | Literal[False] | None = None
    client_name: str | None = None
    token_endpoint_auth_method: str | None = None
    trusted_issuers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerConfig:
    """One configured MCP server, validated."""

    name: str
    transport: TransportKind
    url: str | None = None
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    # Header values may be credentials: never printed.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    enabled: bool = True
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    allow_auto_reauthentication: bool = False
    oauth: OAuthConfig = field(default_factory=OAuthConfig)

    @property
    def has_authorization_header(self) -> bool:
        """A configured Authorization header bypasses OAuth entirely."""
        return any(k.lower() == "authorization" for k, _ in self.headers)


@dataclass(frozen=True)
class ConfigError:
    """A server entry that could not be used; its message names the field."""

    name: str
    message: str
    transport: TransportKind = "http"
    url: str | None = None


@dataclass(frozen=True)
class AuthPolicy:
    """The global settings that the OAuth of every server depends on."""

    callback_host: str = "127.0.0.1"
    allow_insecure_loopback: bool = False
    client_metadata_document_url: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything mcpls was configured with, merged from every source."""

    servers: Mapping[str, ServerConfig | ConfigError] = field(default_factory=dict)
    token_storage: TokenStorage = "auto"  # noqa: S105 - a storage mode, not a secret
    client_metadata_document_url: str | None = None
    callback_host: str = "127.0.0.1"
    allow_insecure_loopback: bool = False
    log_level: LogLevel = "info"
    warnings: tuple[str, ...] = ()

    @property
    def policy(self) -> AuthPolicy:
        """What a server's OAuth needs of the global settings."""
        return AuthPolicy(
            callback_host=self.callback_host,
            allow_insecure_loopback=self.allow_insecure_loopback,
            client_metadata_document_url=self.client_metadata_document_url,
        )


class _Invalid(Exception):
    """One field is wrong; the message says which and what was expected."""


def _describe(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _string(where: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _Invalid(f"{where}: expected a non-empty string, got {_describe(value)}")
    return value


def _bool(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"{where}: expected true or false, got {_describe(value)}")
    return value


def _strings(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(f"{where}: expected a list of strings, got {_describe(value)}")
    return tuple(value)


def _string_map(where: str, value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        # Values may be secrets (headers, env): never echo them.
        raise _Invalid(f"{where}: expected an object whose values are strings")
    return tuple(value.items())


def _http_url(where: str, value: object) -> str:
    url = _string(where, value)
    expected = f"{where}: expected an http:// or https:// URL, got {_describe(url)}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:  # an unbalanced "[" in the host, a bad port
        raise _Invalid(expected) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Invalid(expected)
    if BAD_HOST.search(parts.hostname):
        raise _Invalid(f"{where}: the host of {_describe(url)} is not a host name")
    return url


def _oauth(where: str, raw: object) -> OAuthConfig:
    if not isinstance(raw, dict):
        raise _Invalid(f"{where}: expected an object, got {_describe(raw)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        kind = _OAUTH_KEYS.get(key)
        here = f"{where}.{key}"
        if kind is None:
            known = ", ".join(sorted(_OAUTH_KEYS))
            raise _Invalid(f"{here}: unknown setting (known: {known})")
        if kind == "string":
            if key == "clientSecret" and not isinstance(value, str):
                raise _Invalid(f"{here}: expected a string")
            values[key] = _string(here, value)
            if key == "callbackHost" and value not in _LOOPBACK_HOSTS:
                raise _Invalid(
                    f"{here}: expected 127.0.0.1, localhost or ::1 (the sign-in callback "
                    f"listens on this machine only), got {_describe(value)}"
                )
        elif kind == "list":
            values[key] = _strings(here, value)
        elif kind == "port":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
                raise _Invalid(f"{here}: expected a port number 1-65535, got {_describe(value)}")
            values[key] = value
        elif kind == "resource":
            if value is not False and not isinstance(value, str):
                raise _Invalid(f"{here}: expected a URL string or false, got {_describe(value)}")
            values[key] = value
        elif kind == "auth_method":
            if value not in _AUTH_METHODS:
                raise _Invalid(
                    f"{here}: expected one of {', '.join(_AUTH_METHODS)}, got {_describe(value)}"
                )
            values[key] = value
    return OAuthConfig(
        client_id=values.get("clientId"),
        client_secret=values.get("clientSecret"),
        scopes=values.get("scopes"),
        callback_port=values.get("callbackPort"),
        callback_host=values.get("callbackHost"),
        redirect_uri=values.get("redirectUri"),
        auth_server_metadata_url=values.get("authServerMetadataUrl"),
        resource=values.get("resource"),
        client_name=values.get("clientName"),
        token_endpoint_auth_method=values.get("tokenEndpointAuthMethod"),
        trusted_issuers=values.get("trustedIssuers", ()),
    )


def parse_server(name: str, raw: object, *, where: str = "servers") -> ServerConfig | ConfigError:
    """Validate one server entry; any problem becomes a `ConfigError` naming the field."""
    here = f"{where}.{name}"
    url_hint = raw.get("url") if isinstance(raw, dict) else None
    fallback_url = url_hint if isinstance(url_hint, str) else None
    try:
        if not isinstance(raw, dict):
            raise _Invalid(f"{here}: expected an object, got {_describe(raw)}")
        unknown = sorted(set(raw) - _SERVER_KEYS)
        if unknown:
            raise _Invalid(
                f"{here}.{unknown[0]}: unknown setting (expected url or command, with "
                "args, env, headers, enabled, timeoutMs, allowAutoReauthentication, oauth)"
            )
        declared = raw.get("type")
        if declared == "sse":
            raise _Invalid(
                f'{here}.type: "sse" is the old HTTP+SSE transport, which mcpls does not speak; '
                'use the server\'s Streamable HTTP endpoint with type "http"'
            )
        if declared is not None and (
            not isinstance(declared, str) or declared not in _HTTP_TYPES | _STDIO_TYPES
        ):
            raise _Invalid(f'{here}.type: expected "http" or "stdio", got {_describe(declared)}')
        url_value = raw.get("url", raw.get("serverUrl"))
        has_url = url_value is not None
        has_command = raw.get("command") is not None
        if has_url and has_command:
            raise _Invalid(f"{here}: give either url (remote server) or command (local), not both")
        if not has_url and not has_command:
            raise _Invalid(f"{here}: missing url (remote server) or command (local server)")
        transport: TransportKind = "http" if has_url else "stdio"
        if declared in _STDIO_TYPES and transport == "http":
            raise _Invalid(f'{here}.type: "stdio" needs command, but url was given')
        if declared in _HTTP_TYPES and transport == "stdio":
            raise _Invalid(f'{here}.type: "{declared}" needs url, but command was given')
        timeout = raw.get("timeoutMs", DEFAULT_TIMEOUT_MS)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
            raise _Invalid(
                f"{here}.timeoutMs: expected a positive whole number of milliseconds, "
                f"got {_describe(timeout)}"
            )
        enabled = _bool(f"{here}.enabled", raw.get("enabled", True))
        if "disabled" in raw:
            enabled = enabled and not _bool(f"{here}.disabled", raw["disabled"])
        return ServerConfig(
            name=name,
            transport=transport,
            url=_http_url(f"{here}.url", url_value) if has_url else None,
            command=_string(f"{here}.command", raw["command"]) if has_command else None,
            args=_strings(f"{here}.args", raw.get("args", [])),
            env=_string_map(f"{here}.env", raw.get("env", {})),
            cwd=_string(f"{here}.cwd", raw["cwd"]) if "cwd" in raw else None,
            headers=_string_map(f"{here}.headers", raw.get("headers", {})),
            enabled=enabled,
            timeout_ms=timeout,
            allow_auto_reauthentication=_bool(
                f"{here}.allowAutoReauthentication", raw.get("allowAutoReauthentication", False)
            ),
            oauth=_oauth(f"{here}.oauth", raw.get("oauth", {})),
        )
    except _Invalid as exc:
        transport_guess: TransportKind = (
            "stdio" if isinstance(raw, dict) and "command" in raw else "http"
        )
        return ConfigError(name=name, message=str(exc), transport=transport_guess, url=fallback_url)


@dataclass
class _Layer:
    servers: dict[str, ServerConfig | ConfigError] = field(default_factory=dict)
    globals: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _parse_layer(raw: object, source: str) -> _Layer:
    layer = _Layer()
    if raw is None:
        return layer
    if not isinstance(raw, dict):
        layer.warnings.append(f'{source}: expected an object with "servers", ignored')
        return layer
    raw = _section(raw)
    assert isinstance(raw, dict)
    for key in sorted(set(raw) - _GLOBAL_KEYS):
        layer.warnings.append(f"{source}: unknown setting {key!r} ignored")
    for section in ("mcpServers", "servers"):
        entries = raw.get(section)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            layer.warnings.append(f"{source}: {section} must be an object of named servers")
            continue
        for name, entry in entries.items():
            layer.servers[name] = parse_server(name, entry, where=section)
    for key in (
        "tokenStorage",
        "clientMetadataDocumentUrl",
        "callbackHost",
        "allowInsecureLoopback",
        "logLevel",
    ):
        if key in raw:
            problem = _check_global(key, raw[key])
            if problem:
                layer.warnings.append(f"{source}: {problem}")
            else:
                layer.globals[key] = raw[key]
    return layer


def _check_global(key: str, value: object) -> str | None:
    if key == "tokenStorage" and value not in _TOKEN_STORAGE:
        return f"tokenStorage: expected one of {', '.join(_TOKEN_STORAGE)}, got {_describe(value)}"
    if key == "logLevel" and value not in _LOG_LEVELS:
        return f"logLevel: expected one of {', '.join(_LOG_LEVELS)}, got {_describe(value)}"
    if key == "allowInsecureLoopback" and not isinstance(value, bool):
        return f"allowInsecureLoopback: expected true or false, got {_describe(value)}"
    if key == "callbackHost" and value not in _LOOPBACK_HOSTS:
        return (
            "callbackHost: expected 127.0.0.1, localhost or ::1 (the sign-in callback listens "
            f"on this machine only), got {_describe(value)}"
        )
    if key == "clientMetadataDocumentUrl" and (
        not isinstance(value, str) or urlsplit(value).scheme != "https" or not urlsplit(value).path
    ):
        return (
            "clientMetadataDocumentUrl: expected an https:// URL with a path, "
            f"got {_describe(value)}"
        )
    return None


def _section(raw: object) -> object:
    if isinstance(raw, dict) and isinstance(raw.get("mcpls"), dict) and "servers" not in raw:
        return raw["mcpls"]
    return raw


def defines_servers(raw: object) -> bool:
    """Whether a settings object has a server list of its own (either shape)."""
    section = _section(raw)
    return isinstance(section, dict) and ("servers" in section or "mcpServers" in section)


def without_servers(raw: object) -> object:
    """The same settings with their server lists taken out (globals kept)."""
    section = _section(raw)
    if not isinstance(section, dict):
        return section
    return {k: v for k, v in section.items() if k not in ("servers", "mcpServers")}


def merge(*sources: tuple[str, object]) -> Settings:
    """Merge raw settings objects, earliest first; each is `(source name, raw object)`."""
    servers: dict[str, ServerConfig | ConfigError] = {}
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for source, raw in sources:
        layer = _parse_layer(raw, source)
        servers.update(layer.servers)
        values.update(layer.globals)
        warnings.extend(layer.warnings)
    return Settings(
        servers=servers,
        token_storage=values.get("tokenStorage", "auto"),
        client_metadata_document_url=values.get("clientMetadataDocumentUrl"),
        callback_host=values.get("callbackHost", "127.0.0.1"),
        allow_insecure_loopback=values.get("allowInsecureLoopback", False),
        log_level=values.get("logLevel", "info"),
        warnings=tuple(warnings),
    )


def load(
    user_file: tuple[str, object],
    initialization_options: object,
    editor_settings: object,
    *,
    warnings: tuple[str, ...] = (),
) -> Settings:
    """All three sources merged, later wins: the user file (`(path, parsed)`), the
    editor's `initializationOptions`, its `workspace/didChangeConfiguration` settings.

    Both of the last come from the editor's settings: when the newer defines servers, its
    list replaces the initial one whole, so a server removed in the editor is removed here.
    """
    initial = initialization_options
    if defines_servers(editor_settings):
        initial = without_servers(initial)
    merged = merge(
        user_file,
        ("initializationOptions", initial),
        ("workspace/didChangeConfiguration", editor_settings),
    )
    return replace(merged, warnings=(*warnings, *merged.warnings))


def user_settings_path() -> Path:
    """`<user config dir>/mcpls/servers.json`, where platformdirs puts it."""
    from platformdirs import user_config_path

    return user_config_path("mcpls", appauthor=False) / "servers.json"


def read_user_file(path: Path | None = None) -> tuple[object, list[str]]:
    """Read the user file; a missing file is empty, a broken one is a warning, never fatal."""
    target = path or user_settings_path()
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, []
    except OSError as exc:
        return None, [f"{target}: cannot be read ({exc.strerror}); using editor settings only"]
    except UnicodeDecodeError as exc:
        return None, [
            f"{target}: not UTF-8 (byte {exc.start}); save it as UTF-8, "
            "servers from it are not loaded"
        ]
    try:
        return json.loads(text), []
    except json.JSONDecodeError as exc:
        return None, [
            f"{target}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix the file, servers from it are not loaded"
        ]
    except JSON_ERRORS:  # nested deeper than the decoder goes, a number of 4,300 digits
        return None, [
            f"{target}: JSON nested too deep or a number too long; fix the file, "
            "servers from it are not loaded"
        ]
