"""Transcripts: PREVIEW (RFC 8970).

RFC 8970 is not in the shared RFC folder; the rules pinned here are:
``PREVIEW`` is advertised (section 2); ``FETCH PREVIEW`` answers an nstring
of at most 256 *characters* of the first inline text part with whitespace
collapsed (section 3.1), HTML markup removed when only HTML is there;
``PREVIEW (LAZY)`` may answer NIL when generating would be expensive
(section 3.2); PREVIEW never sets \\Seen.

Our choices: a message without any inline text part previews as ``""``
(there is nothing to show, and NIL would tell the client to ask again);
LAZY answers NIL only for messages over ``LAZY_PREVIEW_MAX_SIZE`` octets
that this FETCH has not parsed for another item.
"""

from __future__ import annotations

from asimap.imap.session.fetch import LAZY_PREVIEW_MAX_SIZE
from asimap.message.model import Message
from asimap.message.text import PREVIEW_LENGTH
from transcript import World, add_messages, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

HEAD = (
    b"From: a@example.org\r\nTo: b@example.org\r\nSubject: %s\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMIME-Version: 1.0\r\n"
)

ALTERNATIVE = (
    HEAD % b"alt" + b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/html\r\n\r\n<p>the html</p>\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\nThe  plain\r\n\ttext\r\n"
    b"--b--\r\n"
)

HTML_ONLY = (
    HEAD % b"html" + b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    b"<html><head><title>t</title><style>p {}</style></head>\r\n"
    b"<body><p>Hello &amp; <b>welcome</b></p>\r\n<p>to asimap</p></body></html>\r\n"
)

NO_TEXT = (
    HEAD
    % b"image"
    + b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"iVBORw0KGgo=\r\n"
)

#: 300 two-octet characters: the preview keeps 256 characters (512 octets).
LONG_UTF8 = (
    HEAD % b"long" + b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n" + "é".encode() * 300 + b"\r\n"
)

