"""Check JSON-RPC traffic against schemas/, the source of truth of the mcpls contract.

Every `*.schema.json` under schemas/ is loaded once into one `referencing.Registry` keyed
by `$id`; `$ref`s resolve inside it and nothing is ever fetched. A method's schema is
`schemas/methods/<method with "/" as ".">.schema.json`, with `$defs.params` and (for
requests) `$defs.result`; its `x-jsonrpc` annotation says who sends it and whether it is
a request or a notification.

Every check raises `jsonschema.ValidationError` naming the method and the failing path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "REGISTRY",
    "SCHEMAS_DIR",
    "SCHEMA_METHODS",
    "ValidationError",
    "validate_capabilities",
    "validate_cli_output",
    "validate_error_data",
    "validate_message",
    "validate_params",
    "validate_result",
    "validate_settings",
]

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
BASE_URI = "https://mcpls.dev/schemas/"

Direction = Literal["to_server", "to_client"]
# `x-jsonrpc.direction` in the schemas, in the words of `validate_message`.
_DIRECTIONS: dict[str, Direction] = {"editorToMcpls": "to_server", "mcplsToEditor": "to_client"}


@dataclass(frozen=True)
class _Method:
    name: str
    uri: str
    kind: Literal["request", "notification"]
    direction: Direction


def _load() -> tuple[Registry[Any], dict[str, _Method]]:
    resources: list[tuple[str, Resource[Any]]] = []
    methods: dict[str, _Method] = {}
    for path in sorted(SCHEMAS_DIR.rglob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        uri = contents["$id"]
        expected = BASE_URI + path.relative_to(SCHEMAS_DIR).as_posix()
        if uri != expected:
            raise ValueError(f"{path}: $id is {uri!r}, expected {expected!r}")
        resources.append((uri, Resource.from_contents(contents, default_specification=DRAFT202012)))
        rpc = contents.get("x-jsonrpc")
        if rpc is not None:
            methods[rpc["method"]] = _Method(
                name=rpc["method"],
                uri=uri,
                kind=rpc["kind"],
                direction=_DIRECTIONS[rpc["direction"]],
            )
    return Registry().with_resources(resources).crawl(), methods


REGISTRY, _METHODS = _load()

SCHEMA_METHODS: frozenset[str] = frozenset(_METHODS)
"""Every custom method and notification the contract defines (`mcp/...`)."""

_validators: dict[str, Draft202012Validator] = {}


def _validator(ref: str) -> Draft202012Validator:
    """A validator for the schema at absolute `ref` (a URI, maybe with a fragment)."""
    validator = _validators.get(ref)
    if validator is None:
        validator = Draft202012Validator({"$ref": ref}, registry=REGISTRY)
        _validators[ref] = validator
    return validator


def _check(ref: str, instance: object, what: str) -> None:
    errors = list(_validator(ref).iter_errors(instance))
    if not errors:
        return
    best = best_match(errors)
    assert best is not None
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise ValidationError(
        f"{what}: {best.message} at {best.json_path}{more}",
        validator=best.validator,
        path=best.path,
        context=best.context,
        validator_value=best.validator_value,
        instance=best.instance,
        schema=best.schema,
        schema_path=best.schema_path,
        cause=best.cause,
    )


def _method(method: str) -> _Method:
    found = _METHODS.get(method)
    if found is None:
        known = ", ".join(sorted(SCHEMA_METHODS))
        raise ValidationError(f"{method}: not a method of the contract (known: {known})")
    return found


def validate_params(method: str, params: object) -> None:
    """Check the params of a request or notification of `method` (e.g. `mcp/status`)."""
    _check(_method(method).uri + "#/$defs/params", params, f"{method} params")


def validate_result(method: str, result: object) -> None:
    """Check the result of a successful `method` request."""
    spec = _method(method)
    if spec.kind != "request":
        raise ValidationError(f"{method}: a notification has no result")
    _check(spec.uri + "#/$defs/result", result, f"{method} result")


def validate_error_data(data: object) -> None:
    """Check the `data` of a JSON-RPC error mcpls returned for an `mcp/*` request."""
    _check(BASE_URI + "error-data.schema.json", data, "error data")


def validate_settings(settings: object) -> None:
    """Check a settings object (user file, `initializationOptions`, section `mcpls`)."""
    _check(BASE_URI + "settings.schema.json", settings, "settings")


def validate_capabilities(side: Literal["server", "client"], value: object) -> None:
    """Check `capabilities.experimental.mcpls`: mcpls's (`server`) or the editor's."""
    _check(
        BASE_URI + f"initialize-capabilities.schema.json#/$defs/{side}",
        value,
        f"experimental.mcpls ({side})",
    )


def validate_cli_output(command: Literal["status", "doctor"], document: object) -> None:
    """Check what `mcpls <command> --json` printed (schemas/cli/<command>.schema.json)."""
    _check(BASE_URI + f"cli/{command}.schema.json", document, f"mcpls {command} --json")


def validate_message(direction: Direction, message: Mapping[str, Any]) -> None:
    """Check one raw JSON-RPC message travelling `direction` (`to_server`: editor → mcpls).

    Requests and notifications of `mcp/*` methods are checked: the method must be one of
    the contract, sent in its direction, as a request (with `id`) or notification (without)
    as the contract says, with valid params; absent params count as `{}`, as mcpls reads
    them. Other methods (the LSP ones) pass unchecked. Responses carry no method, so they
    pass too: check them with `validate_result` / `validate_error_data` and the method of
    the request they answer.
    """
    method = message.get("method")
    if not isinstance(method, str) or not method.startswith("mcp/"):
        return
    spec = _method(method)
    if spec.direction != direction:
        raise ValidationError(
            f"{method}: sent {direction}, but the contract has it {spec.direction}"
        )
    is_request = "id" in message
    if is_request != (spec.kind == "request"):
        sent = "request" if is_request else "notification"
        raise ValidationError(f"{method}: sent as a {sent}, but the contract has a {spec.kind}")
    validate_params(method, message.get("params", {}))
