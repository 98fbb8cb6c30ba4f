"""Transcripts: the selected state (SELECT/EXAMINE, FETCH, STORE, SEARCH,
COPY, MOVE, EXPUNGE, CLOSE, UNSELECT, CHECK)."""

from __future__ import annotations

from transcript import World, add_messages, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

SELECT3 = """
C1 s SELECT INBOX
S1 * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
S1 * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] %*
S1 * 3 EXISTS
S1 * 3 RECENT
S1 * OK [UNSEEN 1] Message 1 is first unseen
S1 * OK [UIDVALIDITY %?] UIDs valid
S1 * OK [UIDNEXT 4] Predicted next UID
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 s OK [READ-WRITE] Select completed
"""


async def three(world: World) -> None:
    await add_messages(
        world, "alice", "INBOX", message("one"), message("two"), message("three")
    )


async def test_examine_is_read_only() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 b EXAMINE INBOX
        S1 * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
        S1 * OK [PERMANENTFLAGS ()] Flags permitted
        S1 * 3 EXISTS
        S1 * 3 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] UIDs valid
        S1 * OK [UIDNEXT 4] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 b OK [READ-ONLY] Examine completed
        C1 c FETCH 1 BODY[TEXT]
        S1 * 1 FETCH (BODY[TEXT] {7}
        S1 Hello
        S1 )
        S1 c OK Fetch completed
        C1 d FETCH 1 FLAGS
        S1 * 1 FETCH (FLAGS (\\Recent))
        S1 d OK Fetch completed
        C1 e STORE 1 +FLAGS (\\Deleted)
        S1 e NO Mailbox is read-only
        C1 f EXPUNGE
        S1 f NO Mailbox is read-only
        C1 g MOVE 1 Junk
        S1 g NO Mailbox is read-only
        C1 h COPY 1 Junk
        S1 h OK [COPYUID %? 1 1] Copy completed
        C1 i CLOSE
        S1 i OK Close completed
        C1 j STATUS INBOX (MESSAGES UNSEEN RECENT)
        S1 * STATUS "INBOX" (MESSAGES 3 UNSEEN 3 RECENT 3)
        S1 j OK %*
        """,
        before=three,
    )


async def test_failed_select_leaves_authenticated_state() -> None:
    await run_transcript(
        LOGIN
        + SELECT3
        + """
        C1 b SELECT nosuch
        S1 * OK [CLOSED] Previous mailbox closed
        S1 b NO [NONEXISTENT] %*
        C1 c FETCH 1 FLAGS
        S1 c BAD FETCH not allowed in the authenticated state
        """,
        before=three,
    )


async def test_fetch_items() -> None:
    await run_transcript(
        LOGIN
        + SELECT3
        + """
        C1 b FETCH 1 (UID FLAGS RFC822.SIZE INTERNALDATE)
        S1 * 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE 101 INTERNALDATE "%? %? %?")
        S1 b OK Fetch completed
        C1 c FETCH 2 ENVELOPE
        S1 * 2 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "two" %*))
        S1 c OK Fetch completed
        C1 d FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)] BODY)
        S1 * 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {16}
        S1 Subject: one
        S1
        S1  BODY ("TEXT" "PLAIN" %*))
        S1 d OK Fetch completed
        C1 e FETCH 1 BODY.PEEK[]<0.5>
        S1 * 1 FETCH (BODY[]<0> {5}
        S1 From:)
        S1 e OK Fetch completed
        C1 f FETCH 1 BODY.PEEK[]<500.5>
        S1 * 1 FETCH (BODY[]<500> {0}
        S1 )
        S1 f OK Fetch completed
        """,
        before=three,
    )


async def test_fetch_body_sets_seen_and_reports_flags() -> None:
    await run_transcript(
        LOGIN
        + SELECT3
        + """
        C1 b FETCH 2 RFC822.TEXT
        S1 * 2 FETCH (RFC822.TEXT {7}
        S1 Hello
        S1  FLAGS (\\Seen \\Recent))
        S1 b OK Fetch completed
        C1 c FETCH 2 BODY[TEXT]
        S1 * 2 FETCH (BODY[TEXT] {7}
        S1 Hello
        S1 )
        S1 c OK Fetch completed
        C1 d UID FETCH 3 BINARY[1]
        S1 * 3 FETCH (UID 3 BINARY[1] {7}
        S1 Hello
        S1  FLAGS (\\Seen \\Recent))
        S1 d OK Fetch completed
        C1 e FETCH 1 (BINARY.SIZE[1] RFC822.HEADER)
        S1 * 1 FETCH (BINARY.SIZE[1] 7 RFC822.HEADER {94}
        S1 From: a@example.org
        S1 To: b@example.org
        S1 Subject: one
        S1 Date: Mon, 7 Feb 1994 21:52:25 -0800
        S1
        S1 )
        S1 e OK Fetch completed
        """,
        before=three,
    )


async def test_fetch_sequence_errors() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 b SELECT Junk
        S1 %*
        S1 %*
        S1 * 0 EXISTS
        S1 * 0 RECENT
        S1 %*
        S1 %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 b OK [READ-WRITE] %*
        C1 c UID FETCH 1:4294967295 FLAGS
        S1 c OK Fetch completed
        C1 d FETCH 1:4294967295 FLAGS
        S1 d BAD Invalid message sequence number
        C1 e FETCH 1:* FLAGS
        S1 e BAD Invalid message sequence number
        C1 f UID SEARCH ALL
        S1 * SEARCH
        S1 f OK Search completed
        """
    )


