"""Transcripts: UTF8=ACCEPT (RFC 6855).

Section 3: the client turns it on with ``ENABLE UTF8=ACCEPT``; from then on
mailbox names travel as UTF-8 in both directions (no modified UTF-7) and
quoted strings may carry UTF-8.  Section 4: APPEND takes message data as
``UTF8 (~{n}...)`` -- a literal8 that may hold a message with UTF-8
headers (RFC 6532) -- and refuses that form with BAD before ENABLE.
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.parser import parse_command
from transcript import World, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

#: A message with an RFC 6532 UTF-8 Subject, as a transcript client line
#: each (the harness sends UTF-8 text as UTF-8 bytes).
UTF8_LINES = ("From: jöe@example.org", "Subject: Grüße", "", "Hallo")
UTF8_SIZE = len("\r\n".join(UTF8_LINES).encode("utf-8")) + 2


def _utf8_append(tag: str, mailbox: str) -> str:
    head = f"C1 {tag} APPEND {mailbox} UTF8 (~{{{UTF8_SIZE}+}}"
    body = [f"C1 {line}" for line in UTF8_LINES[:-1]]
    return "\n".join([head, *body, f"C1 {UTF8_LINES[-1]}", "C1 )"])


def test_parser_reads_the_utf8_form() -> None:
    parsed = parse_command((b"a APPEND INBOX (\\Seen) UTF8 (~{3}", b")"), (b"x\r\n",))
    assert isinstance(parsed, c.Append)
    (message,) = parsed.messages
    assert message.data == b"x\r\n" and message.utf8 and message.binary
    assert message.flags == ("\\Seen",)


async def test_utf8_append_needs_enable() -> None:
    await run_transcript(
        """
        C1 a0 CAPABILITY
        S1 * CAPABILITY %* UTF8=ACCEPT %*
        S1 a0 OK %*
        """
        + LOGIN
        + _utf8_append("b", "INBOX")
        + """
        S1 b BAD APPEND UTF8 requires ENABLE UTF8=ACCEPT
        C1 c STATUS INBOX (MESSAGES)
        S1 * STATUS "INBOX" (MESSAGES 0)
        S1 c OK Status completed
        C1 d ENABLE UTF8=ACCEPT
        S1 * ENABLED UTF8=ACCEPT
        S1 d OK Enable completed
        """
        + _utf8_append("e", "INBOX")
        + f"""
        S1 e OK [APPENDUID %? 1] Append completed
        C1 f STATUS INBOX (MESSAGES SIZE)
        S1 * STATUS "INBOX" (MESSAGES 1 SIZE {UTF8_SIZE})
        S1 f OK Status completed
        """,
        World(),
    )


async def test_mailbox_names_are_utf8_once_enabled() -> None:
    # Section 3: names in UTF-8 both ways after ENABLE; modified UTF-7 on
    # a connection that did not enable it (client 2).
    await run_transcript(
        LOGIN
        + """
        C1 b ENABLE UTF8=ACCEPT
        S1 * ENABLED UTF8=ACCEPT
        S1 b OK Enable completed
        C1 c CREATE "Bücher"
        S1 c OK [MAILBOXID (%?)] Create completed
        C1 d LIST "" "B*"
        S1 * LIST (\\HasNoChildren) "/" "Bücher"
        S1 d OK List completed
        C2 a LOGIN alice secret-a
        S2 a OK %*
        C2 b LIST "" "B*"
        S2 * LIST (\\HasNoChildren) "/" "B&APw-cher"
        S2 b OK List completed
        """
        + _utf8_append("e", '"Bücher"')
        + """
        S1 e OK [APPENDUID %? 1] Append completed
        # ENABLE again: nothing newly enabled, still OK (RFC 5161 3.1).
        C1 f ENABLE UTF8=ACCEPT
        S1 * ENABLED
        S1 f OK Enable completed
        """,
        World(),
    )


async def test_utf8_form_requires_literal8_and_multiappend_mixes() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 b ENABLE UTF8=ACCEPT
        S1 * ENABLED UTF8=ACCEPT
        S1 b OK Enable completed
        C1 c APPEND INBOX UTF8 ({3+}
        C1 x
        C1 )
        S1 c BAD UTF8 message data must be a literal8
        # RFC 3502 + RFC 6855: one ordinary and one UTF8 message.
        C1 d APPEND INBOX {3+}
        C1 x
        C1  UTF8 (~{3+}
        C1 y
        C1 )
        S1 d OK [APPENDUID %? 1:2] Append completed
        """,
        World(),
    )
