"""Parser tests for SEARCH, SORT and THREAD (RFC 3501 6.4.4, RFC 5256)."""

from __future__ import annotations

from datetime import date

import pytest

from asimap.imap import commands as c
from asimap.imap.commands import (
    DateOp,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchSequence,
    SearchSize,
    SearchText,
    SequenceSet,
)
from asimap.imap.limits import Limits
from asimap.imap.parser import parse_command
from test_parser_support import bad, ok


def search(raw: bytes) -> c.Search:
    result = ok(raw)
    assert isinstance(result, c.Search)
    return result


def key(text: bytes) -> SearchKey:
    return search(b"a SEARCH " + text).key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"ALL", SearchAll()),
        (b"answered", SearchFlag("\\Answered")),
        (b"DELETED", SearchFlag("\\Deleted")),
        (b"DRAFT", SearchFlag("\\Draft")),
        (b"FLAGGED", SearchFlag("\\Flagged")),
        (b"SEEN", SearchFlag("\\Seen")),
        (b"RECENT", SearchFlag("\\Recent")),
        (b"UNANSWERED", SearchFlag("\\Answered", set=False)),
        (b"UNDELETED", SearchFlag("\\Deleted", set=False)),
        (b"UNDRAFT", SearchFlag("\\Draft", set=False)),
        (b"UNFLAGGED", SearchFlag("\\Flagged", set=False)),
        (b"UNSEEN", SearchFlag("\\Seen", set=False)),
        (b"NEW", SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", set=False)))),
        (b"OLD", SearchNot(SearchFlag("\\Recent"))),
        (b"KEYWORD $Junk", SearchFlag("$Junk")),
        (b"UNKEYWORD foo", SearchFlag("foo", set=False)),
        (b"FROM smith", SearchHeader("From", "smith", True)),
        (b'TO "a b"', SearchHeader("To", "a b", True)),
        (b"CC {3}\r\nx y", SearchHeader("Cc", "x y", True)),
        (b"BCC x", SearchHeader("Bcc", "x", True)),
        (b'SUBJECT ""', SearchHeader("Subject", "")),
        (b"HEADER X-Foo bar", SearchHeader("X-Foo", "bar")),
        (b'HEADER {5}\r\nX-Foo ""', SearchHeader("X-Foo", "")),
        (b"BODY hello", SearchText("hello", header=False)),
        (b'TEXT "\xc3\xa9t\xc3\xa9"', SearchText("été", header=True)),
        (b'TEXT "\xff"', SearchText("\ufffd", header=True)),
        (b"BEFORE 1-Feb-1994", SearchDate(DateOp.BEFORE, date(1994, 2, 1), False)),
        (b'ON "01-feb-1994"', SearchDate(DateOp.ON, date(1994, 2, 1), False)),
        (b"SINCE 29-Feb-2024", SearchDate(DateOp.SINCE, date(2024, 2, 29), False)),
        (b"SENTBEFORE 1-Jan-2000", SearchDate(DateOp.BEFORE, date(2000, 1, 1), True)),
        (b"SENTON 1-Jan-2000", SearchDate(DateOp.ON, date(2000, 1, 1), True)),
        (b"SENTSINCE 1-Jan-2000", SearchDate(DateOp.SINCE, date(2000, 1, 1), True)),
        (b"LARGER 1024", SearchSize(1024, larger=True)),
        (b"SMALLER 0", SearchSize(0, larger=False)),
        (b"UID 1:*", SearchSequence(SequenceSet(((1, 0),)), uid=True)),
        (b"2,4:*", SearchSequence(SequenceSet(((2, 2), (4, 0))), uid=False)),
        (b"$", SearchSequence(SequenceSet((), saved=True), uid=False)),
        (b"MODSEQ 620162338", SearchModseq(620162338)),
        (
            b'MODSEQ "/flags/\\\\draft" all 620162338',
            SearchModseq(620162338, "/flags/\\\\draft", "all"),
        ),
        (b"NOT SEEN", SearchNot(SearchFlag("\\Seen"))),
        (b"(SEEN)", SearchFlag("\\Seen")),
        (
            b"OR SEEN (FLAGGED DRAFT)",
            SearchOr(
                SearchFlag("\\Seen"),
                SearchAnd((SearchFlag("\\Flagged"), SearchFlag("\\Draft"))),
            ),
        ),
        (
            b"NOT OR NOT 1 2 ALL",
            SearchAnd(
                (
                    SearchNot(
                        SearchOr(
                            SearchNot(SearchSequence(SequenceSet(((1, 1),)), False)),
                            SearchSequence(SequenceSet(((2, 2),)), False),
                        )
                    ),
                    SearchAll(),
                )
            ),
        ),
    ],
)
def test_search_keys(text: bytes, expected: SearchKey) -> None:
    assert key(text) == expected


