"""Transcripts: the search keys IMAP4rev2 removed (RFC 9051).

RFC 9051 section 6.4.4 (and the search-key rule of section 9) no longer
has NEW, OLD or RECENT; appendix E item 12 deprecates them together with
``\\Recent``.  After ``ENABLE IMAP4rev2`` they are BAD in SEARCH, SORT and
THREAD alike; a client that did not enable rev2 keeps them (RFC 3501
section 6.4.4), and the rev2 keys around them keep working.
"""

from __future__ import annotations

import pytest

from asimap.imap.commands import ParseError, SearchFlag
from asimap.imap.parser import parse_command
from asimap.imap.search import uses_recent
from asimap.store.memory import MemoryStore
from transcript import World, message, run_transcript

LOGIN_SELECT = """
C1 a LOGIN alice secret-a
S1 a OK %*
C1 s SELECT INBOX
S1 * FLAGS %*
S1 * OK [PERMANENTFLAGS %*
S1 * 2 EXISTS
S1 * 2 RECENT
S1 * OK [UNSEEN 2] %*
S1 * OK [UIDVALIDITY %?] %*
S1 * OK [UIDNEXT 3] %*
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 s OK [READ-WRITE] Select completed
"""

LOGIN_ENABLE_SELECT = """
C1 a LOGIN alice secret-a
S1 a OK %*
C1 e ENABLE IMAP4rev2
S1 * ENABLED IMAP4rev2
S1 e OK %*
C1 s SELECT INBOX
S1 * FLAGS %*
S1 * OK [PERMANENTFLAGS %*
S1 * 2 EXISTS
S1 * OK [UIDVALIDITY %?] %*
S1 * OK [UIDNEXT 3] %*
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 * LIST %*
S1 s OK [READ-WRITE] Select completed
"""


async def two(world: World) -> None:
    store = world.stores.setdefault("alice", MemoryStore.for_new_account())
    box = await store.mailbox("INBOX")
    await box.append(message("one"), ["\\Seen"])
    await box.append(message("two"))


@pytest.mark.parametrize(
    "command",
    [
        "SEARCH NEW",
        "SEARCH OLD",
        "SEARCH RECENT",
        "UID SEARCH UNSEEN NOT (OR SEEN RECENT)",
        "SEARCH RETURN (COUNT) NEW",
        "SORT (DATE) UTF-8 OLD",
        "THREAD REFERENCES UTF-8 RECENT",
    ],
)
async def test_rev2_refuses_recent_keys(command: str) -> None:
    """BAD for the removed keys, wherever they are nested; the session
    goes on (a following SEARCH UNSEEN answers)."""
    await run_transcript(
        LOGIN_ENABLE_SELECT
        + f"""
        C1 x {command}
        S1 x BAD NEW, OLD and RECENT are not IMAP4rev2 search keys
        C1 y SEARCH UNSEEN
        S1 * ESEARCH (TAG "y") ALL 2
        S1 y OK Search completed
        """,
        before=two,
    )


async def test_rev1_keeps_recent_keys() -> None:
    """Without ENABLE IMAP4rev2, NEW = RECENT UNSEEN and OLD = NOT RECENT
    (RFC 3501 section 6.4.4) answer as before."""
    await run_transcript(
        LOGIN_SELECT
        + """
        C1 n SEARCH NEW
        S1 * SEARCH 2
        S1 n OK Search completed
        C1 o SEARCH OLD
        S1 * SEARCH
        S1 o OK Search completed
        C1 r SEARCH RECENT
        S1 * SEARCH 1 2
        S1 r OK Search completed
        C1 t SORT (DATE) UTF-8 NEW
        S1 * SORT 2
        S1 t OK Sort completed
        """,
        before=two,
    )


def test_keyword_cannot_name_recent() -> None:
    """``KEYWORD \\Recent`` is a parse error (flag-keyword is an atom), so
    :func:`uses_recent` only ever sees \\Recent from NEW, OLD, RECENT."""
    result = parse_command([b"a SEARCH KEYWORD \\Recent"], [])
    assert isinstance(result, ParseError)
    assert uses_recent(SearchFlag("\\RECENT"))
    assert not uses_recent(SearchFlag("\\Seen"))


async def test_status_recent_is_bad_after_enable_only() -> None:
    # RFC 9051 section 9: status-att has no RECENT (appendix E item 12);
    # an IMAP4rev1 client still gets it (RFC 3501 section 6.3.10), also
    # through LIST-STATUS (RFC 5819 section 2: the STATUS items).
    await run_transcript(
        """
        C1 a LOGIN alice secret-a
        S1 a OK %*
        C1 b STATUS INBOX (MESSAGES RECENT)
        S1 * STATUS "INBOX" (MESSAGES 2 RECENT 2)
        S1 b OK %*
        C1 e ENABLE IMAP4rev2
        S1 * ENABLED IMAP4rev2
        S1 e OK %*
        C1 c STATUS INBOX (MESSAGES RECENT)
        S1 c BAD RECENT is not an IMAP4rev2 STATUS item
        C1 d LIST "" INBOX RETURN (STATUS (RECENT))
        S1 d BAD RECENT is not an IMAP4rev2 STATUS item
        C1 f STATUS INBOX (MESSAGES UNSEEN)
        S1 * STATUS "INBOX" (MESSAGES 2 UNSEEN 1)
        S1 f OK %*
        """,
        before=two,
    )
