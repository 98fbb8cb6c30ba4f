"""Transcripts: QUOTA (RFC 9208) with limits from the configuration.

One quota root, ``""``, covers the whole account (like Dovecot's per-user
"User quota").  The RFC's examples (section 4.1.1 GETQUOTA, 4.1.2
GETQUOTAROOT, 4.1.3 SETQUOTA, 4.2 STATUS DELETED/DELETED-STORAGE, 4.4.1
OVERQUOTA) are played with our root name and numbers; then every command
that adds mail is pushed over a limit: APPEND (refused before the literal
is uploaded), MULTIAPPEND (all or nothing), CATENATE, COPY / UID COPY;
MOVE within the account is not refused (RFC 6851 section 4.1).
"""

from __future__ import annotations

import pytest

from asimap.imap import commands as c
from asimap.imap.parser import parse_command
from asimap.store.base import QuotaLimits
from transcript import World, add_messages, append_lines, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

#: 2 KiB and 3 messages.
LIMITED = QuotaLimits(storage=2048, messages=3)

ONE = message("one")  # 101 octets each
TWO = message("two")


def multiappend_lines(tag: str, mailbox: str, *datas: bytes) -> str:
    """Transcript lines of a LITERAL+ MULTIAPPEND (RFC 3502) of ``datas``
    (each ending with CRLF)."""
    lines = [f"C1 {tag} APPEND {mailbox} {{{len(datas[0])}+}}"]
    for index, data in enumerate(datas):
        lines += [f"C1 {part}" for part in data.decode("ascii")[:-2].split("\r\n")]
        after = f" {{{len(datas[index + 1])}+}}" if index + 1 < len(datas) else ""
        lines.append(f"C1 {after}")
    return "\n".join(lines) + "\n"


def test_parser_reads_the_quota_commands() -> None:
    assert parse_command((b'a GETQUOTA ""',), ()) == c.GetQuota("a", b"")
    assert parse_command((b"a getquotaroot INBOX",), ()) == c.GetQuotaRoot(
        "a", b"INBOX"
    )
    parsed = parse_command((b'a SETQUOTA "" (storage 510 MESSAGE 9)',), ())
    assert parsed == c.SetQuota("a", b"", (("STORAGE", 510), ("MESSAGE", 9)))
    assert parse_command((b'a SETQUOTA "" ()',), ()) == c.SetQuota("a", b"", ())
    for bad in (
        b"a GETQUOTA",
        b"a GETQUOTAROOT",
        b'a SETQUOTA "" (STORAGE)',
        b'a SETQUOTA "" (STORAGE x)',
        b'a SETQUOTA "" STORAGE 5',
        b'a SETQUOTA "" (STORAGE 5',
        b'a SETQUOTA "" (STORAGE 9223372036854775808)',
    ):
        assert isinstance(parse_command((bad,), ()), c.ParseError), bad


async def test_capabilities_follow_the_configured_limits() -> None:
    after_login = """
        C1 b CAPABILITY
        S1 * CAPABILITY %* QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE%*
        S1 b OK Capability completed
        """
    # Before login there is no account, so no quota to announce.
    await run_transcript(
        """
        C1 z CAPABILITY
        S1 * CAPABILITY %* REPLACE AUTH=PLAIN AUTH=LOGIN
        S1 z OK Capability completed
        """
        + LOGIN
        + after_login,
        World(quota=LIMITED),
    )
    await run_transcript(
        LOGIN
        + """
        C1 b CAPABILITY
        S1 * CAPABILITY %* QUOTA QUOTA=RES-MESSAGE
        S1 b OK Capability completed
        """,
        World(quota=QuotaLimits(messages=5)),
    )
    # No limits: no QUOTA at all.
    world = await run_transcript(
        LOGIN
        + """
        C1 b CAPABILITY
        S1 * CAPABILITY %* PREVIEW OBJECTID SAVEDATE REPLACE
        S1 b OK Capability completed
        """
    )
    assert not world.stores["alice"].quota_limits.limited


async def test_rfc9208_getquota_and_getquotaroot() -> None:
    # Sections 4.1.1 and 4.1.2, with one root for the whole account.
    world = World(quota=LIMITED)
    await add_messages(world, "alice", "INBOX", ONE)
    await add_messages(world, "alice", "Archive", TWO)
    await run_transcript(
        LOGIN
        + """
        C1 G0001 GETQUOTA ""
        S1 * QUOTA "" (STORAGE 1 2 MESSAGE 2 3)
        S1 G0001 OK Getquota completed
        C1 G0002 GETQUOTAROOT INBOX
        S1 * QUOTAROOT "INBOX" ""
        S1 * QUOTA "" (STORAGE 1 2 MESSAGE 2 3)
        S1 G0002 OK Getquotaroot completed
        C1 G0003 GETQUOTAROOT "Sent Messages"
        S1 * QUOTAROOT "Sent Messages" ""
        S1 * QUOTA "" (STORAGE 1 2 MESSAGE 2 3)
        S1 G0003 OK Getquotaroot completed
        C1 G0004 GETQUOTA "#user/alice"
        S1 G0004 NO [NONEXISTENT] No such quota root
        C1 G0005 GETQUOTAROOT nosuch
        S1 G0005 NO [NONEXISTENT] %*
        C1 G0006 GETQUOTAROOT
        S1 G0006 BAD %*
        """,
        world,
    )