def test_rfc3501_examples() -> None:
    s = search(b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')
    assert s.key == SearchAnd(
        (
            SearchFlag("\\Flagged"),
            SearchDate(DateOp.SINCE, date(1994, 2, 1), False),
            SearchNot(SearchHeader("From", "Smith", True)),
        )
    )
    s = search(b"A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX")
    assert s.charset == "UTF-8" and s.key == SearchText("XXXXXX", header=True)
    assert search(b'a SEARCH CHARSET "us-ascii" ALL').charset == "US-ASCII"
    assert search(b"a SEARCH ALL").return_options is None


def test_return_options() -> None:
    s = search(b"a UID SEARCH RETURN (MIN max COUNT ALL SAVE) CHARSET UTF-8 ALL")
    assert s.return_options == ("MIN", "MAX", "COUNT", "ALL", "SAVE") and s.uid
    assert search(b"a SEARCH RETURN () ALL").return_options == ()
    bad(b"a SEARCH RETURN (FOO) ALL", "Unknown RETURN option FOO")
    bad(b"a SEARCH RETURN (MIN)", "Missing argument")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "Missing argument"),
        (b"FOO", "Unknown search key FOO"),
        (b"ALL ", "Missing argument"),
        (b"()", "Invalid search key"),
        (b"(ALL", "Missing argument"),
        (b"ALL)", "Unexpected extra arguments"),
        (b"OR ALL", "Missing argument"),
        (b"NOT", "Missing argument"),
        (b"SINCE 30-Feb-2020", "Invalid date"),
        (b"SINCE 1-Foo-2020", "unknown month"),
        (b"SINCE 1-Feb-20", "Invalid date"),
        (b'SINCE "1-Feb-2020', "Invalid date"),
        (b"LARGER x", "Expected size"),
        (b"LARGER 99999999999999999999", "too large"),
        (b"UID", "Missing argument"),
        (b"0", "Invalid sequence set"),
        (b'FROM "abc', "Unterminated quoted string"),
        (b'FROM "a\\bc"', "Invalid backslash escape"),
        (b"KEYWORD \\Seen", "Expected keyword"),
        (b"HEADER X-Foo", "Missing argument"),
        (b"CHARSET", "Missing argument"),
    ],
)
def test_search_errors(text: bytes, message: str) -> None:
    err = bad(b"q SEARCH " + text, message)
    assert (err.tag, err.command) == ("q", "SEARCH")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    deep = b"(" * 10_000 + b"ALL" + b")" * 10_000
    assert bad(b"a SEARCH " + deep, "nested too deeply").tag == "a"
    nots = b"NOT " * 10_000 + b"ALL"
    assert bad(b"a SEARCH " + nots, "nested too deeply").tag == "a"
    ors = b"OR " * 10_000 + b"ALL " * 10_001
    assert bad(b"a UID SEARCH " + ors.strip(), "nested too deeply").tag == "a"
    # With a generous limit the same input parses without recursion.
    big = Limits(max_depth=20_000)
    result = parse_command((b"a SEARCH " + deep,), (), big)
    assert result == c.Search("a", SearchAll())
    result = parse_command((b"a SEARCH " + nots,), (), big)
    assert isinstance(result, c.Search)


def test_item_limit() -> None:
    many = b" ".join([b"ALL"] * 11)
    result = parse_command((b"a SEARCH " + many,), (), Limits(max_items=10))
    assert isinstance(result, c.ParseError) and "Too many" in result.message


def test_sort() -> None:
    # RFC 5256 section 6 examples.
    s = ok(b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994")
    assert s == c.Sort(
        "A282",
        ("SUBJECT",),
        "UTF-8",
        SearchDate(DateOp.SINCE, date(1994, 2, 1), False),
    )
    s = ok(b"A285 UID SORT (REVERSE DATE from) US-ASCII ALL")
    assert s == c.Sort(
        "A285", ("REVERSE", "DATE", "FROM"), "US-ASCII", SearchAll(), True
    )
    s = ok(b"a SORT RETURN (COUNT) (ARRIVAL) UTF-8 ALL")
    assert isinstance(s, c.Sort) and s.return_options == ("COUNT",)
    bad(b"a SORT (FOO) UTF-8 ALL", "Unknown sort criterion FOO")
    bad(b"a SORT () UTF-8 ALL", "Expected sort criterion")
    bad(b"a SORT (REVERSE) UTF-8 ALL", "Expected space")
    bad(b"a SORT (DATE) ALL", "Missing argument")


def test_thread() -> None:
    t = ok(b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000")
    assert t == c.Thread(
        "A283",
        "ORDEREDSUBJECT",
        "UTF-8",
        SearchDate(DateOp.SINCE, date(2000, 3, 5), False),
    )
    t = ok(b"a UID THREAD references us-ascii ALL")
    assert t == c.Thread("a", "REFERENCES", "US-ASCII", SearchAll(), True)
    bad(b"a THREAD REFERENCES UTF-8", "Missing argument")
