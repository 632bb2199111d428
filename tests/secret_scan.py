"""pytest plugin: no secret a test's peers issued or received may reach what mcpls shows.

Loaded by tests/conftest.py for every test. An autouse fixture gives each test a ledger file
($MCPLS_TEST_LEDGER, inherited by every peer; see tests/peers/ledger.py) to which the
peers append every token (access, refresh, id), client secret, authorization code, PKCE
code verifier, device code and MCP session id they issue or receive; the token files mcpls
stored under the test's data dir are added to it. When the test ends (after its fixtures
stopped every process), one pass per text looks for any of them in:

- mcpls's logs and output files: every `*.log`, `*.stderr`, `*.stdout`, `stderr.txt`
  under the test's tmp_path (`mcpls serve --log-file`, `mcpls proxy`'s stderr, the
  conformance adapter's stderr) and mcpls's state dir, except the peers' own logs
  (tmp_path/peers/, where secrets legitimately live; mcp-remote's, the client mcpls proxy
  is compared with, too);
- what the harnesses saw and registered with `watch` or `observe`: the editor's log
  messages, statuses, messages, prompts, opened documents and JSON-RPC error messages
  (tests/e2e/conftest.py), the terminal commands' stdout and stderr (tests/terminal);
- the message of every `McplsError` raised in the test process;
- pytest's captured stdout, stderr and log of every phase, and the text of a failure.

A leak fails the test (an error at teardown) naming the kind, the peer, the place and the
offset, with the value masked; a failure report or captured output that carried one is
masked before pytest prints it. The token store and the peers' logs are the only places
not scanned.

The editors' tests (tests/clients) too: VS Code's "mcpls" output channel, which traces every
LSP message in both directions, and its other logs are files under the test's folder;
Neovim's own LSP log is under its XDG state dir there, and what Neovim printed and what its
scripts kept of what they saw are registered with `observe`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mcpls.errors import McplsError
from peers.ledger import LEDGER_ENV, MIN_LENGTH
from peers.managed import PEER_SECTION

# What a harness hands over: (where, text) pairs, read when the test ends.
Texts = Iterable[tuple[str, str]]
# Files mcpls writes its log or output to (by --log-file or a test's redirection; the
# conformance suite keeps the adapter's stderr, mcpls's messages, in stderr.txt).
OUTPUT_SUFFIXES = (".log", ".stderr", ".stdout")
OUTPUT_NAMES = ("stderr.txt",)
# The peers' own output, under tmp_path (tests/peers/managed.py, tests/peers/oauth/).
PEER_LOGS = "peers"
# Fields of mcpls's token files that hold a secret.
STORED_FIELDS = {
    "access_token": "access token",
    "refresh_token": "refresh token",
    "id_token": "id token",
    "client_secret": "client secret",
}
# Characters of text shown on each side of a leak.
CONTEXT = 40
# `MCPLS_SECRET_SCAN_DEBUG=1`: a leak hunt. mcpls logs at debug level, in the test process
# (its records scanned) and in the editors' `mcpls serve` (tests/e2e/conftest.py). Off by
# default: debug logs make the suite slower and its failure reports longer.
DEBUG_HUNT = os.environ.get("MCPLS_SECRET_SCAN_DEBUG") == "1"


@dataclass(frozen=True)
class Secret:
    """One value a peer issued or received: what it is, and who recorded it."""

    kind: str
    value: str
    peer: str

    @property
    def label(self) -> str:
        return f"<{self.kind} from {self.peer}>"


@dataclass(frozen=True)
class Leak:
    """A secret found in a text mcpls showed."""

    secret: Secret
    where: str
    offset: int
    context: str

    def describe(self) -> str:
        """One line, the value itself masked."""
        return (
            f"{self.secret.kind} (issued or received by {self.secret.peer}) in {self.where} "
            f"at offset {self.offset}: …{self.context}…"
        )


class Scanner:
    """Finds any of a set of secrets in a text, in one regex pass."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        self.secrets: dict[str, Secret] = {}
        for secret in secrets:
            if len(secret.value) >= MIN_LENGTH:
                self.secrets.setdefault(secret.value, secret)
        # Longest first: a value that contains another is reported as itself.
        values = sorted(self.secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def scan(self, where: str, text: str) -> list[Leak]:
        """Every occurrence of a secret in `text`, masked in its context."""
        if self._pattern is None:
            return []
        leaks = []
        for found in self._pattern.finditer(text):
            start, end = found.span()
            before = self.mask(text[max(0, start - CONTEXT) : start])
            after = self.mask(text[end : end + CONTEXT])
            secret = self.secrets[found.group()]
            context = f"{before}{secret.label}{after}".replace("\n", "⏎")
            leaks.append(Leak(secret, where, start, context))
        return leaks

    def mask(self, text: str) -> str:
        """`text` with every secret replaced by what it is."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda found: self.secrets[found.group()].label, text)


def read_ledger(path: Path) -> list[Secret]:
    """The secrets the peers appended to a ledger file (none if there is none yet)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    secrets = []
    for line in lines:
        try:
            entry = json.loads(line)
            secrets.append(Secret(str(entry["kind"]), str(entry["value"]), str(entry["peer"])))
        except (ValueError, KeyError, TypeError):
            continue  # a line being written as the test ended: its peer wrote nothing else
    return secrets


def stored_secrets(data_home: Path) -> list[Secret]:
    """Tokens and client secrets in mcpls's token files (file storage) under `data_home`."""
    found: list[Secret] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in STORED_FIELDS and isinstance(inner, str):
                    found.append(Secret(STORED_FIELDS[key], inner, "mcpls's token store"))
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for path in data_home.glob("mcpls/**/*.json"):
        try:
            walk(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # replaced at this instant: the ledger has what the peers issued
    return found


@dataclass
class Totals:
    """Figures over the session, printed in the terminal summary."""

    tests: int = 0
    tests_with_secrets: int = 0
    secrets: Counter[str] = field(default_factory=Counter)
    texts: int = 0
    characters: int = 0
    seconds: float = 0.0
    leaks: int = 0


TOTALS = Totals()


class TestScan:
    """One test's ledger and the texts registered for its scan."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, root: Path, xdg: Path) -> None:
        self.root = root
        self.xdg = xdg
        self.ledger = root / "secrets.ledger"
        self.watched: list[Callable[[], Texts]] = []
        self.observed: list[tuple[str, str]] = []
        self.masked_failures: list[Leak] = []

    def scanner(self) -> Scanner:
        return Scanner([*read_ledger(self.ledger), *stored_secrets(self.xdg / "data")])

    def output_files(self) -> Iterator[Path]:
        peers = self.root / PEER_LOGS
        for path in sorted(self.root.rglob("*")):
            output = path.suffix in OUTPUT_SUFFIXES or path.name in OUTPUT_NAMES
            if output and peers not in path.parents and path.is_file():
                yield path
        state = self.xdg / "state" / "mcpls"
        if state.is_dir():
            yield from (path for path in sorted(state.rglob("*")) if path.is_file())

    def texts(self, sections: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
        """Every text of this test to scan."""
        for path in self.output_files():
            yield f"file {path.relative_to(self.root)}", path.read_text(errors="replace")
        for supplier in self.watched:
            yield from supplier()
        yield from self.observed
        for title, content in sections:
            if not title.startswith(f"Captured {PEER_SECTION} "):
                yield f"pytest's {title.lower()}", content


_current: TestScan | None = None


class _Records(logging.Handler):
    """Keeps the formatted records of mcpls's loggers in the test process (leak hunt)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def texts(self) -> list[tuple[str, str]]:
        return [("mcpls's debug log in the test process", "\n".join(self.lines))]


def watch(supplier: Callable[[], Texts]) -> None:
    """Scan the (where, text) pairs `supplier` returns when the current test ends."""
    if _current is not None:
        _current.watched.append(supplier)


def observe(where: str, text: str) -> None:
    """Scan `text` (something mcpls showed, found at `where`) when the current test ends."""
    if _current is not None:
        _current.observed.append((where, text))


def plant(kind: str, value: str, peer: str = "the test") -> None:
    """Add a secret of the test's own making (a fixed client secret) to its ledger."""
    from peers.ledger import record

    record(kind, value, peer)


SCAN_KEY = pytest.StashKey[TestScan]()


@pytest.fixture(autouse=True)
def secret_ledger(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    isolated_dirs: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """This test's ledger; its peers inherit the path (see the module docstring)."""
    global _current
    scan = TestScan(tmp_path, isolated_dirs)
    request.node.stash[SCAN_KEY] = scan
    monkeypatch.setenv(LEDGER_ENV, str(scan.ledger))
    original = McplsError.__init__

    def observing(self: McplsError, message: str, *args: Any, **kwargs: Any) -> None:
        original(self, message, *args, **kwargs)
        observe(f"the message of {type(self).__name__}", message)

    monkeypatch.setattr(McplsError, "__init__", observing)
    _current = scan
    if not DEBUG_HUNT:
        yield scan.ledger
        _current = None
        return
    records, logger = _Records(), logging.getLogger("mcpls")
    level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    watch(records.texts)
    try:
        yield scan.ledger
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
        _current = None


def _mask_report(report: pytest.TestReport, scanner: Scanner) -> list[Leak]:
    """Leaks in a report's failure text and sections; both masked in place."""
    leaks: list[Leak] = []
    if report.failed and report.longrepr is not None:
        text = str(report.longrepr)
        found = scanner.scan(f"the failure report of {report.when}", text)
        if found:
            leaks += found
            report.longrepr = scanner.mask(text)
    masked = []
    for title, content in report.sections:
        masked.append((title, scanner.mask(content)))
    report.sections = masked
    return leaks


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    scan = item.stash.get(SCAN_KEY, None)
    if scan is not None and report.when == "teardown":
        scan_test(scan, report)
    elif scan is not None and report.failed:  # masked before pytest prints it
        scan.masked_failures += _mask_report(report, scan.scanner())
    return report


def scan_test(scan: TestScan, report: pytest.TestReport) -> None:
    """The scan at the end of a test: fails its teardown report if anything leaked."""
    started = time.perf_counter()
    scanner = scan.scanner()
    TOTALS.tests += 1
    leaks = list(scan.masked_failures)
    if scanner:
        TOTALS.tests_with_secrets += 1
        TOTALS.secrets.update(secret.kind for secret in scanner.secrets.values())
        for where, text in scan.texts(report.sections):
            TOTALS.texts += 1
            TOTALS.characters += len(text)
            leaks += scanner.scan(where, text)
        leaks += _mask_report(report, scanner)
    TOTALS.seconds += time.perf_counter() - started
    if leaks:
        TOTALS.leaks += len(leaks)
        lines = "\n".join(f"- {leak.describe()}" for leak in leaks[:20])
        more = f"\n(and {len(leaks) - 20} more)" if len(leaks) > 20 else ""
        report.outcome = "failed"
        report.longrepr = (
            f"secret scan: {len(leaks)} secret(s) the peers issued or received reached "
            f"what mcpls shows (values masked; see tests/secret_scan.py):\n{lines}{more}"
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TOTALS.tests == 0:
        return
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(TOTALS.secrets.items()))
    terminalreporter.write_line(
        f"secret scan: {TOTALS.tests} tests, {TOTALS.tests_with_secrets} with secrets "
        f"({sum(TOTALS.secrets.values())}: {kinds or 'none'}); {TOTALS.texts} texts, "
        f"{TOTALS.characters} characters scanned in {TOTALS.seconds:.2f} s; "
        f"{TOTALS.leaks} leak(s)"
    )
