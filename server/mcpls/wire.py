"""JSON as it crosses a wire (HTTP bodies, SSE events, LSP frames).

Messages up to `LARGE_BYTES` are read and written with orjson, 2-7x faster than `json`;
larger ones with `json`, which holds one copy of a large string while it reads it where
orjson holds about twelve, and written in pieces so that no second copy of the whole
message is made (issue 9: a 10 MB tool result). Whichever library is used, the values
are what `json` reads and writes: orjson is skipped wherever it would differ.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import orjson

LARGE_BYTES = 1 << 20
# orjson reads an integer beyond 64 bits as a float (json keeps it exact), and writes
# NaN and ±Infinity (which only json reads) as null: such values go through json instead.
_EXACT_INT_LIMIT = float(2**63)
# Subclasses, dataclasses and datetimes are left to the caller's own serializer, as json
# would leave them, instead of being written orjson's way.
_DUMPS_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


def _orjson_writes_as_json(value: object) -> bool:
    """No float orjson and json disagree on (not finite, or an integer beyond 64 bits,
    which a JSON integer literal of that size becomes in orjson), and strings of at most
    `LARGE_BYTES` characters in all."""
    text = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            text += len(item)
        elif isinstance(item, dict):
            text += len(item)  # keys: counted as one character each, enough for a bound
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and (
            not math.isfinite(item) or (abs(item) >= _EXACT_INT_LIMIT and item.is_integer())
        ):
            return False
    return text <= LARGE_BYTES


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """Parse JSON as `json.loads` would; raises `json.JSONDecodeError` (or
    `UnicodeDecodeError` for bytes) on what is not JSON."""
    if isinstance(data, memoryview):
        data = bytes(data)
    if len(data) > LARGE_BYTES:
        return json.loads(data)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        # What orjson refuses and json may still read (NaN, a BOM, a lone surrogate),
        # or the error json raises.
        return json.loads(data)
    return value if _orjson_writes_as_json(value) else json.loads(data)


def dumps(value: object) -> bytes | None:
    """`value` as compact UTF-8 JSON by orjson, or None when `value` is large or only
    `json` writes it as `json` would (see `pieces`)."""
    if not _orjson_writes_as_json(value):
        return None
    try:
        return orjson.dumps(value, option=_DUMPS_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError: not JSON's own types
        return None


def pieces(value: object, default: Callable[[Any], Any]) -> Iterator[str]:
    """`value` as compact ASCII JSON by `json` (`default` for what JSON has no type for),
    in pieces: a large string is one piece, never joined to the rest. Iterate twice to
    learn the length first: each pass holds one piece at a time."""
    encoder = json.JSONEncoder(separators=(",", ":"), default=default, check_circular=False)
    return encoder.iterencode(value)
