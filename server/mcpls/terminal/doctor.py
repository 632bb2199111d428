"""`mcpls doctor NAME|URL`: the authorization chain of one server, step by step, as a
person would debug it by hand. Every decision is the one `mcpls serve` takes (the pure
functions of auth/discovery, registration, scopes and flow); only the fetching is done
here, one URL at a time, so that each step can show its URL and HTTP status. Never opens
a browser, never prints a secret (tokens and client secrets are only ever described)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcpls.config import ConfigError, ServerConfig, Settings
from mcpls.errors import McplsError, quote
from mcpls.hub import UnknownServer
from mcpls.terminal import output
from mcpls.terminal.context import (
    EXIT_FAILED,
    EXIT_OK,
    describe_config_error,
    load_settings,
    open_hub,
    resolve,
    unknown,
)

if TYPE_CHECKING:  # for types only: the OAuth stack loads when the command runs
    import httpx

    from mcpls.auth.challenge import BearerChallenge
    from mcpls.auth.session import OAuthSession

EXAMPLES = """examples:
  mcpls doctor linear
  mcpls doctor https://mcp.example.com/mcp --json

Exit status 0 when sign-in can work (or is not needed), 1 when a step marked ✗ stops it.
"""
# How much of a server's WWW-Authenticate header is shown.
HEADER_LIMIT = 300


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "doctor",
        help="diagnose a server's sign-in step by step",
        description="Walk a server's authorization chain as mcpls would: the unauthenticated "
        "request, protected resource metadata, the resource check, authorization server "
        "metadata, the issuer check, PKCE, registration, token endpoint authentication, "
        "scopes, the redirect URI, and the stored sign-in (whether a refresh works). Each "
        "step is ✓ or ✗ with its URL and HTTP status, and a fix for each ✗.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("server", metavar="NAME|URL", help="a configured name, or a server URL")
    parser.add_argument("--json", action="store_true", help="print JSON (schemas/cli/doctor)")
    parser.set_defaults(run=run)


@dataclass
class Step:
    """One check: what was looked at, what came back, and what to do when it failed.
    `blocking`: a failure here stops sign-in (others are worth fixing but mcpls copes)."""

    step: str
    ok: bool
    detail: str
    url: str | None = None
    method: str | None = None
    http_status: int | None = None
    fix: str | None = None
    blocking: bool = True

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"step": self.step, "ok": self.ok, "detail": self.detail}
        if self.url is not None:
            data["url"] = self.url
        if self.method is not None:
            data["method"] = self.method
        if self.http_status is not None:
            data["httpStatus"] = self.http_status
        if self.fix is not None:
            data["fix"] = self.fix
        if not self.ok:
            data["blocking"] = self.blocking
        return data


@dataclass
class Report:
    server: str
    url: str | None
    steps: list[Step] = field(default_factory=list)
    sign_in_needed: bool = True

    @property
    def sign_in_possible(self) -> bool:
        return not any(not s.ok and s.blocking for s in self.steps)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"server": self.server}
        if self.url is not None:
            data["url"] = self.url
        data["signInNeeded"] = self.sign_in_needed
        data["signInPossible"] = self.sign_in_possible
        data["steps"] = [s.to_json() for s in self.steps]
        return data


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        server = resolve(args.server, settings)
    except UnknownServer as exc:
        return unknown(exc)
    report = asyncio.run(diagnose(server, settings))
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(render(report, sys.stdout))
    return EXIT_OK if report.sign_in_possible else EXIT_FAILED


async def diagnose(server: ServerConfig | ConfigError, settings: Settings) -> Report:
    """Every step for `server`, stopping where the next step has nothing to go on."""
    report = Report(server.name, server.url)
    if isinstance(server, ConfigError):
        report.add(
            Step(
                "settings",
                False,
                describe_config_error(server),
                fix="fix this server's entry in servers.json",
            )
        )
        return report
    if server.transport == "stdio":
        report.sign_in_needed = False
        report.add(Step("settings", True, "a local (stdio) server: no sign-in involved"))
        return report
    if server.has_authorization_header:
        report.sign_in_needed = False
        report.add(Step("settings", True, "an Authorization header is configured: OAuth is off"))
        return report
    async with open_hub(settings, {server.name: server}, connect=False) as hub:
        oauth = hub.get(server.name).oauth
        assert oauth is not None
        await _Chain(server, settings, oauth, report).run()
    return report


class _Chain:
    def __init__(
        self, server: ServerConfig, settings: Settings, oauth: OAuthSession, report: Report
    ) -> None:
        assert server.url is not None
        self.server = server
        self.url = server.url
        self.settings = settings
        self.insecure = settings.allow_insecure_loopback
        # The SSRF rule as discovery applies it (auth/metadata.py `discover`).
        self.trusted = tuple(u for u in (server.url, server.oauth.auth_server_metadata_url) if u)
        self.oauth = oauth
        self.http: httpx.AsyncClient = oauth.http
        self.report = report

    async def run(self) -> None:
        go_on, challenge = await self._probe()
        if not go_on:
            return
        found = await self._resource_metadata(challenge)
        if found is None:
            return
        issuer, prm_scopes, resource_ok = found
        metadata = await self._auth_server_metadata(issuer)
        if metadata is None:
            return
        self._pkce_and_endpoints(metadata)
        await self._registration(metadata)
        self._scopes(challenge, prm_scopes, metadata)
        self._redirect_uri()
        self._device(metadata)
        if resource_ok:
            await self._stored(metadata)

    # -- fetching ------------------------------------------------------------------------

    async def _get_json(self, url: str, what: str) -> tuple[dict[str, Any] | None, Step]:
        """GET a metadata document; the step says what came back."""
        from mcpls.auth.discovery import check_endpoint
        from mcpls.net import MAX_DOCUMENT_BYTES, fetch

        try:
            check_endpoint(url, what, allow_insecure_loopback=self.insecure, trusted=self.trusted)
            answer = await fetch(
                self.http,
                "GET",
                url,
                headers={"Accept": "application/json"},
                max_bytes=MAX_DOCUMENT_BYTES,
            )
        except McplsError as exc:
            return None, Step(what, False, exc.message, url=url, method="GET", blocking=False)
        status = answer.status_code
        step = Step(what, False, "", url=url, method="GET", http_status=status, blocking=False)
        if 300 <= status < 400:
            step.detail = "a redirect (not followed: metadata that moved is not this server's)"
        elif status >= 400:
            step.detail = "not there"
        else:
            try:
                data = json.loads(answer.content)
            except (json.JSONDecodeError, UnicodeDecodeError):
                data = None
            if isinstance(data, dict):
                step.ok, step.detail = True, "found"
                return data, step
            step.detail = "not a JSON object"
        return None, step

    # -- the steps -------------------------------------------------------------------------

    async def _probe(self) -> tuple[bool, BearerChallenge | None]:
        """POST initialize without a token, as any client's first request: whether to go
        on, and the Bearer challenge if one came."""
        from mcpls.auth.challenge import find_bearer_challenge
        from mcpls.net import fetch
        from mcpls.protocol import LATEST_PROTOCOL_VERSION

        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": LATEST_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "mcpls-doctor", "version": "1"},
            },
        }
        step = self.report.add(Step("unauthenticated request", False, "", self.url, "POST"))
        try:
            answer = await fetch(
                self.http,
                "POST",
                self.url,
                headers={
                    "Accept": "application/json, text/event-stream",
                    "Content-Type": "application/json",
                },
                content=json.dumps(body).encode(),
            )
        except McplsError as exc:
            step.detail = exc.message
            step.fix = "check the server's URL, and that it is up and reachable from here"
            return False, None
        status = step.http_status = answer.status_code
        values = answer.headers.get_list("www-authenticate")
        if 200 <= status < 300:
            step.ok = True
            step.detail = "answered without a token: this server needs no sign-in"
            self.report.sign_in_needed = False
            session = answer.headers.get("mcp-session-id")
            if session:  # end the session the probe opened
                headers = {"Mcp-Session-Id": session}
                with contextlib.suppress(McplsError):
                    await fetch(self.http, "DELETE", self.url, headers=headers)
            return False, None
        if status in (401, 403):
            header = ", ".join(values)
            shown = quote(header, HEADER_LIMIT) if header else "none"
            step.ok = True
            step.detail = f"asks for a sign-in; WWW-Authenticate: {shown}"
            challenge = find_bearer_challenge(values) if values else None
            if challenge is None:
                self.report.add(
                    Step(
                        "Bearer challenge",
                        False,
                        "no Bearer challenge in WWW-Authenticate",
                        fix="the server should answer 401 with WWW-Authenticate: Bearer "
                        'resource_metadata="…" (MCP authorization); mcpls tries the '
                        "well-known URLs instead",
                        blocking=False,
                    )
                )
            return True, challenge
        step.detail = f"HTTP {status}: neither an MCP answer nor a request to sign in"
        step.fix = (
            "check the URL: it must be the server's Streamable HTTP endpoint (often ending in "
            "/mcp); an old HTTP+SSE endpoint (/sse) is not supported"
        )
        return False, None

    async def _resource_metadata(
        self, challenge: BearerChallenge | None
    ) -> tuple[str | None, tuple[str, ...] | None, bool] | None:
        """RFC 9728: (issuer or None for the 2025-03-26 fallback, PRM scopes, resource ok);
        None: stop."""
        from mcpls.auth.discovery import (
            DiscoveryError,
            protected_resource_metadata_urls,
            validate_resource,
        )
        from mcpls.auth.metadata import choose_issuer

        header_url = challenge.resource_metadata if challenge else None
        urls = protected_resource_metadata_urls(self.url, header_url)
        prm: dict[str, Any] | None = None
        prm_url = ""
        for url in urls:
            prm, step = await self._get_json(url, "protected resource metadata")
            self.report.add(step)
            if prm is not None:
                prm_url = url
                break
        oauth = self.server.oauth
        if prm is None:
            self.report.add(
                Step(
                    "protected resource metadata",
                    False,
                    f"none at {', '.join(urls)}; mcpls falls back to the 2025-03-26 rules "
                    "(the authorization server at the server's origin)",
                    fix="the server's operator should publish RFC 9728 metadata at "
                    f"{urls[-1]} naming its authorization server; meanwhile you can set "
                    "oauth.authServerMetadataUrl for this server",
                    blocking=False,
                )
            )
            return None, None, True
        resource = prm.get("resource")
        try:
            if not isinstance(resource, str):
                raise DiscoveryError(f"{prm_url} has no resource")
            validate_resource(resource, self.url)
        except DiscoveryError as exc:
            self.report.add(
                Step(
                    "resource check",
                    False,
                    exc.message,
                    url=prm_url,
                    fix=f"the metadata must name this server ({self.url}) as its resource. If "
                    f"{quote(resource, 80)} is the server you meant, use that URL; otherwise "
                    "the server's operator must publish its own URL as resource",
                )
            )
            return None
        self.report.add(Step("resource check", True, f"resource {resource} is this server"))
        servers = prm.get("authorization_servers")
        if not (isinstance(servers, list) and servers and all(isinstance(s, str) for s in servers)):
            self.report.add(
                Step(
                    "authorization servers",
                    False,
                    f"{prm_url} lists no authorization_servers",
                    fix="the server's operator must list its authorization server in "
                    "authorization_servers; or set oauth.authServerMetadataUrl",
                )
            )
            return None
        try:
            issuer = choose_issuer(tuple(servers), oauth, prm_url)
        except McplsError as exc:
            self.report.add(
                Step(
                    "authorization servers",
                    False,
                    exc.message,
                    fix="add the authorization server to oauth.trustedIssuers if you trust it",
                )
            )
            return None
        self.report.add(
            Step("authorization servers", True, f"{', '.join(servers)}; using {issuer}")
        )
        scopes = prm.get("scopes_supported")
        prm_scopes = tuple(scopes) if isinstance(scopes, list) else None
        return issuer, prm_scopes, True

    async def _auth_server_metadata(self, issuer: str | None) -> dict[str, Any] | None:
        from mcpls.auth.discovery import (
            DiscoveryError,
            authorization_server_metadata_urls,
            check_endpoint,
            check_issuer,
            legacy_metadata_url,
        )

        oauth = self.server.oauth
        if oauth.auth_server_metadata_url:
            metadata, step = await self._get_json(
                oauth.auth_server_metadata_url, "authorization server metadata"
            )
            step.blocking = True
            step.detail += " (oauth.authServerMetadataUrl)"
            if metadata is None:
                step.fix = "check oauth.authServerMetadataUrl in this server's settings"
            self.report.add(step)
            return metadata
        if issuer is None:
            url = legacy_metadata_url(self.url)
            metadata, step = await self._get_json(url, "authorization server metadata")
            step.blocking = True
            if metadata is None:
                step.fix = (
                    "with neither protected resource metadata nor authorization server "
                    "metadata, mcpls can only guess the endpoints (/authorize, /token, "
                    "/register at the server's origin); set oauth.authServerMetadataUrl, or "
                    "ask the server's operator to publish RFC 9728 metadata"
                )
            self.report.add(step)
            return metadata
        try:
            check_endpoint(
                issuer, "issuer", allow_insecure_loopback=self.insecure, trusted=self.trusted
            )
        except DiscoveryError as exc:
            self.report.add(
                Step(
                    "issuer",
                    False,
                    exc.message,
                    url=issuer,
                    fix="the authorization server must use https (plain http only on this "
                    "machine, with allowInsecureLoopback)",
                )
            )
            return None
        urls = authorization_server_metadata_urls(issuer)
        metadata = None
        found_at = ""
        for url in urls:
            metadata, step = await self._get_json(url, "authorization server metadata")
            self.report.add(step)
            if metadata is not None:
                found_at = url
                break
        if metadata is None:
            self.report.add(
                Step(
                    "authorization server metadata",
                    False,
                    f"{issuer} publishes no metadata at {', '.join(urls)}",
                    fix="its operator must publish RFC 8414 (or OpenID) metadata; or set "
                    "oauth.authServerMetadataUrl to where it is",
                )
            )
            return None
        try:
            check_issuer(issuer, metadata)
        except DiscoveryError as exc:
            self.report.add(
                Step(
                    "issuer check",
                    False,
                    exc.message,
                    url=found_at,
                    fix="the authorization server's metadata must name the issuer it was "
                    "fetched for. If you trust this document anyway, set "
                    f"oauth.authServerMetadataUrl to {found_at}",
                )
            )
            return None
        self.report.add(Step("issuer check", True, f"the metadata names {issuer}", url=found_at))
        return metadata

    def _pkce_and_endpoints(self, metadata: dict[str, Any]) -> None:
        from mcpls.auth.discovery import (
            DiscoveryError,
            check_metadata_endpoints,
            require_pkce_s256,
        )

        try:
            require_pkce_s256(metadata)
            self.report.add(Step("PKCE", True, "S256 supported"))
        except DiscoveryError as exc:
            self.report.add(
                Step(
                    "PKCE",
                    False,
                    exc.message,
                    fix="nothing to set in mcpls: MCP forbids signing in without PKCE. The "
                    "authorization server's operator must enable PKCE and list S256 in "
                    "code_challenge_methods_supported",
                )
            )
        missing = [k for k in ("authorization_endpoint", "token_endpoint") if k not in metadata]
        issuer = str(metadata.get("issuer", ""))
        try:
            if missing:
                raise DiscoveryError(f"the metadata has no {' and no '.join(missing)}")
            check_metadata_endpoints(
                issuer, metadata, allow_insecure_loopback=self.insecure, trusted=self.trusted
            )
            self.report.add(
                Step(
                    "endpoints",
                    True,
                    f"authorize at {metadata['authorization_endpoint']}, tokens at "
                    f"{metadata['token_endpoint']}",
                )
            )
        except DiscoveryError as exc:
            self.report.add(
                Step(
                    "endpoints",
                    False,
                    exc.message,
                    fix="the authorization server's endpoints must be https URLs (plain http "
                    "only on this machine, with allowInsecureLoopback)",
                )
            )

    async def _registration(self, metadata: dict[str, Any]) -> None:
        from mcpls.auth.client_auth import SUPPORTED_METHODS
        from mcpls.auth.registration import choose_auth_method, choose_registration

        oauth = self.server.oauth
        issuer = str(metadata.get("issuer", ""))
        redirect_uri = self.oauth.signin.default_redirect_uri()
        cimd = self.settings.client_metadata_document_url
        cimd_supported = metadata.get("client_id_metadata_document_supported") is True
        endpoint = metadata.get("registration_endpoint")
        offered = []
        if oauth.client_id:
            offered.append(f"pre-registered client {oauth.client_id} (oauth.clientId)")
        if cimd_supported:
            offered.append("client ID metadata documents")
        if isinstance(endpoint, str):
            offered.append(f"dynamic registration at {endpoint}")
        stored = await self.oauth.store.load_registration(issuer, redirect_uri)
        choice = choose_registration(
            configured_client_id=oauth.client_id,
            cimd_url=cimd,
            cimd_supported=cimd_supported,
            stored=stored,
            redirect_uri=redirect_uri,
            fresh=False,
            now=time.time(),
        )
        method: str | None = None
        if choice == "preregistered":
            # The binding check serve makes (never binding here): credentials that belong
            # to another authorization server are refused before anything is sent.
            from mcpls.auth.metadata import AuthServer
            from mcpls.auth.registration import preregistered

            server = AuthServer(issuer=issuer, metadata=metadata, resource=None)
            try:
                client = await preregistered(server, oauth, self.oauth.store, bind=False)
            except McplsError as exc:
                self.report.add(
                    Step(
                        "registration",
                        False,
                        exc.message,
                        fix="if the move to this authorization server is expected, add it to "
                        "oauth.trustedIssuers; otherwise check the server's URL",
                    )
                )
                return
            method = client.token_endpoint_auth_method
        if choice == "register" and not isinstance(endpoint, str):
            self.report.add(
                Step(
                    "registration",
                    False,
                    "this server offers no dynamic registration, and no client is configured",
                    fix=f"register an OAuth client at {issuer} with the redirect URI "
                    f"{redirect_uri}, then set oauth.clientId (and oauth.clientSecret for a "
                    "confidential client) for this server in servers.json",
                )
            )
        else:
            used = {
                "preregistered": f"the configured client {oauth.client_id}",
                "cimd": f"the client ID metadata document {cimd}",
                "stored": f"the stored registration (client {stored.client_id if stored else ''})",
                "register": "a new dynamic registration",
            }[choice]
            self.report.add(
                Step(
                    "registration",
                    True,
                    f"offered: {'; '.join(offered) or 'nothing'}; mcpls would use {used}",
                )
            )
        supported = metadata.get("token_endpoint_auth_methods_supported")
        listed = supported if isinstance(supported, list) else None
        method = method or choose_auth_method(listed, oauth.token_endpoint_auth_method)
        usable = listed is None or any(m in SUPPORTED_METHODS for m in listed)
        shown = ", ".join(map(str, listed)) if listed else "not listed (client_secret_basic)"
        self.report.add(
            Step(
                "token endpoint authentication",
                usable or bool(oauth.token_endpoint_auth_method),
                f"supported: {shown}; mcpls would use {method}",
                fix=None
                if usable
                else f"mcpls does {', '.join(SUPPORTED_METHODS)}; register a client with one "
                "of them and set oauth.clientId and oauth.tokenEndpointAuthMethod",
            )
        )

    def _scopes(
        self,
        challenge: BearerChallenge | None,
        prm_scopes: tuple[str, ...] | None,
        metadata: dict[str, Any],
    ) -> None:
        from mcpls.auth.scopes import select_scopes

        supported = metadata.get("scopes_supported")
        tokens = self.oauth.tokens.tokens
        scopes = select_scopes(
            challenge_scope=challenge.scope if challenge else (),
            prm_scopes_supported=prm_scopes,
            as_scopes_supported=tuple(supported) if isinstance(supported, list) else None,
            previously_granted=tokens.scope if tokens else (),
            configured=self.server.oauth.scopes,
        )
        text = " ".join(scopes) if scopes else "none named: the server's default scopes"
        self.report.add(Step("scopes", True, f"would request: {text}"))

    def _redirect_uri(self) -> None:
        from urllib.parse import urlsplit

        uri = self.oauth.signin.default_redirect_uri()
        parts = urlsplit(uri)
        host = parts.hostname or "127.0.0.1"
        address = "127.0.0.1" if host == "localhost" else host
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As the sign-in's listener binds (asyncio sets SO_REUSEADDR): a connection of
            # an earlier sign-in in TIME_WAIT does not make the port busy.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, parts.port or 80))
                free = True
            except OSError:
                free = False
        fixed = bool(self.server.oauth.callback_port or self.server.oauth.redirect_uri)
        if free:
            self.report.add(Step("redirect URI", True, f"{uri} (the port is free)"))
            return
        self.report.add(
            Step(
                "redirect URI",
                False,
                f"{uri}: the port is in use",
                fix="close what uses the port"
                + (", or change oauth.callbackPort" if fixed else "; mcpls would use another"),
                blocking=fixed,
            )
        )

    def _device(self, metadata: dict[str, Any]) -> None:
        from mcpls.auth.device import device_flow_offered

        if device_flow_offered(metadata):
            where = metadata["device_authorization_endpoint"]
            text = f"offered at {where} (mcpls login --device)"
        else:
            text = "not offered: browser sign-in only (or mcpls login --no-browser)"
        self.report.add(Step("device sign-in", True, text))

    async def _stored(self, metadata: dict[str, Any]) -> None:
        from mcpls.auth.tokens import expired

        await self.oauth.load()
        tokens = self.oauth.tokens.tokens
        name = self.server.name
        if tokens is None:
            self.report.add(
                Step("stored sign-in", True, f"none stored; sign in with: mcpls login {name}")
            )
            return
        scopes = " ".join(tokens.scope) or "none listed"
        when = output.relative(tokens.expires_at) if tokens.expires_at else "no expiry given"
        issuer_ok = tokens.issuer == metadata.get("issuer")
        self.report.add(
            Step(
                "stored sign-in",
                issuer_ok,
                f"from {tokens.issuer}, scopes {scopes}, access token {when}",
                fix=None
                if issuer_ok
                else f"it is from another authorization server; mcpls login {name}",
                blocking=False,
            )
        )
        if not tokens.refresh_token:
            gone = expired(tokens, time.time())
            self.report.add(
                Step(
                    "refresh",
                    not gone,
                    "no refresh token: sign in again when the access token expires",
                    fix=f"mcpls login {name}" if gone else None,
                    blocking=False,
                )
            )
            return
        try:
            fresh = await self.oauth.tokens.refresh(tokens, forced=True)
        except McplsError as exc:
            self.report.add(
                Step(
                    "refresh",
                    False,
                    exc.message,
                    url=str(metadata.get("token_endpoint")),
                    method="POST",
                    fix=f"mcpls login {name}",
                    blocking=False,
                )
            )
            return
        if fresh is None:
            self.report.add(
                Step("refresh", False, "the sign-in is gone", fix=f"mcpls login {name}")
            )
            return
        until = output.relative(fresh.expires_at) if fresh.expires_at else ""
        self.report.add(
            Step(
                "refresh",
                True,
                f"works (the new access token expires {until})" if until else "works",
                url=str(metadata.get("token_endpoint")),
                method="POST",
            )
        )


def render(report: Report, stream: Any) -> str:
    """The steps as a person reads them."""
    lines = [f"mcpls doctor: {report.server}" + (f" ({report.url})" if report.url else ""), ""]
    for step in report.steps:
        lines.append(f"{output.mark(step.ok, stream)} {step.step}: {step.detail}")
        if step.url:
            status = f" → HTTP {step.http_status}" if step.http_status is not None else ""
            lines.append(f"    {step.method or ''} {step.url}{status}".replace("     ", "    "))
        if step.fix and not step.ok:
            lines.append(f"    {output.paint('fix:', 'yellow', stream)} {step.fix}")
    lines.append("")
    if not report.sign_in_needed:
        lines.append("No sign-in needed.")
    elif report.sign_in_possible:
        lines.append(f"Sign-in can work: mcpls login {report.server}")
    else:
        lines.append("Sign-in cannot work until each blocking ✗ above is fixed.")
    return "\n".join(lines)
