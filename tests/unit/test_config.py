"""Settings: three sources, three shapes, and errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcpls.config import ConfigError, ServerConfig, merge, parse_server, read_user_file


def test_mcpls_shape_http_and_stdio() -> None:
    settings = merge(
        (
            "initializationOptions",
            {
                "servers": {
                    "linear": {"url": "https://mcp.linear.app/mcp", "timeoutMs": 5000},
                    "local": {"command": "uvx", "args": ["srv"], "env": {"A": "1"}},
                }
            },
        )
    )
    linear = settings.servers["linear"]
    local = settings.servers["local"]
    assert isinstance(linear, ServerConfig)
    assert isinstance(local, ServerConfig)
    assert (linear.transport, linear.url, linear.timeout_ms) == (
        "http",
        "https://mcp.linear.app/mcp",
        5000,
    )
    assert (local.transport, local.command, local.args, local.env) == (
        "stdio",
        "uvx",
        ("srv",),
        (("A", "1"),),
    )


def test_claude_mcpservers_shape() -> None:
    settings = merge(
        ("file", {"mcpServers": {"notion": {"type": "streamable-http", "url": "https://x.io/mcp"}}})
    )
    notion = settings.servers["notion"]
    assert isinstance(notion, ServerConfig)
    assert notion.transport == "http"


def test_vscode_mcp_json_shape_with_type_and_inputs() -> None:
    settings = merge(
        (
            "file",
            {
                "inputs": [],
                "servers": {
                    "gh": {"type": "http", "url": "https://api.example.com/mcp/"},
                    "fs": {"type": "stdio", "command": "npx", "args": ["-y", "fs"]},
                },
            },
        )
    )
    assert [s.transport for s in settings.servers.values() if isinstance(s, ServerConfig)] == [
        "http",
        "stdio",
    ]
    assert settings.warnings == ()


def test_later_source_replaces_server_whole_and_globals_key_by_key() -> None:
    settings = merge(
        (
            "file",
            {
                "servers": {
                    "a": {"url": "https://a/mcp", "timeoutMs": 10},
                    "b": {"url": "https://b"},
                },
                "tokenStorage": "file",
                "logLevel": "debug",
            },
        ),
        ("initializationOptions", {"servers": {"a": {"url": "https://a2/mcp"}}}),
        ("didChangeConfiguration", {"mcpls": {"tokenStorage": "keyring"}}),
    )
    a = settings.servers["a"]
    assert isinstance(a, ServerConfig)
    assert (a.url, a.timeout_ms) == ("https://a2/mcp", 60_000)
    assert "b" in settings.servers
    assert (settings.token_storage, settings.log_level) == ("keyring", "debug")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"url": 3}, "servers.x.url: expected a non-empty string, got 3"),
        ({"url": "ftp://host/mcp"}, "servers.x.url: expected an http:// or https:// URL"),
        ({}, "servers.x: missing url (remote server) or command (local server)"),
        ({"url": "https://h", "command": "c"}, "not both"),
        ({"url": "https://h", "timeoutMs": "soon"}, "servers.x.timeoutMs: expected a positive"),
        ({"url": "https://h", "timeoutMs": 0}, "servers.x.timeoutMs"),
        ({"url": "https://h", "enabled": "yes"}, "servers.x.enabled: expected true or false"),
        ({"url": "https://h", "urll": "typo"}, "servers.x.urll: unknown setting"),
        ({"type": "stdio", "url": "https://h"}, 'servers.x.type: "stdio" needs command'),
        ({"type": "websocket", "url": "https://h"}, "servers.x.type: expected"),
        ({"command": "c", "args": "a b"}, "servers.x.args: expected a list of strings"),
        ({"url": "https://h", "oauth": {"callbackPort": 70000}}, "oauth.callbackPort"),
        ({"url": "https://h", "oauth": {"clientSecret": 5}}, "oauth.clientSecret: expected"),
        ({"url": "https://h", "oauth": {"clientID": "x"}}, "oauth.clientID: unknown setting"),
        (
            {"url": "https://h", "oauth": {"tokenEndpointAuthMethod": "private_key_jwt"}},
            "oauth.tokenEndpointAuthMethod: expected one of none",
        ),
        ("https://h", "servers.x: expected an object"),
        # Found by fuzzing (issue 10): urlsplit raised past the parser, or httpx refused later.
        ({"url": "http://[::1/mcp"}, "servers.x.url: expected an http:// or https:// URL"),
        ({"url": "http://h:port/mcp"}, "servers.x.url: expected an http:// or https:// URL"),
        ({"url": "http://a\x00b/mcp"}, "servers.x.url: the host of"),
    ],
)
def test_invalid_entry_names_field_and_expectation(entry: object, expected: str) -> None:
    result = parse_server("x", entry)
    assert isinstance(result, ConfigError)
    assert expected in result.message


def test_invalid_entry_does_not_stop_the_others() -> None:
    settings = merge(("x", {"servers": {"bad": {"url": 3}, "good": {"url": "https://g/mcp"}}}))
    assert isinstance(settings.servers["bad"], ConfigError)
    assert isinstance(settings.servers["good"], ServerConfig)


def test_secret_header_values_are_never_echoed_in_errors() -> None:
    result = parse_server("x", {"url": "https://h", "headers": {"Authorization": 123456789}})
    assert isinstance(result, ConfigError)
    assert "123456789" not in result.message
    config = parse_server("x", {"url": "https://h", "headers": {"Authorization": "Bearer s3cr3t"}})
    assert isinstance(config, ServerConfig)
    assert config.has_authorization_header
    assert "s3cr3t" not in repr(config)


def test_unknown_global_and_bad_global_are_warnings() -> None:
    settings = merge(("editor", {"servers": {}, "tokenStore": "file", "tokenStorage": "disk"}))
    assert settings.token_storage == "auto"
    assert any("'tokenStore'" in w for w in settings.warnings)
    assert any("tokenStorage: expected one of auto" in w for w in settings.warnings)


def test_user_file_missing_broken_and_valid(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    assert read_user_file(path) == (None, [])
    path.write_text('{"servers": {"a": ', encoding="utf-8")
    raw, warnings = read_user_file(path)
    assert raw is None
    assert "not valid JSON (line 1" in warnings[0]
    path.write_text(json.dumps({"servers": {"a": {"url": "https://a"}}}), encoding="utf-8")
    raw, warnings = read_user_file(path)
    assert warnings == []
    assert isinstance(merge(("file", raw)).servers["a"], ServerConfig)


def test_a_user_file_that_is_not_utf8_or_too_deep_is_a_warning(tmp_path: Path) -> None:
    # Found by fuzzing (issue 10): both raised out of read_user_file.
    path = tmp_path / "servers.json"
    path.write_bytes(b'{"servers": {"caf\xe9": {"url": "https://a"}}}')
    raw, warnings = read_user_file(path)
    assert raw is None
    assert "not UTF-8 (byte 17); save it as UTF-8" in warnings[0]
    path.write_text("[" * 100_000, encoding="utf-8")
    raw, warnings = read_user_file(path)
    assert raw is None
    assert "JSON nested too deep or a number too long" in warnings[0]


def test_old_sse_transport_is_refused_with_a_way_out() -> None:
    result = parse_server("x", {"type": "sse", "url": "https://h/sse"})
    assert isinstance(result, ConfigError)
    assert 'use the server\'s Streamable HTTP endpoint with type "http"' in result.message


def test_cwd_of_a_local_server() -> None:
    config = parse_server("x", {"command": "srv", "cwd": "/srv/project"})
    assert isinstance(config, ServerConfig)
    assert config.cwd == "/srv/project"


def test_disabled_alias_and_enabled_flag() -> None:
    off = parse_server("x", {"url": "https://h", "disabled": True})
    assert isinstance(off, ServerConfig)
    assert off.enabled is False
