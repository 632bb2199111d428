"""The suite's secret scan (tests/secret_scan.py) and its ledger (tests/peers/ledger.py)
can fail: every kind of secret planted in every kind of place is reported, masked."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from peers import ledger
from secret_scan import Scanner, Secret, read_ledger

pytest_plugins = ["pytester"]

KINDS = [
    "access token",
    "refresh token",
    "id token",
    "client secret",
    "authorization code",
    "PKCE code verifier",
    "device code",
    "MCP session id",
]

# Where a test plants the secret, and how the scan's report names that place.
PLACES = {
    "log_file": "file mcpls-0.log",
    "proxy_stderr_file": "file proxy-0.stderr",
    "subprocess_stderr": "pytest's captured stderr call",
    "notification": "window/logMessage",
    "status": "mcp/didChangeStatus",
    "rpc_error": "a JSON-RPC error",
    "terminal_command": "stderr of mcpls login",
    "mcpls_error": "the message of ConnectionFailed",
    "exception": "the failure report of call",
}

# Runs in a pytester subprocess with tests/ on sys.path; SEED (env) makes the values.
PLANTING_TESTS = """
import asyncio, os, subprocess, sys
from pathlib import Path

import pytest

import secret_scan
from e2e.conftest import Editor, make_editor_client
from mcpls.errors import ConnectionFailed
from terminal.runner import Cli

KINDS = {kinds!r}
SEED = os.environ["PLANT_SEED"]


def value(kind: str) -> str:
    return kind.replace(" ", "-") + "-" + SEED


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("place", {places!r})
def test_plant(kind: str, place: str, tmp_path: Path, isolated_dirs: Path) -> None:
    secret = value(kind)
    secret_scan.plant(kind, secret)
    if place == "log_file":
        (tmp_path / "mcpls-0.log").write_text("INFO mcpls: got " + secret + "\\n")
    elif place == "proxy_stderr_file":
        (tmp_path / "proxy-0.stderr").write_text("proxy: " + secret)
    elif place == "subprocess_stderr":  # a child writing on the inherited stderr
        code = "import sys; sys.stderr.write(sys.argv[1])"
        subprocess.run([sys.executable, "-c", code, secret], check=True)
    elif place in ("notification", "status", "rpc_error"):
        editor = Editor(make_editor_client())
        secret_scan.watch(editor.shown)
        if place == "notification":
            asyncio.run(editor.logged("sign-in: " + secret))
        elif place == "status":
            editor.statuses.append({{"server": "svc", "state": "connected", "x": secret}})
        else:
            editor.errors.append("refused: " + secret)
    elif place == "terminal_command":
        async def run() -> None:
            # A real `mcpls login` (no server configured: it stops at once); mcpls prints
            # no secret, so one is added to what the runner read from its stderr.
            running = await Cli(isolated_dirs).start("login")
            await running.finish()
            running.stderr_rest += secret
        asyncio.run(run())
    elif place == "mcpls_error":
        try:
            raise ConnectionFailed("could not reach " + secret)
        except ConnectionFailed:
            pass  # handled: its message was still made, and is scanned
    elif place == "exception":
        raise AssertionError("the token was " + secret)


def test_no_leak_passes() -> None:
    secret_scan.plant("access token", value("access token"))
    print("nothing secret here")


def test_short_and_unrecorded_values_pass() -> None:
    secret_scan.plant("access token", value("access token"))
    secret_scan.plant("authorization code", "abc1234")  # 7 characters: not recorded
    print("code abc1234, client id mcpls-test-client")
"""

INNER_CONFTEST = """
import sys
from pathlib import Path

import pytest

sys.path.insert(0, {tests!r})
pytest_plugins = ["secret_scan"]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "xdg"
    for variable, folder in (("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state")):
        (root / folder).mkdir(parents=True)
        monkeypatch.setenv(variable, str(root / folder))
    return root
