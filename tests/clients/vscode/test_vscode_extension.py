"""The VS Code extension builds, type-checks, passes its own unit tests (node:test with a
fake editor and a fake mcpls), and contributes settings that match schemas/."""

from __future__ import annotations

import copy
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from clients.vscode.vscode_env import EXTENSION, REPO, Node

SCHEMAS = REPO / "schemas"


def test_types_and_settings_are_generated_from_the_schemas_and_type_check(node: Node) -> None:
    # `check`: scripts/generate.mjs --check (contract.generated.ts and the settings
    # contribution equal what schemas/ gives today), then tsc --noEmit.
    node.run("npm", "run", "check")


def test_unit_tests_of_the_extension_logic_pass(node: Node) -> None:
    output = node.run("npm", "test")
    # node:test's summary lines: "<sign> pass N", "<sign> fail N".
    passed = re.search(r"^\S pass (\d+)$", output, re.MULTILINE)
    failed = re.search(r"^\S fail (\d+)$", output, re.MULTILINE)
    assert passed, output
    assert failed, output
    assert int(failed.group(1)) == 0, output
    assert int(passed.group(1)) >= 20, output  # the suite ran, not an empty glob


def manifest(vsix: Path) -> dict[str, Any]:
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        assert "extension/dist/extension.js" in names, names
        assert not any("node_modules" in name for name in names), "bundled: no node_modules"
        result: dict[str, Any] = json.loads(archive.read("extension/package.json"))
        return result


def test_vsix_is_the_extension_mcpls_mcpls(vsix: Path) -> None:
    package = manifest(vsix)
    assert f"{package['publisher']}.{package['name']}" == "mcpls.mcpls"
    assert package["engines"]["vscode"] == "^1.90.0"
    assert package["activationEvents"] == ["onStartupFinished"]
    titles = {c["command"]: c["title"] for c in package["contributes"]["commands"]}
    assert titles["mcpls.authenticate"] == "MCP: Authenticate Server…"
    assert titles["mcpls.logout"] == "MCP: Log Out of Server…"
    settings = set(package["contributes"]["configuration"]["properties"])
    assert settings == {
        "mcpls.path",
        "mcpls.trace.server",
        "mcpls.servers",
        "mcpls.tokenStorage",
        "mcpls.allowInsecureLoopback",
        "mcpls.callbackHost",
        "mcpls.clientMetadataDocumentUrl",
        "mcpls.logLevel",
    }


def contributed(name: str) -> dict[str, Any]:
    package = json.loads((EXTENSION / "package.json").read_text())
    schema: dict[str, Any] = copy.deepcopy(package["contributes"]["configuration"]["properties"])[
        f"mcpls.{name}"
    ]
    for key in ("scope", "markdownDescription"):
        schema.pop(key, None)
    return schema


SERVERS_SAMPLES = [
    {"a": {"url": "https://mcp.example/mcp"}},
    {"a": {"command": "npx", "args": ["-y", "server"], "env": {"K": "v"}}},
    {
        "a": {
            "type": "http",
            "url": "https://x.example/",
            "oauth": {"clientId": "c", "scopes": ["r"]},
        }
    },
    {"a": {"url": "https://x.example/", "oauth": {"resource": False, "callbackPort": 8080}}},
    {"a": {"url": "https://x.example/", "command": "both"}},
    {"a": {"url": "ftp://x.example/"}},
    {"a": {"url": "https://x.example/", "oauth": {"callbackPort": 0}}},
    {"a": {"url": "https://x.example/", "typo": 1}},
    {"a": {"type": "stdio", "url": "https://x.example/"}},
    {"": {"url": "https://x.example/"}},
]


@pytest.mark.parametrize("sample", SERVERS_SAMPLES)
def test_vscode_validates_mcpls_servers_as_mcpls_does(sample: dict[str, Any]) -> None:
    """The contributed `mcpls.servers` accepts and rejects what settings.schema.json does."""
    settings = json.loads((SCHEMAS / "settings.schema.json").read_text())
    reference = jsonschema.Draft202012Validator(settings).is_valid({"servers": sample})
    ours = jsonschema.Draft202012Validator(contributed("servers")).is_valid(sample)
    assert ours == reference


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tokenStorage", "file"),
        ("tokenStorage", "vault"),
        ("logLevel", "debug"),
        ("logLevel", "trace"),
        ("allowInsecureLoopback", True),
        ("clientMetadataDocumentUrl", "https://mcpls.example/client.json"),
        ("clientMetadataDocumentUrl", "http://mcpls.example/client.json"),
        ("callbackHost", ""),
    ],
)
def test_vscode_validates_global_settings_as_mcpls_does(name: str, value: object) -> None:
    settings = json.loads((SCHEMAS / "settings.schema.json").read_text())
    reference = jsonschema.Draft202012Validator(settings).is_valid({name: value})
    ours = jsonschema.Draft202012Validator(contributed(name)).is_valid(value)
    assert ours == reference
