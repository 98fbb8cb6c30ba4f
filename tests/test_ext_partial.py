"""PARTIAL (RFC 9394): paged SEARCH, SORT and UID FETCH.

The RFC's examples (sections 3.1, 3.3 and 3.4) are replayed on a small
mailbox with the same shape -- UIDs with gaps, ``$Junk`` and deleted
messages to skip -- and with the ranges scaled down; then the rules of
section 3.2 (PARTIAL with MIN, MAX, COUNT and SAVE, table 1), the syntax
of section 4 and its error cases.
"""

from __future__ import annotations

import pytest

from asimap.imap.commands import ParseError, PartialRange, Search
from asimap.imap.parser import parse_command
from asimap.imap.session.esearch import partial_window
from asimap.store.memory import MemoryStore
from transcript import World, message, run_transcript

#: UIDs 1..30 are appended; these are expunged, leaving gaps as in the
#: RFC's examples (so sequence numbers and UIDs differ).
EXPUNGED = (3, 4, 10, 17)
JUNK = (2, 20)  # $Junk
DELETED = (29,)  # \Deleted, not expunged


async def mailbox(world: World) -> None:
    store = world.stores.setdefault("alice", MemoryStore.for_new_account())
    box = await store.mailbox("INBOX")
    for uid in range(1, 31):
        flags = ["$Junk"] if uid in JUNK else []
        flags += ["\\Deleted"] if uid in DELETED + EXPUNGED else []
        flags += ["\\Seen"] if uid % 3 == 0 else []
        flags += ["\\Flagged"] if uid % 7 == 0 else []
        await box.append(message(f"message {uid:02d}"), flags)
    await box.expunge(list(EXPUNGED))
    await box.claim_recent()  # an earlier session saw them: no \\Recent


LOGIN_SELECT = """
C1 a LOGIN alice secret-a
S1 a OK [CAPABILITY %* PARTIAL%*] %*
C1 s SELECT INBOX
S1 * FLAGS %*
S1 * OK [PERMANENTFLAGS %*
S1 * 26 EXISTS
S1 * %*
S1 * %*
S1 * %*
S1 * %*
S1 * %*
S1 * %*
S1 s OK [READ-WRITE] Select completed
"""

# UNDELETED UNKEYWORD $Junk matches 23 messages, UIDs
# 1 5:9 11:16 18:19 21:28 30 (sequence numbers 1, 3-7, 8-13, ...).


async def test_section_3_1_examples() -> None:
    """A01-A04: the last results, a window spanning the end, the first
    results, and a window past the end (NIL)."""
    await run_transcript(
        LOGIN_SELECT
        + """
        C1 A01 UID SEARCH RETURN (PARTIAL -1:-5) UNDELETED UNKEYWORD $Junk
        S1 * ESEARCH (TAG "A01") UID PARTIAL (-1:-5 25:28,30)
        S1 A01 OK Search completed
        C1 A02 UID SEARCH RETURN (PARTIAL 20:30) UNDELETED UNKEYWORD $Junk
        C1 A03 UID SEARCH RETURN (PARTIAL 1:5) UNDELETED UNKEYWORD $Junk
        C1 A04 UID SEARCH RETURN (PARTIAL 30:40) UNDELETED UNKEYWORD $Junk
        S1 * ESEARCH (TAG "A02") UID PARTIAL (20:30 26:28,30)
        S1 A02 OK Search completed
        S1 * ESEARCH (TAG "A03") UID PARTIAL (1:5 1,5:8)
        S1 A03 OK Search completed
        S1 * ESEARCH (TAG "A04") UID PARTIAL (30:40 NIL)
        S1 A04 OK Search completed
        C1 A05 SEARCH RETURN (PARTIAL 5:1) UNDELETED UNKEYWORD $Junk
        S1 * ESEARCH (TAG "A05") PARTIAL (5:1 1,3:6)
        S1 A05 OK Search completed
        C1 A06 SEARCH RETURN (PARTIAL -30:-24) UNDELETED UNKEYWORD $Junk
        S1 * ESEARCH (TAG "A06") PARTIAL (-30:-24 NIL)
        S1 A06 OK Search completed
        C1 A07 SEARCH RETURN (PARTIAL -30:-23) UNDELETED UNKEYWORD $Junk
        S1 * ESEARCH (TAG "A07") PARTIAL (-30:-23 1)
        S1 A07 OK Search completed
        C1 A08 SEARCH RETURN (partial 1:10) KEYWORD nothing
        S1 * ESEARCH (TAG "A08") PARTIAL (1:10 NIL)
        S1 A08 OK Search completed
        """,
        before=mailbox,
    )