async def test_fetch_beyond_exists_and_unknown_items() -> None:
    await run_transcript(
        LOGIN
        + SELECT3
        + """
        C1 b FETCH 4 FLAGS
        S1 b BAD Invalid message sequence number
        C1 c FETCH 1 SAVEDATES
        S1 c BAD %*
        C1 d UID FETCH 2:99 UID
        S1 * 2 FETCH (UID 2)
        S1 * 3 FETCH (UID 3)
        S1 d OK Fetch completed
        C1 e UID FETCH 7:* FLAGS
        S1 * 3 FETCH (UID 3 FLAGS (\\Recent))
        S1 e OK Fetch completed
        """,
        before=three,
    )


async def test_store_variants() -> None:
    await run_transcript(
        LOGIN
        + SELECT3
        + """
        C1 b STORE 1:2 +FLAGS (\\Deleted)
        S1 * 1 FETCH (FLAGS (\\Deleted \\Recent))
        S1 * 2 FETCH (FLAGS (\\Deleted \\Recent))
        S1 b OK Store completed
        C1 c UID STORE 2 -FLAGS (\\Deleted)
        S1 * 2 FETCH (UID 2 FLAGS (\\Recent))
        S1 c OK Store completed
        C1 d STORE 3 FLAGS.SILENT (\\Flagged \\seen)
        S1 d OK Store completed
        C1 e FETCH 3 FLAGS
        S1 * 3 FETCH (FLAGS (\\Flagged \\Seen \\Recent))
        S1 e OK Fetch completed
        C1 f STORE 3 +FLAGS ($Label1)
        S1 * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)
        S1 * OK [PERMANENTFLAGS (%* $Label1 \\*)] Flags permitted
        S1 * 3 FETCH (FLAGS (\\Flagged \\Seen $Label1 \\Recent))
        S1 f OK Store completed
        C1 g STORE 1 +FLAGS (\\Bogus)
        S1 g BAD %*
        C1 h STORE 9 +FLAGS (\\Seen)
        S1 h BAD Invalid message sequence number
        C1 i UID STORE 9 +FLAGS (\\Seen)
        S1 i OK Store completed
        C1 j SEARCH DELETED
        S1 * SEARCH 1
        S1 j OK Search completed
        C1 k SEARCH CHARSET KOI8-R ALL
        S1 k NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset
        C1 l UID SEARCH CHARSET UTF-8 SUBJECT two
        S1 * SEARCH 2
        S1 l OK Search completed
        C1 m SEARCH RECENT UNSEEN NOT DELETED
        S1 * SEARCH 2
        S1 m OK Search completed
        """,
        before=three,
    )


async def test_copy_move_expunge_close() -> None:
    await run_transcript(
        LOGIN
        + SELECT3
        + """
        C1 b COPY 1:2 Junk
        S1 b OK [COPYUID %? 1:2 1:2] Copy completed
        C1 c UID COPY 99 Junk
        S1 c OK Copy completed
        C1 d COPY 1 nosuch
        S1 d NO [TRYCREATE] %*
        C1 e MOVE 2 nosuch
        S1 e NO [TRYCREATE] %*
        C1 f MOVE 2 Junk
        S1 * OK [COPYUID %? 2 3] Moved
        S1 * 2 EXPUNGE
        S1 f OK Move completed
        C1 g STORE 1:2 +FLAGS.SILENT (\\Deleted)
        S1 g OK Store completed
        C1 h UID EXPUNGE 3
        S1 * 2 EXPUNGE
        S1 h OK Expunge completed
        C1 i UID EXPUNGE 50:60
        S1 i OK Expunge completed
        C1 j CHECK
        S1 j OK Check completed
        C1 k EXPUNGE
        S1 * 1 EXPUNGE
        S1 k OK Expunge completed
        C1 l UNSELECT
        S1 l OK Unselect completed
        C1 m STATUS Junk (MESSAGES)
        S1 * STATUS "Junk" (MESSAGES 3)
        S1 m OK %*
        C1 n SELECT Junk
        S1 %*
        S1 %*
        S1 * 3 EXISTS
        S1 * 3 RECENT
        S1 %*
        S1 %*
        S1 %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 n OK %*
        C1 o STORE 1 +FLAGS.SILENT (\\Deleted)
        S1 o OK Store completed
        C1 p CLOSE
        S1 p OK Close completed
        C1 q STATUS Junk (MESSAGES)
        S1 * STATUS "Junk" (MESSAGES 2)
        S1 q OK %*
        """,
        before=three,
    )
