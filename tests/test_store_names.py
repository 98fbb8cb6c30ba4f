"""Mailbox-name validation and LIST pattern matching (asimap.store.names)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asimap.store.base import InvalidMailboxName
from asimap.store.names import (
    MAX_DEPTH,
    MAX_NAME_OCTETS,
    ListMatcher,
    ancestors_of,
    check_name,
    is_inferior,
    join_reference,
    list_pattern_matches,
    parent_of,
)

# -- check_name -------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_name", "canonical"),
    [
        ("INBOX", "INBOX"),
        ("inbox", "INBOX"),
        ("InBoX", "INBOX"),
        # Only the exact name INBOX is case-insensitive (RFC 3501 5.1).
        ("inbox/sub", "inbox/sub"),
        ("INBOX/sub", "INBOX/sub"),
        ("inboxes", "inboxes"),
        ("Sent Messages", "Sent Messages"),
        ("a/b/c", "a/b/c"),
        ("Entwürfe", "Entwürfe"),
        ("日本語/メール", "日本語/メール"),
        ("2024-reports", "2024-reports"),
        ("a1", "a1"),
        ("x.y", "x.y"),
        ("...", "..."),
        ("a~b", "a~b"),
    ],
)
def test_valid_names_are_canonicalised(given_name: str, canonical: str) -> None:
    assert check_name(given_name) == canonical


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "empty"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\rb", "control"),
        ("tab\there", "control"),
        ("del\x7f", "control"),
        ("c1\x85", "control"),
        (".", r"\. or \.\."),
        ("..", r"\. or \.\."),
        ("../x", r"\. or \.\."),
        ("a/../b", r"\. or \.\."),
        ("a/.", r"\. or \.\."),
        ("a//b", "empty level"),
        ("a/", "empty level"),
        ("/etc", "starts with the delimiter"),
        ("~user", "starts with ~"),
        ("bad\udcffsurrogate", "UTF-8"),
    ],
)
def test_invalid_names_are_refused_with_a_reason(bad: str, why: str) -> None:
    with pytest.raises(InvalidMailboxName, match=why):
        check_name(bad)


@pytest.mark.parametrize("name", ["a*", "%", "a/%/b", "100% done", "x%y"])
def test_list_wildcards_are_valid_in_names(name: str) -> None:
    """RFC 9051 section 5.1 item 3: valid, if awkward to LIST."""
    assert check_name(name) == name


def test_non_ascii_digits_are_not_mh_numbers() -> None:
    # MH only treats ASCII digits as message numbers.
    assert check_name("٣") == "٣"


def test_all_digit_levels_are_valid_names() -> None:
    # The MH store escapes them (asimap.store.mh.paths); every store takes
    # them, so that mbsync can copy "Archive/2024" from another server.
    for name in ("123", "a/42", "2024/01", "0"):
        assert check_name(name) == name


def test_length_limit_counts_utf8_octets() -> None:
    assert check_name("a" * MAX_NAME_OCTETS) == "a" * MAX_NAME_OCTETS
    with pytest.raises(InvalidMailboxName, match="longer"):
        check_name("a" * (MAX_NAME_OCTETS + 1))
    # "ü" is two octets: half as many characters already exceed the limit.
    with pytest.raises(InvalidMailboxName, match="longer"):
        check_name("ü" * (MAX_NAME_OCTETS // 2 + 1))


def test_depth_limit() -> None:
    deep = "/".join(["a"] * MAX_DEPTH)
    assert check_name(deep) == deep
    with pytest.raises(InvalidMailboxName, match="deeper"):
        check_name(deep + "/a")


def test_trailing_delimiter_is_stripped_only_on_request() -> None:
    # RFC 3501 section 6.3.3: CREATE "foo/" creates "foo".
    assert check_name("foo/", strip_trailing_delimiter=True) == "foo"
    assert check_name("inbox/", strip_trailing_delimiter=True) == "INBOX"
    assert check_name("foo", strip_trailing_delimiter=True) == "foo"
    with pytest.raises(InvalidMailboxName):
        check_name("foo/")
    with pytest.raises(InvalidMailboxName):
        check_name("/", strip_trailing_delimiter=True)
    with pytest.raises(InvalidMailboxName):
        check_name("foo//", strip_trailing_delimiter=True)


# -- hierarchy helpers ---------------------------------------------------------


def test_hierarchy_helpers() -> None:
    assert parent_of("a") is None
    assert parent_of("a/b/c") == "a/b"
    assert parent_of("inbox/sub") == "INBOX"
    assert ancestors_of("a/b/c") == ("a", "a/b")
    assert ancestors_of("a") == ()
    assert is_inferior("a/b/c", "a")
    assert is_inferior("a/b", "a")
    assert not is_inferior("a", "a")
    assert not is_inferior("ab/c", "a")
    assert is_inferior("inbox/x", "INBOX")


# -- join_reference (RFC 3501 section 6.3.8) ---------------------------------


@pytest.mark.parametrize(
    ("reference", "pattern", "joined"),
    [
        ("", "*", "*"),
        ("", "INBOX", "INBOX"),
        ("archive/", "%", "archive/%"),
        ("~smith/Mail/", "foo.*", "~smith/Mail/foo.*"),
        ("a/", "/b", "a/b"),
        ("foo/bar", "rag/baz", "foo/barrag/baz"),
        ("a", "", "a"),
    ],
)
def test_join_reference(reference: str, pattern: str, joined: str) -> None:
    assert join_reference(reference, pattern) == joined


# -- LIST pattern matching -------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*", "a/b/c", True),
        ("%", "a", True),
        ("%", "a/b", False),
        ("a/%", "a/b", True),
        ("a/%", "a/b/c", False),
        ("a/*", "a/b/c", True),
        ("a/*", "a", False),
        ("a*", "a", True),
        ("%/%", "a/b", True),
        ("", "a", False),
        ("", "", True),
        ("Sent*", "Sent Messages", True),
        ("sent*", "Sent Messages", False),  # other names are case-sensitive
        ("inbox", "INBOX", True),  # INBOX is not (RFC 3501 section 5.1)
        ("inb%", "INBOX", True),
        ("InBoX/%", "INBOX/x", False),
        ("a%c", "abbc", True),
        ("a%c", "ab/c", False),
        ("a*c", "ab/c", True),
    ],
)
def test_list_pattern_examples(pattern: str, name: str, expected: bool) -> None:
    assert list_pattern_matches(pattern, name) is expected
    assert ListMatcher(pattern).matches(name) is expected


def test_pathological_pattern_is_fast() -> None:
    # A backtracking regex takes exponential time on this; the glob is
    # quadratic.  No timing assertion (design.md section 4 rule 5):
    # pytest-timeout bounds it.
    pattern = "*a" * 40 + "*b"
    assert not list_pattern_matches(pattern, "a" * 2000)


def _regex_model(pattern: str, name: str) -> bool:
    """Independent model: translate the glob to a regular expression."""
    parts = [
        ".*" if char == "*" else "[^/]*" if char == "%" else re.escape(char)
        for char in pattern
    ]
    flags = re.IGNORECASE if name == "INBOX" else 0
    return re.fullmatch("".join(parts), name, flags | re.DOTALL) is not None


_alphabet = st.sampled_from(["a", "b", "A", "/", ".", "I", "n", "x", "é"])
_names = st.one_of(
    st.just("INBOX"),
    st.text(_alphabet, max_size=10),
)
_patterns = st.text(st.one_of(_alphabet, st.sampled_from(["*", "%"])), max_size=8)


@settings(max_examples=600, deadline=None)
@given(pattern=_patterns, name=_names)
def test_matcher_agrees_with_regex_model(pattern: str, name: str) -> None:
    assert ListMatcher(pattern).matches(name) is _regex_model(pattern, name)


@settings(max_examples=300, deadline=None)
@given(name=_names, data=st.data())
def test_pattern_built_from_name_matches_it(name: str, data: st.DataObject) -> None:
    # Replace random characters by wildcards: the name must still match.
    pattern = "".join(
        data.draw(st.sampled_from([char, "*"] + ([] if char == "/" else ["%"])))
        for char in name
    )
    assert ListMatcher(pattern).matches(name)


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=30))
def test_check_name_is_idempotent(name: str) -> None:
    try:
        canonical = check_name(name)
    except InvalidMailboxName:
        return
    assert check_name(canonical) == canonical