async def test_section_3_2_min_max_count_save() -> None:
    """Table 1: what "$" holds for each combination with PARTIAL, and
    which data items come back."""
    await run_transcript(
        LOGIN_SELECT
        + """
        C1 b1 UID SEARCH RETURN (SAVE PARTIAL 2:3) FLAGGED
        S1 * ESEARCH (TAG "b1") UID PARTIAL (2:3 14,21)
        S1 b1 OK Search completed
        C1 c1 UID SEARCH UID $
        S1 * SEARCH 14 21
        S1 c1 OK Search completed
        C1 b2 UID SEARCH RETURN (SAVE MIN PARTIAL 2:3) FLAGGED
        S1 * ESEARCH (TAG "b2") UID MIN 7 PARTIAL (2:3 14,21)
        S1 b2 OK Search completed
        C1 c2 UID SEARCH UID $
        S1 * SEARCH 7 14 21
        S1 c2 OK Search completed
        C1 b3 UID SEARCH RETURN (SAVE MAX PARTIAL 1:1) FLAGGED
        S1 * ESEARCH (TAG "b3") UID MAX 28 PARTIAL (1:1 7)
        S1 b3 OK Search completed
        C1 c3 UID SEARCH UID $
        S1 * SEARCH 7 28
        S1 c3 OK Search completed
        C1 b4 UID SEARCH RETURN (SAVE MIN MAX PARTIAL 2:2) FLAGGED
        S1 * ESEARCH (TAG "b4") UID MIN 7 MAX 28 PARTIAL (2:2 14)
        S1 b4 OK Search completed
        C1 c4 UID SEARCH UID $
        S1 * SEARCH 7 14 28
        S1 c4 OK Search completed
        C1 b5 UID SEARCH RETURN (SAVE COUNT MIN PARTIAL 1:1) FLAGGED
        S1 * ESEARCH (TAG "b5") UID MIN 7 PARTIAL (1:1 7) COUNT 4
        S1 b5 OK Search completed
        C1 c5 UID SEARCH UID $
        S1 * SEARCH 7 14 21 28
        S1 c5 OK Search completed
        C1 b6 UID SEARCH RETURN (SAVE PARTIAL 9:10) FLAGGED
        S1 * ESEARCH (TAG "b6") UID PARTIAL (9:10 NIL)
        S1 b6 OK Search completed
        C1 c6 UID SEARCH UID $
        S1 * SEARCH
        S1 c6 OK Search completed
        """,
        before=mailbox,
    )


async def test_sort_partial_in_sort_order() -> None:
    """RFC 9394 updates RFC 5267: for SORT the positions are in sort
    order, and the window is written in that order."""
    await run_transcript(
        LOGIN_SELECT
        + """
        C1 s1 UID SORT RETURN (PARTIAL 1:3) (REVERSE SUBJECT) UTF-8 ALL
        S1 * ESEARCH (TAG "s1") UID PARTIAL (1:3 30,29,28)
        S1 s1 OK Sort completed
        C1 s2 SORT RETURN (PARTIAL -1:-2 COUNT) (REVERSE SUBJECT) UTF-8 ALL
        S1 * ESEARCH (TAG "s2") PARTIAL (-1:-2 2,1) COUNT 26
        S1 s2 OK Sort completed
        """,
        before=mailbox,
    )


