"""Every input of the committed fuzz corpus through its target, in the suite (issue 10).

The seeds keep the atheris harnesses of tests/fuzz/ working; the `crash-*` inputs are the
defects the fuzzer found, each failing before its fix: deep JSON nesting and 4,300-digit
numbers from a peer, an unhashable JSON-RPC id, a URL httpx cannot encode, a user file that
is not UTF-8, an expiry that overflows a float. Each must now give a value or the parser's
typed refusal (tests/fuzz/targets.py states each contract).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fuzz import targets
from fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"
INPUTS = sorted(path for name in TARGETS for path in (CORPUS / name).iterdir())


@pytest.fixture(scope="module", autouse=True)
def shared_loop() -> Iterator[None]:
    """The targets share one event loop and callback listener; closed after the replay."""
    yield
    targets.close()


def test_every_target_has_seeds_and_nothing_else_is_in_the_corpus() -> None:
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(TARGETS)
    assert all(any((CORPUS / name).iterdir()) for name in TARGETS)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_input_meets_the_parsers_contract(path: Path) -> None:
    TARGETS[path.parent.name](path.read_bytes())
