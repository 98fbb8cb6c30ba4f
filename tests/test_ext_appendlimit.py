"""Transcripts: APPENDLIMIT (RFC 7889) and the limits on every other literal.

RFC 7889 section 2 advertises one limit for all mailboxes
(``APPENDLIMIT=n``), section 3 the STATUS item, section 4 the refusal of
a larger APPEND with ``NO [TOOBIG]`` -- before the message is uploaded
when the literal is synchronizing.  Literals of other commands are capped
at ``max_small_literal`` (``BAD [TOOBIG]``), so a "password" of 60 MB is
never read into memory.
"""

from __future__ import annotations

from asimap.imap.limits import Limits
from asimap.imap.parser import PendingCommand
from asimap.imap.responses import Code, Status, Tagged
from transcript import World, run_transcript

LIMITS = Limits(max_literal=100, max_small_literal=20, max_command=10_000)

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""


async def test_capability_and_status_report_the_limit() -> None:
    # RFC 7889 section 2's example, with our limit; section 3's STATUS.
    await run_transcript(
        """
        C1 a CAPABILITY
        S1 * CAPABILITY %* APPENDLIMIT=100 %*
        S1 a OK Capability completed
        """
        + LOGIN
        + """
        C1 b STATUS INBOX (APPENDLIMIT)
        S1 * STATUS "INBOX" (APPENDLIMIT 100)
        S1 b OK Status completed
        C1 c STATUS Drafts (MESSAGES APPENDLIMIT UIDNEXT)
        S1 * STATUS "Drafts" (MESSAGES 0 APPENDLIMIT 100 UIDNEXT 1)
        S1 c OK Status completed
        C1 d LIST "" "Drafts" RETURN (STATUS (APPENDLIMIT))
        S1 * LIST (%*) "/" "Drafts"
        S1 * STATUS "Drafts" (APPENDLIMIT 100)
        S1 d OK List completed
        """,
        World(limits=LIMITS),
    )


async def test_append_at_the_limit_is_taken_above_it_refused() -> None:
    body = "x" * 98  # + CRLF = exactly 100 octets
    await run_transcript(
        LOGIN
        + f"""
        C1 b APPEND INBOX {{100}}
        S1 + Ready for literal
        C1 {body}
        C1
        S1 b OK [APPENDUID %? 1] Append completed
        # Synchronizing: refused before "+", so the client never sends it.
        C1 c APPEND INBOX {{101}}
        S1 c NO [TOOBIG] Message too large
        # Far above max_literal and max_command: the reader's hard cap.
        C1 d APPEND INBOX {{4294967296}}
        S1 d BAD [TOOBIG] literal too big
        # Non-synchronizing (LITERAL+): refused at once, the bytes that
        # follow are counted away with the rest of the command.
        C1 e APPEND INBOX {{101+}}
        S1 e NO [TOOBIG] Message too large
        C1 {"y" * 101}
        C1 f STATUS INBOX (MESSAGES)
        S1 * STATUS "INBOX" (MESSAGES 1)
        S1 f OK Status completed
        """,
        World(limits=LIMITS),
    )


async def test_multiappend_refuses_any_message_over_the_limit() -> None:
    # RFC 3502: all or nothing; the second literal is the one too big.
    await run_transcript(
        LOGIN
        + f"""
        C1 b APPEND INBOX {{3+}}
        C1 ok (\\Seen) {{101+}}
        S1 b NO [TOOBIG] Message too large
        C1 {"z" * 101}
        C1 c STATUS INBOX (MESSAGES)
        S1 * STATUS "INBOX" (MESSAGES 0)
        S1 c OK Status completed
        """,
        World(limits=LIMITS),
    )


async def test_small_literals_of_other_commands() -> None:
    await run_transcript(
        f"""
        C1 a LOGIN alice {{21}}
        S1 a BAD [TOOBIG] literal too big
        C1 b LOGIN alice {{21+}}
        S1 b BAD [TOOBIG] literal too big
        C1 {"p" * 21}
        C1 c LOGIN alice {{8}}
        S1 + Ready for literal
        C1 secret-a
        S1 c OK %*
        C1 d SELECT {{21}}
        S1 d BAD [TOOBIG] literal too big
        C1 e STATUS {{5}}
        S1 + Ready for literal
        C1 INBOX (MESSAGES)
        S1 * STATUS "INBOX" (MESSAGES 0)
        S1 e OK Status completed
        """,
        World(limits=LIMITS),
    )


async def test_check_literal_limits_directly() -> None:
    """The decisions themselves, for each kind of command."""
    from transcript import FakeClient

    world = World(limits=LIMITS)
    client = FakeClient(world)
    session = client.session
    login = PendingCommand("t", "LOGIN", None, 1)
    assert await session.check_literal(login, 20, True) is None
    assert await session.check_literal(login, 21, False) == Tagged(
        "t", Status.BAD, "literal too big", Code("TOOBIG")
    )
    nameless = PendingCommand("t", None, None, 0)
    refusal = await session.check_literal(nameless, 21, True)
    assert isinstance(refusal, Tagged) and refusal.status is Status.BAD
