"""The user's browser, for tests: opens an authorization URL and does what a person would.

It follows redirects one hop at a time (each hop must stay on a loopback host), keeps
cookies like a browser, signs in and consents on HTML forms (oidc-provider's
devInteractions: a login form, then a consent form), and stops at the first request that
reaches the client's redirect URI: that request is made for real, so a loopback listener
run by the client receives the callback. The authorization servers that approve at once
(the Python and TypeScript SDK ones) simply redirect to the callback.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_STEPS = 20
# oidc-provider's devInteractions accept any password; the SDK servers ask for none.
ANY_PASSWORD = "correct horse"


class UnsafeRedirect(AssertionError):
    """The authorization server sent the browser somewhere other than this machine."""


class BrowserStuck(AssertionError):
    """A page the browser cannot act on: an error status, or no redirect and no form."""


@dataclass(frozen=True)
class BrowserResult:
    """The request that reached the client's redirect URI, and what the client answered."""

    callback_url: str
    status: int
    text: str
    method: str = "GET"
    # Parameters the browser posted (response_mode=form_post); empty for a GET callback.
    form: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, str]:
        """The authorization response: `code`, `state`, `iss` or `error`…"""
        return dict(parse_qsl(urlsplit(self.callback_url).query)) | self.form


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (name, type, value)


class FormParser(HTMLParser):
    """Collects the forms of a page with their input and named button fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            method = attributes.get("method", "get").lower()
            self.forms.append(Form(attributes.get("action", ""), method))
            self._in_form = True
        elif self._in_form and tag in ("input", "button") and attributes.get("name"):
            kind = attributes.get("type", "text" if tag == "input" else "submit").lower()
            self.forms[-1].fields.append((attributes["name"], kind, attributes.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def fill(form: Form, *, login: str, password: str) -> dict[str, str]:
    """What a person submits: the hidden values, a login, a password, the first button."""
    data: dict[str, str] = {}
    pressed = False
    for name, kind, value in form.fields:
        if kind == "password":
            data[name] = password
        elif kind in ("text", "email") and name in ("login", "username", "email", "user"):
            data[name] = login
        elif kind == "submit":
            if not pressed:
                data[name], pressed = value, True
        elif kind not in ("checkbox", "radio", "button", "reset", "image", "file"):
            data[name] = value
    return data


class Browser:
    """One browser profile: its cookie jar (so the user's sign-in at an authorization
    server lasts across authorizations) and who the user signs in as."""

    def __init__(
        self, *, login: str = "alice", password: str = ANY_PASSWORD, timeout: float = 10.0
    ) -> None:
        self.login = login
        self.password = password
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=timeout)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.http.aclose()

    async def authorize(self, url: str, *, deliver: bool = True) -> BrowserResult:
        """Open the authorization `url`, sign in and consent when asked, and deliver the
        authorization response to the redirect URI named in `url`. Without `deliver`, the
        browser stops before the redirect URI (its loopback is out of reach, as over SSH):
        the result's `callback_url` is the address a person would paste back (status 0).

        Raises `UnsafeRedirect` before any request to a non-loopback URL and `BrowserStuck`
        on a page that neither redirects nor offers a form.
        """
        redirect_uri = dict(parse_qsl(urlsplit(url).query)).get("redirect_uri")
        authorization_server = _origin(url)

        def is_callback(target: str) -> bool:
            if redirect_uri is not None:
                want, got = urlsplit(redirect_uri), urlsplit(target)
                return (want.scheme, want.netloc, want.path) == (got.scheme, got.netloc, got.path)
            return _origin(target) != authorization_server

        method, target, data = "GET", url, None
        for _ in range(MAX_STEPS):
            if not is_loopback(target):
                raise UnsafeRedirect(f"refusing to {method} a non-loopback URL: {target}")
            if not deliver and is_callback(target):
                return BrowserResult(target, 0, "", method, dict(data or {}))
            response = await self.http.request(method, target, data=data)
            if is_callback(target):
                return BrowserResult(
                    target, response.status_code, response.text, method, dict(data or {})
                )
            if response.is_redirect:
                # 303 (and 302 in practice) turn a POST into a GET; 307/308 keep it.
                method = method if response.status_code in (307, 308) else "GET"
                data = data if method == "POST" else None
                target = urljoin(target, response.headers["location"])
                continue
            if response.status_code != 200:
                raise BrowserStuck(
                    f"{method} {target} answered {response.status_code}: {response.text[:500]}"
                )
            parser = FormParser()
            parser.feed(response.text)
            if not parser.forms:
                raise BrowserStuck(f"{target} has no form to submit: {response.text[:500]}")
            form = parser.forms[0]
            method = "POST" if form.method == "post" else "GET"
            data = fill(form, login=self.login, password=self.password)
            target = urljoin(target, form.action or target)
            if method == "GET":
                target, data = str(httpx.URL(target, params=data)), None
        raise BrowserStuck(f"no callback after {MAX_STEPS} steps from {url}")

    async def approve_device(
        self, url: str, *, user_code: str | None = None, deny: bool = False
    ) -> str:
        """Open a device sign-in's verification `url` (RFC 8628 §3.3), type `user_code`
        where the page asks for one, sign in, consent and confirm, until a page with no
        form is left (the authorization server's "done" page), whose text is returned.
        With `deny`, press the confirmation page's abort button instead (oidc-provider's
        `abort`) and return the page that follows."""
        method, target, data = "GET", url, None
        for _ in range(MAX_STEPS):
            if not is_loopback(target):
                raise UnsafeRedirect(f"refusing to {method} a non-loopback URL: {target}")
            response = await self.http.request(method, target, data=data)
            if response.is_redirect:
                method = method if response.status_code in (307, 308) else "GET"
                data = data if method == "POST" else None
                target = urljoin(target, response.headers["location"])
                continue
            if response.status_code != 200:
                raise BrowserStuck(
                    f"{method} {target} answered {response.status_code}: {response.text[:500]}"
                )
            parser = FormParser()
            parser.feed(response.text)
            if not parser.forms:
                return response.text
            form = parser.forms[0]
            method = "POST" if form.method == "post" else "GET"
            data = fill(form, login=self.login, password=self.password)
            if user_code is not None and "user_code" in data and not data["user_code"]:
                data["user_code"] = user_code
            target = urljoin(target, form.action or target)
            if deny and "confirm" in data:
                del data["confirm"]
                data["abort"] = "yes"
                return (await self.http.request(method, target, data=data)).text
            if method == "GET":
                target, data = str(httpx.URL(target, params=data)), None
        raise BrowserStuck(f"the device sign-in did not finish after {MAX_STEPS} steps")


async def authorize_in_browser(
    url: str,
    *,
    login: str = "alice",
    password: str = ANY_PASSWORD,
    timeout: float = 10.0,
    deliver: bool = True,
) -> BrowserResult:
    """`Browser.authorize` in a fresh browser profile (nobody signed in anywhere yet)."""
    async with Browser(login=login, password=password, timeout=timeout) as browser:
        return await browser.authorize(url, deliver=deliver)


async def signs_in(url: str) -> bool:
    """The editor harness's `browser` callback: the sign-in page opened at `url` was
    approved and the callback answered 200."""
    return (await authorize_in_browser(url)).status == 200


async def approve_device_in_browser(
    url: str, *, user_code: str | None = None, deny: bool = False
) -> str:
    """`Browser.approve_device` in a fresh browser profile."""
    async with Browser() as browser:
        return await browser.approve_device(url, user_code=user_code, deny=deny)
