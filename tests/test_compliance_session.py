"""Session-level defects an outside compliance suite found, one transcript
each, on the memory store and on a real MH root where the store matters.

Each test names the RFC section that settles the answer; where a private
Dovecot (``bench/dovecot.py``) was asked the same thing, its answer is
noted next to ours.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asimap.auth.account import Account
from asimap.store.base import Store
from test_ext_special_use import MHWorld
from transcript import World, append_lines, message, run_transcript

LOGIN1 = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""


@pytest.fixture(params=["memory", "mh"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """A world on each store kind: the memory store, then an MH root."""
    if request.param == "memory":
        yield World()
        return
    mh = MHWorld(tmp_path / "Mail")
    try:
        yield mh
    finally:
        await mh.close()


async def alice_store(world: World) -> Store:
    return await world.open_store(Account("alice", Path("/nonexistent")))


# -- 1. EXAMINE reports RECENT (RFC 3501 section 6.3.2) ----------------------


async def test_examine_reports_recent_without_claiming_it(world: World) -> None:
    """EXAMINE answers RECENT like SELECT but leaves \\Recent unclaimed: a
    later read-write SELECT still gets both messages as recent, and after
    that nobody does.  (Dovecot 2.3 answers ``* 2 RECENT`` to the EXAMINE
    too.)"""
    inbox = await (await alice_store(world)).mailbox("INBOX")
    await inbox.append(message("one"))
    await inbox.append(message("two"))
    await run_transcript(
        LOGIN1
        + """
        C1 b STATUS INBOX (RECENT)
        S1 * STATUS "INBOX" (RECENT 2)
        S1 b OK %*
        C1 c EXAMINE INBOX
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS ()] %*
        S1 * 2 EXISTS
        S1 * 2 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] %*
        S1 * OK [UIDNEXT 3] %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 c OK [READ-ONLY] Examine completed
        C1 d FETCH 1:2 FLAGS
        S1 * 1 FETCH (FLAGS (\\Recent))
        S1 * 2 FETCH (FLAGS (\\Recent))
        S1 d OK %*
        C1 e STATUS INBOX (RECENT)
        S1 * STATUS "INBOX" (RECENT 2)
        S1 e OK %*
        C2 a LOGIN alice secret-a
        S2 a OK %*
        C2 b SELECT INBOX
        S2 * FLAGS %*
        S2 * OK [PERMANENTFLAGS %*] %*
        S2 * 2 EXISTS
        S2 * 2 RECENT
        S2 * OK [UNSEEN 1] %*
        S2 * OK [UIDVALIDITY %?] %*
        S2 * OK [UIDNEXT 3] %*
        S2 * OK [MAILBOXID (%?)] %*
        S2 b OK [READ-WRITE] Select completed
        C1 f EXAMINE INBOX
        S1 * OK [CLOSED] %*
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS ()] %*
        S1 * 2 EXISTS
        S1 * 0 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] %*
        S1 * OK [UIDNEXT 3] %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 f OK [READ-ONLY] Examine completed
        """,
        world,
    )


async def test_examine_sees_new_mail_as_recent(world: World) -> None:
    """Mail arriving while a mailbox is EXAMINEd is announced as RECENT and
    stays unclaimed for a read-write session."""
    inbox = await (await alice_store(world)).mailbox("INBOX")
    await inbox.append(message("one"))
    await run_transcript(
        LOGIN1
        + f"""
        C1 c EXAMINE INBOX
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS ()] %*
        S1 * 1 EXISTS
        S1 * 1 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] %*
        S1 * OK [UIDNEXT 2] %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 c OK [READ-ONLY] Examine completed
        C2 a LOGIN alice secret-a
        S2 a OK %*
        {append_lines(2, "b", "INBOX", message("two"))}
        S2 b OK [APPENDUID %? 2] %*
        C1 d NOOP
        S1 * 2 EXISTS
        S1 * 2 RECENT
        S1 d OK %*
        C1 e STATUS INBOX (RECENT)
        S1 * STATUS "INBOX" (RECENT 2)
        S1 e OK %*
        """,
        world,
    )


# -- 8. LIST/LSUB patterns that are not modified UTF-7 (RFC 3501 5.1.3) -------


async def test_list_pattern_not_modified_utf7_matches_nothing() -> None:
    """A pattern (or reference) that is not valid modified UTF-7 names no
    mailbox: OK with no results, as Dovecot 2.3 answers.  Only names that
    get created must be valid (RFC 3501 section 5.1.3), so CREATE still
    says NO [CANNOT]."""
    await run_transcript(
        LOGIN1
        + """
        C1 b LIST "" "!#$&'+,-.0123456789:;<=>?@^_`|[}%*"
        S1 b OK List completed
        C1 c LSUB "" "!#$&'+,-.0123456789:;<=>?@^_`|[}%*"
        S1 c OK Lsub completed
        C1 d LIST "&Jjo" "*"
        S1 d OK List completed
        C1 e LIST () "" ("&Jjo" "INBOX") RETURN (CHILDREN)
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 e OK List completed
        C1 f LSUB "&Jjo" "*"
        S1 f OK Lsub completed
        C1 g CREATE "&Jjo"
        S1 g NO [CANNOT] %*
        """
    )
