"""Transcripts: CATENATE (RFC 4469) and the IMAP URLs it takes (RFC 5092).

Section 5's example (a draft rebuilt from its own header and parts plus
new text), section 6's ``NO [BADURL url]`` for every URL we cannot
resolve, ``[TOOBIG]`` for an assembly above APPENDLIMIT, and CATENATE
inside a MULTIAPPEND (RFC 3502: all or nothing).
"""

from __future__ import annotations

import pytest

from asimap.imap import commands as c
from asimap.imap.imapurl import BadUrl, parse_message_url
from asimap.imap.limits import Limits
from asimap.imap.parser import parse_command
from transcript import World, add_messages, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

DRAFT = (
    b"From: a@example.org\r\nSubject: draft\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="xx"\r\n\r\n'
    b"--xx\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
    b"--xx\r\nContent-Type: text/plain\r\n\r\nsecond part\r\n--xx--\r\n"
)


async def _world(limits: Limits | None = None) -> tuple[World, int]:
    world = World(limits=limits) if limits else World()
    await add_messages(world, "alice", "Drafts", DRAFT)
    drafts = await world.stores["alice"].mailbox("Drafts")
    return world, drafts.uidvalidity


def test_url_parsing() -> None:
    url = parse_message_url(b"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME")
    assert (url.mailbox, url.uidvalidity, url.uid) == (b"Drafts", 385759045, 20)
    assert url.section == c.Section((1,), c.SectionText.MIME)
    url = parse_message_url(b"/Sent%20Messages/;uid=3/;PARTIAL=10.5")
    assert url.mailbox == b"Sent Messages" and url.uidvalidity is None
    assert url.section is None and url.partial == (10, 5)
    for bad in (
        b"imap://alice@example.org/INBOX/;UID=1",  # another server, maybe
        b"/INBOX/;UID=0",
        b"/INBOX",
        b"/INBOX/;UID=1/;SECTION=1.BOGUS",
        b"/INBOX/;UID=1;URLAUTH=anonymous",
        b"INBOX/;UID=1",
        b"/INBOX/;UID=99999999999",
    ):
        with pytest.raises(BadUrl):
            parse_message_url(bad)


def test_parser_reads_catenate_parts() -> None:
    parsed = parse_command(
        (b'a APPEND Drafts (\\Seen) CATENATE (URL "/Drafts/;UID=1" TEXT {2}', b")"),
        (b"hi",),
    )
    assert isinstance(parsed, c.Append)
    (message,) = parsed.messages
    assert message.catenate == (c.CatenateUrl(b"/Drafts/;UID=1"), c.CatenateText(b"hi"))
    assert message.flags == ("\\Seen",)


async def test_rfc4469_section5_example() -> None:
    world, uv = await _world()
    base = f"/Drafts;UIDVALIDITY={uv}/;UID=1"
    text = "--xx\r\nContent-Type: text/plain\r\n\r\nnew part\r\n--xx--\r\n"
    header = DRAFT[: DRAFT.index(b"\r\n\r\n") + 4]
    part1 = b"--xx\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
    expected = header + part1 + text.encode()
    head_url = f'URL "{base}/;section=HEADER"'
    two_urls = (
        'URL "/Drafts/;UID=1/;SECTION=2" URL "/Drafts/;UID=1/;SECTION=1/;PARTIAL=0.5"'
    )
    await run_transcript(
        """
        C1 a0 CAPABILITY
        S1 * CAPABILITY %* CATENATE %*
        S1 a0 OK %*
        """
        + LOGIN
        + f"""
        C1 b APPEND Drafts (\\Seen \\Draft) CATENATE ({head_url} TEXT {{{len(part1)}}}
        S1 + Ready for literal
        C1 --xx
        C1 Content-Type: text/plain
        C1
        C1 first part
        C1  TEXT {{{len(text)}+}}
        C1 --xx
        C1 Content-Type: text/plain
        C1
        C1 new part
        C1 --xx--
        C1 )
        S1 b OK [APPENDUID {uv} 2] Append completed
        C1 c STATUS Drafts (MESSAGES SIZE)
        S1 * STATUS "Drafts" (MESSAGES 2 SIZE {len(DRAFT) + len(expected)})
        S1 c OK Status completed
        # Parts by URL only: the section of a part, and a partial range.
        C1 d APPEND Drafts CATENATE ({two_urls})
        S1 d OK [APPENDUID {uv} 3] Append completed
        C1 e SELECT Drafts
        S1 * %*
        S1 * %*
        S1 * 3 EXISTS
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 e OK [READ-WRITE] %*
        C1 f FETCH 3 BODY.PEEK[]
        S1 * 3 FETCH (BODY[] {{16}}
        S1 second partfirst)
        S1 f OK Fetch completed
        """,
        world,
    )
    drafts = await world.stores["alice"].mailbox("Drafts")
    assert (await drafts.message(2)).raw == expected


async def test_badurl_and_nothing_is_appended() -> None:
    world, uv = await _world()
    await run_transcript(
        LOGIN
        + f"""
        C1 b APPEND Drafts CATENATE (URL "/Drafts;UIDVALIDITY={uv + 1}/;UID=1")
        S1 b NO [BADURL /Drafts;UIDVALIDITY={uv + 1}/;UID=1] Bad URL
        C1 c APPEND Drafts CATENATE (TEXT {{1+}}
        C1 x URL "/Drafts/;UID=7")
        S1 c NO [BADURL /Drafts/;UID=7] Bad URL
        C1 d APPEND Drafts CATENATE (URL "/nosuch/;UID=1")
        S1 d NO [BADURL /nosuch/;UID=1] Bad URL
        C1 e APPEND Drafts CATENATE (URL "/Drafts/;UID=1/;SECTION=9")
        S1 e NO [BADURL /Drafts/;UID=1/;SECTION=9] Bad URL
        C1 f APPEND Drafts CATENATE (URL "imap://alice@elsewhere/Drafts/;UID=1")
        S1 f NO [BADURL imap://alice@elsewhere/Drafts/;UID=1] Bad URL
        # MULTIAPPEND: the first message is fine, the second has a bad URL.
        C1 g APPEND Drafts {{2+}}
        C1 ok CATENATE (URL "/Drafts/;UID=5")
        S1 g NO [BADURL /Drafts/;UID=5] Bad URL
        C1 h STATUS Drafts (MESSAGES)
        S1 * STATUS "Drafts" (MESSAGES 1)
        S1 h OK Status completed
        # And with two good ones, both are appended.
        C1 i APPEND Drafts {{2+}}
        C1 ok CATENATE (URL "/Drafts/;UID=1")
        S1 i OK [APPENDUID {uv} 2:3] Append completed
        """,
        world,
    )


async def test_catenate_above_appendlimit_is_toobig() -> None:
    world, _ = await _world(Limits(max_literal=len(DRAFT) + 5))
    await run_transcript(
        LOGIN
        + """
        C1 b APPEND Drafts CATENATE (URL "/Drafts/;UID=1" TEXT {6+}
        C1 more
        C1 )
        S1 b NO [TOOBIG] Message too large
        C1 c APPEND Drafts CATENATE (URL "/Drafts/;UID=1" TEXT {5+}
        C1 fit
        C1 )
        S1 c OK [APPENDUID %? 2] Append completed
        """,
        world,
    )
