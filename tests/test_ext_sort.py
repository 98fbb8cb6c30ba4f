"""SORT (RFC 5256 section 3) and SORT=DISPLAY (RFC 5957): base subjects,
every criterion, REVERSE, ties, RETURN/SAVE, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from asimap.imap.sorting import SortItem, base_subject, casemap, sort_items
from asimap.message.model import Message
from asimap.message.wire import encode_summary_value
from asimap.store.memory import MemoryStore
from transcript import World, run_transcript


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("Hello", "Hello", False),
        ("Re: Hello", "Hello", True),
        ("RE:   re: Hello  ", "Hello", True),
        ("Fwd: Hello (fwd)", "Hello", True),
        ("Hello (fwd) (FWD)", "Hello", True),
        ("[list] Re: Hello", "Hello", True),
        ("Re[2]: Hello", "Hello", True),
        ("[list] [tag] Hello", "Hello", False),
        ("[only a blob]", "[only a blob]", False),
        ("[Fwd: Re: Hello]", "Hello", True),
        ("fw: [Fwd: hi (fwd)]", "hi", True),
        ("Re:", "", True),
        ("", "", False),
        ("Subject\twith \r\n  folding", "Subject with folding", False),
        ("Reply to nothing", "Reply to nothing", False),
    ],
)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    """RFC 5256 section 2.1 steps 1-6."""
    assert base_subject(subject) == (base, reply)


def _item(seq: int, size: int = 0, **headers: str) -> SortItem:
    """An item as SORT builds it from a summary: the (decoded) fields and
    the encoded ENVELOPE of a message with these header fields."""
    fields = {k.rstrip("_"): v for k, v in headers.items()}
    raw = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    envelope = Message((raw + "\r\nbody\r\n").encode()).envelope()
    return SortItem(
        seq=seq,
        uid=seq,
        modseq=1,
        size=size,
        internaldate=datetime(2020, 1, seq, tzinfo=UTC),
        headers={name: (value,) for name, value in fields.items()},
        envelope=encode_summary_value(envelope),
    )


def test_criteria_and_ties() -> None:
    items = [
        _item(1, 30, subject="Re: b", from_="Zed <zed@x.org>", to="a@x"),
        _item(2, 10, subject="a", from_="amy@y.org", to="Bob <c@x>"),
        _item(3, 20, subject="B", from_="Amy <amy@z.org>", date="bad date"),
        _item(4, 10, subject="a", date="Mon, 1 Jan 2001 00:00:00 +0100"),
    ]

    def order(*criteria: str) -> list[int]:
        return [i.seq for i in sort_items(items, criteria)]

    assert order("SIZE") == [2, 4, 3, 1]
    assert order("REVERSE", "SIZE") == [1, 3, 2, 4]  # ties stay ascending
    assert order("SUBJECT") == [2, 4, 1, 3]
    assert order("SUBJECT", "REVERSE", "ARRIVAL") == [4, 2, 3, 1]
    # addr-mailbox: "" < "amy" = "amy" < "zed"
    assert order("FROM") == [4, 2, 3, 1]
    assert order("DISPLAYFROM") == [4, 3, 2, 1]  # "", "amy", "amy@y.org", "zed"
    assert order("TO") == [3, 4, 1, 2]
    assert order("DISPLAYTO") == [3, 4, 1, 2]
    # DATE: a broken Date: falls back to INTERNALDATE (2020-01-03).
    assert order("DATE") == [4, 1, 2, 3]
    assert order("REVERSE", "DATE") == [3, 2, 1, 4]


async def _mailbox(world: World) -> None:
    store = world.stores.setdefault("alice", MemoryStore.for_new_account())
    box = await store.mailbox("INBOX")
    for subject, sender, date in [
        ("Re: beta", "Carol <carol@x.org>", "Tue, 2 Jan 2001 10:00:00 +0000"),
        ("alpha", "bob@x.org", "Mon, 1 Jan 2001 10:00:00 +0000"),
        ("Beta", "Alice <zz@x.org>", "Mon, 1 Jan 2001 09:00:00 -0500"),
    ]:
        data = (
            f"From: {sender}\r\nTo: t@x.org\r\nSubject: {subject}\r\n"
            f"Date: {date}\r\n\r\nbody\r\n"
        ).encode()
        await box.append(data)


SELECT = """
C1 a LOGIN alice secret-a
S1 a OK %*
C1 s SELECT INBOX
S1 * %*
S1 * %*
S1 * 3 EXISTS
S1 * 3 RECENT
S1 * %*
S1 * %*
S1 * %*
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 s OK %*
"""


async def test_capability() -> None:
    await run_transcript(
        """
        C1 c CAPABILITY
        S1 * CAPABILITY %* SORT SORT=DISPLAY %*
        S1 c OK %*
        """
    )


async def test_sort_transcript() -> None:
    await run_transcript(
        SELECT
        + """
        C1 b SORT (SUBJECT) UTF-8 ALL
        S1 * SORT 2 1 3
        S1 b OK Sort completed
        C1 c SORT (DATE) UTF-8 ALL
        S1 * SORT 2 3 1
        S1 c OK Sort completed
        C1 d UID SORT (REVERSE FROM) US-ASCII NOT 1
        S1 * SORT 3 2
        S1 d OK Sort completed
        C1 e SORT (DISPLAYFROM) UTF-8 ALL
        S1 * SORT 3 2 1
        S1 e OK Sort completed
        C1 f SORT (SUBJECT) UTF-8 DELETED
        S1 * SORT
        S1 f OK Sort completed
        C1 g SORT RETURN (SAVE MIN) (DATE) UTF-8 ALL
        S1 * ESEARCH (TAG "g") MIN 2
        S1 g OK Sort completed
        C1 h FETCH $ (UID)
        S1 * 2 FETCH (UID 2)
        S1 h OK Fetch completed
        C1 i SORT RETURN (ALL COUNT) (REVERSE DATE) UTF-8 ALL
        S1 * ESEARCH (TAG "i") ALL 1,3,2 COUNT 3
        S1 i OK Sort completed
        C1 j SORT (SUBJECT) KOI8-R ALL
        S1 j NO [BADCHARSET (US-ASCII UTF-8)] %*
        C1 k SORT (BOGUS) UTF-8 ALL
        S1 k BAD %*
        C1 l SORT (SUBJECT) ALL
        S1 l BAD %*
        C1 m UNSELECT
        S1 m OK %*
        C1 n SORT (SUBJECT) UTF-8 ALL
        S1 n BAD %*
        """,
        before=_mailbox,
    )


def test_collation_is_unicode_casemap() -> None:
    """RFC 5051 section 2: titlecase, then NFKD -- "_" sorts after the
    letters (Dovecot agrees; ``casefold`` would put it first), accents
    decompose."""
    assert casemap("rfnoc_oot") > casemap("RFNOCMODTOOL")
    assert casemap("été") == casemap("ÉTÉ") == "E\u0301TE\u0301"
    # Titlecase, not uppercase: dz-caron maps to "Dz" + caron, not "DZ".
    assert casemap("\u01c6") == "Dz\u030c"


def test_from_with_a_comma_in_an_encoded_display_name() -> None:
    """``=?utf-8?q?Doe=2CJane?= <zz@x>`` decodes to ``Doe,Jane <zz@x>``:
    the first address is still zz@x, as ENVELOPE says."""
    items = [
        _item(1, from_="=?utf-8?q?Doe=2CJane?= <zz@x>"),
        _item(2, from_="Bob <mm@x>"),
        _item(3, from_="root"),
    ]
    assert [i.seq for i in sort_items(items, ["FROM"])] == [2, 3, 1]
    assert [i.seq for i in sort_items(items, ["DISPLAYFROM"])] == [2, 1, 3]