async def test_without_limits_mailboxes_have_no_quota_root() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 b GETQUOTAROOT INBOX
        S1 * QUOTAROOT "INBOX"
        S1 b OK Getquotaroot completed
        C1 c GETQUOTA ""
        S1 c NO [NONEXISTENT] No such quota root
        """
    )


async def test_rfc9208_setquota_is_refused() -> None:
    # Section 4.1.3's example asks to change the limit; ours come from the
    # configuration (no QUOTASET), so: NO, and the quota is unchanged.
    await run_transcript(
        LOGIN
        + """
        C1 S0001 SETQUOTA "" (STORAGE 510)
        S1 S0001 NO [CANNOT] Quota limits are set by the server configuration
        C1 S0002 GETQUOTA ""
        S1 * QUOTA "" (STORAGE 0 2 MESSAGE 0 3)
        S1 S0002 OK Getquota completed
        C1 S0003 SETQUOTA "" (STORAGE)
        S1 S0003 BAD %*
        C1 S0004 SETQUOTA
        S1 S0004 BAD %*
        """,
        World(quota=LIMITED),
    )


async def test_rfc9208_status_deleted_and_deleted_storage() -> None:
    # Section 4.2: DELETED counts \Deleted messages, DELETED-STORAGE their
    # size in the STORAGE resource's units (1024 octets, rounded up).
    world = World(quota=QuotaLimits(storage=100 * 1024))
    big = message("big", "x" * 3000)
    await add_messages(world, "alice", "INBOX", ONE, big, TWO)
    await run_transcript(
        LOGIN
        + """
        C1 b STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)
        S1 * STATUS "INBOX" (MESSAGES 3 DELETED 0 DELETED-STORAGE 0)
        S1 b OK Status completed
        C1 c SELECT INBOX
        S1 * %*
        S1 * %*
        S1 * 3 EXISTS
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 c OK [READ-WRITE] %*
        C1 d STORE 1:2 +FLAGS.SILENT (\\Deleted)
        S1 d OK Store completed
        C1 e STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)
        S1 * STATUS "INBOX" (MESSAGES 3 DELETED 2 DELETED-STORAGE 4)
        S1 e OK Status completed
        C1 f GETQUOTA ""
        S1 * QUOTA "" (STORAGE 4 100)
        S1 f OK Getquota completed
        C1 g EXPUNGE
        S1 * 2 EXPUNGE
        S1 * 1 EXPUNGE
        S1 g OK Expunge completed
        C1 h GETQUOTA ""
        S1 * QUOTA "" (STORAGE 1 100)
        S1 h OK Getquota completed
        C1 i LIST "" INBOX RETURN (STATUS (DELETED-STORAGE))
        S1 * LIST %* "INBOX"
        S1 * STATUS "INBOX" (DELETED-STORAGE 0)
        S1 i OK List completed
        """,
        world,
    )


async def test_append_over_storage_is_refused_before_the_upload() -> None:
    # RFC 9208 section 4.4.1's OVERQUOTA, answered to the literal's size
    # like APPENDLIMIT's TOOBIG (RFC 7889 section 4): no "+" is sent.
    world = World(quota=QuotaLimits(storage=1024))
    await add_messages(world, "alice", "INBOX", ONE)
    await run_transcript(
        LOGIN
        + """
        C1 b APPEND INBOX {924}
        S1 b NO [OVERQUOTA] Over quota
        C1 c APPEND INBOX {923}
        S1 + Ready for literal
        C1 """
        + "x" * 921
        + """
        C1
        S1 c OK [APPENDUID %? 2] Append completed
        C1 d GETQUOTA ""
        S1 * QUOTA "" (STORAGE 1 1)
        S1 d OK Getquota completed
        C1 e APPEND INBOX {1+}
        C1 x
        S1 e NO [OVERQUOTA] Over quota
        C1 f NOOP
        S1 f OK NOOP completed
        """,
        world,
    )
    inbox = await world.stores["alice"].mailbox("INBOX")
    assert (await inbox.status()).messages == 2


async def test_append_over_message_count_is_refused() -> None:
    world = World(quota=QuotaLimits(messages=2))
    await add_messages(world, "alice", "Drafts", ONE, TWO)
    await run_transcript(
        LOGIN
        + """
        C1 b APPEND INBOX {5}
        S1 b NO [OVERQUOTA] Over quota
        C1 c GETQUOTAROOT Drafts
        S1 * QUOTAROOT "Drafts" ""
        S1 * QUOTA "" (MESSAGE 2 2)
        S1 c OK Getquotaroot completed
        """,
        world,
    )


async def test_multiappend_over_quota_stores_nothing() -> None:
    # RFC 3502: all or nothing.  Each message fits alone, the three do not.
    world = World(quota=QuotaLimits(messages=2))
    await run_transcript(
        LOGIN
        + multiappend_lines("b", "INBOX", ONE, TWO, TWO)
        + """
        S1 b NO [OVERQUOTA] Message count quota exceeded
        C1 c STATUS INBOX (MESSAGES)
        S1 * STATUS "INBOX" (MESSAGES 0)
        S1 c OK Status completed
        """,
        world,
    )


async def test_catenate_over_quota_is_refused() -> None:
    # RFC 4469 CATENATE: the parts are small, the assembled message is not.
    world = World(quota=QuotaLimits(storage=1024))
    big = message("big", "x" * 700)
    await add_messages(world, "alice", "Drafts", big)
    await run_transcript(
        LOGIN
        + """
        C1 b APPEND Drafts CATENATE (URL "/Drafts/;UID=1" TEXT {2+}
        C1 hi)
        S1 b NO [OVERQUOTA] Storage quota exceeded
        C1 c STATUS Drafts (MESSAGES)
        S1 * STATUS "Drafts" (MESSAGES 1)
        S1 c OK Status completed
        """,
        world,
    )


async def test_copy_over_quota_and_move_within_the_account() -> None:
    # RFC 9051 section 7.1's OVERQUOTA example is a UID COPY; MOVE leaves
    # the usage as it was and RFC 6851 section 4.1 lets it succeed.
    world = World(quota=QuotaLimits(messages=3))
    await add_messages(world, "alice", "INBOX", ONE, TWO)
    await run_transcript(
        LOGIN
        + """
        C1 b SELECT INBOX
        S1 * %*
        S1 * %*
        S1 * 2 EXISTS
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 b OK [READ-WRITE] %*
        C1 n1 UID COPY 1:* Archive
        S1 n1 NO [OVERQUOTA] Message count quota exceeded
        C1 n2 COPY 1:2 Archive
        S1 n2 NO [OVERQUOTA] Message count quota exceeded
        C1 n3 COPY 2 Archive
        S1 n3 OK [COPYUID %? 2 1] Copy completed
        C1 n4 COPY 1 Archive
        S1 n4 NO [OVERQUOTA] Message count quota exceeded
        C1 n5 MOVE 1:2 Junk
        S1 * OK [COPYUID %? 1:2 1:2] Moved
        S1 * 2 EXPUNGE
        S1 * 1 EXPUNGE
        S1 n5 OK Move completed
        C1 n6 GETQUOTA ""
        S1 * QUOTA "" (MESSAGE 3 3)
        S1 n6 OK Getquota completed
        C1 n7 STATUS Archive (MESSAGES)
        S1 * STATUS "Archive" (MESSAGES 1)
        S1 n7 OK Status completed
        """,
        world,
    )


@pytest.mark.parametrize("literal", ["{5}", "{5+}"])
async def test_quota_commands_need_login(literal: str) -> None:
    await run_transcript(
        f"""
        C1 a GETQUOTAROOT INBOX
        S1 a BAD %*
        C1 b GETQUOTA ""
        S1 b BAD %*
        C1 c APPEND INBOX {literal}
        S1 c BAD %*
        """
        + ("C1 hello\nC1 d NOOP\nS1 d OK NOOP completed\n" if "+" in literal else ""),
        World(quota=LIMITED),
    )


async def test_expunge_makes_room_again() -> None:
    world = World(quota=QuotaLimits(messages=1))
    await add_messages(world, "alice", "INBOX", ONE)
    await run_transcript(
        LOGIN
        + append_lines(1, "b", "INBOX", TWO)
        + """
        S1 b NO [OVERQUOTA] Over quota
        C1 c SELECT INBOX
        S1 * %*
        S1 * %*
        S1 * 1 EXISTS
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 c OK [READ-WRITE] %*
        C1 d STORE 1 +FLAGS.SILENT (\\Deleted)
        S1 d OK Store completed
        C1 e EXPUNGE
        S1 * 1 EXPUNGE
        S1 e OK Expunge completed
        """
        + append_lines(1, "f", "INBOX", TWO)
        + """
        S1 * 1 EXISTS
        S1 * 1 RECENT
        S1 f OK [APPENDUID %? 2] Append completed
        """,
        world,
    )
