"""Transcripts with several clients on one account: who is told what, when.

RFC 3501 7.4.1: EXPUNGE must not be sent during FETCH, STORE or SEARCH by
sequence number; EXISTS and FETCH may be sent whenever a command runs.
"""

from __future__ import annotations

from transcript import World, add_messages, append_lines, message, run_transcript


def login_select(client: int, user: str = "alice") -> str:
    password = {"alice": "secret-a", "bob": "secret-b"}[user]
    return f"""
    C{client} l{client} LOGIN {user} {password}
    S{client} l{client} OK %*
    C{client} s{client} SELECT INBOX
    S{client} * FLAGS %*
    S{client} * OK [PERMANENTFLAGS %*
    S{client} * 3 EXISTS
    S{client} * %? RECENT
    S{client} * OK [UNSEEN 1] %*
    S{client} * OK [UIDVALIDITY %?] UIDs valid
    S{client} * OK [UIDNEXT 4] Predicted next UID
    S{client} * OK [MAILBOXID (%?)] %*
    S{client} * OK [HIGHESTMODSEQ %?] Highest
    S{client} s{client} OK [READ-WRITE] Select completed
    """


async def three(world: World) -> None:
    await add_messages(
        world, "alice", "INBOX", message("one"), message("two"), message("three")
    )


async def test_flag_changes_of_others_are_reported() -> None:
    await run_transcript(
        login_select(1)
        + login_select(2)
        + """
        C1 a STORE 2 +FLAGS (\\Flagged)
        S1 * 2 FETCH (FLAGS (\\Flagged \\Recent))
        S1 a OK Store completed
        C2 b NOOP
        S2 * 2 FETCH (FLAGS (\\Flagged))
        S2 b OK NOOP completed
        C2 c UID STORE 3 +FLAGS (\\Answered)
        S2 * 3 FETCH (UID 3 FLAGS (\\Answered))
        S2 c OK Store completed
        # UID command: the unsolicited FETCH carries the UID (RFC 3501 7.4.2)
        C1 d UID FETCH 1 FLAGS
        S1 * 1 FETCH (UID 1 FLAGS (\\Recent))
        S1 * 3 FETCH (UID 3 FLAGS (\\Answered \\Recent))
        S1 d OK Fetch completed
        # Own changes are not reported twice.
        C1 e NOOP
        S1 e OK NOOP completed
        """,
        before=three,
    )


async def test_expunge_deferred_during_sequence_fetch() -> None:
    await run_transcript(
        login_select(1)
        + login_select(2)
        + """
        C2 a STORE 2 +FLAGS.SILENT (\\Deleted)
        S2 a OK Store completed
        C2 b EXPUNGE
        S2 * 2 EXPUNGE
        S2 b OK Expunge completed
        # Client 1 still sees 3 messages; FETCH by sequence number must not
        # announce the expunge, and message 2 is reported as gone.
        C1 c FETCH 1:3 (UID RFC822.SIZE)
        S1 * 1 FETCH (UID 1 RFC822.SIZE 101)
        S1 * 3 FETCH (UID 3 RFC822.SIZE 103)
        S1 c NO [EXPUNGEISSUED] Some messages were expunged
        C1 d STORE 3 +FLAGS (\\Seen)
        S1 * 3 FETCH (FLAGS (\\Seen \\Recent))
        S1 d OK Store completed
        C1 e SEARCH ALL
        S1 * SEARCH 1 3
        S1 e OK Search completed
        # NOOP may announce it.
        C1 f NOOP
        S1 * 2 EXPUNGE
        S1 f OK NOOP completed
        C1 g FETCH 2 (UID)
        S1 * 2 FETCH (UID 3)
        S1 g OK Fetch completed
        """,
        before=three,
    )


async def test_expunge_sent_during_uid_fetch() -> None:
    await run_transcript(
        login_select(1)
        + login_select(2)
        + """
        C2 a STORE 1 +FLAGS.SILENT (\\Deleted)
        S2 a OK Store completed
        C2 b EXPUNGE
        S2 * 1 EXPUNGE
        S2 b OK Expunge completed
        C1 c UID FETCH 3 (FLAGS)
        S1 * 3 FETCH (UID 3 FLAGS (\\Recent))
        S1 * 1 EXPUNGE
        S1 c OK Fetch completed
        """,
        before=three,
    )