async def test_section_3_3_and_3_4_uid_fetch() -> None:
    """UID FETCH range (PARTIAL ...): the last 3 and the first 5 messages
    of the UID range; with CHANGEDSINCE the window comes first."""
    world = World()
    await mailbox(world)
    box = await world.stores["alice"].mailbox("INBOX")
    since = (await box.status()).highestmodseq
    await run_transcript(
        LOGIN_SELECT
        + f"""
        C1 10 UID FETCH 5:26 (UID FLAGS) (PARTIAL -1:-3)
        S1 * 20 FETCH (UID 24 FLAGS (\\Seen))
        S1 * 21 FETCH (UID 25 FLAGS ())
        S1 * 22 FETCH (UID 26 FLAGS ())
        S1 10 OK Fetch completed
        C1 11 UID FETCH 5:26 (UID FLAGS) (PARTIAL 1:5)
        S1 * 3 FETCH (UID 5 FLAGS ())
        S1 * 4 FETCH (UID 6 FLAGS (\\Seen))
        S1 * 5 FETCH (UID 7 FLAGS (\\Flagged))
        S1 * 6 FETCH (UID 8 FLAGS ())
        S1 * 7 FETCH (UID 9 FLAGS (\\Seen))
        S1 11 OK Fetch completed
        C1 f UID STORE 25 +FLAGS.SILENT (\\Answered)
        S1 f OK %*
        C1 g UID STORE 5 +FLAGS.SILENT (\\Answered)
        S1 g OK %*
        C1 101 UID FETCH 5:26 (UID FLAGS) (PARTIAL -1:-3 CHANGEDSINCE {since})
        S1 * 21 FETCH (UID 25 FLAGS (\\Answered) MODSEQ (%?))
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 101 OK Fetch completed
        C1 102 UID FETCH 5:26 (UID FLAGS) (CHANGEDSINCE {since} PARTIAL -3:-1)
        S1 * 21 FETCH (UID 25 FLAGS (\\Answered) MODSEQ (%?))
        S1 102 OK Fetch completed
        C1 103 UID FETCH 27:* (UID) (PARTIAL 5:9)
        S1 103 OK Fetch completed
        """,
        world,
    )


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("UID SEARCH RETURN (PARTIAL 1:5 ALL) ALL", "PARTIAL and ALL cannot%*"),
        ("UID SEARCH RETURN (ALL PARTIAL 1:5) ALL", "PARTIAL and ALL cannot%*"),
        ("SEARCH RETURN (PARTIAL 1:5 PARTIAL 6:9) ALL", "Only one PARTIAL%*"),
        ("SEARCH RETURN (PARTIAL 1:-5) ALL", "Invalid PARTIAL range"),
        ("SEARCH RETURN (PARTIAL 0:5) ALL", "Invalid PARTIAL range"),
        ("SEARCH RETURN (PARTIAL 1:*) ALL", "Invalid PARTIAL range"),
        ("SEARCH RETURN (PARTIAL) ALL", "%*"),
        ("SEARCH RETURN (PARTIAL 1:99999999999) ALL", "PARTIAL range out%*"),
        ("FETCH 1:* (FLAGS) (PARTIAL 1:5)", "PARTIAL is only allowed in UID FETCH"),
        ("UID FETCH 1:* (FLAGS) (PARTIAL 1:5 PARTIAL 1:5)", "Unknown or repeated%*"),
    ],
)
async def test_errors(command: str, reason: str) -> None:
    """Section 3.1: one PARTIAL, never with ALL; section 4: the range
    syntax; section 3.3: the FETCH modifier belongs to UID FETCH."""
    await run_transcript(
        LOGIN_SELECT
        + f"""
        C1 x {command}
        S1 x BAD {reason}
        C1 y NOOP
        S1 y OK %*
        """,
        before=mailbox,
    )


def test_range_parsing_keeps_what_was_asked() -> None:
    parsed = parse_command([b"t UID SEARCH RETURN (MIN PARTIAL -1:-100) ALL"], [])
    assert isinstance(parsed, Search)
    assert parsed.partial == PartialRange(-1, -100)
    assert parsed.return_options == ("MIN", "PARTIAL")
    assert isinstance(
        parse_command([b"t SEARCH RETURN (PARTIAL -0:-1) ALL"], []), ParseError
    )


def test_window_positions() -> None:
    """1-based from the start, -1 at the end, reversed bounds equal, ends
    clipped, NIL (empty) entirely outside."""
    data = list(range(10, 20))
    assert partial_window(data, PartialRange(1, 3)) == [10, 11, 12]
    assert partial_window(data, PartialRange(3, 1)) == [10, 11, 12]
    assert partial_window(data, PartialRange(-1, -3)) == [17, 18, 19]
    assert partial_window(data, PartialRange(-3, -1)) == [17, 18, 19]
    assert partial_window(data, PartialRange(9, 20)) == [18, 19]
    assert partial_window(data, PartialRange(-9, -20)) == [10, 11]
    assert partial_window(data, PartialRange(11, 12)) == []
    assert partial_window(data, PartialRange(-11, -12)) == []
    assert partial_window([], PartialRange(-1, -1)) == []
