"""Parser tests for FETCH, STORE and sequence sets (RFC 3501 6.4.5-6.4.6)."""

from __future__ import annotations

import pytest

from asimap.imap import commands as c
from asimap.imap.commands import (
    STAR,
    FetchAtt,
    FetchKind,
    Partial,
    Section,
    SectionText,
    SequenceSet,
    StoreMode,
)
from test_parser_support import bad, ok


def fetch(raw: bytes) -> c.Fetch:
    result = ok(raw)
    assert isinstance(result, c.Fetch)
    return result


def test_sequence_sets() -> None:
    assert fetch(b"a FETCH 1:4294967295 UID").sequence == SequenceSet(
        ((1, 4294967295),)
    )
    assert fetch(b"a FETCH 2,4:7,9,12:* FLAGS").sequence == SequenceSet(
        ((2, 2), (4, 7), (9, 9), (12, STAR))
    )
    assert fetch(b"a FETCH *:4 FLAGS").sequence == SequenceSet(((STAR, 4),))
    assert fetch(b"a FETCH $ FLAGS").sequence == SequenceSet((), saved=True)
    for invalid in (b"0", b"1:0", b"4294967296", b"1,,2", b"1:", b":1", b"01", b"1$"):
        err = bad(b"a FETCH " + invalid + b" FLAGS", "Invalid sequence set")
        assert err.tag == "a" and err.command == "FETCH"
    bad(b"a FETCH 99999999999999999999 FLAGS", "Invalid sequence set")


def test_macros() -> None:
    fast = (
        FetchAtt(FetchKind.FLAGS),
        FetchAtt(FetchKind.INTERNALDATE),
        FetchAtt(FetchKind.RFC822_SIZE),
    )
    assert fetch(b"a FETCH 1 fast").items == fast
    assert fetch(b"a FETCH 1 FAST").macro == "FAST"
    assert fetch(b"a FETCH 1 ALL").items == (*fast, FetchAtt(FetchKind.ENVELOPE))
    full = fetch(b"a FETCH 1 FULL")
    assert full.items[-1] == FetchAtt(FetchKind.BODY) and len(full.items) == 5
    bad(b"a FETCH 1 (ALL)", "Macro ALL cannot be used in a list")


@pytest.mark.parametrize(
    ("item", "att"),
    [
        (b"UID", FetchAtt(FetchKind.UID)),
        (b"flags", FetchAtt(FetchKind.FLAGS)),
        (b"INTERNALDATE", FetchAtt(FetchKind.INTERNALDATE)),
        (b"RFC822.SIZE", FetchAtt(FetchKind.RFC822_SIZE)),
        (b"ENVELOPE", FetchAtt(FetchKind.ENVELOPE)),
        (b"BODY", FetchAtt(FetchKind.BODY)),
        (b"BODYSTRUCTURE", FetchAtt(FetchKind.BODYSTRUCTURE)),
        (b"RFC822", FetchAtt(FetchKind.RFC822)),
        (b"RFC822.HEADER", FetchAtt(FetchKind.RFC822_HEADER)),
        (b"RFC822.TEXT", FetchAtt(FetchKind.RFC822_TEXT)),
        (b"MODSEQ", FetchAtt(FetchKind.MODSEQ)),
        (b"PREVIEW", FetchAtt(FetchKind.PREVIEW)),
        (b"PREVIEW (LAZY)", FetchAtt(FetchKind.PREVIEW, lazy=True)),
        (b"SAVEDATE", FetchAtt(FetchKind.SAVEDATE)),
        (b"EMAILID", FetchAtt(FetchKind.EMAILID)),
        (b"THREADID", FetchAtt(FetchKind.THREADID)),
        (b"BODY[]", FetchAtt(FetchKind.BODY_SECTION, Section())),
        (
            b"body.peek[]<0.0>",
            FetchAtt(FetchKind.BODY_SECTION, Section(), Partial(0, 0), peek=True),
        ),
        (
            b"BODY[1.2.3]<10.4294967296>",
            FetchAtt(FetchKind.BODY_SECTION, Section((1, 2, 3)), Partial(10, 2**32)),
        ),
        (
            b"BODY[TEXT]",
            FetchAtt(FetchKind.BODY_SECTION, Section((), SectionText.TEXT)),
        ),
        (
            b"BODY[2.MIME]",
            FetchAtt(FetchKind.BODY_SECTION, Section((2,), SectionText.MIME)),
        ),
        (
            b"BODY[4.2.HEADER]",
            FetchAtt(FetchKind.BODY_SECTION, Section((4, 2), SectionText.HEADER)),
        ),
        (
            b'BODY.PEEK[HEADER.FIELDS.NOT (Received "X-Spam" {4}\r\nDate)]',
            FetchAtt(
                FetchKind.BODY_SECTION,
                Section(
                    (), SectionText.HEADER_FIELDS_NOT, ("Received", "X-Spam", "Date")
                ),
                peek=True,
            ),
        ),
        (b"BINARY[]", FetchAtt(FetchKind.BINARY, Section())),
        (
            b"BINARY.PEEK[1.2]<0.100>",
            FetchAtt(FetchKind.BINARY, Section((1, 2)), Partial(0, 100), peek=True),
        ),
        (b"BINARY.SIZE[3]", FetchAtt(FetchKind.BINARY_SIZE, Section((3,)))),
    ],
)
def test_fetch_items(item: bytes, att: FetchAtt) -> None:
    assert fetch(b"a FETCH 1 " + item).items == (att,)
    assert fetch(b"a UID FETCH 1 (UID " + item + b" FLAGS)").items == (
        FetchAtt(FetchKind.UID),
        att,
        FetchAtt(FetchKind.FLAGS),
    )


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (b"BODY.PEEK", "BODY.PEEK needs a section"),
        (b"BODY[0]", "Invalid section part number"),
        (b"BODY[1.0.2]", "Invalid section part number"),
        (b"BODY[MIME]", "MIME section needs a part number"),
        (b"BODY[HEADER.FIELDS ()]", "Expected header field name"),
        (b"BODY[HEADER.FIELDS]", "Expected space"),
        (b"BODY[FOO]", "Invalid section"),
        (b"BODY[1", "Missing argument"),
        (b"BODY[]<5>", "Invalid partial range"),
        (b"BODY[]<5.>", "Invalid partial range"),
        (b"BINARY[TEXT]", '"]" ending the binary section'),
        (b"BINARY.SIZE[1]<0.5>", "Unexpected extra arguments"),
        (b"BINARY", "Missing argument"),
        (b"BINARY<0.1>", '"[" after BINARY'),
        (b"FOO", "Unknown FETCH item"),
        (b"PREVIEW (EAGER)", "Unknown or repeated FETCH modifier"),
        (b"(FLAGS", "Missing argument"),
        (b"()", "Invalid FETCH item"),
        (b"(FLAGS  UID)", "Invalid FETCH item"),
        (b"(FLAGS) x", "Expected"),
        (b"", "Missing argument"),
    ],
)
def test_fetch_errors(item: bytes, message: str) -> None:
    err = bad(b"x1 FETCH 1 " + item, message)
    assert (err.tag, err.command) == ("x1", "FETCH")


