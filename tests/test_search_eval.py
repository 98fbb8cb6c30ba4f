"""SEARCH key evaluation, one key family at a time (RFC 3501 6.4.4)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from asimap.imap.commands import (
    STAR,
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
from asimap.imap.search import SearchCandidate, matches, needs_message
from asimap.message.model import Message

RAW = (
    b"From: =?utf-8?q?J=C3=B6rg?= Schmidt <joerg@example.com>\r\n"
    b"To: Alice <alice@example.net>\r\n"
    b"Subject: Quarterly =?iso-8859-1?q?R=E9sum=E9?=\r\n"
    b"Date: Mon, 1 Jan 2024 23:30:00 -0800\r\n"
    b"X-Empty:\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Die Stra=C3=9Fe ist lang.\r\n"
)

# 23:30 on 1 Jan in UTC-8 is already 2 Jan in UTC: the date must stay 1 Jan.
INTERNAL = datetime(2024, 3, 10, 23, 30, tzinfo=timezone(timedelta(hours=-8)))


def candidate(**changes: object) -> SearchCandidate:
    values: dict[str, object] = {
        "seq": 3,
        "uid": 30,
        "flags": frozenset({"\\Seen", "$Important", "\\Recent"}),
        "modseq": 7,
        "internaldate": INTERNAL,
        "size": len(RAW),
        "message": Message(RAW),
    }
    values.update(changes)
    return SearchCandidate(**values)  # type: ignore[arg-type]


def hit(key: SearchKey, c: SearchCandidate | None = None, **kw: object) -> bool:
    options: dict[str, object] = {"max_seq": 5, "max_uid": 50}
    options.update(kw)
    return matches(key, c or candidate(), **options)  # type: ignore[arg-type]


def seqset(*ranges: tuple[int, int]) -> SequenceSet:
    return SequenceSet(tuple(ranges))


def test_all() -> None:
    assert hit(SearchAll())


@pytest.mark.parametrize(
    ("flag", "is_set", "expected"),
    [
        ("\\Seen", True, True),
        ("\\SEEN", True, True),  # system flags are case-insensitive
        ("\\seen", False, False),
        ("\\Deleted", True, False),
        ("\\Deleted", False, True),  # UNDELETED
        ("\\Recent", True, True),
        ("$important", True, True),  # keywords too, as Dovecot does
        ("$Junk", True, False),
        ("$Junk", False, True),  # UNKEYWORD
    ],
)
def test_flags(flag: str, is_set: bool, expected: bool) -> None:
    assert hit(SearchFlag(flag, is_set)) is expected


def test_new_and_old_as_the_parser_expands_them() -> None:
    new = SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", False)))
    assert not hit(new)
    assert hit(new, candidate(flags=frozenset({"\\Recent"})))
    old = SearchFlag("\\Recent", False)
    assert hit(old, candidate(flags=frozenset()))


@pytest.mark.parametrize(
    ("op", "day", "expected"),
    [
        (DateOp.BEFORE, date(2024, 3, 10), False),
        (DateOp.BEFORE, date(2024, 3, 11), True),
        (DateOp.ON, date(2024, 3, 10), True),  # its own timezone, not UTC
        (DateOp.ON, date(2024, 3, 11), False),
        (DateOp.SINCE, date(2024, 3, 10), True),
        (DateOp.SINCE, date(2024, 3, 11), False),
    ],
)
def test_internaldate(op: DateOp, day: date, expected: bool) -> None:
    assert hit(SearchDate(op, day, sent=False)) is expected


@pytest.mark.parametrize(
    ("op", "day", "expected"),
    [
        (DateOp.BEFORE, date(2024, 1, 1), False),
        (DateOp.BEFORE, date(2024, 1, 2), True),
        (DateOp.ON, date(2024, 1, 1), True),  # Date: is 1 Jan in -0800
        (DateOp.ON, date(2024, 1, 2), False),
        (DateOp.SINCE, date(2024, 1, 1), True),
        (DateOp.SINCE, date(2024, 1, 2), False),
    ],
)
def test_sent_dates(op: DateOp, day: date, expected: bool) -> None:
    assert hit(SearchDate(op, day, sent=True)) is expected


def test_sent_date_missing_never_matches() -> None:
    undated = candidate(message=Message(b"Subject: x\r\n\r\nbody"))
    for op in DateOp:
        key = SearchDate(op, date(2024, 1, 1), sent=True)
        assert not hit(key, undated)
        assert hit(SearchNot(key), undated)


def test_size_is_strict() -> None:
    size = len(RAW)
    assert hit(SearchSize(size - 1, larger=True))
    assert not hit(SearchSize(size, larger=True))
    assert hit(SearchSize(size + 1, larger=False))
    assert not hit(SearchSize(size, larger=False))


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("From", "jörg", True),  # RFC 2047 decoded
        ("FROM", "JOERG@EXAMPLE", True),  # the address too, any case
        ("from", "alice", False),
        ("To", "Alice <alice@", True),
        ("Subject", "résumé", True),
        ("Subject", "RÉSUMÉ", True),
        ("Subject", "", True),  # empty value: the field is present
        ("X-Empty", "", True),
        ("Cc", "", False),
        ("X-Absent", "x", False),
    ],
)
def test_header(field: str, value: str, expected: bool) -> None:
    assert hit(SearchHeader(field, value)) is expected


def test_body_and_text() -> None:
    assert hit(SearchText("straße", header=False))  # QP + UTF-8 decoded
    assert hit(SearchText("STRASSE", header=False))  # casefold: ß == ss
    assert not hit(SearchText("Quarterly", header=False))  # BODY: body only
    assert hit(SearchText("Quarterly", header=True))  # TEXT: header too
    assert hit(SearchText("lang", header=True))
    assert not hit(SearchText("nowhere", header=True))


def test_text_matches_mime_header_fields_of_parts() -> None:
    """RFC 9051 section 6.4.4: TEXT matches "the header (including MIME
    header fields) or body"; BODY "doesn't match any header fields".  A
    part's own Content-Type is a MIME header field (found by the
    differential test: Dovecot finds "application/gnuradio-grc")."""
    raw = (
        b"From: a@example.org\r\nSubject: x\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\nContent-Type: application/gnuradio-grc;\r\n"
        b' name="flow.grc"\r\n\r\n<flow/>\r\n--b--\r\n'
    )
    c = candidate(message=Message(raw), size=len(raw))
    assert hit(SearchText("gnuradio-grc", header=True), c)
    assert hit(SearchText("flow.grc", header=True), c)
    assert not hit(SearchText("gnuradio-grc", header=False), c)
    assert hit(SearchText("hello", header=False), c)


def test_sequence_sets() -> None:
    assert hit(SearchSequence(seqset((1, 3)), uid=False))
    assert not hit(SearchSequence(seqset((4, STAR)), uid=False))
    assert hit(SearchSequence(seqset((STAR, STAR)), uid=False), max_seq=3)
    assert hit(SearchSequence(seqset((30, 30)), uid=True))
    assert not hit(SearchSequence(seqset((31, STAR)), uid=True))
    assert hit(SearchSequence(seqset((STAR, 40)), uid=True), max_uid=30)
    assert hit(SearchSequence(seqset((5, 1)), uid=False))  # reversed range


def test_saved_result() -> None:
    saved = SearchSequence(SequenceSet((), saved=True), uid=False)
    assert hit(saved, saved=[10, 30])
    assert not hit(saved, saved=[3])  # UIDs, not sequence numbers
    assert not hit(saved)


def test_modseq() -> None:
    assert hit(SearchModseq(7))
    assert hit(SearchModseq(1, "/flags/\\seen", "all"))
    assert not hit(SearchModseq(8))


def test_boolean_combinations() -> None:
    seen = SearchFlag("\\Seen")
    deleted = SearchFlag("\\Deleted")
    assert not hit(SearchNot(seen))
    assert hit(SearchOr(deleted, seen))
    assert not hit(SearchOr(deleted, SearchNot(seen)))
    assert hit(SearchAnd((seen, SearchNot(deleted))))
    assert not hit(SearchAnd((seen, deleted)))
    assert hit(SearchAnd(()))


def test_needs_message() -> None:
    assert not needs_message(SearchAll())
    assert not needs_message(SearchDate(DateOp.ON, date(2024, 1, 1), sent=False))
    assert needs_message(SearchDate(DateOp.ON, date(2024, 1, 1), sent=True))
    assert needs_message(SearchHeader("From", "x"))
    assert needs_message(SearchText("x", header=False))
    assert needs_message(SearchNot(SearchOr(SearchAll(), SearchText("x", True))))
    assert not needs_message(SearchAnd((SearchAll(), SearchFlag("\\Seen"))))
    assert needs_message(SearchAnd((SearchAll(), SearchHeader("To", ""))))


def test_metadata_keys_do_not_touch_the_message() -> None:
    c = candidate(message=None)
    assert hit(SearchAnd((SearchFlag("\\Seen"), SearchSize(1, larger=True))), c)
    with pytest.raises(ValueError):
        hit(SearchHeader("From", "x"), c)
