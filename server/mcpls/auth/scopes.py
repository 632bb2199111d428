"""Which scopes to ask for: MCP authorization "Scope Selection Strategy" (2025-11-25),
"Scope Challenge Handling" / step-up (2025-11-25, union per 2026-07-28 SEP-2350) and
"Refresh Tokens" (2026-07-28 SEP-2207). A pure function over what discovery found.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["OFFLINE_ACCESS", "select_scopes"]

# OIDC Core §11: the scope that asks for a refresh token on many authorization servers.
OFFLINE_ACCESS = "offline_access"


def select_scopes(
    *,
    challenge_scope: Sequence[str],
    prm_scopes_supported: Sequence[str] | None,
    as_scopes_supported: Sequence[str] | None,
    previously_granted: Sequence[str] = (),
    configured: Sequence[str] | None = None,
    required: Sequence[str] = (),
) -> tuple[str, ...] | None:
    """The scopes for an authorization request, or None to omit the `scope` parameter.

    Order is kept and duplicates dropped, so that the same inputs always give the same
    request. `configured` is the person's explicit choice and is sent as given (plus what
    was already granted); otherwise the MCP priority order applies. `required` is what a
    403 `insufficient_scope` named (step-up): it is always asked for, configured scopes
    or not, because the server said this operation needs it.
    """
    base: Sequence[str] | None
    if configured is not None:
        # mcpls setting `oauth.scopes`: an explicit choice beats every discovered value.
        base = configured
    elif challenge_scope:
        # MCP 2025-11-25 Scope Selection Strategy 1: the challenge's scope is authoritative.
        base = challenge_scope
    elif prm_scopes_supported is not None:
        # Strategy 2: all of PRM `scopes_supported` (RFC 9728 §2), never the AS's list.
        base = prm_scopes_supported
    else:
        # Strategy 2: "omitting the scope parameter if scopes_supported is undefined".
        base = None

    # Step-up (MCP 2026-07-28 SEP-2350): ask for the union with what was granted before.
    # Step-up (MCP 2025-11-25 §Scope Challenge Handling): the scopes the 403 named are
    # "authoritative for satisfying the current request", with or without configured ones.
    scopes = [s for s in dict.fromkeys((*previously_granted, *(base or ()), *required)) if s]
    if not scopes:
        # Nothing to ask for: omit `scope` and let the AS apply its default (RFC 6749 §3.3);
        # offline_access alone would narrow the grant to a refresh token for nothing.
        return None

    # MCP 2026-07-28 Refresh Tokens: MAY add offline_access only when the AS lists it;
    # never to an explicit configuration, which says exactly what to ask for.
    if (
        configured is None
        and as_scopes_supported is not None
        and OFFLINE_ACCESS in as_scopes_supported
        and OFFLINE_ACCESS not in scopes
    ):
        scopes.append(OFFLINE_ACCESS)
    return tuple(scopes)