def test_fetch_modifiers() -> None:
    # RFC 7162 section 3.1.4.1 and 3.2.6 examples.
    f = fetch(b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)")
    assert (f.changed_since, f.vanished, f.uid) == (12345, False, True)
    f = fetch(b"A2 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)")
    assert (f.changed_since, f.vanished) == (12345, True)
    f = fetch(b"a FETCH 1 PREVIEW (CHANGEDSINCE 7)")
    assert f.items == (FetchAtt(FetchKind.PREVIEW),) and f.changed_since == 7
    bad(b"a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)", "only allowed in UID FETCH")
    bad(b"a UID FETCH 1 FLAGS (VANISHED)", "VANISHED requires CHANGEDSINCE")
    bad(b"a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)", "repeated")
    bad(b"a FETCH 1 FLAGS (CHANGEDSINCE 99999999999999999999)", "too large")


def test_deep_parentheses_in_fetch() -> None:
    err = bad(b"a FETCH 1 " + b"(" * 10_000 + b"FLAGS" + b")" * 10_000)
    assert err.tag == "a"


def store(raw: bytes) -> c.Store:
    result = ok(raw)
    assert isinstance(result, c.Store)
    return result


def test_store() -> None:
    s = store(b"A003 STORE 2:4 +FLAGS (\\Deleted)")
    assert (s.mode, s.flags, s.silent) == (StoreMode.ADD, ("\\Deleted",), False)
    s = store(b"a STORE 1 flags.silent ()")
    assert (s.mode, s.flags, s.silent) == (StoreMode.REPLACE, (), True)
    s = store(b"a UID STORE 1 -FLAGS \\Seen \\Draft $Forwarded \\Extension")
    assert s.mode == StoreMode.REMOVE and s.uid
    assert s.flags == ("\\Seen", "\\Draft", "$Forwarded", "\\Extension")
    # RFC 7162 section 3.1.3 example.
    s = store(b"d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)")
    assert s.unchanged_since == 320162338 and s.silent
    assert store(b"a STORE 1 (UNCHANGEDSINCE 0) FLAGS x").unchanged_since == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (b"1 +FLAGS (\\Recent)", "\\Recent cannot be set"),
        (b"1 +FLAGS \\recent", "\\Recent cannot be set"),
        (b"1 +FLAGS (\\Seen", "Missing argument"),
        (b"1 +FLAGS", "Missing argument"),
        (b"1 *FLAGS x", "Invalid STORE item"),
        (b"1 +FLAGSX x", "Invalid STORE item"),
        (b"1 FLAGS (a b) c", "Unexpected extra arguments"),
        (b"1 FLAGS (a (b))", "Invalid flag"),
        (b"1 FLAGS \\", "Invalid flag"),
        (b"1 (FOO 1) FLAGS x", "Unknown STORE modifier"),
        (b"0 FLAGS x", "Invalid sequence set"),
        (b"1", "Missing argument"),
    ],
)
def test_store_errors(args: bytes, message: str) -> None:
    err = bad(b"s1 STORE " + args, message)
    assert (err.tag, err.command) == ("s1", "STORE")
