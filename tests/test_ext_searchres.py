"""Transcripts: SEARCHRES (RFC 5182, RFC 9051 section 6.4.4.1).

The saved result is kept as UIDs, so ``$`` means the same messages in
FETCH (sequence numbers) and UID FETCH (UIDs), and loses a message
exactly when its expunge is announced.  Six messages; 1, 2, 3 and 5 are
\\Flagged.
"""

from __future__ import annotations

from asimap.store.memory import MemoryStore
from transcript import World, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

SELECT = """
C1 s SELECT INBOX
S1 * FLAGS %*
S1 * OK [PERMANENTFLAGS %*
S1 * 6 EXISTS
S1 * %? RECENT
S1 * OK [UNSEEN 1] %*
S1 * OK [UIDVALIDITY %?] %*
S1 * OK [UIDNEXT 7] %*
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 s OK [READ-WRITE] Select completed
"""

#: SELECT while a mailbox is selected (RFC 7162 3.2.11 [CLOSED] first).
RESELECT = SELECT.replace("S1 * FLAGS %*", "S1 * OK [CLOSED] %*\nS1 * FLAGS %*", 1)


async def six(world: World) -> None:
    store = world.stores.setdefault("alice", MemoryStore.for_new_account())
    box = await store.mailbox("INBOX")
    for n in range(1, 7):
        flags = ["\\Flagged"] if n in (1, 2, 3, 5) else []
        await box.append(message(f"m{n}"), flags)
    await store.create("Other")


async def test_capability() -> None:
    await run_transcript(
        """
        C1 c CAPABILITY
        S1 * CAPABILITY %* SEARCHRES %*
        S1 c OK %*
        """
    )


async def test_save_then_fetch_uid_fetch_and_search() -> None:
    """Examples 1 and 3: SAVE alone sends no ESEARCH; "$" in FETCH, UID
    FETCH, SEARCH UID $ and SEARCH $ (sequence and UID contexts)."""
    await run_transcript(
        LOGIN
        + SELECT
        + """
        C1 A282 SEARCH RETURN (SAVE) FLAGGED NOT 1
        S1 A282 OK Search completed
        C1 A283 FETCH $ (UID)
        S1 * 2 FETCH (UID 2)
        S1 * 3 FETCH (UID 3)
        S1 * 5 FETCH (UID 5)
        S1 A283 OK Fetch completed
        C1 A284 UID FETCH $ (FLAGS)
        S1 * 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))
        S1 * 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent))
        S1 * 5 FETCH (UID 5 FLAGS (\\Flagged \\Recent))
        S1 A284 OK Fetch completed
        C1 A301 UID SEARCH UID $ NOT 3
        S1 * SEARCH 2 5
        S1 A301 OK Search completed
        C1 A302 SEARCH RETURN (ALL) OR $ 6
        S1 * ESEARCH (TAG "A302") ALL 2:3,5:6
        S1 A302 OK Search completed
        """,
        before=six,
    )


async def test_store_copy_move_with_saved_result() -> None:
    """Example 7: COPY $ and STORE $; MOVE $ and UID MOVE $ too."""
    await run_transcript(
        LOGIN
        + SELECT
        + """
        C1 F282 SEARCH RETURN (SAVE) UNFLAGGED
        S1 F282 OK Search completed
        C1 F283 COPY $ Other
        S1 F283 OK [COPYUID %? 4,6 1:2] Copy completed
        C1 F284 STORE $ +FLAGS.SILENT (\\Deleted)
        S1 F284 OK Store completed
        C1 F285 SEARCH DELETED
        S1 * SEARCH 4 6
        S1 F285 OK Search completed
        C1 F286 UID MOVE $ Other
        S1 * OK [COPYUID %? 4,6 3:4] Moved
        S1 * 6 EXPUNGE
        S1 * 4 EXPUNGE
        S1 F286 OK Move completed
        C1 F287 FETCH $ (UID)
        S1 F287 OK Fetch completed
        """,
        before=six,
    )


async def test_empty_and_unset_saved_result() -> None:
    """Example 6 and "$" before any SAVE: a valid, empty set -- also by
    sequence number on an empty mailbox."""
    await run_transcript(
        LOGIN
        + """
        C1 x SELECT Other
        S1 * %*
        S1 * %*
        S1 * 0 EXISTS
        S1 * 0 RECENT
        S1 * OK [UIDVALIDITY %?] %*
        S1 * OK [UIDNEXT 1] %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 x OK [READ-WRITE] Select completed
        C1 y FETCH $ (FLAGS)
        S1 y OK Fetch completed
        C1 z SEARCH $
        S1 * SEARCH
        S1 z OK Search completed
        """
        + RESELECT
        + """
        C1 E282 SEARCH RETURN (SAVE) DELETED
        S1 E282 OK Search completed
        C1 E283 COPY $ Other
        S1 E283 OK Copy completed
        C1 E284 STORE $ +FLAGS (\\Seen)
        S1 E284 OK Store completed
        """,
        before=six,
    )