async def test_uid_commands_on_messages_expunged_elsewhere_succeed() -> None:
    """RFC 3501 6.4.8: a UID that no longer exists is ignored without error;
    UID FETCH and UID STORE end with OK [EXPUNGEISSUED] (as Dovecot does),
    not the NO that sequence-number commands get (RFC 2180 4.1.2), and the
    EXPUNGE goes out with them."""
    await run_transcript(
        login_select(1)
        + login_select(2)
        + """
        C2 a STORE 2 +FLAGS.SILENT (\\Deleted)
        S2 a OK Store completed
        C2 b EXPUNGE
        S2 * 2 EXPUNGE
        S2 b OK Expunge completed
        C1 c UID FETCH 1:3 (RFC822.SIZE)
        S1 * 1 FETCH (UID 1 RFC822.SIZE 101)
        S1 * 3 FETCH (UID 3 RFC822.SIZE 103)
        S1 * 2 EXPUNGE
        S1 c OK [EXPUNGEISSUED] Some messages were already expunged
        """,
        before=three,
    )
    await run_transcript(
        login_select(1)
        + login_select(2)
        + """
        C2 a STORE 2 +FLAGS.SILENT (\\Deleted)
        S2 a OK Store completed
        C2 b EXPUNGE
        S2 * 2 EXPUNGE
        S2 b OK Expunge completed
        # A FETCH by sequence number learns of the expunge (and must not
        # announce it, RFC 3501 7.4.1); the UID STORE then skips UID 2.
        C1 c FETCH 1:3 (UID RFC822.SIZE)
        S1 * 1 FETCH (UID 1 RFC822.SIZE 101)
        S1 * 3 FETCH (UID 3 RFC822.SIZE 103)
        S1 c NO [EXPUNGEISSUED] Some messages were expunged
        C1 d UID STORE 2:3 +FLAGS (\\Seen)
        S1 * 3 FETCH (UID 3 FLAGS (\\Seen \\Recent))
        S1 * 2 EXPUNGE
        S1 d OK [EXPUNGEISSUED] Some messages were already expunged
        """,
        before=three,
    )


async def test_append_by_another_client_is_announced() -> None:
    data = message("four")
    await run_transcript(
        login_select(1)
        + login_select(2)
        + append_lines(2, "a", "INBOX", data)
        + """
        S2 * 4 EXISTS
        S2 * 1 RECENT
        S2 a OK [APPENDUID %? 4] Append completed
        # The first session to see a new message gets it as \\Recent.
        C1 b NOOP
        S1 * 4 EXISTS
        S1 b OK NOOP completed
        C2 c NOOP
        S2 c OK NOOP completed
        """,
        before=three,
    )


async def test_idle_receives_another_clients_changes() -> None:
    data = message("four")
    await run_transcript(
        login_select(1)
        + login_select(2)
        + """
        C1 a IDLE
        S1 + idling
        """
        + append_lines(2, "b", "INBOX", data)
        + """
        S2 * 4 EXISTS
        S2 * 1 RECENT
        S2 b OK [APPENDUID %? 4] Append completed
        S1 * 4 EXISTS
        C2 c STORE 1 +FLAGS (\\Deleted)
        S2 * 1 FETCH (FLAGS (\\Deleted))
        S2 c OK Store completed
        S1 * 1 FETCH (FLAGS (\\Deleted \\Recent))
        C2 d EXPUNGE
        S2 * 1 EXPUNGE
        S2 d OK Expunge completed
        S1 * 1 EXPUNGE
        C1 DONE
        S1 a OK Idle completed
        C1 e FETCH 3 (UID)
        S1 * 3 FETCH (UID 4)
        S1 e OK Fetch completed
        """,
        before=three,
    )


async def test_users_do_not_see_each_other() -> None:
    async def setup(world: World) -> None:
        await three(world)
        await add_messages(world, "bob", "INBOX", message("bob's"))

    await run_transcript(
        login_select(1)
        + """
        C2 a LOGIN bob secret-b
        S2 a OK %*
        C2 b STATUS INBOX (MESSAGES)
        S2 * STATUS "INBOX" (MESSAGES 1)
        S2 b OK %*
        """,
        before=setup,
    )
