"""The device authorization grant (RFC 8628) against oidc-provider with its deviceFlow
feature on: from the terminal (`mcpls login --device`, and chosen by itself over SSH) and
from an editor (`mcp/authenticate {"method": "device"}`). The test approves the code on
oidc-provider's own pages; the tokens are then used and refreshed like a browser sign-in's."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_client import error_data
from peers.oauth.browser import approve_device_in_browser
from peers.oauth.fixtures import OidcPeers
from terminal.runner import Cli

CODE = re.compile(r"enter the code\s+(\S+)")
COMPLETE = re.compile(r"\(or open (\S+)\)")
OPEN = re.compile(r"open (http\S+/device)\s*$")
SUCCESS_PAGE = "Sign-in Success"


async def test_login_device_with_the_complete_verification_uri(
    cli: Cli, oidc_provider: OidcPeers
) -> None:
    cli.configure({"svc": oidc_provider.mcp_url})
    running = await cli.start("login", "svc", "--device")
    code = (await running.line_matching(CODE)).group(1)
    complete = (await running.line_matching(COMPLETE)).group(1)
    assert complete.startswith(f"{oidc_provider.issuer}/device")
    assert complete.endswith(f"user_code={code}")
    assert SUCCESS_PAGE in await approve_device_in_browser(complete)
    result = await running.finish()
    assert result.code == 0, result.output
    assert "Waiting for the code" in result.stderr
    assert f"✓ Signed in to svc (issuer {oidc_provider.issuer}" in result.stdout
    assert "✓ Connected to" in result.stdout

    # Stored like a browser sign-in: the same client refreshes it.
    doctor = await cli.run("doctor", "svc", "--json")
    steps = {s["step"]: s for s in doctor.json()["steps"]}
    assert steps["refresh"]["ok"], steps["refresh"]
    assert steps["device sign-in"]["detail"].startswith("offered at")


async def test_over_ssh_login_picks_the_device_grant_and_the_typed_code_works(
    cli: Cli, oidc_provider: OidcPeers
) -> None:
    cli.configure({"svc": oidc_provider.mcp_url})
    ssh = {"SSH_CONNECTION": "10.0.0.1 50000 10.0.0.2 22", "DISPLAY": ":0"}
    running = await cli.start("login", "svc", env=ssh)
    opened = (await running.line_matching(OPEN)).group(1)
    code = (await running.line_matching(CODE)).group(1)
    assert SUCCESS_PAGE in await approve_device_in_browser(opened, user_code=code)
    result = await running.finish()
    assert result.code == 0, result.output
    assert "Sign in to svc at this address" not in result.stderr  # no browser sign-in


async def test_a_denied_code_ends_the_sign_in_with_words(
    cli: Cli, oidc_provider: OidcPeers
) -> None:
    cli.configure({"svc": oidc_provider.mcp_url})
    running = await cli.start("login", "svc", "--device")
    complete = (await running.line_matching(COMPLETE)).group(1)
    await approve_device_in_browser(complete, deny=True)
    result = await running.finish()
    assert result.code == 1, result.output
    assert "✗ Sign-in to svc failed: the sign-in was denied on the verification page" in (
        result.stderr
    )
    listed = (await cli.run("status", "--json")).json()["servers"][0]
    assert "auth" not in listed or listed["auth"]["authenticated"] is False


async def test_device_on_a_server_without_it_says_what_to_do_instead(
    cli: Cli, py_oauth_server: Any
) -> None:
    cli.configure({"svc": py_oauth_server.mcp_url})
    result = await cli.run("login", "svc", "--device")
    assert result.code == 1
    assert "offers no device sign-in" in result.stderr
    assert "mcpls login --no-browser" in result.stderr


async def test_editor_device_sign_in_shows_the_code_and_connects(
    editor_factory: Callable[..., Any], oidc_provider: OidcPeers
) -> None:
    editor = await editor_factory(
        {
            "servers": {"svc": {"url": oidc_provider.mcp_url}},
            "allowInsecureLoopback": True,
            "tokenStorage": "file",
        }
    )
    await editor.wait_for_state("svc", "authRequired")
    # No workDoneToken: mcpls creates one (window/workDoneProgress/create) and reports on it.
    sign_in = asyncio.create_task(
        editor.request("mcp/authenticate", {"server": "svc", "method": "device"})
    )
    await editor.wait_until(lambda: any("enter the code" in m for m in editor.messages))
    message = next(m for m in editor.messages if "enter the code" in m)
    complete = COMPLETE.search(message)
    assert complete is not None, message
    assert editor.shown_documents == []  # no browser opened for a device sign-in
    assert SUCCESS_PAGE in await approve_device_in_browser(complete.group(1))
    status = await sign_in
    assert status["state"] == "connected"
    assert status["auth"]["authenticated"] is True
    reports = [
        report.message
        for token_reports in editor.client.progress_reports.values()
        for report in token_reports
        if isinstance(report, types.WorkDoneProgressReport) and report.message
    ]
    assert message in reports  # the same words in the progress bar


async def test_editor_method_must_be_browser_or_device(
    editor_factory: Callable[..., Any], oidc_provider: OidcPeers
) -> None:
    editor = await editor_factory({"servers": {"svc": {"url": oidc_provider.mcp_url}}})
    with pytest.raises(
        JsonRpcException, match=re.escape('params.method must be "browser" or "device"')
    ):
        await editor.raw_request("mcp/authenticate", {"server": "svc", "method": "carrier-pigeon"})


async def test_editor_device_where_not_offered_is_an_error_saying_so(
    editor_factory: Callable[..., Any], py_oauth_server: Any
) -> None:
    editor = await editor_factory(
        {"servers": {"svc": {"url": py_oauth_server.mcp_url}}, "allowInsecureLoopback": True}
    )
    await editor.wait_for_state("svc", "authRequired")
    with pytest.raises(JsonRpcException, match="offers no device sign-in") as refused:
        await editor.request("mcp/authenticate", {"server": "svc", "method": "device"})
    assert error_data(refused.value)["kind"] == "other"
    assert editor.shown_documents == []
