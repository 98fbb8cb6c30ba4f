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
        S1 * OK [HIGHESTMODSEQ %?] Highest
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
        S2 * OK [HIGHESTMODSEQ %?] Highest
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
        S1 * OK [HIGHESTMODSEQ %?] Highest
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
        S1 * OK [HIGHESTMODSEQ %?] Highest
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


# -- 4. CONDSTORE enabled by a command (RFC 7162 section 3.1) -----------------

SELECT_PLAIN = """
C1 s SELECT INBOX
S1 * FLAGS %*
S1 * OK [PERMANENTFLAGS %*] %*
S1 * 2 EXISTS
S1 * %? RECENT
S1 * OK [UNSEEN 1] %*
S1 * OK [UIDVALIDITY %?] %*
S1 * OK [UIDNEXT 3] %*
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 s OK [READ-WRITE] Select completed
"""

#: The first CONDSTORE enabling command of a session, its own responses,
#: then the HIGHESTMODSEQ the client has not been told yet.
ENABLING_COMMANDS = {
    "fetch-modseq": """
        C1 c FETCH 1 (MODSEQ)
        S1 * 1 FETCH (MODSEQ (%?))
        S1 * OK [HIGHESTMODSEQ %{highest}] Highest
        S1 c OK Fetch completed
    """,
    "fetch-changedsince": """
        C1 c FETCH 1:* (FLAGS) (CHANGEDSINCE 1)
        S1 * 1 FETCH (FLAGS (%*) MODSEQ (%?))
        S1 * 2 FETCH (FLAGS (%*) MODSEQ (%{highest}))
        S1 * OK [HIGHESTMODSEQ %{highest}] Highest
        S1 c OK Fetch completed
    """,
    "search-modseq": """
        C1 c SEARCH MODSEQ 1
        S1 * SEARCH 1 2 (MODSEQ %{highest})
        S1 * OK [HIGHESTMODSEQ %{highest}] Highest
        S1 c OK Search completed
    """,
    "store-unchangedsince": """
        C1 c STORE 1 (UNCHANGEDSINCE 1000) +FLAGS (\\Flagged)
        S1 * 1 FETCH (UID 1 FLAGS (%*) MODSEQ (%{highest}))
        S1 * OK [HIGHESTMODSEQ %{highest}] Highest
        S1 c OK Store completed
    """,
    "status-highestmodseq": """
        C1 c STATUS Junk (HIGHESTMODSEQ)
        S1 * STATUS "Junk" (HIGHESTMODSEQ %?)
        S1 * OK [HIGHESTMODSEQ %{highest}] Highest
        S1 c OK Status completed
    """,
}


@pytest.mark.parametrize("command", sorted(ENABLING_COMMANDS))
async def test_condstore_enabling_command_reports_highestmodseq(
    world: World, command: str
) -> None:
    """With a mailbox selected, the first CONDSTORE enabling command is
    followed by ``* OK [HIGHESTMODSEQ n]`` before its tagged reply, once;
    ``n`` is the mailbox's HIGHESTMODSEQ.  (Dovecot 2.3 answers ``FETCH 1
    (MODSEQ)`` the same way, with the line before the FETCH.)"""
    inbox = await (await alice_store(world)).mailbox("INBOX")
    await inbox.append(message("one"))
    await inbox.append(message("two"))
    await run_transcript(
        LOGIN1
        + SELECT_PLAIN
        + ENABLING_COMMANDS[command]
        + """
        C1 d FETCH 1 (MODSEQ)
        S1 * 1 FETCH (MODSEQ (%?))
        S1 d OK Fetch completed
        """,
        world,
    )
    assert int(world.captured["highest"]) == (await inbox.status()).highestmodseq


async def test_condstore_enabled_without_a_mailbox_says_nothing_extra() -> None:
    """Nothing selected: nothing to report; the next SELECT reports it."""
    await run_transcript(
        LOGIN1
        + """
        C1 c STATUS INBOX (HIGHESTMODSEQ)
        S1 * STATUS "INBOX" (HIGHESTMODSEQ %?)
        S1 c OK Status completed
        """
    )


# -- 9. NOTIFY's initial STATUS (RFC 5465 section 3.1) ------------------------


async def test_notify_initial_status_with_flagchange_has_highestmodseq(
    world: World,
) -> None:
    """The server supports CONDSTORE, so the STATUS for FlagChange carries
    UIDVALIDITY and HIGHESTMODSEQ although the client never enabled
    CONDSTORE; without FlagChange it does not need them.  Dovecot 2.3
    answers the same way."""
    store = await alice_store(world)
    inbox = await store.mailbox("INBOX")
    await inbox.append(message("one"))
    highest = (await inbox.status()).highestmodseq
    uidvalidity = inbox.uidvalidity
    await run_transcript(
        LOGIN1
        + f"""
        C1 b NOTIFY SET STATUS (mailboxes INBOX (MessageNew MessageExpunge FlagChange))
        S1 * STATUS "INBOX" (UIDVALIDITY {uidvalidity} UIDNEXT 2 MESSAGES 1 HIGHESTMODSEQ {highest})
        S1 b OK NOTIFY completed
        C1 c NOTIFY SET STATUS (mailboxes INBOX (MessageNew MessageExpunge))
        S1 * STATUS "INBOX" (UIDVALIDITY {uidvalidity} UIDNEXT 2 MESSAGES 1)
        S1 c OK NOTIFY completed
        C1 d NOTIFY NONE
        S1 d OK %*
        """,  # noqa: E501
        world,
    )
