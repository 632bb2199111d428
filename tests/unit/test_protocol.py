"""What mcpls answers when a server asks something of it (no network involved)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mcpls.errors import RequestTimeout
from mcpls.protocol import McpSession, ServerHooks, _log_level
from mcpls.transport import Message


class Unused:
    """A transport that must not be used: these tests only exercise dispatch."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the transport was used ({name})")


def session(**hooks: Any) -> McpSession:
    return McpSession(Unused(), hooks=ServerHooks(**hooks), timeout_s=1)


async def test_ping_is_answered_with_an_empty_result() -> None:
    reply = await session().handle_server_message({"jsonrpc": "2.0", "id": 7, "method": "ping"})
    assert reply == {"jsonrpc": "2.0", "id": 7, "result": {}}


async def test_roots_come_from_the_editor() -> None:
    roots = [{"uri": "file:///work", "name": "work"}]
    reply = await session(roots=lambda: roots).handle_server_message(
        {"jsonrpc": "2.0", "id": "r", "method": "roots/list"}
    )
    assert reply == {"jsonrpc": "2.0", "id": "r", "result": {"roots": roots}}


@pytest.mark.parametrize("method", ["sampling/createMessage", "tasks/list", "unknown/thing"])
async def test_other_requests_get_method_not_found(method: str) -> None:
    reply = await session().handle_server_message({"jsonrpc": "2.0", "id": 1, "method": method})
    assert reply is not None
    assert reply["error"]["code"] == -32601
    assert method in reply["error"]["message"]


async def test_elicitation_declined_without_an_editor_that_supports_it() -> None:
    reply = await session().handle_server_message(
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "elicitation/create",
            "params": {"message": "Name?", "requestedSchema": {"type": "object"}},
        }
    )
    assert reply == {"jsonrpc": "2.0", "id": 2, "result": {"action": "decline"}}


async def test_elicitation_forwarded_to_the_editor() -> None:
    asked: list[tuple[str, dict[str, Any]]] = []

    async def elicit(message: str, schema: dict[str, Any]) -> dict[str, Any]:
        asked.append((message, schema))
        return {"action": "accept", "content": {"name": "Ada"}}

    reply = await session(elicit=elicit).handle_server_message(
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "elicitation/create",
            "params": {"message": "Name?", "requestedSchema": {"type": "object"}},
        }
    )
    assert asked == [("Name?", {"type": "object"})]
    assert reply == {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {"action": "accept", "content": {"name": "Ada"}},
    }


async def test_url_mode_elicitation_is_not_offered_as_a_form() -> None:
    async def elicit(message: str, schema: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("a URL elicitation is not a form")

    reply = await session(elicit=elicit).handle_server_message(
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "elicitation/create",
            "params": {"mode": "url", "message": "Go", "url": "https://x", "elicitationId": "e"},
        }
    )
    assert reply is not None
    assert reply["error"]["code"] == -32601


async def test_log_and_list_changed_notifications() -> None:
    logged: list[tuple[str, str]] = []
    changed: list[bool] = []
    s = session(
        log=lambda level, text: logged.append((level, text)),
        tools_changed=lambda: changed.append(True),
    )
    note: Message = {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "warning", "logger": "db", "data": "slow query"},
    }
    assert await s.handle_server_message(note) is None
    assert (
        await s.handle_server_message(
            {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
        )
        is None
    )
    assert logged == [("warning", "[db] slow query")]
    assert changed == [True]


@pytest.mark.parametrize(
    ("mcp", "editor"),
    [
        ("emergency", "error"),
        ("error", "error"),
        ("warning", "warning"),
        ("notice", "info"),
        ("info", "info"),
        ("debug", "debug"),
    ],
)
def test_syslog_levels_map_to_editor_levels(mcp: str, editor: str) -> None:
    assert _log_level(mcp) == editor


class HangingTransport:
    """Never answers a request; records what is sent."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def reset_session(self) -> None:
        """Nothing to forget."""

    async def request(self, message: Message) -> Message:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def test_a_re_initialize_is_never_cancelled_whatever_its_id() -> None:
    # Issue 6, also: `initialize` was recognised by request id 1, so a re-initialize after
    # an expired session (a later id) was cancelled when it timed out.
    transport = HangingTransport()
    s = McpSession(transport, hooks=ServerHooks(), timeout_s=0.05)  # type: ignore[arg-type]
    for _ in range(5):
        next(s._ids)  # earlier requests of this session
    with pytest.raises(RequestTimeout):
        await s.initialize()
    assert transport.sent == []
    with pytest.raises(RequestTimeout):
        await s.request("tools/list")
    assert [m["method"] for m in transport.sent] == ["notifications/cancelled"]
