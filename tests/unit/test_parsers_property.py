"""The parsers that read what others send, property-tested: whatever comes in, each gives
a value or its own typed refusal, never another exception (issue 10, hostile input)."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mcpls import config
from mcpls.auth.discovery import DiscoveryError, check_metadata_endpoints, validate_resource
from mcpls.auth.flow import check_redirect
from mcpls.errors import McplsError

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
