"""JSON as it crosses a wire (HTTP bodies, SSE events, LSP frames).

Read with `json` (its C parser is as fast as orjson on MCP's many small objects, and holds
one copy of a large string where orjson holds about twelve); written to the editor with
orjson, 10x faster than `json` on a tool list, except what orjson would write differently
from `json` (NaN, integers beyond 64 bits, lone surrogates, other types) and large
messages, which `json` writes in pieces so that no second copy of the whole is made
(issue 9: a 10 MB tool result).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson

# A message with a string this long, or longer, is written by `json`, in pieces.
LARGE_BYTES = 1 << 20
# How many values `dumps` looks at for a large string before it takes the message for a
# small one: MCP's large results hold their text near the top (content[i].text); a list
# of thousands of small tools is not walked to its end (the walk would cost what orjson
# saves). A large string missed is still written right, only with orjson's memory.
_LOOK_FOR_LARGE = 64
_DUMPS_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


class NonFinite(float):
    """NaN or ±Infinity as read (`json` reads them, JSON has none): orjson, which would
    write them as null, refuses a float subclass, so they are written back as read."""


def _constant(name: str) -> float:
    return NonFinite(name.replace("Infinity", "inf"))


def loads(data: str | bytes | bytearray) -> Any:
    """`json.loads`; raises `json.JSONDecodeError` (or `UnicodeDecodeError`) as it does."""
    return json.loads(data, parse_constant=_constant)


def _has_large_string(value: object) -> bool:
    queue: list[Any] = [value]
    for item in queue:
        if isinstance(item, str):
            if len(item) >= LARGE_BYTES:
                return True
        elif isinstance(item, dict):
            queue.extend(item.values())
        elif isinstance(item, list):
            queue.extend(item)
        if len(queue) > _LOOK_FOR_LARGE:
            return False
    return False


def dumps(value: object) -> bytes | None:
    """`value` as compact UTF-8 JSON by orjson, or None when `json` is to write it (see
    `pieces`): large, or with what orjson writes differently or not at all."""
    if _has_large_string(value):
        return None
    try:
        return orjson.dumps(value, option=_DUMPS_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None


def pieces(value: object, default: Callable[[Any], Any]) -> Iterator[str]:
    """`value` as compact ASCII JSON by `json` (`default` for what JSON has no type for),
    in pieces: a large string is one piece, never joined to the rest. Iterate twice to
    learn the length first: each pass holds one piece at a time."""
    encoder = json.JSONEncoder(separators=(",", ":"), default=default, check_circular=False)
    return encoder.iterencode(value)
