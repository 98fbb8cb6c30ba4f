"""Transcripts: MULTIAPPEND (RFC 3502).

RFC 3502 section 6.3.11 extends APPEND to several messages in one
command, "all or nothing": if the server cannot append every message it
appends none of them.  The section's own examples are played with
synchronizing literals (the server answers each with ``+``), followed by
the error cases: a missing target (``NO [TRYCREATE]`` before any literal
is sent), an invalid flag in the second message, and a failure after the
first message was already taken (over quota), each leaving the mailbox
exactly as it was.  UIDPLUS (RFC 4315 section 3) reports the new UIDs as
one set in APPENDUID.
"""

from __future__ import annotations

from asimap.store.base import QuotaLimits
from transcript import World, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

#: RFC 3502 section 6.3.11's two messages, with CRLF line ends.
FRED = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.example.COM>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.example.net\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.example.COM>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)
JOE = (
    b"Date: Mon, 7 Feb 1994 22:43:04 -0800 (PST)\r\n"
    b"From: Joe Mooch <mooch@OWaTaGu.example.net>\r\n"
    b"Subject: Re: afternoon meeting\r\n"
    b"To: foobar@blurdybloop.example.com\r\n"
    b"Message-Id: <a0434793874930@OWaTaGu.example.net>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"3:30 is fine with me.\r\n"
)


def client_lines(data: bytes) -> str:
    """The message's lines as client lines; the literal's final CRLF is
    the line end of the last one, so the next part follows on its own."""
    return "\n".join(f"C1 {line}" for line in data.decode("ascii")[:-2].split("\r\n"))


async def test_capability_is_advertised() -> None:
    await run_transcript(
        """
        C1 a CAPABILITY
        S1 * CAPABILITY %* UIDPLUS MULTIAPPEND %*
        S1 a OK Capability completed
        """
    )


async def test_rfc3502_example_with_synchronizing_literals() -> None:
    # RFC 3502 section 6.3.11: A003 appends two messages with one command;
    # each synchronizing literal gets its own continuation request.
    await run_transcript(
        LOGIN
        + f"""
        C1 c CREATE saved-messages
        S1 c OK %*
        C1 A003 APPEND saved-messages (\\Seen) {{{len(FRED)}}}
        S1 + %*
        {client_lines(FRED)}
        C1  (\\Seen) " 7-Feb-1994 22:43:04 -0800" {{{len(JOE)}}}
        S1 + %*
        {client_lines(JOE)}
        C1
        S1 A003 OK [APPENDUID %? 1:2] %*
        C1 s STATUS saved-messages (MESSAGES)
        S1 * STATUS "saved-messages" (MESSAGES 2)
        S1 s OK %*
        C1 d SELECT saved-messages
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 d OK [READ-WRITE] %*
        C1 e FETCH 1:2 (FLAGS INTERNALDATE)
        S1 * 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE "%*")
        S1 * 2 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE "07-Feb-1994 22:43:04 -0800")
        S1 e OK %*
        C1 g SEARCH SUBJECT "Re: afternoon meeting"
        S1 * SEARCH 2
        S1 g OK %*
        """
    )


async def test_missing_mailbox_is_refused_before_the_first_literal() -> None:
    # RFC 3502 section 6.3.11, A004: NO [TRYCREATE], no "+" is sent, the
    # 1023 octets announced are never expected; the next command works.
    await run_transcript(
        LOGIN
        + """
        C1 A004 APPEND bogusname (\\Flagged) {1023}
        S1 A004 NO [TRYCREATE] %*
        C1 f NOOP
        S1 f OK %*
        """
    )


async def test_invalid_second_message_stores_nothing() -> None:
    # All or nothing: the second message's flag list is invalid, so the
    # whole command fails and the first message is not kept either.
    one, two = message("one"), message("two")
    await run_transcript(
        LOGIN
        + f"""
        C1 b APPEND Drafts {{{len(one)}}}
        S1 + %*
        {client_lines(one)}
        C1  (\\Bogus) {{{len(two)}+}}
        {client_lines(two)}
        C1
        S1 b BAD %*
        C1 s STATUS Drafts (MESSAGES UIDNEXT)
        S1 * STATUS "Drafts" (MESSAGES 0 UIDNEXT 1)
        S1 s OK %*
        """
    )


async def test_failure_after_the_first_message_rolls_it_back() -> None:
    # RFC 3502 section 6.3.11, A005: the server fails the command after
    # taking the first message ("Disk quota exceeded"); here two messages
    # each fit the 3-message limit alone but not together with the one
    # already there, so nothing is appended and the mailbox is unchanged.
    one, two = message("one"), message("two")
    world = World(quota=QuotaLimits(storage=None, messages=2))
    await run_transcript(
        LOGIN
        + f"""
        C1 p APPEND Drafts {{{len(one)}+}}
        {client_lines(one)}
        C1
        S1 p OK [APPENDUID %? 1] %*
        C1 b APPEND Drafts {{{len(one)}+}}
        {client_lines(one)}
        C1  {{{len(two)}+}}
        {client_lines(two)}
        C1
        S1 b NO [OVERQUOTA] %*
        C1 s STATUS Drafts (MESSAGES UIDNEXT)
        S1 * STATUS "Drafts" (MESSAGES 1 UIDNEXT 2)
        S1 s OK %*
        C1 c APPEND Drafts {{{len(two)}+}}
        {client_lines(two)}
        C1
        S1 c OK [APPENDUID %? 2] %*
        """,
        world,
    )


async def test_extra_spaces_between_messages_are_accepted() -> None:
    # IMAPClient's multiappend sends two SP between messages (see
    # asimap.imap.parser.append); the upload must not be refused for it.
    one, two = message("one"), message("two")
    await run_transcript(
        LOGIN
        + f"""
        C1 b APPEND Drafts {{{len(one)}+}}
        {client_lines(one)}
        C1   {{{len(two)}+}}
        {client_lines(two)}
        C1
        S1 b OK [APPENDUID %? 1:2] %*
        """
    )
