"""Transcripts: BINARY (RFC 3516) -- literal8 APPEND, FETCH BINARY[...]
and BINARY.SIZE[...], and ``NO [UNKNOWN-CTE]``.

RFC 3516 section 4.1 (BINARY[section-binary]<partial>): the part with its
Content-Transfer-Encoding undone, as literal8 when it holds NUL; section
4.2 (BINARY.SIZE): the decoded size; section 4.3: an encoding the server
cannot undo is ``NO [UNKNOWN-CTE]``; section 4.4 (APPEND): the message may
arrive as ``~{n}`` literal8 and hold NUL, which a plain literal may not
(RFC 3501 section 9, CHAR8 excludes NUL).
"""

from __future__ import annotations

import base64

from transcript import World, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

#: A two-part message: part 1 raw binary with NUL, part 2 base64.
BINARY_PART = b"ab\x00cd"
BASE64_TEXT = b"Hello, binary world!"
MESSAGE = (
    b"From: a@example.org\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\n" + BINARY_PART + b"\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.b64encode(BASE64_TEXT)
    + b"\r\n--b\r\nContent-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: x-unknown\r\n\r\nzzz\r\n--b--\r\n"
)


def _client_bytes(data: bytes) -> str:
    """``data`` as a transcript client line (NUL as ``\\x00``)."""
    return data.decode("latin-1").replace("\x00", "\\x00")


def _append_binary(tag: str) -> str:
    lines = MESSAGE[:-2].split(b"\r\n")
    return "\n".join(
        [f"C1 {tag} APPEND INBOX ~{{{len(MESSAGE)}+}}"]
        + [f"C1 {_client_bytes(line)}" for line in lines]
        + ["C1"]
    )


async def test_literal8_append_and_binary_fetch() -> None:
    await run_transcript(
        """
        C1 a0 CAPABILITY
        S1 * CAPABILITY %* BINARY %*
        S1 a0 OK %*
        """
        + LOGIN
        + _append_binary("b")
        + f"""
        S1 b OK [APPENDUID %? 1] Append completed
        C1 c SELECT INBOX
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS (%*)] Flags permitted
        S1 * 1 EXISTS
        S1 * 1 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] UIDs valid
        S1 * OK [UIDNEXT 2] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 c OK [READ-WRITE] %*
        C1 d FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2])
        S1 * 1 FETCH (BINARY.SIZE[1] 5 BINARY.SIZE[2] {len(BASE64_TEXT)})
        S1 d OK Fetch completed
        # 4.1: NUL in the decoded data -> literal8.
        C1 e FETCH 1 BINARY.PEEK[1]
        S1 * 1 FETCH (BINARY[1] ~{{5}}
        S1 ab%?cd)
        S1 e OK Fetch completed
        # A base64 part is decoded; no NUL -> an ordinary string.
        C1 f FETCH 1 BINARY.PEEK[2]<7.6>
        S1 * 1 FETCH (BINARY[2]<7> {{6}}
        S1 binary)
        S1 f OK Fetch completed
        # 4.3: an encoding we cannot undo.
        C1 g FETCH 1 BINARY.PEEK[3]
        S1 g NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding
        C1 h FETCH 1 BINARY.SIZE[3]
        S1 h NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding
        C1 i FETCH 1 BINARY.PEEK[9]
        S1 i NO No such message part
        """,
        World(),
    )


async def test_nul_needs_literal8() -> None:
    # RFC 3501 section 9: a plain literal cannot carry NUL.
    await run_transcript(
        LOGIN
        + """
        C1 b APPEND INBOX {5+}
        C1 a\\x00b
        C1
        S1 b BAD NUL in literal
        C1 c APPEND INBOX ~{7+}
        C1
        C1 a\\x00b
        C1
        S1 c OK [APPENDUID %? 1] Append completed
        C1 d STATUS INBOX (MESSAGES)
        S1 * STATUS "INBOX" (MESSAGES 1)
        S1 d OK Status completed
        # A NUL in a header cannot be re-encoded (RFC 3516 4.3, RFC 5322
        # 3.2.3 allows none): refused rather than served in a plain literal.
        C1 e APPEND INBOX ~{5+}
        C1 a\\x00b
        C1
        S1 e NO Message has a NUL byte outside a binary body part
        """,
    )


async def test_synchronizing_literal8_gets_a_continuation() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 b APPEND INBOX ~{7}
        S1 + Ready for literal
        C1
        C1 x\\x00y
        C1
        S1 b OK [APPENDUID %? 1] Append completed
        """,
    )
