"""Message-derived defects an outside compliance suite found: transcripts on
the memory store and on a real MH root (whose summary cache answers
ENVELOPE, header SEARCH and SORT), each with the RFC that settles it.
"""

from __future__ import annotations

from pathlib import Path

from asimap.store.base import SUMMARY_VERSION
from asimap.store.mh import MHStore
from asimap.store.mh.db import DB_NAME, open_database
from asimap.store.mh.profile import Profile
from test_compliance_session import LOGIN1, alice_store, world
from transcript import World, run_transcript

__all__ = ["world"]  # the fixture, shared with the session defects

SELECT = """
C1 s SELECT INBOX
S1 * FLAGS %*
S1 * OK [PERMANENTFLAGS %*] %*
S1 * %? EXISTS
S1 * %? RECENT
S1 * OK [UNSEEN 1] %*
S1 * OK [UIDVALIDITY %?] %*
S1 * OK [UIDNEXT %?] %*
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 s OK [READ-WRITE] Select completed
"""


async def _append(world: World, *messages: bytes) -> None:
    inbox = await (await alice_store(world)).mailbox("INBOX")
    for data in messages:
        await inbox.append(data)


# -- 3. Quoted-printable drops trailing whitespace (RFC 2045 6.7 rule 3) ------

#: Spaces and tabs before line ends were added in transport; "= " before a
#: line end is a soft break once they are gone.
QP_MESSAGE = (
    b"From: a@example.org\r\n"
    b"Subject: qp\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"line one   \t\r\n"
    b"soft = \r\n"
    b"break\t\r\n"
    b"=41=42  \r\n"
)
QP_DECODED = b"line one\r\nsoft break\r\nAB\r\n"


async def test_quoted_printable_trailing_whitespace(world: World) -> None:
    """BINARY.SIZE, BINARY, SEARCH BODY and PREVIEW all see the decoded
    text without the transport whitespace (Dovecot 2.3 answers the same
    BINARY.SIZE)."""
    await _append(world, QP_MESSAGE)
    await run_transcript(
        LOGIN1
        + SELECT
        + f"""
        C1 b FETCH 1 (BINARY.SIZE[1])
        S1 * 1 FETCH (BINARY.SIZE[1] {len(QP_DECODED)})
        S1 b OK Fetch completed
        C1 c FETCH 1 (BINARY.PEEK[1])
        S1 * 1 FETCH (BINARY[1] {{{len(QP_DECODED)}}}
        S1 line one
        S1 soft break
        S1 AB
        S1 )
        S1 c OK Fetch completed
        C1 d SEARCH BODY "soft break"
        S1 * SEARCH 1
        S1 d OK Search completed
        C1 e SEARCH NOT TEXT "soft ="
        S1 * SEARCH 1
        S1 e OK Search completed
        C1 f FETCH 1 (PREVIEW)
        S1 * 1 FETCH (PREVIEW "line one soft break AB")
        S1 f OK Fetch completed
        """,
        world,
    )


# -- 5. A group whose member list is only CFWS (RFC 5322 section 3.4) ---------

GROUP_MESSAGE = (
    b"From: a@example.org\r\n"
    b"To: b@example.org\r\n"
    b"Cc: group:;, group2: (foo) ;\r\n"
    b"Subject: groups\r\n"
    b"\r\n"
    b"body\r\n"
)


async def test_envelope_group_with_only_a_comment_has_no_members(
    world: World,
) -> None:
    """``group2: (foo) ;`` is an empty group, not a mailbox named "foo"."""
    await _append(world, GROUP_MESSAGE)
    await run_transcript(
        LOGIN1
        + SELECT
        + """
        C1 b FETCH 1 (ENVELOPE)
        S1 * 1 FETCH (ENVELOPE (NIL "groups" ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) ((NIL NIL "b" "example.org")) ((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) NIL NIL NIL))
        S1 b OK Fetch completed
        """,  # noqa: E501
        world,
    )


# -- The MH summary cache never serves an old derivation -----------------------