#: Larger than the LAZY limit, so PREVIEW (LAZY) answers NIL for it.
BIG = HEAD % b"big" + b"\r\n" + b"big body line\r\n" * (LAZY_PREVIEW_MAX_SIZE // 15 + 1)


async def six(world: World) -> None:
    await add_messages(
        world,
        "alice",
        "INBOX",
        message("plain", "Hello   there,\r\n  world"),
        ALTERNATIVE,
        HTML_ONLY,
        NO_TEXT,
        LONG_UTF8,
        BIG,
    )


SELECT6 = """
C1 s SELECT INBOX
S1 * FLAGS %*
S1 * OK [PERMANENTFLAGS %*
S1 * 6 EXISTS
S1 * 6 RECENT
S1 * OK [UNSEEN 1] %*
S1 * OK [UIDVALIDITY %?] UIDs valid
S1 * OK [UIDNEXT 7] Predicted next UID
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 s OK [READ-WRITE] Select completed
"""


async def test_advertised() -> None:
    await run_transcript(
        """
        C1 c CAPABILITY
        S1 * CAPABILITY %* PREVIEW%*
        S1 c OK %*
        """
    )


async def test_preview_of_each_kind_of_message() -> None:
    """Plain text, the plain part of an alternative, HTML without markup,
    and "" for a message with no text part; \\Seen stays unset."""
    await run_transcript(
        LOGIN
        + SELECT6
        + """
        C1 f FETCH 1:4 PREVIEW
        S1 * 1 FETCH (PREVIEW "Hello there, world")
        S1 * 2 FETCH (PREVIEW "The plain text")
        S1 * 3 FETCH (PREVIEW "Hello & welcome to asimap")
        S1 * 4 FETCH (PREVIEW "")
        S1 f OK Fetch completed
        C1 g FETCH 1:4 FLAGS
        S1 * 1 FETCH (FLAGS (\\Recent))
        S1 * 2 FETCH (FLAGS (\\Recent))
        S1 * 3 FETCH (FLAGS (\\Recent))
        S1 * 4 FETCH (FLAGS (\\Recent))
        S1 g OK Fetch completed
        """,
        before=six,
    )


async def test_long_non_ascii_body_is_cut_at_256_characters() -> None:
    """Characters, not octets: 256 "é" are 512 octets.  Without UTF-8 on
    the connection the preview is a literal; after ENABLE UTF8=ACCEPT it
    may be a quoted string (RFC 6855 section 3)."""
    cut = "é" * PREVIEW_LENGTH
    assert PREVIEW_LENGTH == 256
    await run_transcript(
        LOGIN
        + SELECT6
        + f"""
        C1 f FETCH 5 PREVIEW
        S1 * 5 FETCH (PREVIEW {{{len(cut.encode())}}}
        S1 {cut})
        S1 f OK Fetch completed
        C1 u UNSELECT
        S1 u OK %*
        C1 e ENABLE UTF8=ACCEPT
        S1 * ENABLED UTF8=ACCEPT
        S1 e OK Enable completed
        """
        + SELECT6.replace("6 RECENT", "0 RECENT")
        + f"""
        C1 g FETCH 5 (PREVIEW)
        S1 * 5 FETCH (PREVIEW "{cut}")
        S1 g OK Fetch completed
        """,
        before=six,
    )


async def test_lazy() -> None:
    """LAZY: small messages still get their preview; a large one gets NIL
    unless the same FETCH parsed it already, and always without LAZY."""
    await run_transcript(
        LOGIN
        + SELECT6
        + """
        C1 f FETCH 1 (PREVIEW (LAZY))
        S1 * 1 FETCH (PREVIEW "Hello there, world")
        S1 f OK Fetch completed
        C1 g FETCH 6 (PREVIEW (LAZY) FLAGS)
        S1 * 6 FETCH (PREVIEW NIL FLAGS (\\Recent))
        S1 g OK Fetch completed
        C1 h FETCH 6 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] PREVIEW (LAZY))
        S1 * 6 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {16}
        S1 Subject: big
        S1
        S1  PREVIEW "big body line big body line %*")
        S1 h OK Fetch completed
        C1 i FETCH 6 PREVIEW
        S1 * 6 FETCH (PREVIEW "big body line %*")
        S1 i OK Fetch completed
        """,
        before=six,
    )


async def test_with_body_peek_and_uid_fetch() -> None:
    """PREVIEW next to BODY.PEEK in one FETCH, and UID FETCH adds UID."""
    await run_transcript(
        LOGIN
        + SELECT6
        + """
        C1 f FETCH 2 (PREVIEW BODY.PEEK[1.MIME])
        S1 * 2 FETCH (PREVIEW "The plain text" BODY[1.MIME] {27}
        S1 Content-Type: text/html
        S1
        S1 )
        S1 f OK Fetch completed
        C1 u UID FETCH 1,3 PREVIEW
        S1 * 1 FETCH (UID 1 PREVIEW "Hello there, world")
        S1 * 3 FETCH (UID 3 PREVIEW "Hello & welcome to asimap")
        S1 u OK Fetch completed
        C1 v UID FETCH 2 (PREVIEW (LAZY) UID)
        S1 * 2 FETCH (PREVIEW "The plain text" UID 2)
        S1 v OK Fetch completed
        """,
        before=six,
    )


async def test_examine_and_no_seen() -> None:
    """PREVIEW works read-only and does not set \\Seen (RFC 8970 3.1)."""
    await run_transcript(
        LOGIN
        + """
        C1 b EXAMINE INBOX
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS ()] %*
        S1 * 6 EXISTS
        S1 * %? RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] UIDs valid
        S1 * OK [UIDNEXT 7] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 b OK [READ-ONLY] Examine completed
        C1 f FETCH 3 PREVIEW
        S1 * 3 FETCH (PREVIEW "Hello & welcome to asimap")
        S1 f OK Fetch completed
        C1 c CLOSE
        S1 c OK %*
        """
        + SELECT6.replace("6 RECENT", "%? RECENT")
        + """
        C1 g FETCH 3 FLAGS
        S1 * 3 FETCH (FLAGS (\\Recent))
        S1 g OK Fetch completed
        """,
        before=six,
    )


def test_controls_are_dropped_and_cut_counts_characters() -> None:
    """A NUL could not even go out in a literal (RFC 3501 4.3 ``CHAR8``);
    the cut counts characters of the collapsed text, not octets."""
    raw = (
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"a\x00b\x07c \x1b\r\n\t d" + "\u20ac".encode() * 400 + b"\r\n"
    )
    preview = Message(raw).preview()
    assert preview == "abc d" + "\u20ac" * (PREVIEW_LENGTH - 5)