"""


def test_every_kind_in_every_place_fails_the_test_without_printing_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = str(Path(__file__).resolve().parents[1])
    seed = secrets.token_hex(8)
    monkeypatch.setenv("PLANT_SEED", seed)
    pytester.makeconftest(INNER_CONFTEST.format(tests=tests))
    pytester.makepyfile(test_planted=PLANTING_TESTS.format(kinds=KINDS, places=list(PLACES)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    output = "\n".join(result.outlines + result.errlines)
    planted = len(KINDS) * len(PLACES)
    # Each planting test errors at teardown; its call passed, except where it raised. The
    # two tests without a leak pass.
    raising = len(KINDS)
    result.assert_outcomes(passed=planted - raising + 2, failed=raising, errors=planted)
    for kind in KINDS:
        for place, where in PLACES.items():
            line = f"{kind} (issued or received by the test) in {where}"
            assert line in output, f"not reported: {kind} in {place}"
    assert "<access token from the test>" in output  # the context, masked
    assert seed not in output, "a planted secret was printed"


def test_scanner_reports_kind_peer_place_offset_and_masks_the_value() -> None:
    token = "tok-" + secrets.token_urlsafe(16)
    scanner = Scanner([Secret("refresh token", token, "py_as_rs.py:1234")])
    text = f"line one\nrefreshing with {token} now"
    (leak,) = scanner.scan("file mcpls.log", text)
    assert leak.offset == text.index(token)
    described = leak.describe()
    assert "refresh token (issued or received by py_as_rs.py:1234) in file mcpls.log" in described
    assert "<refresh token from py_as_rs.py:1234> now" in described
    assert token not in described
    assert token not in scanner.mask(text)


def test_scanner_ignores_short_values_and_finds_the_longest_match() -> None:
    session = "0123456789abcdef"
    scanner = Scanner(
        [
            Secret("authorization code", "short", "p"),  # under 8 characters
            Secret("MCP session id", session, "p"),
            Secret("client credentials (Basic)", session + "XYZW", "p"),
        ]
    )
    assert scanner.scan("t", "short words only") == []
    (leak,) = scanner.scan("t", f"Basic {session}XYZW")
    assert leak.secret.kind == "client credentials (Basic)"
    assert not Scanner([Secret("access token", "tiny", "p")])  # nothing to scan for


async def test_the_peers_sniffer_records_what_is_issued_and_received(
    secret_ledger: Path,
) -> None:
    """tests/peers/ledger.py's ASGI wrapper, around an app answering like a token endpoint."""
    issued = {
        "access_token": "access-" + secrets.token_hex(8),
        "refresh_token": "refresh-" + secrets.token_hex(8),
        "id_token": "id-" + secrets.token_hex(8),
        "device_code": "device-" + secrets.token_hex(8),
        "client_secret": "secret-" + secrets.token_hex(8),
    }
    session = "session-" + secrets.token_hex(8)
    code = "code-" + secrets.token_hex(8)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        headers = [
            (b"content-type", b"application/json"),
            (b"mcp-session-id", session.encode()),
            (b"location", f"http://127.0.0.1:1/cb?code={code}&state=s".encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(issued).encode()})

    verifier = "verifier-" + secrets.token_hex(16)
    basic = base64.b64encode(b"client-id:basic-" + secrets.token_hex(8).encode()).decode()
    scope = {
        "type": "http",
        "headers": [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"authorization", f"Basic {basic}".encode()),
        ],
    }
    body = f"grant_type=authorization_code&code={code}&code_verifier={verifier}".encode()
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        pass

    await ledger.wrap(app, "unit")(scope, receive, send)
    recorded = {(s.kind, s.value) for s in read_ledger(secret_ledger)}
    for field, kind in ledger.RESPONSE_FIELDS.items():
        if field in issued:
            assert (kind, issued[field]) in recorded, kind
    assert ("MCP session id", session) in recorded
    assert ("authorization code", code) in recorded
    assert ("PKCE code verifier", verifier) in recorded
    assert ("client credentials (Basic)", basic) in recorded
    decoded = base64.b64decode(basic).decode().partition(":")[2]
    assert ("client secret", decoded) in recorded