async def test_summaries_of_another_version_are_dropped(tmp_path: Path) -> None:
    """A summary cached by code with another :data:`SUMMARY_VERSION` (here
    a forged wrong envelope) is rebuilt from the message file on reopen."""
    root = tmp_path / "Mail"
    profile = Profile(path=None, unseen=("unseen",))
    store = await MHStore.open(root, profile=profile, watch=False)
    try:
        inbox = await store.mailbox("INBOX")
        uid = await inbox.append(GROUP_MESSAGE)
        (summary,) = await inbox.summaries([uid])
        assert b'"group2" NIL)(NIL NIL NIL NIL)' in summary.envelope.data
    finally:
        await store.close()
    conn, _ = open_database(root)
    try:
        conn.execute("UPDATE summaries SET envelope=?", (b"(NIL NIL)",))
        conn.execute(
            "UPDATE account SET value=? WHERE key='summary_version'",
            (SUMMARY_VERSION - 1,),
        )
    finally:
        conn.close()
    assert (root / DB_NAME).exists()
    store = await MHStore.open(root, profile=profile, watch=False)
    try:
        inbox = await store.mailbox("INBOX")
        (summary,) = await inbox.summaries([uid])
        assert b'"group2" NIL)(NIL NIL NIL NIL)' in summary.envelope.data
    finally:
        await store.close()


# -- 2. NUL never in a plain literal (RFC 3516 4.3, RFC 3501/9051 4.3) --------

BINARY_OCTETS = b"a\x00b\x00c\x01"
BINARY_MESSAGE = (
    b"From: a@example.org\r\n"
    b"Subject: bin\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=xx\r\n"
    b"\r\n"
    b"--xx\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"hello\r\n"
    b"--xx\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n"
    b"\r\n" + BINARY_OCTETS + b"\r\n"
    b"--xx--\r\n"
)
#: What we store, as Dovecot 2.3 does for the same APPEND: the binary part
#: base64-encoded, everything else byte for byte.
STORED_MESSAGE = BINARY_MESSAGE.replace(
    b"Content-Transfer-Encoding: binary\r\n\r\n" + BINARY_OCTETS,
    b"Content-Transfer-Encoding: base64\r\n\r\nYQBiAGMB",
)


def _literal8_append(tag: str, data: bytes) -> str:
    """A LITERAL+ literal8 APPEND of ``data`` as transcript lines."""
    lines = data[:-2].decode("latin-1").split("\r\n")
    escaped = [line.replace("\x00", "\\x00").replace("\x01", "\\x01") for line in lines]
    return "\n".join(
        [f"C1 {tag} APPEND INBOX ~{{{len(data)}+}}"]
        + [f"C1 {line}" for line in escaped]
        + ["C1"]
    )


async def test_binary_append_is_stored_without_nul(world: World) -> None:
    """A ``binary`` part with NUL APPENDed in a literal8 is stored base64
    encoded: BODY[]/RFC822/BODY[2] are plain literals without NUL, and
    BINARY[2] still gives back the exact octets (in a literal8)."""
    await run_transcript(
        LOGIN1
        + _literal8_append("b", BINARY_MESSAGE)
        + f"""
        S1 b OK [APPENDUID %? 1] %*
        {SELECT}
        C1 c FETCH 1 (RFC822.SIZE BODY.PEEK[2] BINARY.SIZE[2])
        S1 * 1 FETCH (RFC822.SIZE {len(STORED_MESSAGE)} BODY[2] {{8}}
        S1 YQBiAGMB BINARY.SIZE[2] 6)
        S1 c OK Fetch completed
        C1 d FETCH 1 (BODY.PEEK[2.MIME])
        S1 * 1 FETCH (BODY[2.MIME] {{77}}
        S1 Content-Type: application/octet-stream
        S1 Content-Transfer-Encoding: base64
        S1
        S1 )
        S1 d OK Fetch completed
        C1 e FETCH 1 (BINARY.PEEK[2])
        S1 * 1 FETCH (BINARY[2] ~{{6}}
        S1 a\x00b\x00c\x01)
        S1 e OK Fetch completed
        """,
        world,
    )
    inbox = await (await alice_store(world)).mailbox("INBOX")
    stored = await inbox.message((await inbox.states())[0].uid)
    assert stored.raw == STORED_MESSAGE
    assert b"\x00" not in stored.raw


# -- 6. SEARCH FROM/TO/CC/BCC match the envelope (RFC 3501/9051 6.4.4) --------

