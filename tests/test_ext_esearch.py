"""Transcripts: ESEARCH (RFC 4731, RFC 9051 section 6.4.4 result options).

The mailbox holds six messages; 1, 2, 3 and 5 are \\Flagged, 4 and 6 are
not.  UIDs equal sequence numbers until message 2 is expunged in the UID
test, so that UID and sequence answers differ there.
"""

from __future__ import annotations

from asimap.imap.responses import Atom, Raw
from asimap.imap.session import esearch
from asimap.imap.session.esearch import Found
from asimap.store.memory import MemoryStore
from transcript import World, message, run_transcript

LOGIN_SELECT = """
C1 a LOGIN alice secret-a
S1 a OK %*
C1 s SELECT INBOX
S1 * FLAGS %*
S1 * OK [PERMANENTFLAGS %*
S1 * 6 EXISTS
S1 * 6 RECENT
S1 * OK [UNSEEN 1] %*
S1 * OK [UIDVALIDITY %?] %*
S1 * OK [UIDNEXT 7] %*
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 s OK [READ-WRITE] Select completed
"""

FLAGGED = {1, 2, 3, 5}


async def six(world: World) -> None:
    store = world.stores.setdefault("alice", MemoryStore.for_new_account())
    box = await store.mailbox("INBOX")
    for n in range(1, 7):
        flags = ["\\Flagged"] if n in FLAGGED else []
        sender = "smith@example.org" if n == 3 else "a@example.org"
        await box.append(message(f"m{n}", sender=sender), flags)


async def test_capability() -> None:
    """RFC 4731 section 2: advertised as ESEARCH."""
    await run_transcript(
        """
        C1 c CAPABILITY
        S1 * CAPABILITY %* ESEARCH %*
        S1 c OK %*
        """
    )


async def test_rfc_examples_min_count_all() -> None:
    """RFC 9051 6.4.4 examples A282/A283/A284/A286 on our mailbox."""
    await run_transcript(
        LOGIN_SELECT
        + """
        C1 A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
        S1 * ESEARCH (TAG "A282") MIN 1 COUNT 3
        S1 A282 OK Search completed
        C1 A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
        S1 * ESEARCH (TAG "A283") ALL 1:2,5
        S1 A283 OK Search completed
        C1 A284 SEARCH RETURN (MIN) UNFLAGGED
        S1 * ESEARCH (TAG "A284") MIN 4
        S1 A284 OK Search completed
        C1 A286 SEARCH RETURN (COUNT) DELETED
        S1 * ESEARCH (TAG "A286") COUNT 0
        S1 A286 OK Search completed
        C1 A287 SEARCH RETURN (MIN MAX ALL COUNT) FLAGGED
        S1 * ESEARCH (TAG "A287") MIN 1 MAX 5 ALL 1:3,5 COUNT 4
        S1 A287 OK Search completed
        C1 A288 search return (max) all
        S1 * ESEARCH (TAG "A288") MAX 6
        S1 A288 OK Search completed
        """,
        before=six,
    )


async def test_empty_result_still_answers() -> None:
    """MIN/MAX/ALL are left out on no match, COUNT never; the ESEARCH
    response itself is always sent."""
    await run_transcript(
        LOGIN_SELECT
        + """
        C1 b SEARCH RETURN (MIN MAX ALL) TEXT "string not in mailbox"
        S1 * ESEARCH (TAG "b")
        S1 b OK Search completed
        C1 c UID SEARCH RETURN (MIN MAX ALL COUNT) DELETED
        S1 * ESEARCH (TAG "c") UID COUNT 0
        S1 c OK Search completed
        """,
        before=six,
    )


async def test_uid_form_reports_uids() -> None:
    """With UID SEARCH every number is a UID (RFC 9051 6.4.4 A285)."""
    await run_transcript(
        LOGIN_SELECT
        + """
        C1 d STORE 2 +FLAGS.SILENT (\\Deleted)
        S1 d OK %*
        C1 e EXPUNGE
        S1 * 2 EXPUNGE
        S1 e OK %*
        C1 A285 UID SEARCH RETURN (MIN MAX) 1:5000
        S1 * ESEARCH (TAG "A285") UID MIN 1 MAX 6
        S1 A285 OK Search completed
        C1 f UID SEARCH RETURN (ALL) FLAGGED
        S1 * ESEARCH (TAG "f") UID ALL 1,3,5
        S1 f OK Search completed
        C1 g SEARCH RETURN (ALL) FLAGGED
        S1 * ESEARCH (TAG "g") ALL 1:2,4
        S1 g OK Search completed
        """,
        before=six,
    )


