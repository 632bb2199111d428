"""Every peer fixture works: real MCP traffic over plain httpx and pipes, no mcpls code.

If one of these fails, the tests of mcpls that use the same peer cannot be trusted.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from peers.managed import HttpPeer, listeners

PROTOCOL_VERSION = "2025-11-25"
ACCEPT = "application/json, text/event-stream"
INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {"roots": {"listChanged": True}, "elicitation": {"form": {}}},
        "clientInfo": {"name": "peers-smoke-test", "version": "0"},
    },
}

Message = dict[str, Any]
ServerRequestHandler = Callable[[Message], Awaitable[Message]]


def sse_messages(body: str) -> list[Message]:
    """The JSON-RPC messages in a complete SSE body (events without data are skipped)."""
    messages = []
    for event in body.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip() for line in event.split("\n") if line.startswith("data:")]
        if data and "".join(data):
            messages.append(json.loads("\n".join(data)))
    return messages


class McpHttpClient:
    """Just enough of a Streamable HTTP client to drive a peer, written out in the open."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url
        self.session_id: str | None = None
        self.next_id = 100
        self.notifications: list[Message] = []
        self.server_requests: list[Message] = []

    def headers(self) -> dict[str, str]:
        headers = {"Accept": ACCEPT, "MCP-Protocol-Version": PROTOCOL_VERSION}
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
        return headers

    async def initialize(self) -> Message:
        response = await self.http.post(self.url, json=INITIALIZE, headers={"Accept": ACCEPT})
        assert response.status_code == 200, response.text
        self.session_id = response.headers.get("mcp-session-id")
        answer = response_messages(response)[-1]
        assert answer["id"] == 1, answer
        assert answer["result"]["protocolVersion"] == PROTOCOL_VERSION
        assert answer["result"]["serverInfo"]["name"]
        initialized = await self.http.post(
            self.url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=self.headers(),
        )
        assert initialized.status_code == 202, initialized.text
        result: Message = answer["result"]
        return result

    async def request(
        self,
        method: str,
        params: Message | None = None,
        answer: ServerRequestHandler | None = None,
        request_id: int | None = None,
    ) -> Message:
        """Send `method`; answer the server's requests on the way; return the response."""
        if request_id is None:
            self.next_id += 1
            request_id = self.next_id
        message: Message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        async with self.http.stream(
            "POST", self.url, json=message, headers=self.headers()
        ) as response:
            assert response.status_code == 200, (await response.aread()).decode()
            if response.headers["content-type"].startswith("application/json"):
                body: Message = json.loads(await response.aread())
                return body
            assert response.headers["content-type"].startswith("text/event-stream")
            data: list[str] = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                    continue
                if line or not data:
                    continue
                text, data = "\n".join(data), []
                if not text:  # a priming event (id, empty data) to resume from
                    continue
                incoming: Message = json.loads(text)
                if incoming.get("id") == request_id and "method" not in incoming:
                    return incoming
                if "method" in incoming and "id" in incoming:
                    self.server_requests.append(incoming)
                    assert answer is not None, f"unexpected server request {incoming}"
                    reply = await answer(incoming)
                    posted = await self.http.post(
                        self.url,
                        json={"jsonrpc": "2.0", "id": incoming["id"], **reply},
                        headers=self.headers(),
                    )
                    assert posted.status_code == 202, posted.text
                else:
                    self.notifications.append(incoming)
        raise AssertionError(f"the stream for {method} ended without a response")

    async def call(self, tool: str, answer: ServerRequestHandler | None = None, **args: Any) -> str:
        """Call `tool`; its first text content."""
        response = await self.request(
            "tools/call", {"name": tool, "arguments": args}, answer=answer
        )
        assert "result" in response, response
        text: str = response["result"]["content"][0]["text"]
        return text

    async def notify(self, method: str, params: Message) -> None:
        posted = await self.http.post(
            self.url,
            json={"jsonrpc": "2.0", "method": method, "params": params},
            headers=self.headers(),
        )
        assert posted.status_code == 202, posted.text

    async def tool_names(self) -> set[str]:
        response = await self.request("tools/list")
        return {tool["name"] for tool in response["result"]["tools"]}