ADDRESS_MESSAGE = (
    b"From: <user-from (comment)@ (comment) domain.org>\r\n"
    b"To: =?utf-8?q?J=C3=B6rg_Doe?= <jd@example.org>\r\n"
    b"Cc: team: a@x.org, b (Bee) @ y.org;\r\n"
    b"Subject: addresses\r\n"
    b"\r\n"
    b"body\r\n"
)


async def test_search_address_keys_match_the_envelope(world: World) -> None:
    """FROM finds what ENVELOPE shows, ``(NIL NIL "user-from"
    "domain.org")``, although the header text has comments in between
    (Dovecot 2.3 gives the same answer to every SEARCH here); the summary
    path (FROM alone) and the message path (with BODY) agree.  HEADER
    matches the header text only."""
    await _append(world, message_without_match(), ADDRESS_MESSAGE)
    await run_transcript(
        LOGIN1
        + SELECT
        + """
        C1 b FETCH 2 (ENVELOPE)
        S1 * 2 FETCH (ENVELOPE (NIL "addresses" ((NIL NIL "user-from" "domain.org")) %*
        S1 b OK Fetch completed
        C1 c SEARCH FROM user-from@domain.org
        S1 * SEARCH 2
        S1 c OK Search completed
        C1 d SEARCH FROM "<USER-FROM@domain.org>" BODY body
        S1 * SEARCH 2
        S1 d OK Search completed
        C1 e SEARCH CHARSET UTF-8 TO {17+}
        C1 Jörg Doe <jd@exa
        S1 * SEARCH 2
        S1 e OK Search completed
        C1 f SEARCH CC b@y.org
        S1 * SEARCH 2
        S1 f OK Search completed
        C1 f2 SEARCH CC "Bee <b@y.org>"
        S1 * SEARCH 2
        S1 f2 OK Search completed
        C1 g SEARCH OR CC team BCC nobody
        S1 * SEARCH 2
        S1 g OK Search completed
        C1 h SEARCH NOT FROM domain.org
        S1 * SEARCH 1
        S1 h OK Search completed
        C1 i SEARCH HEADER From user-from@domain.org
        S1 * SEARCH
        S1 i OK Search completed
        """,
        world,
    )


def message_without_match() -> bytes:
    return (
        b"From: other@example.net\r\nTo: x@example.net\r\nSubject: no\r\n\r\nbody\r\n"
    )


# -- 7. SORT address keys agree with ENVELOPE (RFC 5256 3, RFC 5957 3) --------

SORT_MESSAGES = (
    b"From: =?utf-8?q?Zo=C3=AB?= <a@x.org>\r\nTo: t@x.org\r\n"
    b"Cc: user2: blah@domain1.org;\r\nSubject: 1\r\n\r\nb\r\n",
    b"From: bob <zed@x.org>\r\nTo: =?utf-8?q?Doe=2CJane?= <zz@x>\r\n"
    b"Cc: b@x.org\r\nSubject: 2\r\n\r\nb\r\n",
    b"From: empty:;\r\nTo: empty:;\r\nCc: empty:;\r\nSubject: 3\r\n\r\nb\r\n",
    b"From: <carl@x.org>\r\nTo: Amy <yy@x>\r\nSubject: 4\r\n\r\nb\r\n",
)


async def test_sort_address_keys_follow_the_envelope(world: World) -> None:
    """FROM/TO/CC sort by the first envelope address's addr-mailbox (a
    group marker's is the group name: ``user2``, ``empty``);
    DISPLAYFROM/DISPLAYTO by the RFC 2047-decoded display name, else
    mailbox@host, else the group name.  Dovecot 2.3 gives exactly these
    five orders for the same messages."""
    await _append(world, *SORT_MESSAGES)
    await run_transcript(
        LOGIN1
        + SELECT
        + """
        C1 d SORT (CC) UTF-8 ALL
        S1 * SORT 4 2 3 1
        S1 d OK Sort completed
        C1 e SORT (FROM) UTF-8 ALL
        S1 * SORT 1 4 3 2
        S1 e OK Sort completed
        C1 f SORT (DISPLAYFROM) UTF-8 ALL
        S1 * SORT 2 4 3 1
        S1 f OK Sort completed
        C1 g SORT (TO) UTF-8 ALL
        S1 * SORT 3 1 4 2
        S1 g OK Sort completed
        C1 h SORT (DISPLAYTO) UTF-8 ALL
        S1 * SORT 4 2 3 1
        S1 h OK Sort completed
        """,
        world,
    )
