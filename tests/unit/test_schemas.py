"""schemas/ is a valid, self-contained contract, and it accepts what mcpls sends and
rejects the mistakes an editor (or mcpls) would make."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from contract import (
    REGISTRY,
    SCHEMA_METHODS,
    SCHEMAS_DIR,
    ValidationError,
    validate_capabilities,
    validate_error_data,
    validate_message,
    validate_params,
    validate_result,
    validate_settings,
)
from mcpls import config

SCHEMA_FILES = sorted(SCHEMAS_DIR.rglob("*.schema.json"))
METHODS = {
    "mcp/status",
    "mcp/authenticate",
    "mcp/completeAuthentication",
    "mcp/logout",
    "mcp/enable",
    "mcp/disable",
    "mcp/restart",
    "mcp/listTools",
    "mcp/callTool",
    "mcp/didChangeStatus",
    "mcp/elicit",
}


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def object_schemas(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "properties" in node and node.get("type") == "object":
            yield node
        for value in node.values():
            yield from object_schemas(value)
    elif isinstance(node, list):
        for item in node:
            yield from object_schemas(item)


# -- the schema files themselves ---------------------------------------------------------


def test_every_file_the_brief_names_exists() -> None:
    names = {p.relative_to(SCHEMAS_DIR).as_posix() for p in SCHEMA_FILES}
    expected = {
        "server-status.schema.json",
        "settings.schema.json",
        "error-data.schema.json",
        "initialize-capabilities.schema.json",
        "cli/status.schema.json",
        "cli/doctor.schema.json",
        *(f"methods/{m.replace('/', '.')}.schema.json" for m in METHODS),
    }
    assert names == expected


def test_schema_methods_are_the_contract() -> None:
    assert SCHEMA_METHODS == METHODS


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_file_is_a_valid_2020_12_schema_with_id_title_and_descriptions(path: Path) -> None:
    schema = load(path)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    relative = path.relative_to(SCHEMAS_DIR).as_posix()
    assert schema["$id"] == f"https://mcpls.dev/schemas/{relative}"
    assert schema["title"]
    assert schema["description"]
    for obj in object_schemas(schema):
        for name, prop in obj["properties"].items():
            described = "description" in prop or "$ref" in prop or "const" in prop
            assert described, f"{relative}: property {name!r} has no description"


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_every_ref_resolves_inside_schemas(path: Path) -> None:
    schema = load(path)
    resolver = REGISTRY.resolver(base_uri=schema["$id"])
    found = list(refs(schema))
    for ref in found:
        resolved = resolver.lookup(ref)
        assert isinstance(resolved.contents, dict | bool), ref


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_file_matches_its_annotation(method: str) -> None:
    schema = load(SCHEMAS_DIR / "methods" / f"{method.replace('/', '.')}.schema.json")
    rpc = schema["x-jsonrpc"]
    assert rpc["method"] == method
    assert "params" in schema["$defs"]
    if rpc["kind"] == "request":
        assert "result" in schema["$defs"]
    else:
        assert "result" not in schema["$defs"]


def test_a_broken_ref_is_noticed() -> None:
    # The resolution check above must be able to fail.
    from referencing.exceptions import Unresolvable

    resolver = REGISTRY.resolver(
        base_uri="https://mcpls.dev/schemas/methods/mcp.status.schema.json"
    )
    with pytest.raises(Unresolvable):
        resolver.lookup("../server-status.schema.json#/$defs/NoSuchThing")
    with pytest.raises(Unresolvable):
        resolver.lookup("../no-such.schema.json")


# -- ServerStatus ----------------------------------------------------------------------

CONNECTED: dict[str, Any] = {
    "server": "github",
    "transport": "http",
    "url": "https://api.githubcopilot.com/mcp/",
    "state": "connected",
    "auth": {
        "authenticated": True,
        "expiresAt": 1_767_225_600,
        "scopes": ["repo", "read:org"],
        "issuer": "https://github.com/login/oauth",
    },
    "serverInfo": {"name": "github-mcp-server", "version": "0.24.1"},
    "protocolVersion": "2025-06-18",
    "toolCount": 42,
}
STEP_UP: dict[str, Any] = {
    "server": "github",
    "transport": "http",
    "url": "https://api.githubcopilot.com/mcp/",
    "state": "authRequired",
    "auth": {"authenticated": True, "scopes": ["repo"], "requiredScopes": ["repo", "admin:org"]},
    "error": {"kind": "authRequired", "message": "github needs more permissions: admin:org"},
}
STDIO_FAILED: dict[str, Any] = {
    "server": "files",
    "transport": "stdio",
    "state": "error",
    "error": {"kind": "connection", "message": "the process exited with status 1"},
}


@pytest.mark.parametrize("status", [CONNECTED, STEP_UP, STDIO_FAILED])
def test_realistic_statuses_pass(status: dict[str, Any]) -> None:
    validate_params("mcp/didChangeStatus", status)
    for method in ("mcp/authenticate", "mcp/enable", "mcp/disable", "mcp/restart", "mcp/logout"):
        validate_result(method, status)
    validate_result("mcp/status", {"servers": [CONNECTED, STDIO_FAILED]})


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"state": "online"}, "$.state"),
        ({"transport": "sse"}, "$.transport"),
        ({"server": ""}, "$.server"),
        ({"toolCount": -1}, "$.toolCount"),
        ({"tools": 3}, "$"),
        ({"auth": {"authenticated": True, "accessToken": "gho_secret"}}, "$.auth"),
        (
            {"auth": {"authenticated": True, "expiresAt": "2026-01-01T00:00:00Z"}},
            "$.auth.expiresAt",
        ),
        ({"error": {"kind": "timeout", "message": "slow"}}, "$.error.kind"),
        ({"error": {"kind": "connection"}}, "$.error"),
        ({"serverInfo": {"name": "x"}}, "$.serverInfo"),
    ],
)
def test_wrong_statuses_fail_where_they_are_wrong(change: dict[str, Any], where: str) -> None:
    status = {**CONNECTED, **change}
    with pytest.raises(ValidationError, match="mcp/didChangeStatus params") as caught:
        validate_params("mcp/didChangeStatus", status)
    assert caught.value.json_path == where


def test_status_without_server_fails() -> None:
    status = {k: v for k, v in CONNECTED.items() if k != "server"}
    with pytest.raises(ValidationError, match="'server' is a required property"):
        validate_result("mcp/enable", status)


# -- params --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("mcp/status", {}),
        ("mcp/status", {"server": "github"}),
        ("mcp/authenticate", {"server": "github"}),
        ("mcp/authenticate", {"server": "github", "workDoneToken": "d4f1"}),
        ("mcp/authenticate", {"server": "github", "workDoneToken": 7}),
        (
            "mcp/completeAuthentication",
            {
                "server": "github",
                "redirectUrl": "http://127.0.0.1:53682/callback?code=abc&state=xyz",
            },
        ),
        ("mcp/logout", {"server": "github"}),
        ("mcp/logout", {"server": "github", "forgetClient": True}),
        ("mcp/enable", {"server": "files"}),
        ("mcp/disable", {"server": "files"}),
        ("mcp/restart", {"server": "files"}),
        ("mcp/listTools", {"server": "github"}),
        ("mcp/callTool", {"server": "github", "name": "get_me"}),
        ("mcp/callTool", {"server": "github", "name": "search", "arguments": {"q": "mcp"}}),
        (
            "mcp/elicit",
            {
                "server": "deploy",
                "message": "Which environment?",
                "requestedSchema": {
                    "type": "object",
                    "properties": {"env": {"type": "string", "enum": ["staging", "prod"]}},
                    "required": ["env"],
                },
            },
        ),
    ],
)
def test_realistic_params_pass(method: str, params: dict[str, Any]) -> None:
    validate_params(method, params)


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("mcp/authenticate", {}, "'server' is a required property"),
        ("mcp/enable", {"server": ""}, "should be non-empty"),
        ("mcp/enable", {"server": 3}, "is not of type 'string'"),
        ("mcp/status", {"servers": "github"}, "'servers' was unexpected"),
        ("mcp/disable", {"server": "a", "workDoneToken": "t"}, "'workDoneToken' was unexpected"),
        ("mcp/authenticate", {"server": "a", "workDoneToken": 1.5}, "is not of type"),
        ("mcp/completeAuthentication", {"server": "github"}, "'redirectUrl' is a required"),
        ("mcp/logout", {"server": "github", "forgetClient": "yes"}, "is not of type 'boolean'"),
        ("mcp/callTool", {"server": "github", "tool": "get_me"}, "'name' is a required"),
        (
            "mcp/callTool",
            {"server": "g", "name": "x", "arguments": "{}"},
            "is not of type 'object'",
        ),
        (
            "mcp/elicit",
            {"server": "d", "message": "?", "requestedSchema": {}},
            "'type' is a required",
        ),
    ],
)
def test_wrong_params_fail_naming_the_method(method: str, params: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        validate_params(method, params)
    assert str(caught.value).startswith(f"{method} params: ")


def test_an_unknown_method_is_an_error() -> None:
    with pytest.raises(ValidationError, match="not a method of the contract"):
        validate_params("mcp/statuses", {})
    with pytest.raises(ValidationError, match="a notification has no result"):
        validate_result("mcp/didChangeStatus", {})


# -- results -------------------------------------------------------------------------------

TOOL = {
    "name": "get_me",
    "title": "Who am I",
    "description": "The signed-in user",
    "inputSchema": {"type": "object", "properties": {}},
    "annotations": {"readOnlyHint": True},
}


def test_tools_and_call_results_pass_verbatim() -> None:
    validate_result("mcp/listTools", {"tools": [TOOL]})
    validate_result("mcp/listTools", {"tools": []})
    validate_result(
        "mcp/callTool",
        {
            "content": [{"type": "text", "text": '{"login": "octocat"}'}],
            "structuredContent": {"login": "octocat"},
            "isError": False,
            "_meta": {"progressToken": 1},
        },
    )


@pytest.mark.parametrize(
    ("method", "result", "message"),
    [
        ("mcp/listTools", {"tools": [{"name": "x"}]}, "'inputSchema' is a required"),
        ("mcp/listTools", [TOOL], "is not of type 'object'"),
        ("mcp/callTool", {"isError": True}, "'content' is a required"),
        ("mcp/callTool", {"content": "done"}, "is not of type 'array'"),
        ("mcp/status", {"servers": [{"server": "a", "state": "connected"}]}, "'transport'"),
        ("mcp/elicit", {"action": "submit"}, "is not one of"),
        ("mcp/elicit", {"action": "decline", "content": {"env": "prod"}}, "should not be valid"),
    ],
)
def test_wrong_results_fail(method: str, result: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_result(method, result)


def test_elicit_answers_pass() -> None:
    validate_result("mcp/elicit", {"action": "accept", "content": {"env": "prod"}})
    validate_result("mcp/elicit", {"action": "cancel"})


# -- errors and capabilities -----------------------------------------------------------


def test_error_data() -> None:
    validate_error_data({"kind": "invalidParams"})
    validate_error_data({"kind": "authRequired", "server": "github", "state": "authRequired"})
    validate_error_data({"kind": "timeout", "server": "files"})
    with pytest.raises(ValidationError, match="'unknownServer' is not one of"):
        validate_error_data({"kind": "unknownServer"})
    with pytest.raises(ValidationError, match="'state'"):
        validate_error_data({"kind": "connection", "state": "offline"})
    with pytest.raises(ValidationError, match="'token' was unexpected"):
        validate_error_data({"kind": "authRequired", "token": "gho_x"})
    with pytest.raises(ValidationError, match="is not of type 'object'"):
        validate_error_data(None)


def test_capabilities() -> None:
    validate_capabilities("server", {"version": 1})
    validate_capabilities("client", {})
    validate_capabilities("client", {"elicitation": True})
    with pytest.raises(ValidationError):
        validate_capabilities("server", {"version": 2})
    with pytest.raises(ValidationError, match="'elicitations' was unexpected"):
        validate_capabilities("client", {"elicitations": True})


# -- settings ------------------------------------------------------------------------------

GOOD_SETTINGS: list[dict[str, Any]] = [
    {},
    {
        "servers": {
            "github": {
                "url": "https://api.githubcopilot.com/mcp/",
                "allowAutoReauthentication": True,
                "oauth": {
                    "clientId": "Iv1.8a61f9b3a7aba766",
                    "clientSecret": "s3cr3t",
                    "scopes": ["repo", "read:org"],
                    "callbackPort": 33418,
                    "tokenEndpointAuthMethod": "client_secret_post",
                    "resource": False,
                    "trustedIssuers": ["https://github.com/login/oauth"],
                },
            },
            "files": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me"],
                "env": {"DEBUG": "1"},
                "enabled": False,
                "timeoutMs": 5000,
            },
        },
        "tokenStorage": "keyring",
        "clientMetadataDocumentUrl": "https://mcpls.dev/client-metadata.json",
        "callbackHost": "localhost",
        "allowInsecureLoopback": False,
        "logLevel": "debug",
    },
    # VS Code mcp.json
    {
        "inputs": [],
        "servers": {
            "linear": {"type": "http", "url": "https://mcp.linear.app/mcp"},
            "local": {"type": "stdio", "command": "uvx", "args": ["mcp-server-git"]},
            "alias": {"type": "streamable-http", "url": "http://localhost:8000/mcp"},
        },
    },
    # Claude / Cursor
    {
        "mcpServers": {
            "notion": {
                "url": "https://mcp.notion.com/mcp",
                "headers": {"Authorization": "Bearer x"},
            },
            "windsurf": {"serverUrl": "https://mcp.example.com/mcp", "disabled": True},
        }
    },
]

BAD_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"servers": {"a": {"url": "https://x.example/mcp", "timeoutMS": 5}}}, "'timeoutMS' was"),
    ({"servers": {"a": {"url": "https://x.example", "oauth": {"clientSecret": 1}}}}, "string"),
    ({"servers": {"a": {"url": "https://x.example", "oauth": {"callbackPort": 70000}}}}, "65535"),
    ({"servers": {"a": {"url": "https://x.example", "oauth": {"callbackPort": 0}}}}, "minimum"),
    ({"servers": {"a": {"url": "https://x.example", "oauth": {"scope": ["a"]}}}}, "'scope' was"),
    ({"servers": {"a": {"url": "https://x.example", "oauth": {"resource": True}}}}, "True"),
    ({"servers": {"a": {"url": "ftp://x.example/mcp"}}}, "does not match"),
    ({"servers": {"a": {"url": "https://x.example", "command": "node"}}}, "oneOf|valid under"),
    ({"servers": {"a": {"args": ["x"]}}}, "valid under"),
    ({"servers": {"a": {"type": "stdio", "url": "https://x.example"}}}, "'command' is a required"),
    ({"servers": {"a": {"type": "http", "command": "node"}}}, "should not be valid"),
    ({"servers": {"a": {"type": "websocket", "url": "https://x.example"}}}, "is not one of"),
    ({"servers": {"a": {"url": "https://x.example", "timeoutMs": 0}}}, "minimum"),
    ({"servers": {"a": {"url": "https://x.example", "enabled": "false"}}}, "boolean"),
    ({"servers": {"a": {"command": "node", "env": {"PORT": 8080}}}}, "string"),
    ({"servers": {"": {"command": "node"}}}, "non-empty|too short"),
    ({"tokenStorage": "keychain"}, "is not one of"),
    ({"clientMetadataDocumentUrl": "http://mcpls.dev/cimd.json"}, "does not match"),
    ({"logLevel": "verbose"}, "is not one of"),
    ({"server": {}}, "'server' was unexpected"),
]


@pytest.mark.parametrize("settings", GOOD_SETTINGS)
def test_realistic_settings_pass(settings: dict[str, Any]) -> None:
    validate_settings(settings)


@pytest.mark.parametrize(("settings", "message"), BAD_SETTINGS)
def test_wrong_settings_fail(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_settings(settings)


@pytest.mark.parametrize(
    "settings",
    GOOD_SETTINGS
    + [s for s, _ in BAD_SETTINGS if set(s) == {"servers"} and "" not in s["servers"]],
)
def test_schema_and_config_agree_on_servers(settings: dict[str, Any]) -> None:
    """A server entry the schema rejects is one mcpls reports as a ConfigError, and back."""
    valid = True
    try:
        validate_settings(settings)
    except ValidationError:
        valid = False
    merged = config.merge(("test", settings))
    errors = [s for s in merged.servers.values() if isinstance(s, config.ConfigError)]
    assert (not errors) == valid, errors


def test_settings_keys_match_what_config_reads() -> None:
    schema = load(SCHEMAS_DIR / "settings.schema.json")
    assert set(schema["properties"]) == config._GLOBAL_KEYS
    assert set(schema["$defs"]["ServerConfig"]["properties"]) == config._SERVER_KEYS
    assert set(schema["$defs"]["OAuthConfig"]["properties"]) == set(config._OAUTH_KEYS)


def test_settings_defaults_match_config() -> None:
    schema = load(SCHEMAS_DIR / "settings.schema.json")
    server = schema["$defs"]["ServerConfig"]["properties"]
    assert server["timeoutMs"]["default"] == config.DEFAULT_TIMEOUT_MS
    assert server["enabled"]["default"] is True
    assert server["allowAutoReauthentication"]["default"] is False
    defaults = config.Settings()
    assert schema["properties"]["tokenStorage"]["default"] == defaults.token_storage
    assert schema["properties"]["callbackHost"]["default"] == defaults.callback_host
    assert schema["properties"]["logLevel"]["default"] == defaults.log_level
    assert schema["properties"]["allowInsecureLoopback"]["default"] is False


# -- raw messages --------------------------------------------------------------------------


def test_messages_are_checked_by_direction_and_kind() -> None:
    validate_message("to_server", {"jsonrpc": "2.0", "id": 1, "method": "mcp/status"})
    validate_message(
        "to_server", {"jsonrpc": "2.0", "id": 2, "method": "mcp/enable", "params": {"server": "a"}}
    )
    validate_message(
        "to_client", {"jsonrpc": "2.0", "method": "mcp/didChangeStatus", "params": STDIO_FAILED}
    )
    # Other methods and responses pass unchecked.
    validate_message("to_server", {"jsonrpc": "2.0", "id": 3, "method": "initialize"})
    validate_message("to_client", {"jsonrpc": "2.0", "id": 3, "result": {"anything": 1}})

    with pytest.raises(ValidationError, match="mcp/enable params"):
        validate_message("to_server", {"jsonrpc": "2.0", "id": 4, "method": "mcp/enable"})
    with pytest.raises(ValidationError, match="sent to_client"):
        validate_message(
            "to_client", {"jsonrpc": "2.0", "id": 5, "method": "mcp/status", "params": {}}
        )
    with pytest.raises(ValidationError, match="sent as a request"):
        validate_message(
            "to_client",
            {"jsonrpc": "2.0", "id": 6, "method": "mcp/didChangeStatus", "params": CONNECTED},
        )
    with pytest.raises(ValidationError, match="sent as a notification"):
        validate_message("to_server", {"jsonrpc": "2.0", "method": "mcp/status", "params": {}})
    with pytest.raises(ValidationError, match="not a method of the contract"):
        validate_message("to_server", {"jsonrpc": "2.0", "id": 7, "method": "mcp/listPrompts"})
