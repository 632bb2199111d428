"""WWW-Authenticate parsing (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1): the headers
real MCP servers and the conformance suite send, the RFC's own examples, garbage, and
round trips of generated challenges."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpls.auth.challenge import (
    BearerChallenge,
    Challenge,
    MalformedChallenge,
    find_bearer_challenge,
    parse_www_authenticate,
)

PRM = "http://localhost:45297/.well-known/oauth-protected-resource/mcp"


# --- The conformance suite's headers (checklist §1.1, §2.6, §2.7) -------------------


def test_conformance_missing_token_challenge() -> None:
    header = (
        'Bearer error="invalid_token", error_description="Missing Authorization header", '
        f'resource_metadata="{PRM}"'
    )
    assert find_bearer_challenge(header) == BearerChallenge(
        resource_metadata=PRM,
        scope=(),
        error="invalid_token",
        error_description="Missing Authorization header",
    )


def test_conformance_step_up_challenge_in_another_order() -> None:
    header = (
        f'Bearer scope="mcp:basic mcp:write", resource_metadata="{PRM}", error="insufficient_scope"'
    )
    challenge = find_bearer_challenge(header)
    assert challenge is not None
    assert challenge.scope == ("mcp:basic", "mcp:write")
    assert challenge.resource_metadata == PRM
    assert challenge.error == "insufficient_scope"
    assert challenge.error_description is None
    assert challenge.insufficient_scope


def test_conformance_scope_only_challenge() -> None:
    header = f'Bearer scope="mcp:basic", resource_metadata="{PRM}"'
    challenge = find_bearer_challenge(header)
    assert challenge == BearerChallenge(PRM, ("mcp:basic",), None, None)
    assert not challenge.insufficient_scope


def test_bearer_without_parameters() -> None:
    assert find_bearer_challenge("Bearer") == BearerChallenge(None, (), None, None)


# --- RFC 9110 syntax ----------------------------------------------------------------


def test_rfc_example_with_two_challenges_and_an_escaped_quote() -> None:
    # RFC 9110 §11.6.1's example.
    header = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    assert parse_www_authenticate(header) == [
        Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        Challenge("basic", {"realm": "simple"}),
    ]


def test_several_header_values_are_one_list() -> None:
    values = ['Basic realm="x"', 'Bearer scope="a b", error=insufficient_scope']
    assert parse_www_authenticate(values) == [
        Challenge("basic", {"realm": "x"}),
        Challenge("bearer", {"scope": "a b", "error": "insufficient_scope"}),
    ]
    assert find_bearer_challenge(values) == BearerChallenge(
        None, ("a", "b"), "insufficient_scope", None
    )


def test_scheme_and_parameter_names_are_case_insensitive() -> None:
    challenge = find_bearer_challenge('BEARER Resource_Metadata="https://x/m", SCOPE=read')
    assert challenge == BearerChallenge("https://x/m", ("read",), None, None)
    parsed = parse_www_authenticate('bEaReR Realm="Mixed Case Value"')
    assert parsed == [Challenge("bearer", {"realm": "Mixed Case Value"})]


def test_whitespace_around_equals_and_commas_and_empty_elements() -> None:
    header = ' ,, Bearer   scope = "a" ,\t, error\t=\tinvalid_token , ,Basic realm= "r" ,'
    assert parse_www_authenticate(header) == [
        Challenge("bearer", {"scope": "a", "error": "invalid_token"}),
        Challenge("basic", {"realm": "r"}),
    ]


def test_token68_and_scheme_only_challenges() -> None:
    header = "Negotiate YIIB+w==, NTLM, Bearer realm=x, Basic"
    assert parse_www_authenticate(header) == [
        Challenge("negotiate", token68="YIIB+w=="),
        Challenge("ntlm"),
        Challenge("bearer", {"realm": "x"}),
        Challenge("basic"),
    ]


def test_the_first_bearer_challenge_wins() -> None:
    header = 'Basic realm="x", Bearer scope="first", Bearer scope="second"'
    challenge = find_bearer_challenge(header)
    assert challenge is not None
    assert challenge.scope == ("first",)


def test_no_bearer_challenge() -> None:
    assert find_bearer_challenge('Basic realm="x", Digest realm="y", nonce="n"') is None
    assert find_bearer_challenge([]) is None
    assert find_bearer_challenge("") is None


def test_quoted_pairs_unescape_any_character() -> None:
    parsed = parse_www_authenticate(r'Bearer error_description="a\\b \"q\" \x, ok"')
    assert parsed[0].params["error_description"] == 'a\\b "q" x, ok'


def test_commas_and_equals_inside_quotes_are_data() -> None:
    header = 'Bearer error_description="a=1, Basic realm=2", scope="s"'
    challenge = find_bearer_challenge(header)
    assert challenge == BearerChallenge(None, ("s",), None, "a=1, Basic realm=2")


def test_non_ascii_in_quoted_string() -> None:
    parsed = parse_www_authenticate('Bearer error_description="Zugriff verweigert: ñ, ü, 日本"')
    assert parsed[0].params["error_description"] == "Zugriff verweigert: ñ, ü, 日本"


def test_scope_tokens_are_split_on_any_whitespace_and_deduplicated() -> None:
    challenge = find_bearer_challenge('Bearer scope="  read\twrite  read "')
    assert challenge is not None
    assert challenge.scope == ("read", "write")


def test_empty_values_count_as_absent() -> None:
    challenge = find_bearer_challenge('Bearer resource_metadata="", error="", scope=""')
    assert challenge == BearerChallenge(None, (), None, None)


def test_from_challenge_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="not a Bearer challenge"):
        BearerChallenge.from_challenge(Challenge("basic", {"realm": "x"}))


def test_challenge_normalizes_however_built() -> None:
    built = Challenge("Bearer", {"Scope": "x"})
    assert built.scheme == "bearer"
    assert dict(built.params) == {"scope": "x"}
    assert hash(built) == hash(Challenge("bearer", {"scope": "y"}))  # hashable despite params


# --- Garbage ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ('Bearer realm="unterminated', "not terminated"),
        ('Bearer realm="x", error=', "'error' has no value"),
        ('Bearer realm="x", error= , scope="y"', "'error' has no value"),
        ('realm="x"', "comes before any scheme"),
        ('Bearer realm="x" error="y"', "expected a comma after the parameter 'realm'"),
        ('Bearer"x"', "expected a space after the scheme 'Bearer'"),
        ('Bearer realm="a", Realm="b"', "'Realm' appears twice"),
        ('Bearer realm="bad\\', "escapes nothing"),
        ('Bearer realm="a\x01b"', "control character"),
        ("Bearer @@@", "expected parameters or a token68"),
        ('"Bearer"', "expected an authentication scheme"),
        ("Bearer abc==def", "'abc' has no value"),
    ],
)
def test_malformed_headers_say_what_is_wrong(header: str, words: str) -> None:
    with pytest.raises(MalformedChallenge, match="malformed WWW-Authenticate") as caught:
        parse_www_authenticate(header)
    assert words in str(caught.value)


def test_a_malformed_challenge_keeps_every_parameter_that_parses() -> None:
    # Issue 6 #16: one non-conforming parameter used to throw away resource_metadata.
    assert find_bearer_challenge(['Basic realm="x"', 'Bearer scope="oops']) == BearerChallenge(
        None, ("oops",), None, None
    )
    found = find_bearer_challenge(
        "Bearer resource_metadata=https://rs.example/.well-known/oauth-protected-resource, "
        "error_description=Missing token, error=invalid_token"
    )
    assert found == BearerChallenge(
        "https://rs.example/.well-known/oauth-protected-resource",
        (),
        "invalid_token",
        "Missing token",
    )


def test_the_lenient_reading_stops_at_the_next_challenge_and_drops_control_characters() -> None:
    found = find_bearer_challenge(
        'Bearer scope=a b, resource_metadata="https://x.example/m", Basic realm=y, z'
    )
    assert found is not None
    assert found.scope == ("a", "b")
    assert found.resource_metadata == "https://x.example/m"
    injected = find_bearer_challenge('Bearer error="x\r\nSet-Cookie: a", scope=ok b')
    assert injected is not None
    assert injected.error is None  # the one with a line break is dropped
    assert injected.scope == ("ok", "b")


@given(st.text(max_size=200))
def test_find_bearer_challenge_never_raises(text: str) -> None:
    found = find_bearer_challenge(text)
    assert found is None or isinstance(found, BearerChallenge)


def test_lone_parameter_without_value_is_a_token68_by_the_grammar() -> None:
    # RFC 9110 §11.2: `token68 = 1*(...) *"="`, so "Bearer error=" is a token68, not a
    # parameter; the Bearer challenge then simply has no parameters.
    assert parse_www_authenticate("Bearer error=") == [Challenge("bearer", token68="error=")]
    assert find_bearer_challenge("Bearer error=") == BearerChallenge(None, (), None, None)


@pytest.mark.parametrize(
    "header",
    [
        'Bearer realm="' + "x" * 10_000,
        "Bearer " + "y" * 10_000 + '="',
        "Bearer a=b " + "z" * 10_000,
        "S" * 10_000 + '="x"',
    ],
)
def test_error_messages_quote_little_of_the_header(header: str) -> None:
    with pytest.raises(MalformedChallenge) as caught:
        parse_www_authenticate(header)
    message = str(caught.value)
    assert len(message) < 200
    for char in "xyz":
        assert char * 81 not in message


# --- Properties ---------------------------------------------------------------------

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
TOKEN68_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/"
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
# qdtext and quoted-pair allow HTAB, SP, every visible ASCII character and non-ASCII.
quoted_values = st.text(
    alphabet=st.characters(
        codec="utf-8",
        exclude_categories=("Cc", "Cs"),
        include_characters="\t",
    ),
    max_size=20,
)
ows = st.sampled_from(["", " ", "  ", "\t", " \t "])


@st.composite
def rendered_value(draw: st.DrawFn, value: str) -> str:
    """`value` as a token where that is allowed and chosen, else as a quoted-string with
    the required escapes and, at random, needless ones (RFC 9110 §5.6.4)."""
    if value and all(c in TCHARS for c in value) and draw(st.booleans()):
        return value
    out = []
    for char in value:
        must = char in '"\\'
        may = char != "\t" and char.isprintable() and draw(st.booleans())
        out.append("\\" + char if must or may else char)
    return '"' + "".join(out) + '"'


def random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.swapcase() if f else c for c, f in zip(text, flips, strict=True))


@st.composite
def challenges(draw: st.DrawFn) -> tuple[Challenge, str]:
    """A challenge and one of its many spellings."""
    scheme = draw(tokens)
    kind = draw(st.sampled_from(["bare", "token68", "params"]))
    spelled = random_case(draw, scheme)
    if kind == "bare":
        return Challenge(scheme), spelled
    if kind == "token68":
        body = draw(st.text(alphabet=TOKEN68_CHARS, min_size=1, max_size=16))
        token68 = body + "=" * draw(st.integers(0, 2))
        return Challenge(
            scheme, token68=token68
        ), f"{spelled}{draw(st.sampled_from([' ', '  ']))}{token68}"
    names = draw(st.lists(tokens, min_size=1, max_size=5, unique_by=lambda name: name.lower()))
    values = [draw(quoted_values) for _ in names]
    parts = []
    for name, value in zip(names, values, strict=True):
        separator = draw(ows) + "=" + draw(ows)
        parts.append(random_case(draw, name) + separator + draw(rendered_value(value)))
    body = "".join(
        (draw(ows) + "," + draw(ows)) * draw(st.integers(1, 2)) + part if i else part
        for i, part in enumerate(parts)
    )
    expected = Challenge(scheme, dict(zip(names, values, strict=True)))
    return expected, f"{spelled} {draw(ows)}{body}"


@st.composite
def headers(draw: st.DrawFn) -> tuple[list[Challenge], list[str]]:
    """Several challenges, spread over one or more header values, with empty elements."""
    drawn = draw(st.lists(challenges(), min_size=1, max_size=4))
    expected = [challenge for challenge, _ in drawn]
    values: list[str] = []
    current: list[str] = []
    for _, text in drawn:
        current.append(text)
        if draw(st.booleans()):
            values.append(", ".join(current))
            current = []
    if current:
        values.append(", ".join(current))
    padded = [draw(st.sampled_from(["", " ", ", "])) + v + draw(ows) for v in values]
    return expected, padded


@given(headers())
@settings(max_examples=400, deadline=None)
def test_round_trip(case: tuple[list[Challenge], list[str]]) -> None:
    expected, values = case
    assert parse_www_authenticate(values) == expected


@given(headers())
@settings(deadline=None)
def test_find_bearer_agrees_with_parse(case: tuple[list[Challenge], list[str]]) -> None:
    expected, values = case
    bearers = [c for c in expected if c.scheme == "bearer"]
    found = find_bearer_challenge(values)
    if not bearers:
        assert found is None
    else:
        assert found == BearerChallenge.from_challenge(bearers[0])


def _parses_or_is_malformed(text: str | list[str]) -> None:
    message = ""
    try:
        result = parse_www_authenticate(text)
    except MalformedChallenge as exc:
        message = str(exc)
    else:
        assert all(isinstance(c, Challenge) for c in result)
    # An excerpt of at most 40 characters, one name of at most 24, and the wording.
    assert len(message) < 200


@given(st.text())
@settings(max_examples=500, deadline=None)
def test_arbitrary_text_parses_or_raises_malformed(text: str) -> None:
    _parses_or_is_malformed(text)


@given(st.text(alphabet='Bearer realm=", \\\t\x00abc=', max_size=40))
@settings(max_examples=1000, deadline=None)
def test_grammar_soup_parses_or_raises_malformed(text: str) -> None:
    _parses_or_is_malformed(text)


@given(headers(), st.data())
@settings(deadline=None)
def test_mutated_headers_parse_or_raise_malformed(
    case: tuple[list[Challenge], list[str]], data: st.DataObject
) -> None:
    text = ", ".join(case[1])
    at = data.draw(st.integers(0, len(text)))
    insert = data.draw(st.sampled_from(['"', "\\", ",", "=", " ", "", "\x7f"]))
    cut = data.draw(st.integers(0, 3))
    _parses_or_is_malformed(text[:at] + insert + text[at + cut :])
