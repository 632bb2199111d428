"""The loopback callback listener against what a hostile local process can send it."""

from __future__ import annotations

import asyncio

from mcpls.auth.flow import CallbackListener


async def get(port: int, target: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def test_an_endless_request_line_is_refused_and_the_sign_in_goes_on() -> None:
    # Issue 6, also: a request line over 64 KiB raised inside the listener.
    listener = CallbackListener(
        host="127.0.0.1", port=0, state="s", issuer="https://as.example", iss_supported=False
    )
    await listener.start()
    try:
        answer = await get(listener.port, b"/callback?" + b"x" * 100_000)
        assert answer.startswith(b"HTTP/1.1 431")
        assert not listener.result.done()
        answer = await get(listener.port, b"/callback?code=c&state=s")
        assert answer.startswith(b"HTTP/1.1 200")
        assert (await listener.wait(timeout=5)).code == "c"
    finally:
        await listener.close()


async def test_a_configured_redirect_path_is_the_only_one_served() -> None:
    listener = CallbackListener(
        host="127.0.0.1",
        port=0,
        state="s",
        issuer="https://as.example",
        iss_supported=False,
        redirect_uri="http://localhost:0/oauth/done",
    )
    assert listener.path == "/oauth/done"
    assert listener.host == "localhost"
