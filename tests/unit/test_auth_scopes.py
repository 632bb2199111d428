"""Scope selection (checklist §1.6, §1.7): one test per rule, the conformance suite's
scope scenarios, and properties that hold for any input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mcpls.auth.scopes import OFFLINE_ACCESS, select_scopes


def test_challenge_scope_wins_over_scopes_supported() -> None:
    # Conformance auth/scope-from-www-authenticate.
    assert select_scopes(
        challenge_scope=("mcp:basic",),
        prm_scopes_supported=("mcp:basic", "mcp:read", "mcp:write"),
        as_scopes_supported=None,
    ) == ("mcp:basic",)


def test_challenge_scope_need_not_be_in_scopes_supported() -> None:
    # "Clients MUST NOT assume any particular set relationship" (2025-11-25).
    assert select_scopes(
        challenge_scope=("files:admin",),
        prm_scopes_supported=("files:read",),
        as_scopes_supported=("files:read",),
    ) == ("files:admin",)


def test_prm_scopes_supported_when_the_challenge_has_none() -> None:
    # Conformance auth/scope-from-scopes-supported.
    assert select_scopes(
        challenge_scope=(),
        prm_scopes_supported=("mcp:basic", "mcp:read", "mcp:write"),
        as_scopes_supported=("other",),
    ) == ("mcp:basic", "mcp:read", "mcp:write")


def test_as_scopes_supported_is_never_the_source() -> None:
    # Conformance auth/scope-omitted-when-undefined; the AS list is not a fallback.
    assert (
        select_scopes(
            challenge_scope=(),
            prm_scopes_supported=None,
            as_scopes_supported=("openid", "profile", "mcp:basic"),
        )
        is None
    )


def test_empty_scopes_supported_omits_scope() -> None:
    assert (
        select_scopes(challenge_scope=(), prm_scopes_supported=(), as_scopes_supported=None) is None
    )


def test_configured_scopes_win() -> None:
    assert select_scopes(
        challenge_scope=("mcp:basic",),
        prm_scopes_supported=("mcp:basic", "mcp:write"),
        as_scopes_supported=None,
        configured=("api://app/.default",),
    ) == ("api://app/.default",)


def test_configured_empty_means_omit() -> None:
    assert (
        select_scopes(
            challenge_scope=("mcp:basic",),
            prm_scopes_supported=("mcp:basic",),
            as_scopes_supported=None,
            configured=(),
        )
        is None
    )


def test_step_up_asks_for_the_union() -> None:
    # Conformance auth/scope-step-up: granted mcp:basic, 403 challenges "mcp:basic mcp:write".
    assert select_scopes(
        challenge_scope=("mcp:basic", "mcp:write"),
        prm_scopes_supported=("mcp:basic",),
        as_scopes_supported=None,
        previously_granted=("mcp:basic",),
    ) == ("mcp:basic", "mcp:write")


def test_step_up_when_only_the_missing_scope_is_challenged() -> None:
    # 2026-07-28 servers challenge only what is missing (SEP-2350); 0.2.x scope-step-up.
    assert select_scopes(
        challenge_scope=("mcp:write",),
        prm_scopes_supported=("mcp:basic", "mcp:write"),
        as_scopes_supported=None,
        previously_granted=("mcp:basic",),
    ) == ("mcp:basic", "mcp:write")


def test_previously_granted_survives_when_nothing_else_is_known() -> None:
    assert select_scopes(
        challenge_scope=(),
        prm_scopes_supported=None,
        as_scopes_supported=None,
        previously_granted=("read",),
    ) == ("read",)


def test_union_is_deduplicated_in_order() -> None:
    assert select_scopes(
        challenge_scope=("b", "a", "c", "a", ""),
        prm_scopes_supported=None,
        as_scopes_supported=None,
        previously_granted=("a", "b", "a"),
    ) == ("a", "b", "c")


def test_offline_access_added_when_the_as_lists_it() -> None:
    # Conformance auth/offline-access-scope.
    assert select_scopes(
        challenge_scope=(),
        prm_scopes_supported=("mcp:basic",),
        as_scopes_supported=("mcp:basic", "offline_access"),
    ) == ("mcp:basic", "offline_access")


def test_offline_access_not_added_when_the_as_does_not_list_it() -> None:
    # Conformance auth/offline-access-not-supported.
    assert select_scopes(
        challenge_scope=(),
        prm_scopes_supported=("mcp:basic",),
        as_scopes_supported=("mcp:basic", "mcp:write"),
    ) == ("mcp:basic",)
    assert select_scopes(
        challenge_scope=("mcp:basic",), prm_scopes_supported=None, as_scopes_supported=None
    ) == ("mcp:basic",)


def test_offline_access_not_doubled() -> None:
    assert select_scopes(
        challenge_scope=("offline_access", "mcp:basic"),
        prm_scopes_supported=None,
        as_scopes_supported=("offline_access",),
    ) == ("offline_access", "mcp:basic")
    assert select_scopes(
        challenge_scope=("mcp:write",),
        prm_scopes_supported=None,
        as_scopes_supported=("offline_access",),
        previously_granted=("mcp:basic", "offline_access"),
    ) == ("mcp:basic", "offline_access", "mcp:write")


def test_offline_access_alone_is_never_requested() -> None:
    # Omitting `scope` gets the AS's default grant; "offline_access" alone would not.
    assert (
        select_scopes(
            challenge_scope=(),
            prm_scopes_supported=None,
            as_scopes_supported=("offline_access", "openid"),
        )
        is None
    )


def test_offline_access_not_added_to_configured_scopes() -> None:
    assert select_scopes(
        challenge_scope=(),
        prm_scopes_supported=None,
        as_scopes_supported=("offline_access", "read"),
        configured=("read",),
    ) == ("read",)


scope_lists = st.lists(st.sampled_from(["a", "b", "c", "mcp:x", OFFLINE_ACCESS]), max_size=5)


@given(
    challenge=scope_lists,
    prm=st.none() | scope_lists,
    as_=st.none() | scope_lists,
    granted=scope_lists,
    configured=st.none() | scope_lists,
)
def test_properties(
    challenge: list[str],
    prm: list[str] | None,
    as_: list[str] | None,
    granted: list[str],
    configured: list[str] | None,
) -> None:
    result = select_scopes(
        challenge_scope=challenge,
        prm_scopes_supported=prm,
        as_scopes_supported=as_,
        previously_granted=granted,
        configured=configured,
    )
    if result is None:
        assert not granted
        return
    assert result  # never an empty tuple: None is the one way to say "omit"
    assert len(set(result)) == len(result)
    assert set(granted) <= set(result)
    if configured is not None:
        assert set(result) == set(granted) | set(configured)
    elif challenge:
        assert set(challenge) <= set(result)
        assert set(result) <= set(challenge) | set(granted) | {OFFLINE_ACCESS}
    if OFFLINE_ACCESS in result:
        came_with_the_input = OFFLINE_ACCESS in [
            *granted,
            *challenge,
            *(prm or ()),
            *(configured or ()),
        ]
        assert came_with_the_input or (as_ is not None and OFFLINE_ACCESS in as_)
