"""Transcripts: REPLACE and UID REPLACE (RFC 8508).

The RFC's examples (a draft replaced by sequence number; by UID with
QRESYNC enabled, answered with VANISHED), then the error cases: a message
that does not exist, a target that does not exist (``[TRYCREATE]`` before
the upload), over quota (``[OVERQUOTA]``), a read-only mailbox -- in each
the original stays -- and the extensions RFC 8508 section 6 lets REPLACE
carry through ``append-message``: CATENATE (RFC 4469) and UTF8 (RFC 6855).
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.parser import parse_command
from asimap.store.base import QuotaLimits
from transcript import World, add_messages, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

OLD = message("draft v1", "first words")
NEW = message("draft v2", "better words")
OTHER = message("other")


def select(
    mailbox: str, exists: int, command: str = "SELECT", qresync: bool = False
) -> str:
    mode = "READ-WRITE" if command == "SELECT" else "READ-ONLY"
    del qresync  # HIGHESTMODSEQ comes with every SELECT (RFC 7162 3.1.2.1)
    return f"""
        C1 s {command} {mailbox}
        S1 * %*
        S1 * %*
        S1 * {exists} EXISTS
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 s OK [{mode}] %*
        """


def replace_lines(tag: str, head: str, data: bytes, sync: bool = True) -> str:
    """``tag head {n}`` and the message, answered ``+`` when synchronizing."""
    plus = "" if sync else "+"
    lines = [f"C1 {tag} {head} {{{len(data)}{plus}}}"]
    if sync:
        lines.append("S1 + Ready for literal")
    lines += [f"C1 {part}" for part in data.decode("ascii")[:-2].split("\r\n")]
    lines.append("C1")
    return "\n".join(lines) + "\n"


async def drafts_world(quota: QuotaLimits | None = None) -> World:
    world = World(quota=quota) if quota is not None else World()
    await add_messages(world, "alice", "Drafts", OTHER, OTHER, OTHER, OLD)
    return world


def test_parser_reads_replace() -> None:
    parsed = parse_command(
        (b"A003 REPLACE 4 Drafts (\\Seen \\Draft) {3}", b""), (b"abc",)
    )
    assert isinstance(parsed, c.Replace)
    assert (parsed.number, parsed.mailbox, parsed.uid) == (4, b"Drafts", False)
    assert parsed.message.flags == ("\\Seen", "\\Draft")
    assert parsed.message.data == b"abc"
    parsed = parse_command((b"b uid replace * INBOX ~{2}", b""), (b"hi",))
    assert isinstance(parsed, c.Replace)
    assert (parsed.number, parsed.uid, parsed.message.binary) == (c.STAR, True, True)
    for bad in (
        (b"a REPLACE 0 Drafts {1}", b""),
        (b"a REPLACE 1:2 Drafts {1}", b""),
        (b"a REPLACE 1 Drafts {1}", b" {1}"),  # no MULTIAPPEND
        (b"a REPLACE Drafts {1}", b""),
    ):
        literals = (b"x",) * (len(bad) - 1)
        assert isinstance(parse_command(bad, literals), c.ParseError), bad
    assert isinstance(parse_command((b"a REPLACE 1 Drafts",), ()), c.ParseError)


async def test_rfc8508_example_replace_by_sequence_number() -> None:
    world = await drafts_world()
    await run_transcript(
        LOGIN
        + select("Drafts", 4)
        + replace_lines("A004", "REPLACE 4 Drafts (\\Seen \\Draft)", NEW)
        + """
        S1 * OK [APPENDUID %? 5] Replacement Message ready
        S1 * 4 EXPUNGE
        S1 * 4 EXISTS
        S1 * 4 RECENT
        S1 A004 OK Replace completed
        C1 b FETCH 4 (UID FLAGS BODY.PEEK[HEADER])
        S1 * 4 FETCH (UID 5 FLAGS (\\Seen \\Draft \\Recent) BODY[HEADER] {%?}
        S1 From: a@example.org
        S1 To: b@example.org
        S1 Subject: draft v2
        S1 Date: %*
        S1
        S1 )
        S1 b OK Fetch completed
        """,
        world,
    )
    drafts = await world.stores["alice"].mailbox("Drafts")
    assert [s.uid for s in await drafts.states()] == [1, 2, 3, 5]
    assert (await drafts.message(5)).raw == NEW


async def test_rfc8508_example_uid_replace_with_qresync() -> None:
    # RFC 8508 section 3: with QRESYNC enabled the expunge is a VANISHED.
    world = await drafts_world()
    await add_messages(world, "alice", "Archive", OTHER)
    await run_transcript(
        LOGIN
        + """
        C1 e ENABLE QRESYNC
        S1 * ENABLED QRESYNC
        S1 e OK %*
        """
        + select("Drafts", 4, qresync=True)
        + replace_lines("B003", "UID REPLACE 4 Archive (\\Seen \\Draft)", NEW, False)
        + """
        S1 * OK [APPENDUID %? 2] Replacement Message ready
        S1 * VANISHED 4
        S1 B003 OK Replace completed
        C1 f STATUS Archive (MESSAGES)
        S1 * STATUS "Archive" (MESSAGES 2)
        S1 f OK Status completed
        """,
        world,
    )


async def test_replace_into_another_mailbox_without_qresync() -> None:
    world = await drafts_world()
    await run_transcript(
        LOGIN
        + select("Drafts", 4)
        + replace_lines("c", 'UID REPLACE 2 "Sent Messages"', NEW)
        + """
        S1 * OK [APPENDUID %? 1] Replacement Message ready
        S1 * 2 EXPUNGE
        S1 c OK Replace completed
        """,
        world,
    )


async def test_missing_message_changes_nothing() -> None:
    world = await drafts_world()
    await run_transcript(
        LOGIN
        + select("Drafts", 4)
        + """
        C1 b REPLACE 5 Drafts {1}
        S1 + Ready for literal
        C1 x
        S1 b BAD Invalid message sequence number
        C1 c UID REPLACE 99 Drafts {1+}
        C1 x
        S1 c NO [NONEXISTENT] No such message
        C1 d STATUS Drafts (MESSAGES)
        S1 * STATUS "Drafts" (MESSAGES 4)
        S1 d OK Status completed
        """,
        world,
    )


async def test_missing_target_is_trycreate_before_the_upload() -> None:
    world = await drafts_world()
    await run_transcript(
        LOGIN
        + select("Drafts", 4)
        + """
        C1 b REPLACE 4 Nosuch {50}
        S1 b NO [TRYCREATE] Mailbox does not exist
        C1 c UID REPLACE 4 Nosuch {1+}
        C1 x
        S1 c NO [TRYCREATE] Mailbox does not exist
        C1 d FETCH 4 (UID)
        S1 * 4 FETCH (UID 4)
        S1 d OK Fetch completed
        """,
        world,
    )


async def test_over_quota_expunges_nothing() -> None:
    # The new message must fit before the old one goes (the quota check is
    # the APPEND's): the original stays when the replacement cannot be
    # stored.
    world = await drafts_world(QuotaLimits(messages=4))
    await run_transcript(
        LOGIN
        + select("Drafts", 4)
        + """
        C1 b REPLACE 4 Drafts {5}
        S1 b NO [OVERQUOTA] Over quota
        """
        + replace_lines("c", "REPLACE 4 Drafts", NEW, sync=False)
        + """
        S1 c NO [OVERQUOTA] Over quota
        C1 d FETCH 4 (UID)
        S1 * 4 FETCH (UID 4)
        S1 d OK Fetch completed
        """,
        world,
    )


async def test_read_only_mailbox_refuses_replace() -> None:
    world = await drafts_world()
    await run_transcript(
        LOGIN
        + select("Drafts", 4, "EXAMINE")
        + replace_lines("b", "REPLACE 4 Drafts", NEW)
        + """
        S1 b NO Mailbox is read-only
        C1 c STATUS Drafts (MESSAGES)
        S1 * STATUS "Drafts" (MESSAGES 4)
        S1 c OK Status completed
        """,
        world,
    )


async def test_replace_with_catenate_edits_a_draft() -> None:
    # RFC 8508 section 6 takes append-message, so CATENATE (RFC 4469) may
    # build the replacement from the original's header.
    world = await drafts_world()
    header = OLD[: OLD.index(b"\r\n\r\n") + 4]
    url = 'URL "/Drafts/;UID=4/;SECTION=HEADER"'
    await run_transcript(
        LOGIN
        + select("Drafts", 4)
        + f"""
        C1 b UID REPLACE 4 Drafts CATENATE ({url} TEXT {{8+}}
        C1 edited
        C1 )
        S1 * OK [APPENDUID %? 5] Replacement Message ready
        S1 * 4 EXPUNGE
        S1 * 4 EXISTS
        S1 * 4 RECENT
        S1 b OK Replace completed
        """,
        world,
    )
    drafts = await world.stores["alice"].mailbox("Drafts")
    assert (await drafts.message(5)).raw == header + b"edited\r\n"


async def test_replace_with_utf8_data_after_enable() -> None:
    # RFC 6855 section 4 via RFC 8508 section 6: UTF8 (~{n}) data once
    # UTF8=ACCEPT is enabled, BAD before.
    world = await drafts_world()
    body = "Subject: caf\u00e9\r\n\r\nx\r\n".encode()
    await run_transcript(
        LOGIN
        + select("Drafts", 4)
        + f"""
        C1 b REPLACE 4 Drafts UTF8 (~{{{len(body)}+}}
        C1 Subject: caf\\xc3\\xa9
        C1
        C1 x
        C1 )
        S1 b BAD APPEND UTF8 requires ENABLE UTF8=ACCEPT
        C1 u UNSELECT
        S1 u OK Unselect completed
        C1 e ENABLE UTF8=ACCEPT
        S1 * ENABLED UTF8=ACCEPT
        S1 e OK %*
        """
        + select("Drafts", 4)
        + f"""
        C1 c REPLACE 4 Drafts UTF8 (~{{{len(body)}+}}
        C1 Subject: caf\\xc3\\xa9
        C1
        C1 x
        C1 )
        S1 * OK [APPENDUID %? 5] Replacement Message ready
        S1 * 4 EXPUNGE
        S1 * 4 EXISTS
        S1 * 1 RECENT
        S1 c OK Replace completed
        """,
        world,
    )
    drafts = await world.stores["alice"].mailbox("Drafts")
    assert (await drafts.message(5)).raw == body


async def test_replace_needs_a_selected_mailbox() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 b REPLACE 1 INBOX {1}
        S1 b BAD REPLACE not allowed in this state
        C1 c NOOP
        S1 c OK NOOP completed
        """
    )
