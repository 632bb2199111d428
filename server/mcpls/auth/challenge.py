"""`WWW-Authenticate` challenges: RFC 9110 §11.6.1 (formerly RFC 7235 §4.1) syntax, the
Bearer scheme's parameters (RFC 6750 §3) and `resource_metadata` (RFC 9728 §5.1).

Sans-I/O: header values in, frozen values out. `parse_www_authenticate` follows the
grammar strictly and raises `MalformedChallenge`; `find_bearer_challenge`, which mcpls
acts on, falls back to keeping every parameter that parses when a server strays from the
grammar (an unquoted URL, `error_description=Missing token`), so one bad parameter does
not throw away `resource_metadata`. Strictness stays where security needs it: every URL
taken from a challenge is checked again before use (`discovery.check_endpoint`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "BearerChallenge",
    "Challenge",
    "MalformedChallenge",
    "find_bearer_challenge",
    "parse_www_authenticate",
]

# RFC 9110 §5.6.2: tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §11.2: token68, only when followed by the end of the list element.
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|\Z))")
# A parameter name and "=" with nothing after it but the end of the list element.
_EMPTY_PARAM = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*(?:,|\Z)")
# RFC 9110 §5.6.3: OWS / BWS.
_OWS = re.compile(r"[ \t]*")
# RFC 9110 §5.6.4: qdtext / quoted-pair, with obs-text taken as any non-ASCII character.
_QDTEXT = re.compile(r"[\t !#-\[\]-~\x80-\U0010ffff]+")
_QUOTED_PAIR_CHAR = re.compile(r"[\t \x21-\x7e\x80-\U0010ffff]")

# RFC 6749 §3.3: scope-token = 1*NQCHAR; NQCHAR = %x21 / %x23-5B / %x5D-7E.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")

# How much of a header an error message may quote: an excerpt and at most one name.
_EXCERPT = 40
_NAME = 24


class MalformedChallenge(ValueError):
    """A `WWW-Authenticate` value that does not follow RFC 9110 §11.6.1."""


@dataclass(frozen=True)
class Challenge:
    """One challenge: scheme and parameters lower-cased where the RFC says they are
    case-insensitive (RFC 9110 §11.1, §11.2); values exactly as sent, unescaped."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict, hash=False)
    token68: str | None = None

    def __post_init__(self) -> None:
        # Hold the invariants however the value was built; frozen, hence object.__setattr__.
        object.__setattr__(self, "scheme", self.scheme.lower())
        params = {key.lower(): value for key, value in self.params.items()}
        object.__setattr__(self, "params", MappingProxyType(params))


@dataclass(frozen=True)
class BearerChallenge:
    """The parameters of a `Bearer` challenge that an OAuth client acts on."""

    resource_metadata: str | None  # RFC 9728 §5.1
    scope: tuple[str, ...]  # RFC 6750 §3: space-delimited, order kept, duplicates dropped
    error: str | None  # RFC 6750 §3.1: invalid_request / invalid_token / insufficient_scope
    error_description: str | None

    @classmethod
    def from_challenge(cls, c: Challenge) -> BearerChallenge:
        """Read the Bearer parameters of `c`; an empty value counts as absent."""
        if c.scheme != "bearer":
            raise ValueError(f"not a Bearer challenge: {c.scheme!r}")

        def param(name: str) -> str | None:
            return c.params.get(name) or None

        # RFC 6750 §3: scope-token *( SP scope-token ); any whitespace is tolerated. A
        # token with a character RFC 6749 §3.3 does not allow (a control, a C1 or other
        # non-ASCII character, a quote) is dropped: it could only be an injection, and it
        # would reach the status, messages and the authorization URL.
        scope = tuple(
            dict.fromkeys(
                token
                for token in (c.params.get("scope") or "").split()
                if _SCOPE_TOKEN.fullmatch(token)
            )
        )
        return cls(
            resource_metadata=param("resource_metadata"),
            scope=scope,
            error=param("error"),
            error_description=param("error_description"),
        )

    @property
    def insufficient_scope(self) -> bool:
        """True for a step-up challenge (RFC 6750 §3.1, MCP "Scope Challenge Handling")."""
        return self.error == "insufficient_scope"


def parse_www_authenticate(values: Sequence[str] | str) -> list[Challenge]:
    """Every challenge in one or several `WWW-Authenticate` values, in order.

    Several field lines mean the same as one line joined with commas (RFC 9110 §5.3).
    Raises `MalformedChallenge` when the text does not follow the grammar.
    """
    text = values if isinstance(values, str) else ", ".join(values)
    return _Parser(text).challenges()


def find_bearer_challenge(values: Sequence[str] | str) -> BearerChallenge | None:
    """The first `Bearer` challenge (scheme compared case-insensitively), or None.

    A value that does not follow the grammar is read leniently (`_lenient_bearer`)."""
    text = values if isinstance(values, str) else ", ".join(values)
    try:
        challenges = parse_www_authenticate(text)
    except MalformedChallenge:
        return _lenient_bearer(text)
    for challenge in challenges:
        if challenge.scheme == "bearer":
            return BearerChallenge.from_challenge(challenge)
    return None


