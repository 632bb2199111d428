"""The parsers that read what others send, property-tested: whatever comes in, each gives
a value or its own typed refusal, never another exception (issue 10, hostile input).
The SSE stream and the token response are also checked against a model of what they must
give; tests/fuzz/ runs the same parsers under atheris."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any
from urllib.parse import urlencode

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz.targets import Chunks
from mcpls import config
from mcpls.auth.discovery import DiscoveryError, check_metadata_endpoints, validate_resource
from mcpls.auth.flow import check_redirect, token_request, token_set
from mcpls.errors import McplsError
from mcpls.store.records import ClientRegistration, TokenSet
from mcpls.transport import is_response
from mcpls.transport.http import HttpTransport

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
SETTING_KEYS = st.sampled_from(
    ["url", "command", "args", "env", "headers", "enabled", "timeoutMs", "oauth", "type", "x"]
)
URLS = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda scheme, host, path: f"{scheme}://{host}{path}",
        st.sampled_from(["http", "https", "HTTPS", "javascript", "file", ""]),
        st.sampled_from(["127.0.0.1:9", "as.example", "[::1]", "a b", "", "x@y"]),
        st.text(max_size=12),
    ),
)


@settings(max_examples=300)
@given(st.dictionaries(SETTING_KEYS, JSON, max_size=6) | JSON)
def test_any_server_entry_is_a_server_or_a_config_error(raw: Any) -> None:
    parsed = config.parse_server("svc", raw)
    assert isinstance(parsed, config.ServerConfig | config.ConfigError)


@settings(max_examples=300)
@given(JSON)
def test_any_settings_object_merges_with_warnings_at_worst(raw: Any) -> None:
    merged = config.merge(("editor", raw))
    assert all(isinstance(w, str) for w in merged.warnings)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["state", "code", "iss", "error", "x"]), st.text()))
def test_any_callback_query_is_a_code_or_a_refusal(query: dict[str, str]) -> None:
    try:
        result = check_redirect(query, state="s", issuer="https://as.example", iss_supported=True)
    except McplsError:
        return
    assert result.code


@settings(max_examples=300)
@given(URLS, st.dictionaries(st.sampled_from(["token_endpoint", "jwks_uri", "x"]), URLS | JSON))
def test_any_metadata_passes_or_is_refused_as_insecure(issuer: str, metadata: Any) -> None:
    with contextlib.suppress(DiscoveryError):
        check_metadata_endpoints(issuer, metadata, allow_insecure_loopback=True)


@settings(max_examples=300)
@given(URLS, URLS)
def test_any_resource_is_this_server_or_a_mismatch(resource: str, server: str) -> None:
    with contextlib.suppress(DiscoveryError):
        assert validate_resource(resource, server) == resource


# -- the Streamable HTTP answer: an SSE stream (transport/http.py over httpx-sse) ----------
# The stream reaches `HttpTransport.request` through httpx.MockTransport: hypothesis runs
# hundreds of streams a test, each cut into chunks anywhere; tests/integration and
# tests/reliability run the same code against real servers.

ANSWER = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "x"}]}}
MESSAGES = st.one_of(
    st.just(ANSWER),
    st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": st.integers(2, 9), "result": JSON}),
    st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "method": st.just("notifications/x")}),
    st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "id": st.integers(1, 9), "method": st.just("ping")}
    ),
    JSON,  # anything else: not JSON-RPC
)
LINE_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=20)
EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "message": MESSAGES | LINE_TEXT,  # LINE_TEXT: data that is not JSON at all
            "event": st.sampled_from([None, "message", "ping"]),
            "id": st.none() | LINE_TEXT,
            "retry": st.none() | st.integers(0, 3),
            "indent": st.none() | st.just(1),  # a message over several `data:` lines
            "comment": st.booleans(),
        }
    ),
    max_size=6,
)


def sse_bytes(events: list[dict[str, Any]], newline: str) -> bytes:
    lines: list[str] = []
    for event in events:
        if event["comment"]:
            lines.append(": keep-alive")
        if event["event"] is not None:
            lines.append(f"event: {event['event']}")
        if event["id"] is not None:
            lines.append(f"id: {event['id']}")
        if event["retry"] is not None:
            lines.append(f"retry: {event['retry']}")
        message = event["message"]
        text = message if isinstance(message, str) else json.dumps(message, indent=event["indent"])
        lines += [f"data: {line}" for line in text.split("\n")]
        lines.append("")
    return (newline.join(lines) + newline).encode()


def expected_answer(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The model: the answer to id 1, if one comes before anything that is not JSON-RPC
    (an array is a batch, each of its items a message; an empty one says nothing)."""
    for event in events:
        data = event["message"]
        if event["event"] == "ping" or (isinstance(data, str) and not data.strip()):
            continue  # not a message event, or no data: skipped
        if isinstance(data, str):  # raw text: JSON only by chance ("1", "[]")
            try:
                data = json.loads(data)
            except ValueError:
                return None
        for message in data if isinstance(data, list) else [data]:
            if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                return None  # not JSON, or not JSON-RPC: the stream is refused here
            if is_response(message) and message["id"] == 1:
                return message
            if not is_response(message) and not isinstance(message.get("method"), str):
                return None
    return None


