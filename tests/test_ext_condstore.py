"""Transcripts: CONDSTORE (RFC 7162 section 3.1).

The RFC's examples (3.1.2-3.1.8) replayed against the real session with
our own MODSEQ values: the memory store starts at 1 and every append or
flag change takes the next number, so three appended messages have MODSEQs
2, 3 and 4 and HIGHESTMODSEQ 4.
"""

from __future__ import annotations

from imapclient import IMAPClient

from conftest import PASSWORD, SAMPLE_MESSAGE, USER, ServerThread, TlsFiles
from transcript import World, add_messages, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

SELECT_CONDSTORE = """
C1 s SELECT INBOX (CONDSTORE)
S1 * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
S1 * OK [PERMANENTFLAGS (%*)] Flags permitted
S1 * 3 EXISTS
S1 * 3 RECENT
S1 * OK [UNSEEN 1] %*
S1 * OK [UIDVALIDITY %?] UIDs valid
S1 * OK [UIDNEXT 4] Predicted next UID
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ 4] Highest
S1 s OK [READ-WRITE] Select completed
"""


async def three(world: World) -> None:
    await add_messages(
        world, "alice", "INBOX", message("one"), message("two"), message("three")
    )


async def test_capability_and_enable() -> None:
    """RFC 7162 3.1.1 and 3.1.8: advertised; ENABLE lists it once."""
    await run_transcript(
        """
        C1 c CAPABILITY
        S1 * CAPABILITY %* CONDSTORE QRESYNC %*
        S1 c OK %*
        """
        + LOGIN
        + """
        C1 e ENABLE condstore
        S1 * ENABLED CONDSTORE
        S1 e OK Enable completed
        C1 f ENABLE CONDSTORE
        S1 * ENABLED
        S1 f OK Enable completed
        """
    )


async def test_plain_select_has_no_highestmodseq_until_enabled() -> None:
    """HIGHESTMODSEQ is a CONDSTORE response: a plain SELECT keeps the
    IMAP4rev1 shape; SELECT (CONDSTORE) adds it (3.1.2.1, 3.1.8)."""
    await run_transcript(
        LOGIN
        + """
        C1 s SELECT INBOX
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS %*
        S1 * 3 EXISTS
        S1 * 3 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] UIDs valid
        S1 * OK [UIDNEXT 4] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 s OK [READ-WRITE] Select completed
        C1 u UNSELECT
        S1 u OK %*
        """
        + SELECT_CONDSTORE.replace("3 RECENT", "0 RECENT"),
        before=three,
    )


async def test_fetch_modseq_and_changedsince() -> None:
    """3.1.4.1 MODSEQ item; 3.1.4.2 CHANGEDSINCE returns only newer
    messages with MODSEQ added implicitly; FETCH MODSEQ enables CONDSTORE,
    after which STORE responses carry UID and MODSEQ."""
    await run_transcript(
        LOGIN
        + """
        C1 s SELECT INBOX
        S1 * %*
        S1 * %*
        S1 * 3 EXISTS
        S1 * 3 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] %*
        S1 * OK [UIDNEXT 4] %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 s OK [READ-WRITE] Select completed
        C1 f FETCH 1:* (FLAGS MODSEQ)
        S1 * 1 FETCH (FLAGS (\\Recent) MODSEQ (2))
        S1 * 2 FETCH (FLAGS (\\Recent) MODSEQ (3))
        S1 * 3 FETCH (FLAGS (\\Recent) MODSEQ (4))
        S1 * OK [HIGHESTMODSEQ 4] Highest
        S1 f OK Fetch completed
        C1 g STORE 2 +FLAGS (\\Flagged)
        S1 * 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (5))
        S1 g OK Store completed
        C1 h FETCH 1:* (UID FLAGS) (CHANGEDSINCE 4)
        S1 * 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (5))
        S1 h OK Fetch completed
        C1 i UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5)
        S1 i OK Fetch completed
        """,
        before=three,
    )


async def test_changedsince_enables_condstore() -> None:
    """3.1: CHANGEDSINCE is a CONDSTORE enabling command; a FETCH that
    sets \\Seen then reports UID, FLAGS and MODSEQ."""
    await run_transcript(
        LOGIN
        + """
        C1 s EXAMINE INBOX
        S1 * %*
        S1 * %*
        S1 * 3 EXISTS
        S1 * 3 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] %*
        S1 * OK [UIDNEXT 4] %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 s OK [READ-ONLY] Examine completed
        C1 f FETCH 3 (FLAGS) (CHANGEDSINCE 1)
        S1 * 3 FETCH (FLAGS (\\Recent) MODSEQ (4))
        S1 * OK [HIGHESTMODSEQ 4] Highest
        S1 f OK Fetch completed
        C1 u UNSELECT
        S1 u OK %*
        C1 t SELECT INBOX
        S1 * %*
        S1 * %*
        S1 * 3 EXISTS
        S1 * 3 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] %*
        S1 * OK [UIDNEXT 4] %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ 4] Highest
        S1 t OK [READ-WRITE] Select completed
        C1 g FETCH 1 BODY[TEXT]
        S1 * 1 FETCH (UID 1 BODY[TEXT] {7}
        S1 Hello
        S1  FLAGS (\\Seen \\Recent) MODSEQ (5))
        S1 g OK Fetch completed
        """,
        before=three,
    )


