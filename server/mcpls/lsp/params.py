"""Parameter checks for the `mcp/*` methods: each failure says what to send instead."""

from __future__ import annotations

from typing import Any

from mcpls.errors import quote


class InvalidParams(ValueError):
    """The editor sent params that do not fit the method (schemas/methods/)."""


def params_object(method: str, params: object, allowed: set[str]) -> dict[str, Any]:
    """The params as an object with only `allowed` keys."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams(f"{method}: params must be an object, got {type(params).__name__}")
    unknown = sorted(set(params) - allowed)
    if unknown:
        expected = ", ".join(sorted(allowed)) or "nothing"
        raise InvalidParams(
            f"{method}: unknown parameter {quote(unknown[0], 60)} (expected {expected})"
        )
    return params


def server_name(method: str, params: dict[str, Any], *, required: bool = True) -> str | None:
    """`params.server`: the name of a configured server."""
    value = params.get("server")
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidParams(
            f"{method}: params.server must be the name of a configured MCP server (a string)"
        )
    return value


def string_field(method: str, params: dict[str, Any], key: str) -> str:
    """A required non-empty string."""
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidParams(f"{method}: params.{key} must be a non-empty string")
    return value


def optional_object(method: str, params: dict[str, Any], key: str) -> dict[str, Any] | None:
    """An optional JSON object."""
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParams(f"{method}: params.{key} must be an object when given")
    return value


def optional_bool(method: str, params: dict[str, Any], key: str) -> bool:
    """An optional boolean, false when absent."""
    value = params.get(key, False)
    if not isinstance(value, bool):
        raise InvalidParams(f"{method}: params.{key} must be true or false when given")
    return value


def optional_choice(method: str, params: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    """An optional string out of `choices`; the first choice when absent."""
    value = params.get(key, choices[0])
    if value not in choices:
        expected = " or ".join(f'"{c}"' for c in choices)
        raise InvalidParams(f"{method}: params.{key} must be {expected} when given")
    assert isinstance(value, str)
    return value
