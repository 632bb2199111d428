"""`mcpls doctor` on a healthy server and on deliberately broken set-ups: each broken one
gives the expected ✗, its URL and status, and a fix, and exits 1; JSON output follows
schemas/cli/doctor.schema.json. Nothing it prints holds a secret."""

from __future__ import annotations

from typing import Any

import pytest

from contract import validate_cli_output
from peers.oauth.browser import authorize_in_browser
from peers.oauth.fixtures import PyOAuthServer
from terminal.runner import URL_LINE, Cli


def steps_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The last step of each name (a name repeats for each URL tried)."""
    return {step["step"]: step for step in document["steps"]}


async def test_healthy_server_before_and_after_sign_in(
    cli: Cli, py_oauth_server: PyOAuthServer
) -> None:
    cli.configure({"svc": py_oauth_server.mcp_url})
    text = await cli.run("doctor", "svc")
    assert text.code == 0, text.output
    assert "✗" not in text.stdout
    assert "✓ unauthenticated request: asks for a sign-in" in text.stdout
    assert f"POST {py_oauth_server.mcp_url} → HTTP 401" in text.stdout
    assert f"GET {py_oauth_server.resource_metadata_url} → HTTP 200" in text.stdout
    assert "Sign-in can work: mcpls login svc" in text.stdout

    report = await cli.run("doctor", "svc", "--json")
    document = report.json()
    validate_cli_output("doctor", document)
    steps = steps_of(document)
    assert document["signInPossible"] is True
    assert steps["issuer check"]["ok"]
    assert steps["PKCE"]["ok"]
    assert "a new dynamic registration" in steps["registration"]["detail"]
    assert "would request: mcp:read" in steps["scopes"]["detail"]
    assert steps["redirect URI"]["detail"].startswith("http://127.0.0.1:")
    assert steps["stored sign-in"]["detail"].startswith("none stored")
    # Never a browser, never a registration or token request.
    stats = await py_oauth_server.stats()
    assert stats["registrations"] == 0
    assert stats["authorizations"] == 0

    running = await cli.start("login", "svc")
    await authorize_in_browser((await running.line_matching(URL_LINE)).group(1))
    assert (await running.finish()).code == 0
    after = await cli.run("doctor", "svc", "--json")
    steps = steps_of(after.json())
    assert "the stored registration" in steps["registration"]["detail"]
    assert f"from {py_oauth_server.issuer}, scopes" in steps["stored sign-in"]["detail"]
    assert steps["refresh"]["ok"], steps["refresh"]
    assert (await py_oauth_server.stats())["token_requests"].get("refresh_token") == 1

    # A refresh the server refuses is a ✗ with what to do.
    await py_oauth_server.revoke_refresh()
    refused = await cli.run("doctor", "svc")
    assert refused.code == 0  # signing in again still works
    assert "✗ refresh:" in refused.stdout
    assert "fix: mcpls login svc" in refused.stdout


BROKEN = [
    (
        "noprm",
        "protected resource metadata",
        "none at",
        "publish RFC 9728 metadata",
    ),
    ("foreign", "resource check", "https://evil.example/mcp", "must name this server"),
    ("nopkce", "PKCE", "does not advertise PKCE", "list S256 in code_challenge_methods_supported"),
    (
        "noreg",
        "registration",
        "offers no dynamic registration",
        "with the redirect URI http://127.0.0.1:",
    ),
    ("issuer", "issuer check", "'https://evil.example'", "set oauth.authServerMetadataUrl"),
]


@pytest.mark.parametrize(("kind", "step", "detail", "fix"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_broken_set_ups_name_the_step_and_the_fix(
    cli: Cli, hostile_server: str, kind: str, step: str, detail: str, fix: str
) -> None:
    url = f"{hostile_server}/evil/{kind}/mcp"
    cli.configure({"broken": url})
    text = await cli.run("doctor", "broken")
    assert text.code == 1, text.output
    assert f"✗ {step}: " in text.stdout, text.stdout
    assert "Sign-in cannot work" in text.stdout
    report = await cli.run("doctor", "broken", "--json")
    assert report.code == 1
    document = report.json()
    validate_cli_output("doctor", document)
    assert document["signInPossible"] is False
    failed = [s for s in document["steps"] if s["step"] == step and not s["ok"]]
    assert failed, document
    assert detail in failed[-1]["detail"], failed[-1]
    assert fix in failed[-1]["fix"], failed[-1]


async def test_no_protected_resource_metadata_shows_each_url_tried(
    cli: Cli, hostile_server: str
) -> None:
    cli.configure({"broken": f"{hostile_server}/evil/noprm/mcp"})
    document = (await cli.run("doctor", "broken", "--json")).json()
    tried = [
        (s["url"], s.get("httpStatus"))
        for s in document["steps"]
        if s["step"] == "protected resource metadata" and "url" in s
    ]
    assert tried == [
        (f"{hostile_server}/.well-known/oauth-protected-resource/evil/noprm/mcp", 404),
        (f"{hostile_server}/.well-known/oauth-protected-resource", 404),
    ]
    legacy = [s for s in document["steps"] if s["step"] == "authorization server metadata"]
    assert legacy[-1]["url"] == f"{hostile_server}/.well-known/oauth-authorization-server"
    assert legacy[-1]["blocking"] is True


async def test_a_server_that_needs_no_sign_in(cli: Cli, py_mcp_server: Any) -> None:
    cli.configure({"open": py_mcp_server.url})
    result = await cli.run("doctor", "open", "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert document["signInNeeded"] is False
    assert "needs no sign-in" in document["steps"][0]["detail"]


async def test_an_unreachable_server_says_so(cli: Cli) -> None:
    from peers.managed import free_port

    cli.configure({"gone": f"http://127.0.0.1:{free_port()}/mcp"})
    result = await cli.run("doctor", "gone")
    assert result.code == 1
    assert "✗ unauthenticated request: cannot connect to" in result.stdout
    assert "fix: check the server's URL" in result.stdout


async def test_a_configured_client_and_its_binding(
    cli: Cli, oidc_provider_factory: Any, py_oauth_server: PyOAuthServer
) -> None:
    client = {
        "client_id": "mcpls-admin-made",
        "client_secret": "doctor-never-prints-this",
        "redirect_uris": ["http://127.0.0.1:28999/callback"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    peers = oidc_provider_factory(static_clients=[client])
    oauth = {"clientId": client["client_id"], "clientSecret": client["client_secret"]}
    cli.configure({"svc": {"url": peers.mcp_url, "oauth": {**oauth, "callbackPort": 28999}}})
    result = await cli.run("doctor", "svc")
    assert result.code == 0, result.output
    assert "mcpls would use the configured client mcpls-admin-made" in result.stdout
    assert "mcpls would use client_secret_basic" in result.stdout
    assert "doctor-never-prints-this" not in result.output

    # Bound to the first authorization server it signs in with: another is refused.
    # (No display here, and the server offers the device grant, but this client was made
    # without it: the sign-in that picked the device grant by itself takes the browser.)
    running = await cli.start("login", "svc")
    await authorize_in_browser((await running.line_matching(URL_LINE)).group(1))
    assert (await running.finish()).code == 0
    cli.configure({"other": {"url": py_oauth_server.mcp_url, "oauth": oauth}})
    refused = await cli.run("doctor", "other")
    assert refused.code == 1
    bound = f"the configured oauth.clientId belongs to the authorization server '{peers.issuer}'"
    assert f"✗ registration: {bound}" in refused.stdout
    assert (
        "fix: if the move to this authorization server is expected, add it to oauth.trustedIssuers"
        in refused.stdout
    )
    assert "doctor-never-prints-this" not in refused.output