async def test_conditional_store_examples() -> None:
    """3.1.3 examples: all pass (with .SILENT the FETCH still carries the
    new MODSEQ); some fail -> OK [MODIFIED set] with sequence numbers for
    STORE and UIDs for UID STORE; UNCHANGEDSINCE 0 always fails."""
    await run_transcript(
        LOGIN
        + SELECT_CONDSTORE
        + """
        C1 a103 UID STORE 3,1 (UNCHANGEDSINCE 4) +FLAGS.SILENT (\\Deleted)
        S1 * 1 FETCH (UID 1 MODSEQ (5))
        S1 * 3 FETCH (UID 3 MODSEQ (5))
        S1 a103 OK Store completed
        C1 d105 STORE 3,2,1 (UNCHANGEDSINCE 4) +FLAGS.SILENT ($Processed)
        S1 * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Processed)
        S1 * OK [PERMANENTFLAGS (%* $Processed \\*)] Flags permitted
        S1 * 2 FETCH (UID 2 MODSEQ (6))
        S1 d105 OK [MODIFIED 1,3] Conditional STORE failed
        C1 d106 UID STORE 1:3 (UNCHANGEDSINCE 5) FLAGS (\\Answered)
        S1 * 1 FETCH (UID 1 FLAGS (\\Answered \\Recent) MODSEQ (7))
        S1 * 3 FETCH (UID 3 FLAGS (\\Answered \\Recent) MODSEQ (7))
        S1 d106 OK [MODIFIED 2] Conditional STORE failed
        C1 a102 STORE 2 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)
        S1 a102 OK [MODIFIED 2] Conditional STORE failed
        """,
        before=three,
    )


async def test_store_unchangedsince_loses_to_another_client() -> None:
    """The point of CONDSTORE: client 2 changed message 1 after client 1
    read its MODSEQ, so client 1's conditional store is refused, and the
    change is then reported to client 1 with its MODSEQ (3.1, unsolicited
    FETCH with UID and MODSEQ)."""
    await run_transcript(
        LOGIN
        + SELECT_CONDSTORE
        + """
        C2 a LOGIN alice secret-a
        S2 a OK %*
        C2 s SELECT INBOX
        S2 * %*
        S2 * %*
        S2 * 3 EXISTS
        S2 * 0 RECENT
        S2 * OK [UNSEEN 1] %*
        S2 * OK [UIDVALIDITY %?] %*
        S2 * OK [UIDNEXT 4] %*
        S2 * OK [MAILBOXID (%?)] %*
        S2 * OK [HIGHESTMODSEQ %?] Highest
        S2 s OK [READ-WRITE] Select completed
        C2 t STORE 1 +FLAGS.SILENT (\\Seen)
        S2 t OK Store completed
        C1 b STORE 1 (UNCHANGEDSINCE 2) +FLAGS (\\Deleted)
        S1 * 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (5))
        S1 b OK [MODIFIED 1] Conditional STORE failed
        C1 c UID STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Deleted)
        S1 * 1 FETCH (UID 1 FLAGS (\\Deleted \\Seen \\Recent) MODSEQ (6))
        S1 c OK Store completed
        C2 n NOOP
        S2 * 1 FETCH (FLAGS (\\Deleted \\Seen))
        S2 n OK NOOP completed
        """,
        before=three,
    )


async def test_search_modseq() -> None:
    """3.1.5: SEARCH MODSEQ ends with ``(MODSEQ n)``, the highest MODSEQ of
    the messages found; no match, no suffix; the entry form is accepted."""
    await run_transcript(
        LOGIN
        + SELECT_CONDSTORE
        + """
        C1 b STORE 2 +FLAGS.SILENT (\\Draft)
        S1 * 2 FETCH (UID 2 MODSEQ (5))
        S1 b OK Store completed
        C1 a SEARCH MODSEQ 3
        S1 * SEARCH 2 3 (MODSEQ 5)
        S1 a OK Search completed
        C1 c UID SEARCH MODSEQ "/flags/\\\\draft" all 5 DRAFT
        S1 * SEARCH 2 (MODSEQ 5)
        S1 c OK Search completed
        C1 d SEARCH MODSEQ 6
        S1 * SEARCH
        S1 d OK Search completed
        C1 e SEARCH ALL
        S1 * SEARCH 1 2 3
        S1 e OK Search completed
        """,
        before=three,
    )