# Lenient reading: `name = value` where value is a quoted string or anything up to a comma.
_LOOSE_PARAM = re.compile(
    r"""([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"?|[^,]*)"""
)
_BEARER_START = re.compile(r"(?i)(?:^|,)[ \t]*bearer(?=[ \t,]|$)")
# Between two parameters, a token then a space starts the next challenge ("…, Basic realm=").
_NEXT_SCHEME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]+\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _lenient_bearer(text: str) -> BearerChallenge | None:
    """Every `name=value` of the first Bearer challenge that can be read; a value with a
    control character is dropped (it could only be an injection), the first of two wins."""
    start = _BEARER_START.search(text)
    if start is None:
        return None
    params: dict[str, str] = {}
    position = start.end()
    for match in _LOOSE_PARAM.finditer(text, position):
        between = text[position : match.start()].strip(" \t,")
        if between and _NEXT_SCHEME.search(text[position : match.start()].lstrip(" \t,")):
            break
        position = match.end()
        name, raw = match.group(1).lower(), match.group(2).strip()
        if raw.startswith('"'):
            raw = re.sub(
                r"\\(.)", r"\1", raw[1:-1] if raw.endswith('"') and len(raw) > 1 else raw[1:]
            )
        if _CONTROL.search(raw) or name in params:
            continue
        params[name] = raw
    return BearerChallenge.from_challenge(Challenge("bearer", params))


class _Parser:
    """A cursor over one combined header value; one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def challenges(self) -> list[Challenge]:
        # RFC 9110 §5.6.1: `1#challenge`, where empty list elements are allowed.
        found: list[Challenge] = []
        while True:
            self._skip_empty_elements()
            if self._at_end():
                return found
            found.append(self._challenge())

    def _challenge(self) -> Challenge:
        # challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]  (RFC 9110 §11.2)
        scheme = self._match(_TOKEN)
        if scheme is None:
            raise self._error("expected an authentication scheme")
        spaces = self._match(_OWS)
        if self._at_end() or self._peek() == ",":
            return Challenge(scheme)
        if self._peek() == "=":
            self.pos -= len(scheme) + len(spaces or "")
            raise self._error(f"the parameter {_short(scheme)} comes before any scheme")
        if not spaces:
            raise self._error(f"expected a space after the scheme {_short(scheme)}")
        if self._auth_param_ahead():
            return Challenge(scheme, self._auth_params())
        token68 = self._match(_TOKEN68)
        if token68 is None:
            raise self._error(f"expected parameters or a token68 after the scheme {_short(scheme)}")
        return Challenge(scheme, token68=token68)

    def _auth_params(self) -> dict[str, str]:
        # #auth-param, ending where a list element starts that is not `name =`: the next
        # challenge (RFC 9110 §11.2 allows both in one comma-separated list).
        params: dict[str, str] = {}
        while True:
            name, value = self._auth_param()
            key = name.lower()
            if key in params:
                # RFC 9110 §11.2: "Each parameter name MUST only occur once per challenge."
                raise self._error(f"the parameter {_short(name)} appears twice in one challenge")
            params[key] = value
            self._match(_OWS)
            if self._at_end():
                return params
            if self._peek() != ",":
                raise self._error(f"expected a comma after the parameter {_short(name)}")
            self._skip_empty_elements()
            empty = _EMPTY_PARAM.match(self.text, self.pos)
            if empty is not None:
                raise self._error(f"the parameter {_short(empty.group(1))} has no value")
            if self._at_end() or not self._auth_param_ahead():
                return params

    def _auth_param(self) -> tuple[str, str]:
        # auth-param = token BWS "=" BWS ( token / quoted-string )
        name = self._match(_TOKEN)
        assert name is not None  # _auth_param_ahead checked it
        self._match(_OWS)
        self.pos += 1  # the "="
        self._match(_OWS)
        if self._peek() == '"':
            return name, self._quoted_string(name)
        value = self._match(_TOKEN)
        if value is None:
            raise self._error(f"the parameter {_short(name)} has no value")
        return name, value

    def _quoted_string(self, name: str) -> str:
        # quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE  (RFC 9110 §5.6.4)
        start = self.pos
        self.pos += 1
        parts: list[str] = []
        while not self._at_end():
            char = self._peek()
            if char == '"':
                self.pos += 1
                return "".join(parts)
            if char == "\\":
                self.pos += 1
                if self._at_end() or not _QUOTED_PAIR_CHAR.fullmatch(self._peek()):
                    raise self._error(f"a backslash in the value of {_short(name)} escapes nothing")
                parts.append(self._peek())
                self.pos += 1
                continue
            text = self._match(_QDTEXT)
            if text is None:
                raise self._error(f"a control character in the value of {_short(name)}")
            parts.append(text)
        self.pos = start
        raise self._error(f"the quoted value of {_short(name)} is not terminated")

    def _auth_param_ahead(self) -> bool:
        """Whether `token BWS "="` starts here, and not a token68 ending in "="."""
        match = _TOKEN.match(self.text, self.pos)
        if match is None:
            return False
        after = _OWS.match(self.text, match.end())
        assert after is not None
        rest = after.end()
        if rest >= len(self.text) or self.text[rest] != "=":
            return False
        # A token68 such as `abc==` or `abc=` ends the element right after its "=" run.
        return _TOKEN68.match(self.text, self.pos) is None

    def _skip_empty_elements(self) -> None:
        while True:
            self._match(_OWS)
            if self._peek() != ",":
                return
            self.pos += 1

    def _match(self, pattern: re.Pattern[str]) -> str | None:
        match = pattern.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group()

    def _peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def _at_end(self) -> bool:
        return self.pos >= len(self.text)

    def _error(self, what: str) -> MalformedChallenge:
        excerpt = _printable(self.text[self.pos : self.pos + _EXCERPT])
        where = f'near "{excerpt}"' if excerpt else "at the end"
        return MalformedChallenge(
            f"malformed WWW-Authenticate header: {what} (character {self.pos}, {where})"
        )


def _short(name: str) -> str:
    """A scheme or parameter name quoted for a message, cut to a few dozen characters."""
    return repr(name if len(name) <= _NAME else name[: _NAME - 1] + "…")


def _printable(text: str) -> str:
    """`text` with control and other unprintable characters shown as "?"."""
    return "".join(char if char.isprintable() else "?" for char in text)
