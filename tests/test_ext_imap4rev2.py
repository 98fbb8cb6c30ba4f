"""Transcripts: IMAP4rev2 behaviour after ``ENABLE IMAP4rev2`` (RFC 9051).

IMAP4rev2 is advertised once every extension it folds in is (appendix E
item 2); these transcripts pin the response forms that change for a client
that enabled it, and the appendix E items we can observe on the wire.
"""

from __future__ import annotations

from asimap.store.memory import MemoryStore
from transcript import World, message, run_transcript

LOGIN_ENABLE = """
C1 a LOGIN alice secret-a
S1 a OK [CAPABILITY %* IMAP4rev2 %*] %*
C1 e ENABLE IMAP4rev2
S1 * ENABLED IMAP4rev2
S1 e OK Enable completed
"""

#: RFC 9051 6.3.2: no RECENT, no UNSEEN code (appendix E items 11-12),
#: an untagged LIST (item 10).
SELECT = """
C1 s SELECT INBOX
S1 * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
S1 * OK [PERMANENTFLAGS (%*)] Flags permitted
S1 * 3 EXISTS
S1 * OK [UIDVALIDITY %?] UIDs valid
S1 * OK [UIDNEXT 4] Predicted next UID
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 * LIST (\\HasNoChildren) "/" "INBOX"
S1 s OK [READ-WRITE] Select completed
"""


async def three(world: World) -> None:
    store = world.stores.setdefault("alice", MemoryStore.for_new_account())
    box = await store.mailbox("INBOX")
    await box.append(message("one"), ["\\Flagged"])
    await box.append(message("two", body="x" * 5000))
    await box.append(message("three"), ["\\Flagged"])
    await store.create("Other")


async def test_advertised_with_its_folded_in_extensions() -> None:
    """Appendix E item 2: IMAP4rev2 comes with ESEARCH and SEARCHRES."""
    await run_transcript(
        """
        C1 c CAPABILITY
        S1 * CAPABILITY IMAP4rev1 IMAP4rev2 %* ESEARCH SEARCHRES %*
        S1 c OK %*
        """
    )


async def test_select_and_search_forms() -> None:
    """Items 4, 10-12: SEARCH answers with ESEARCH (ALL, and the UID
    indicator for UID SEARCH, nothing when nothing matched)."""
    await run_transcript(
        LOGIN_ENABLE
        + SELECT
        + """
        C1 f SEARCH FLAGGED
        S1 * ESEARCH (TAG "f") ALL 1,3
        S1 f OK Search completed
        C1 g UID SEARCH ALL
        S1 * ESEARCH (TAG "g") UID ALL 1:3
        S1 g OK Search completed
        C1 h SEARCH DELETED
        S1 * ESEARCH (TAG "h")
        S1 h OK Search completed
        C1 i SEARCH RETURN (COUNT) ALL
        S1 * ESEARCH (TAG "i") COUNT 3
        S1 i OK Search completed
        C1 j FETCH 1 (FLAGS)
        S1 * 1 FETCH (FLAGS (\\Flagged))
        S1 j OK Fetch completed
        """,
        before=three,
    )


async def test_without_enable_rev1_forms_stay() -> None:
    """A client that did not enable IMAP4rev2 keeps SEARCH and RECENT."""
    await run_transcript(
        """
        C1 a LOGIN alice secret-a
        S1 a OK %*
        C1 s EXAMINE INBOX
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS ()] %*
        S1 * 3 EXISTS
        S1 * 3 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] %*
        S1 * OK [UIDNEXT 4] %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 s OK [READ-ONLY] Examine completed
        C1 f SEARCH FLAGGED
        S1 * SEARCH 1 3
        S1 f OK Search completed
        """,
        before=three,
    )


async def test_unsolicited_fetch_has_uid_and_no_recent() -> None:
    """Item 21 (UID in unsolicited FETCH), item 12 (no RECENT on new mail),
    item 15 ($Junk and friends are ordinary keywords we keep)."""
    await run_transcript(
        LOGIN_ENABLE
        + SELECT
        + """
        C2 a LOGIN alice secret-a
        S2 a OK %*
        C2 s SELECT INBOX
        S2 * %*
        S2 * %*
        S2 * 3 EXISTS
        S2 * 0 RECENT
        S2 * %*
        S2 * %*
        S2 * %*
        S2 * OK [MAILBOXID (%?)] %*
        S2 * OK [HIGHESTMODSEQ %?] Highest
        S2 s OK %*
        C2 t STORE 2 +FLAGS.SILENT ($Junk $MDNSent)
        S2 * FLAGS %*
        S2 * OK [PERMANENTFLAGS %*
        S2 t OK %*
        C1 n NOOP
        S1 * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk $MDNSent)
        S1 * OK [PERMANENTFLAGS %*
        S1 * 2 FETCH (UID 2 FLAGS ($Junk $MDNSent))
        S1 n OK %*
        """,
        before=three,
    )


async def test_appendix_e_items_on_the_wire() -> None:
    """Item 1 (64-bit sizes in SEARCH), item 3 (STATUS SIZE and DELETED),
    items 7-8 (COPYUID for MOVE and UID MOVE; no mailbox created by COPY or
    MOVE, TRYCREATE instead), item 19 (LIST (SUBSCRIBED) works)."""
    await run_transcript(
        LOGIN_ENABLE
        + SELECT
        + """
        C1 b SEARCH LARGER 4294967296
        S1 * ESEARCH (TAG "b")
        S1 b OK Search completed
        C1 c SEARCH SMALLER 4294967296
        S1 * ESEARCH (TAG "c") ALL 1:3
        S1 c OK Search completed
        C1 d STATUS Other (MESSAGES SIZE DELETED)
        S1 * STATUS "Other" (MESSAGES 0 SIZE 0 DELETED 0)
        S1 d OK %*
        C1 f COPY 1 Nowhere
        S1 f NO [TRYCREATE] %*
        C1 g MOVE 1 Nowhere
        S1 g NO [TRYCREATE] %*
        C1 h LIST "" Nowhere
        S1 h OK %*
        C1 i MOVE 1 Other
        S1 * OK [COPYUID %? 1 1] Moved
        S1 * 1 EXPUNGE
        S1 i OK Move completed
        C1 j UID MOVE 3 Other
        S1 * OK [COPYUID %? 3 2] Moved
        S1 * 2 EXPUNGE
        S1 j OK Move completed
        C1 k SUBSCRIBE Other
        S1 k OK %*
        C1 l LIST (SUBSCRIBED) "" "*"
        S1 * LIST (%*\\Subscribed) "/" "Other"
        S1 l OK %*
        """,
        before=three,
    )
