"""What the store holds, and how it is written: the records (tokens, client
registrations), their JSON codecs, the names of their entries, and the envelope that
wraps every entry in the keychain and in files alike. No I/O here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

RegistrationSource = Literal["preregistered", "cimd", "dcr"]

# Bumped only if the envelope changes incompatibly; the directory is never versioned, so an
# upgrade keeps everyone signed in.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TokenSet:
    """Tokens for one server (resource) from one authorization server (issuer)."""

    access_token: str = field(repr=False)
    token_type: str
    expires_at: float | None  # unix seconds, absolute so it survives a restart
    refresh_token: str | None = field(repr=False)
    scope: tuple[str, ...]
    issuer: str
    resource: str
    # When it was issued (unix seconds): a token's lifetime decides how early to refresh.
    # None in entries written before it was recorded.
    obtained_at: float | None = None
    # The client that obtained it, which alone may refresh it: several servers behind one
    # authorization server each have their own registration (their redirect URIs differ).
    # None in entries written before it was recorded.
    client_id: str | None = None
    redirect_uri: str | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict; it holds the secrets, so it goes only into the store."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "scope": list(self.scope),
            "issuer": self.issuer,
            "resource": self.resource,
            "obtained_at": self.obtained_at,
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
        }

    @classmethod
    def from_json(cls, data: object) -> TokenSet:
        """Parse `to_json` output; ValueError (naming the field, never its value) otherwise."""
        fields = as_object(data, "token set")
        return cls(
            access_token=_string(fields, "access_token"),
            token_type=_string(fields, "token_type"),
            expires_at=_optional_number(fields, "expires_at"),
            refresh_token=_optional_string(fields, "refresh_token"),
            scope=strings(fields, "scope"),
            issuer=_string(fields, "issuer"),
            resource=_string(fields, "resource"),
            obtained_at=_optional_number(fields, "obtained_at"),
            client_id=_optional_string(fields, "client_id"),
            redirect_uri=_optional_string(fields, "redirect_uri"),
        )


@dataclass(frozen=True)
class ClientRegistration:
    """How mcpls is known to one authorization server (issuer)."""

    issuer: str
    client_id: str
    client_secret: str | None = field(repr=False)
    token_endpoint_auth_method: str
    redirect_uris: tuple[str, ...]
    source: RegistrationSource
    client_secret_expires_at: float | None = None

    def secret_expired(self, now: float) -> bool:
        """RFC 7591 §3.2.1: `client_secret_expires_at` (0 or absent: never)."""
        return self.client_secret_expires_at is not None and self.client_secret_expires_at <= now

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict; it may hold the client secret, so it goes only into the store."""
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "redirect_uris": list(self.redirect_uris),
            "source": self.source,
            "client_secret_expires_at": self.client_secret_expires_at,
        }

    @classmethod
    def from_json(cls, data: object) -> ClientRegistration:
        """Parse `to_json` output; ValueError (naming the field, never its value) otherwise."""
        fields = as_object(data, "client registration")
        source = _string(fields, "source")
        if source not in get_args(RegistrationSource):
            raise ValueError("client registration: source is not preregistered, cimd or dcr")
        return cls(
            issuer=_string(fields, "issuer"),
            client_id=_string(fields, "client_id"),
            client_secret=_optional_string(fields, "client_secret"),
            token_endpoint_auth_method=_string(fields, "token_endpoint_auth_method"),
            redirect_uris=strings(fields, "redirect_uris"),
            source=cast(RegistrationSource, source),
            client_secret_expires_at=_optional_number(fields, "client_secret_expires_at"),
        )


# Parsing helpers. Their errors name the field and never echo a value: values are secrets.


def as_object(data: object, what: str) -> dict[str, object]:
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise ValueError(f"{what}: expected a JSON object")
    return cast(dict[str, object], data)


def _string(fields: dict[str, object], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a string")
    return value


def _optional_string(fields: dict[str, object], name: str) -> str | None:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name}: expected a string or null")
    return value


def _optional_number(fields: dict[str, object], name: str) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a number or null")
    return float(value)


def strings(fields: dict[str, object], name: str) -> tuple[str, ...]:
    value = fields.get(name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name}: expected a list of strings")
    return tuple(cast(list[str], value))


# -- names of entries ----------------------------------------------------------------------


def tokens_key(resource: str, issuer: str) -> str:
    """Tokens: per server (canonical resource) and per authorization server."""
    return f"tokens|{resource}|{issuer}"


def registration_key(issuer: str, redirect_uri: str) -> str:
    """A client registration: per authorization server and per redirect URI, so that two
    servers behind one authorization server never overwrite each other's client."""
    return f"client|{issuer}|{redirect_uri}"


def legacy_registration_key(issuer: str) -> str:
    """Where registrations were kept before they were keyed by redirect URI (read only)."""
    return f"client|{issuer}"


def secret_key(name: str) -> str:
    """A named secret, such as a configured client secret."""
    return f"secret|{name}"


def state_key(name: str) -> str:
    """A named record that is not secret (discovered metadata, bindings)."""
    return f"state|{name}"


def describe_key(key: str) -> str:
    """An entry in a person's words, for warnings (keys hold URLs and names, not secrets)."""
    kind, _, rest = key.partition("|")
    if kind == "tokens":
        resource, _, issuer = rest.partition("|")
        return f"the sign-in for {resource} (issuer {issuer})"
    if kind == "client":
        issuer, _, redirect = rest.partition("|")
        return f"the client registration with {issuer}" + (f" for {redirect}" if redirect else "")
    if kind == "state":
        return f"the stored record {rest!r}"
    return f"the stored secret {rest!r}"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def redact(text: str, secrets: tuple[str | None, ...]) -> str:
    """Belt and braces for third-party error text that reaches a log or an error."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


# -- the envelope ------------------------------------------------------------------------------


def envelope(kind: str, key: str, value: object) -> bytes:
    """What one entry holds, in the keychain and in a file alike."""
    document = {"version": SCHEMA_VERSION, "kind": kind, "key": key, "value": value}
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def open_envelope(data: bytes, key: str) -> object:
    """The entry's value; ValueError if the envelope is damaged or belongs to another key."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        # The decoder's message quotes the document, which may hold a secret.
        raise ValueError("not valid JSON (cut short or overwritten)") from None
    fields = as_object(document, "entry")
    version = fields.get("version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema version {version!r}, expected {SCHEMA_VERSION}")
    if fields.get("key") != key:
        raise ValueError("it belongs to a different entry")
    return fields.get("value")


def string_value(value: object) -> str:
    """A stored secret or state text."""
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value