async def test_status_highestmodseq() -> None:
    """3.1.6: STATUS HIGHESTMODSEQ (a CONDSTORE enabling command)."""
    await run_transcript(
        LOGIN
        + """
        C1 b STATUS INBOX (MESSAGES HIGHESTMODSEQ)
        S1 * STATUS "INBOX" (MESSAGES 3 HIGHESTMODSEQ 4)
        S1 b OK %*
        C1 c ENABLE CONDSTORE
        S1 * ENABLED
        S1 c OK Enable completed
        """,
        before=three,
    )


async def test_expunge_reports_highestmodseq() -> None:
    """RFC 7162 3.2.10 (applies with CONDSTORE): an EXPUNGE that removed
    something ends with OK [HIGHESTMODSEQ n]; one that did not, plainly."""
    await run_transcript(
        LOGIN
        + SELECT_CONDSTORE
        + """
        C1 x EXPUNGE
        S1 x OK Expunge completed
        C1 b STORE 1,3 +FLAGS.SILENT (\\Deleted)
        S1 * 1 FETCH (UID 1 MODSEQ (5))
        S1 * 3 FETCH (UID 3 MODSEQ (5))
        S1 b OK Store completed
        C1 c EXPUNGE
        S1 * 3 EXPUNGE
        S1 * 1 EXPUNGE
        S1 c OK [HIGHESTMODSEQ 6] Expunge completed
        """,
        before=three,
    )


async def test_errors() -> None:
    """Error cases: VANISHED without QRESYNC (BAD, 3.2.6), VANISHED in a
    non-UID FETCH and without CHANGEDSINCE (BAD, parser), a QRESYNC
    SELECT parameter without ENABLE QRESYNC (BAD, 3.2.5), ENABLE in the
    selected state (BAD, RFC 5161 3.1), a CONDSTORE STORE on a read-only
    mailbox (NO)."""
    await run_transcript(
        LOGIN
        + """
        C1 q SELECT INBOX (QRESYNC (1 1))
        S1 q BAD QRESYNC parameter requires ENABLE QRESYNC
        """
        + SELECT_CONDSTORE.replace("3 RECENT", "3 RECENT")
        + """
        C1 b UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)
        S1 b BAD %*QRESYNC%*
        C1 c FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)
        S1 c BAD %*
        C1 d UID FETCH 1:* (FLAGS) (VANISHED)
        S1 d BAD %*
        C1 e ENABLE QRESYNC
        S1 e BAD ENABLE not allowed in the selected state
        C1 f EXAMINE INBOX
        S1 * OK [CLOSED] Previous mailbox closed
        S1 * %*
        S1 * %*
        S1 * 3 EXISTS
        S1 * 0 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] %*
        S1 * OK [UIDNEXT 4] %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ 4] Highest
        S1 f OK [READ-ONLY] Examine completed
        C1 g STORE 1 (UNCHANGEDSINCE 9) +FLAGS (\\Seen)
        S1 g NO Mailbox is read-only
        """,
        before=three,
    )


def test_imapclient_condstore_calls(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    """IMAPClient's CONDSTORE API against a running server: enable(),
    HIGHESTMODSEQ from select_folder(), FETCH MODSEQ and the CHANGEDSINCE
    modifier, and a conditional STORE refused by the server."""
    with IMAPClient(
        imap_server.host,
        port=imap_server.imaps_port,
        ssl=True,
        ssl_context=tls_files.client_context(),
        timeout=10,
    ) as client:
        client.login(USER, PASSWORD)
        assert b"CONDSTORE" in client.capabilities()
        for _ in range(3):
            client.append("INBOX", SAMPLE_MESSAGE)
        assert client.enable("CONDSTORE") == [b"CONDSTORE"]
        info = client.select_folder("INBOX", readonly=False)
        highest = info[b"HIGHESTMODSEQ"]
        uids = client.search(["ALL"])
        assert len(uids) == 3
        modseqs = {
            uid: data[b"MODSEQ"][0]
            for uid, data in client.fetch(uids, ["MODSEQ"]).items()
        }
        assert max(modseqs.values()) == highest
        client.add_flags([uids[1]], [b"\\Flagged"])
        changed = client.fetch(uids, ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"])
        assert list(changed) == [uids[1]]
        assert b"\\Flagged" in changed[uids[1]][b"FLAGS"]
        assert changed[uids[1]][b"MODSEQ"][0] > highest
        # UNCHANGEDSINCE older than the flag change: refused with MODIFIED.
        typ, _data = client._imap.uid(
            "STORE", str(uids[1]), f"(UNCHANGEDSINCE {highest})", "+FLAGS", "(x)"
        )
        assert typ == "OK"
        # imaplib files the tagged OK's response code under its name.
        codes = client._imap.untagged_responses
        assert codes.get("MODIFIED") == [str(uids[1]).encode()]
        assert b"x" not in client.get_flags([uids[1]])[uids[1]]
        assert client.search(["MODSEQ", str(highest + 1)]) == [uids[1]]