async def test_errors() -> None:
    """Unknown options are BAD (RFC 9051 6.4.4); a bad charset is still
    NO [BADCHARSET]; the classic SEARCH form is unchanged."""
    await run_transcript(
        LOGIN_SELECT
        + """
        C1 h SEARCH RETURN (PARTIAL) ALL
        S1 h BAD %*
        C1 i SEARCH RETURN (MIN ALL
        S1 i BAD %*
        C1 j SEARCH RETURN (COUNT) CHARSET KOI8-R ALL
        S1 j NO [BADCHARSET (US-ASCII UTF-8)] %*
        C1 k SEARCH FLAGGED
        S1 * SEARCH 1 2 3 5
        S1 k OK Search completed
        """,
        before=six,
    )


async def test_modseq_return_item() -> None:
    """RFC 4731 section 3.2: with a MODSEQ key, MODSEQ of the MIN message
    alone, or the highest of everything returned."""
    await run_transcript(
        LOGIN_SELECT
        + """
        C1 m STORE 1 +FLAGS.SILENT (\\Seen)
        S1 m OK %*
        C1 a1 SEARCH RETURN (MIN) MODSEQ 1
        S1 * ESEARCH (TAG "a1") MIN 1 MODSEQ 8
        S1 * OK [HIGHESTMODSEQ 8] Highest
        S1 a1 OK Search completed
        C1 a2 SEARCH RETURN (MAX) MODSEQ 1
        S1 * ESEARCH (TAG "a2") MAX 6 MODSEQ 7
        S1 a2 OK Search completed
        C1 a3 SEARCH RETURN (COUNT) MODSEQ 1
        S1 * ESEARCH (TAG "a3") COUNT 6 MODSEQ 8
        S1 a3 OK Search completed
        C1 a4 SEARCH RETURN (COUNT) MODSEQ 100
        S1 * ESEARCH (TAG "a4") COUNT 0
        S1 a4 OK Search completed
        """,
        before=six,
    )


def test_sequence_set_compression() -> None:
    """ALL is a compressed sequence set; for SORT it keeps the sort order
    and MIN is the first message in that order (RFC 5267 section 3.1)."""
    found = [Found(n, n * 10, 1) for n in (1, 2, 3, 5, 7, 8)]
    out = esearch.response("t", found, frozenset({"ALL"}), uid=False)
    assert out.values == (
        Atom("ESEARCH"),
        [Atom("TAG"), "t"],
        Atom("ALL"),
        Raw("1:3,5,7:8"),
    )
    ordered = [Found(n, n, 1) for n in (5, 1, 2, 3)]
    options = frozenset({"ALL", "MIN", "MAX"})
    out = esearch.response("t", ordered, options, uid=True, ordered=True)
    assert out.values[2:] == (
        Atom("UID"),
        Atom("MIN"),
        5,
        Atom("MAX"),
        3,
        Atom("ALL"),
        Raw("5,1:3"),
    )


def test_saved_selection_table() -> None:
    """RFC 9051 6.4.4.1 table 4: what SAVE keeps for each combination."""
    found = [Found(n, n, 1) for n in (2, 10, 11, 21)]

    def kept(*options: str) -> list[int]:
        return [
            f.seq
            for f in esearch.selected(
                found, esearch.normalize(options), ordered=False, uid=False
            )
        ]

    assert kept("SAVE", "MIN") == [2]
    assert kept("SAVE", "MAX") == [21]
    assert kept("MAX", "SAVE", "MIN") == [2, 21]
    assert kept("MAX", "SAVE", "MIN", "COUNT") == [2, 10, 11, 21]
    assert kept("ALL", "SAVE", "MIN") == [2, 10, 11, 21]
    assert kept("SAVE") == [2, 10, 11, 21]
    assert kept() == [2, 10, 11, 21]
    one = [Found(4, 4, 1)]
    assert (
        esearch.selected(one, frozenset({"MIN", "MAX"}), ordered=False, uid=False)
        == one
    )