def response_messages(response: httpx.Response) -> list[Message]:
    content_type = response.headers["content-type"]
    if content_type.startswith("application/json"):
        return [response.json()]
    assert content_type.startswith("text/event-stream"), content_type
    return sse_messages(response.text)


def listening_addresses(port: int) -> set[str]:
    addresses = {address for address, _ in listeners(port)}
    assert addresses, f"nothing listens on {port} (or no /proc/net here)"
    return addresses


LOOPBACK_ONLY = {"0100007F"}  # 127.0.0.1, little-endian hex as /proc shows it


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def test_python_server_stateful_tools_and_restart_expires_the_session(
    http: httpx.AsyncClient, py_mcp_server: HttpPeer
) -> None:
    assert py_mcp_server.url.startswith("http://127.0.0.1:")
    assert listening_addresses(py_mcp_server.port) == LOOPBACK_ONLY
    client = McpHttpClient(http, py_mcp_server.url)
    capabilities = (await client.initialize())["capabilities"]
    assert capabilities["tools"]["listChanged"] is True
    assert client.session_id
    names = await client.tool_names()
    expected = {"echo", "add", "big", "slow", "cancelled_count", "running_count", "ask_name"}
    expected |= {"add_tool", "log_something", "list_roots", "ping_client", "sample"}
    assert expected <= names
    assert await client.call("echo", text="héllo") == "héllo"
    assert float(await client.call("add", a=2, b=3)) == 5

    old_session = client.session_id
    py_mcp_server.restart()
    expired = await http.post(
        py_mcp_server.url,
        json={"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
        headers=client.headers(),
    )
    assert expired.status_code == 404
    fresh = McpHttpClient(http, py_mcp_server.url)
    await fresh.initialize()
    assert fresh.session_id not in (None, old_session)
    assert await fresh.call("echo", text="again") == "again"


async def test_python_server_big_result(http: httpx.AsyncClient, py_mcp_server: HttpPeer) -> None:
    client = McpHttpClient(http, py_mcp_server.url)
    await client.initialize()
    size = 10 * 1024 * 1024
    assert len((await client.call("big", size=size)).encode()) == size


async def test_python_server_counts_a_cancelled_slow_call(
    http: httpx.AsyncClient, py_mcp_server: HttpPeer
) -> None:
    client = McpHttpClient(http, py_mcp_server.url)
    await client.initialize()
    slow_id = 9000
    slow = asyncio.create_task(
        client.request("tools/call", {"name": "slow", "arguments": {"seconds": 60}}, None, slow_id)
    )
    async with asyncio.timeout(20):
        while await client.call("running_count") != "1":
            pass
    assert await client.call("cancelled_count") == "0"
    await client.notify("notifications/cancelled", {"requestId": slow_id, "reason": "test"})
    async with asyncio.timeout(20):
        while await client.call("cancelled_count") != "1":
            pass
    assert await client.call("running_count") == "0"
    assert await client.call("was_cancelled") == "true"
    slow.cancel()  # the server never answers a cancelled request
    await asyncio.gather(slow, return_exceptions=True)


async def test_python_server_requests_to_the_client(
    http: httpx.AsyncClient, py_mcp_server: HttpPeer
) -> None:
    client = McpHttpClient(http, py_mcp_server.url)
    await client.initialize()

    async def answer(request: Message) -> Message:
        match request["method"]:
            case "elicitation/create":
                schema = request["params"]["requestedSchema"]
                assert schema["properties"]["name"]["default"] == "anonymous"
                return {"result": {"action": "accept", "content": {"name": "Ada"}}}
            case "roots/list":
                return {"result": {"roots": [{"uri": "file:///work/project", "name": "p"}]}}
            case "ping":
                return {"result": {}}
            case _:
                return {"error": {"code": -32601, "message": "Method not found"}}

    elicited = json.loads(await client.call("ask_name", answer=answer))
    assert elicited == {"action": "accept", "content": {"name": "Ada"}}
    assert await client.call("list_roots", answer=answer) == "file:///work/project"
    assert await client.call("ping_client", answer=answer) == "ok"
    assert "Method not found" in await client.call("sample", answer=answer)
    methods = [r["method"] for r in client.server_requests]
    assert methods == ["elicitation/create", "roots/list", "ping", "sampling/createMessage"]

    assert await client.call("log_something", text="to the client") == "logged"
    log = client.notifications[-1]
    assert log["method"] == "notifications/message"
    assert log["params"]["data"] == "to the client"

    assert await client.call("add_tool", name="fresh") == "added fresh"
    assert client.notifications[-1]["method"] == "notifications/tools/list_changed"
    assert "fresh" in await client.tool_names()
    assert await client.call("fresh") == "I am fresh, added at runtime"


async def test_python_server_stateless(
    http: httpx.AsyncClient, py_mcp_server_stateless: HttpPeer
) -> None:
    client = McpHttpClient(http, py_mcp_server_stateless.url)
    await client.initialize()
    assert client.session_id is None
    assert float(await client.call("add", a=2, b=3)) == 5
    # Without a session the server has no way to get an answer back from the client.
    assert "failed" in await client.call("ping_client")


async def test_python_server_json_response(
    http: httpx.AsyncClient, py_mcp_server_json: HttpPeer
) -> None:
    response = await http.post(py_mcp_server_json.url, json=INITIALIZE, headers={"Accept": ACCEPT})
    assert response.headers["content-type"].startswith("application/json")
    client = McpHttpClient(http, py_mcp_server_json.url)
    await client.initialize()
    assert client.session_id
    answer = await client.request("tools/call", {"name": "echo", "arguments": {"text": "json"}})
    assert answer["result"]["content"][0]["text"] == "json"


async def test_paged_server_lists_25_tools_in_pages_of_10(
    http: httpx.AsyncClient, paged_server: HttpPeer
) -> None:
    client = McpHttpClient(http, paged_server.url)
    await client.initialize()
    pages: list[list[str]] = []
    params: Message = {}
    while True:
        result = (await client.request("tools/list", params))["result"]
        pages.append([tool["name"] for tool in result["tools"]])
        if "nextCursor" not in result:
            break
        params = {"cursor": result["nextCursor"]}
    assert [len(page) for page in pages] == [10, 10, 5]
    assert len({name for page in pages for name in page}) == 25
    assert await client.call("tool_07", text="hi") == "tool_07: hi"


async def test_typescript_sdk_example_on_loopback_only(
    http: httpx.AsyncClient, ts_mcp_server: HttpPeer
) -> None:
    assert listening_addresses(ts_mcp_server.port) == LOOPBACK_ONLY
    client = McpHttpClient(http, ts_mcp_server.url)
    await client.initialize()
    assert client.session_id
    assert "greet" in await client.tool_names()
    assert "mcpls" in await client.call("greet", name="mcpls")


async def test_hostile_server_routes(http: httpx.AsyncClient, hostile_server: str) -> None:
    headers = {"Accept": ACCEPT, "X-Probe": "smoke"}
    html = await http.post(f"{hostile_server}/html", json=INITIALIZE, headers=headers)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")

    malformed = await http.post(f"{hostile_server}/malformed", json=INITIALIZE, headers=headers)
    assert malformed.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.text)
    wrong_id = await http.post(f"{hostile_server}/wrong-id", json=INITIALIZE, headers=headers)
    assert wrong_id.json()["id"] == "wrong"

    unauthorized = await http.post(f"{hostile_server}/unauthorized", json=INITIALIZE)
    assert unauthorized.status_code == 401
    assert unauthorized.headers["www-authenticate"] == (
        'Bearer error="invalid_token", resource_metadata='
        f'"{hostile_server}/.well-known/oauth-protected-resource/unauthorized", scope="mcp:read"'
    )

    with pytest.raises(httpx.ReadTimeout):
        await http.post(f"{hostile_server}/hang", json=INITIALIZE, timeout=0.5)

    seen = (await http.get(f"{hostile_server}/_requests")).json()
    assert [(r["method"], r["path"]) for r in seen] == [
        ("POST", "/html"),
        ("POST", "/malformed"),
        ("POST", "/wrong-id"),
        ("POST", "/unauthorized"),
        ("POST", "/hang"),
    ]
    assert seen[0]["headers"]["x-probe"] == "smoke"
    assert seen[0]["headers"]["accept"] == ACCEPT
    assert json.loads(seen[0]["body"])["method"] == "initialize"