@settings(max_examples=200, deadline=None)
@given(EVENTS, st.sampled_from(["\n", "\r\n", "\r"]), st.integers(1, 64))
async def test_any_event_stream_gives_its_answer_or_a_typed_error(
    events: list[dict[str, Any]], newline: str, chunk: int
) -> None:
    body = sse_bytes(events, newline)

    async def serve(request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return httpx.Response(405)  # no resumption: the stream is all there is
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Chunks(body, chunk)
        )

    async def ignore(message: dict[str, Any]) -> None:
        return None

    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as client:
        transport = HttpTransport(
            "http://127.0.0.1:9/mcp", on_server_message=ignore,
            log_sink=lambda level, text: None, client=client,
        )  # fmt: skip
        expected = expected_answer(events)
        try:
            answer: dict[str, Any] | McplsError = await transport.request(
                {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
            )
        except McplsError as exc:
            answer = exc
        finally:
            await transport.close()
    if expected is None:
        assert isinstance(answer, McplsError)
    else:
        assert answer == expected


# -- token responses (auth/flow.py token_request + token_set) -----------------------------

TOKEN_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "access_token": st.none() | st.text(max_size=8) | st.integers(),
        "token_type": st.sampled_from(["Bearer", "bearer", "BEARER", "mac", "", 3]),
        "expires_in": st.none() | st.integers() | st.floats() | st.text(max_size=6),
        "refresh_token": st.none() | st.text(max_size=8) | st.integers(),
        "scope": st.none() | st.text(max_size=12) | st.lists(st.text(max_size=3)),
        "error": st.sampled_from(["invalid_grant", "invalid_client", "slow_down"]),
    },
)
REGISTRATION = ClientRegistration(
    issuer="https://as.example", client_id="c", client_secret=None,
    token_endpoint_auth_method="none", redirect_uris=(), source="dcr",
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(TOKEN_FIELDS, st.sampled_from([200, 400]), st.booleans())
async def test_any_token_response_is_a_usable_token_or_a_typed_error(
    fields: dict[str, Any], status: int, as_form: bool
) -> None:
    if as_form:  # RFC 6749 says JSON; some servers answer with a form (empty means absent)
        fields = {k: str(v) for k, v in fields.items() if v is not None and str(v)}
        body, content_type = urlencode(fields).encode(), "application/x-www-form-urlencoded"
    else:
        body, content_type = json.dumps(fields).encode(), "application/json"

    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"content-type": content_type}, content=body)

    access = fields.get("access_token")
    token_type = fields.get("token_type", "Bearer")
    usable = (
        status == 200
        and "error" not in fields
        and isinstance(access, str)
        and bool(access)
        and str(token_type).lower() == "bearer"
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as http:
        try:
            data = await token_request(
                http, "https://as.example/token", REGISTRATION, "refresh_token", refresh_token="r"
            )
            tokens = token_set(
                data, issuer="https://as.example", resource="https://mcp.example",
                requested_scopes=None, registration=REGISTRATION, redirect_uri=None,
            )  # fmt: skip
        except McplsError:
            assert not usable
            return
    assert usable
    assert tokens.access_token == access
    assert tokens.expires_at is None or math.isfinite(tokens.expires_at)
    assert TokenSet.from_json(json.loads(json.dumps(tokens.to_json()))) == tokens