async def test_failed_save_empties_and_bad_keeps() -> None:
    """Example 5: a SEARCH (SAVE) that fails with NO empties "$"; a BAD
    SEARCH and a plain SEARCH leave it alone."""
    await run_transcript(
        LOGIN
        + SELECT
        + """
        C1 B282 SEARCH RETURN (SAVE) FLAGGED
        S1 B282 OK Search completed
        C1 B283 SEARCH RETURN (SAVE) NOSUCHKEY
        S1 B283 BAD %*
        C1 B284 SEARCH UNFLAGGED
        S1 * SEARCH 4 6
        S1 B284 OK Search completed
        C1 B285 SEARCH $
        S1 * SEARCH 1 2 3 5
        S1 B285 OK Search completed
        C1 B286 SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1) ALL
        S1 B286 NO [BADCHARSET (US-ASCII UTF-8)] %*
        C1 B287 SEARCH $
        S1 * SEARCH
        S1 B287 OK Search completed
        """,
        before=six,
    )


async def test_min_max_combinations() -> None:
    """Example 10: what "$" holds for each RETURN combination."""
    await run_transcript(
        LOGIN
        + SELECT
        + """
        C1 C282 SEARCH RETURN (ALL) FLAGGED
        S1 * ESEARCH (TAG "C282") ALL 1:3,5
        S1 C282 OK Search completed
        C1 C284 SEARCH RETURN (SAVE MIN) FLAGGED
        S1 * ESEARCH (TAG "C284") MIN 1
        S1 C284 OK Search completed
        C1 q1 SEARCH $
        S1 * SEARCH 1
        S1 q1 OK Search completed
        C1 C285 SEARCH RETURN (MAX SAVE MIN) FLAGGED
        S1 * ESEARCH (TAG "C285") MIN 1 MAX 5
        S1 C285 OK Search completed
        C1 q2 SEARCH $
        S1 * SEARCH 1 5
        S1 q2 OK Search completed
        C1 C286 SEARCH RETURN (MAX SAVE MIN COUNT) FLAGGED
        S1 * ESEARCH (TAG "C286") MIN 1 MAX 5 COUNT 4
        S1 C286 OK Search completed
        C1 q3 SEARCH $
        S1 * SEARCH 1 2 3 5
        S1 q3 OK Search completed
        """,
        before=six,
    )


async def test_expunge_updates_and_select_resets() -> None:
    """An expunged message leaves "$" (by another client too, once
    announced); SELECT, UNSELECT and CLOSE reset it."""
    await run_transcript(
        LOGIN
        + SELECT
        + """
        C1 d SEARCH RETURN (SAVE) FLAGGED
        S1 d OK Search completed
        C2 a LOGIN alice secret-a
        S2 a OK %*
        C2 s SELECT INBOX
        S2 * %*
        S2 * %*
        S2 * 6 EXISTS
        S2 * 0 RECENT
        S2 * %*
        S2 * %*
        S2 * %*
        S2 * OK [MAILBOXID (%?)] %*
        S2 * OK [HIGHESTMODSEQ %?] Highest
        S2 s OK %*
        C2 e STORE 2 +FLAGS.SILENT (\\Deleted)
        S2 e OK %*
        C2 f EXPUNGE
        S2 * 2 EXPUNGE
        S2 f OK %*
        C1 h NOOP
        S1 * 2 EXPUNGE
        S1 h OK %*
        C1 i FETCH $ (UID)
        S1 * 1 FETCH (UID 1)
        S1 * 2 FETCH (UID 3)
        S1 * 4 FETCH (UID 5)
        S1 i OK Fetch completed
        C1 j SEARCH RETURN (SAVE) ALL
        S1 j OK Search completed
        """
        + RESELECT.replace("6 EXISTS", "5 EXISTS").replace("UNSEEN 1", "UNSEEN %?")
        + """
        C1 k SEARCH $
        S1 * SEARCH
        S1 k OK Search completed
        C1 l SEARCH RETURN (SAVE) ALL
        S1 l OK Search completed
        C1 m CLOSE
        S1 m OK %*
        """
        + SELECT.replace("6 EXISTS", "5 EXISTS").replace("UNSEEN 1", "UNSEEN %?")
        + """
        C1 n SEARCH $
        S1 * SEARCH
        S1 n OK Search completed
        """,
        before=six,
    )
