"""The connection lifecycle as a table: every transition, and the impossible ones."""

from __future__ import annotations

import itertools
from typing import get_args

import pytest

from mcpls.connection import (
    BACKOFF_MAX_S,
    TRANSITIONS,
    Event,
    InvalidTransition,
    State,
    backoff_delay,
    event_for,
    next_state,
)
from mcpls.errors import (
    AuthRequired,
    ConfigInvalid,
    ConnectionFailed,
    InsufficientScope,
    InternalError,
    McplsError,
    ProtocolError,
    SecurityRefusal,
    SignInExpired,
    StorageFailed,
)

EXPECTED: dict[tuple[str, str], str] = {
    ("disabled", "enable"): "connecting",
    ("disabled", "failed"): "error",
    ("connecting", "connected"): "connected",
    ("connecting", "auth_required"): "authRequired",
    ("connecting", "failed"): "error",
    ("connecting", "disable"): "disabled",
    ("connecting", "enable"): "connecting",
    ("connected", "auth_required"): "authRequired",
    ("connected", "failed"): "error",
    ("connected", "disable"): "disabled",
    ("connected", "enable"): "connecting",
    ("connected", "authenticate"): "authenticating",
    ("authRequired", "enable"): "connecting",
    ("authRequired", "disable"): "disabled",
    ("authRequired", "authenticate"): "authenticating",
    ("authRequired", "failed"): "error",
    ("authenticating", "enable"): "connecting",
    ("authenticating", "auth_required"): "authRequired",
    ("authenticating", "failed"): "error",
    ("authenticating", "disable"): "disabled",
    ("error", "enable"): "connecting",
    ("error", "disable"): "disabled",
    ("error", "failed"): "error",
    ("error", "auth_required"): "authRequired",
    ("error", "authenticate"): "authenticating",
    ("disabled", "authenticate"): "authenticating",
    ("connected", "more_scope"): "connected",
    ("connecting", "more_scope"): "authRequired",
    ("authenticating", "more_scope"): "authRequired",
}


@pytest.mark.parametrize(("state", "event"), sorted(EXPECTED))
def test_each_allowed_transition(state: State, event: Event) -> None:
    assert next_state(state, event) == EXPECTED[(state, event)]


def test_table_is_exactly_the_expected_one() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(
    ("state", "event"),
    [pair for pair in itertools.product(get_args(State), get_args(Event)) if pair not in EXPECTED],
)
def test_every_other_pair_is_refused(state: State, event: Event) -> None:
    with pytest.raises(InvalidTransition, match=event):
        next_state(state, event)


def test_a_401_never_loops_back_to_connecting_by_itself() -> None:
    # authRequired is left only by a person's action (enable/authenticate) or disable.
    exits = {event for (state, event) in TRANSITIONS if state == "authRequired"}
    assert exits == {"enable", "disable", "authenticate", "failed"}


def test_backoff_doubles_and_caps() -> None:
    assert [backoff_delay(n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_delay(30) == BACKOFF_MAX_S


@pytest.mark.parametrize(
    ("error", "event"),
    [
        (InsufficientScope("more", required_scopes=("a",)), "more_scope"),
        (AuthRequired("sign in"), "auth_required"),
        (SignInExpired("expired"), "auth_required"),
        (ConnectionFailed("down"), "failed"),
        (ProtocolError("garbage"), "failed"),
        (StorageFailed("disk full"), "failed"),
        (SecurityRefusal("foreign"), "failed"),
        (ConfigInvalid("field"), "failed"),
        (InternalError("bug"), "failed"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, McplsError) else str(value),
)
def test_every_failure_moves_the_state(error: McplsError, event: Event) -> None:
    # Issue 6 #7: a pure mapping from the error to an event, so no failure can leave a
    # server stuck in connecting or authenticating.
    for state in ("connecting", "connected", "authenticating"):
        assert event_for(state, error) == event
        if (state, event) in TRANSITIONS:
            assert next_state(state, event) in ("connected", "authRequired", "error")
