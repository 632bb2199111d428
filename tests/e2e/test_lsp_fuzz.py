"""Every `mcp/*` request fuzzed through a real `mcpls serve`: params built from schemas/
and then mutated. Each gets a result or a JSON-RPC error, within seconds, and mcpls keeps
serving; so do a 50 MB message and a flood of requests for servers that do not exist."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygls.exceptions import JsonRpcException

from contract import SCHEMAS_DIR
from lsp_client import error_data
from peers.managed import free_port

Factory = Callable[..., Any]
REQUESTS = sorted(
    schema["x-jsonrpc"]["method"]
    for path in (SCHEMAS_DIR / "methods").glob("mcp.*.schema.json")
    if (schema := json.loads(path.read_text()))["x-jsonrpc"]["kind"] == "request"
    and schema["x-jsonrpc"]["direction"] == "editorToMcpls"
)
PROPERTIES = {
    method: json.loads(
        (SCHEMAS_DIR / "methods" / f"{method.replace('/', '.')}.schema.json").read_text()
    )["$defs"]["params"].get("properties", {})
    for method in REQUESTS
}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KINDS = {"invalidParams", "authRequired", "connection", "protocol", "other", "timeout"}
# Names the editor may send: the configured one, unknown ones, odd ones.
NAMES = st.sampled_from(["svc", "nope", "", "svc ", "ü" * 3]) | st.text(max_size=30)


def value_for(name: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if name == "server":
        return NAMES
    kinds = schema.get("type")
    if kinds == "string":
        return st.text(max_size=40) | st.just("https://127.0.0.1/cb?code=x&state=y")
    if kinds == "boolean":
        return st.booleans()
    if kinds == "object":
        return st.dictionaries(st.text(max_size=8), JSON, max_size=4)
    return JSON


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, Any]:
    method = draw(st.sampled_from(REQUESTS))
    properties = PROPERTIES[method]
    params: dict[str, Any] = {
        name: draw(value_for(name, schema))
        for name, schema in properties.items()
        if draw(st.booleans())
    }
    mutation = draw(st.sampled_from(["none", "wrong type", "unknown key", "not an object"]))
    if mutation == "wrong type" and params:
        params[draw(st.sampled_from(sorted(params)))] = draw(JSON)
    elif mutation == "unknown key":
        params[draw(st.text(min_size=1, max_size=10))] = draw(JSON)
    elif mutation == "not an object":
        return method, draw(JSON.filter(lambda value: not isinstance(value, dict)))
    return method, params


@pytest.fixture
async def fuzzed_editor(editor_factory: Factory) -> Any:
    # One configured server that cannot be reached (nothing listens on its port): every
    # method can act on it and fail fast, none can wait on a browser or a network.
    url = f"http://127.0.0.1:{free_port()}/mcp"
    return await editor_factory(
        {"servers": {"svc": {"url": url}}, "allowInsecureLoopback": True, "tokenStorage": "file"}
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(request=requests())
async def test_every_request_gets_an_answer_and_mcpls_keeps_serving(
    fuzzed_editor: Any, request: tuple[str, Any]
) -> None:
    method, params = request
    error: JsonRpcException | None = None
    try:
        async with asyncio.timeout(15):
            await fuzzed_editor.raw_request(method, params)
    except JsonRpcException as raised:
        error = raised
    if error is not None:  # a typed error, never a bare one
        assert error_data(error)["kind"] in KINDS
    status = await asyncio.wait_for(fuzzed_editor.raw_request("mcp/status", {}), 10)
    assert isinstance(status["servers"], list)


async def test_a_50_mb_message_and_a_flood_for_unknown_servers(fuzzed_editor: Any) -> None:
    huge = {"server": "svc", "name": "echo", "arguments": {"text": "x" * 50_000_000}}
    with pytest.raises(JsonRpcException):
        await asyncio.wait_for(fuzzed_editor.raw_request("mcp/callTool", huge), 60)
    flood = [
        fuzzed_editor.raw_request("mcp/listTools", {"server": f"ghost-{n}"}) for n in range(500)
    ]
    answers = await asyncio.wait_for(asyncio.gather(*flood, return_exceptions=True), 60)
    assert all(isinstance(a, JsonRpcException) for a in answers)
    assert {error_data(a)["kind"] for a in answers if isinstance(a, JsonRpcException)} == {
        "invalidParams"
    }
    status = await asyncio.wait_for(fuzzed_editor.raw_request("mcp/status", {}), 10)
    assert [s["server"] for s in status["servers"]] == ["svc"]