async def test_hostile_sse_drop_ends_the_stream_without_a_response(
    http: httpx.AsyncClient, hostile_server: str
) -> None:
    url = f"{hostile_server}/sse-drop"
    client = McpHttpClient(http, url)
    await client.initialize()
    response = await http.post(
        url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=client.headers()
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "\nid:" not in "\n" + response.text  # nothing a client could resume from
    messages = sse_messages(response.text)
    assert messages
    assert all("id" not in message for message in messages)


async def read_message(stdout: asyncio.StreamReader) -> Message:
    line = await stdout.readline()
    assert line, "the stdio server closed stdout"
    message: Message = json.loads(line)
    return message


async def start_stdio(command: list[str], **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PYTHONUNBUFFERED": "1", **env},
    )


def send(process: asyncio.subprocess.Process, message: Message) -> None:
    assert process.stdin is not None
    process.stdin.write(json.dumps(message).encode() + b"\n")


async def test_stdio_server(stdio_server_command: list[str]) -> None:
    assert stdio_server_command[0] == sys.executable
    process = await start_stdio(stdio_server_command, MCPLS_TEST_VALUE="from-env")
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        async with asyncio.timeout(30):
            send(process, INITIALIZE)
            answer = await read_message(process.stdout)
            assert answer["id"] == 1
            assert answer["result"]["serverInfo"]["name"] == "mcpls-test-stdio"
            send(process, {"jsonrpc": "2.0", "method": "notifications/initialized"})

            async def call(request_id: int, tool: str, **args: Any) -> str:
                params = {"name": tool, "arguments": args}
                send(
                    process,
                    {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params},
                )
                assert process.stdout is not None
                response = await read_message(process.stdout)
                assert response["id"] == request_id, response
                text: str = response["result"]["content"][0]["text"]
                return text

            assert await call(2, "echo", text="via stdio") == "via stdio"
            assert await call(3, "get_env", name="MCPLS_TEST_VALUE") == "from-env"
            assert int(await call(4, "get_pid")) == process.pid
            assert await call(5, "stderr_line", text="a line on stderr") == "written"
            while b"a line on stderr" not in await process.stderr.readline():
                pass
            send(
                process,
                {
                    "jsonrpc": "2.0",
                    "id": 6,
                    "method": "tools/call",
                    "params": {"name": "crash", "arguments": {"code": 3}},
                },
            )
            assert await process.wait() == 3
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_garbage_stdio_never_answers_initialize(garbage_stdio_command: list[str]) -> None:
    process = await start_stdio(garbage_stdio_command)
    assert process.stdin is not None
    assert process.stdout is not None
    async with asyncio.timeout(30):
        send(process, INITIALIZE)
        first = await process.stdout.readline()
        with pytest.raises(json.JSONDecodeError):
            json.loads(first)
        assert process.returncode is None  # it waits for the client, answering nothing
        process.stdin.close()
        assert await process.wait() == 0
        lines = [first, *(await process.stdout.read()).splitlines()]
    answers = []
    for line in lines:
        try:
            answers.append(json.loads(line))
        except ValueError:
            continue
    assert len(answers) < len(lines)
    assert not any(isinstance(a, dict) and a.get("id") == 1 for a in answers)
