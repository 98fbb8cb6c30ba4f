"""Transcripts: greeting, any-state commands, state machine, authentication."""

from __future__ import annotations

import pytest

from transcript import World, run_transcript

CAPS = (
    "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE ID IDLE NAMESPACE UNSELECT UIDPLUS "
    "MULTIAPPEND MOVE CHILDREN SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED "
    "LIST-STATUS "
    "STATUS=SIZE METADATA NOTIFY CONDSTORE QRESYNC ESEARCH SEARCHRES PARTIAL SORT "
    "SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS "
    "APPENDLIMIT=67108864 BINARY UTF8=ACCEPT CATENATE PREVIEW OBJECTID SAVEDATE "
    "REPLACE"
)

#: After login: the connection-level extensions offered in the
#: authenticated states (RFC 4978, RFC 8437), and the RFC 5267 ones that
#: work on a selected mailbox.
AUTH_CAPS = CAPS.replace(" IDLE ", " IDLE COMPRESS=DEFLATE UNAUTHENTICATE ", 1).replace(
    " SORT=DISPLAY ", " SORT=DISPLAY ESORT CONTEXT=SEARCH CONTEXT=SORT ", 1
)


async def test_capability_before_and_after_login() -> None:
    await run_transcript(
        f"""
        C1 a CAPABILITY
        S1 * CAPABILITY {CAPS} AUTH=PLAIN AUTH=LOGIN
        S1 a OK Capability completed
        C1 b LOGIN alice secret-a
        S1 b OK [CAPABILITY {AUTH_CAPS}] Logged in
        C1 c CAPABILITY
        S1 * CAPABILITY {AUTH_CAPS}
        S1 c OK Capability completed
        """
    )


async def test_noop_id_logout() -> None:
    await run_transcript(
        """
        C1 a NOOP
        S1 a OK NOOP completed
        C1 b ID ("name" "test-client")
        S1 * ID ("name" "asimap" "version" "%?")
        S1 b OK ID completed
        C1 c ID NIL
        S1 * ID ("name" "asimap" "version" "%?")
        S1 c OK ID completed
        C1 d LOGOUT
        S1 * BYE Logging out
        S1 d OK Logout completed
        X1
        """
    )


async def test_unknown_command_and_parse_errors_keep_the_connection() -> None:
    await run_transcript(
        """
        C1 a FROBNICATE
        S1 a BAD %*
        C1 b LOGIN
        S1 b BAD %*
        C1 c NOOP
        S1 c OK NOOP completed
        """
    )


async def test_commands_in_the_wrong_state_are_bad() -> None:
    await run_transcript(
        """
        C1 a SELECT INBOX
        S1 a BAD SELECT not allowed in the not authenticated state
        C1 b FETCH 1 FLAGS
        S1 b BAD FETCH not allowed in the not authenticated state
        C1 c LIST "" "*"
        S1 c BAD %*
        C1 d LOGIN alice secret-a
        S1 d OK %*
        C1 e LOGIN alice secret-a
        S1 e BAD LOGIN not allowed in the authenticated state
        C1 f FETCH 1 FLAGS
        S1 f BAD FETCH not allowed in the authenticated state
        C1 g CLOSE
        S1 g BAD CLOSE not allowed in the authenticated state
        C1 h STARTTLS
        S1 h BAD %*
        C1 i SELECT INBOX
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS %*
        S1 * 0 EXISTS
        S1 * 0 RECENT
        S1 * OK [UIDVALIDITY %?] UIDs valid
        S1 * OK [UIDNEXT 1] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 i OK [READ-WRITE] Select completed
        C1 j ENABLE CONDSTORE
        S1 j BAD ENABLE not allowed in the selected state
        C1 k AUTHENTICATE PLAIN
        S1 k BAD %*
        C1 l NOOP
        S1 l OK NOOP completed
        """
    )


async def test_login_failure_is_uniform() -> None:
    world = await run_transcript(
        """
        C1 a LOGIN alice wrong
        S1 a NO [AUTHENTICATIONFAILED] Authentication failed
        C1 b LOGIN nobody secret-a
        S1 b NO [AUTHENTICATIONFAILED] Authentication failed
        C1 c LOGIN "alice" "secret-a"
        S1 c OK [CAPABILITY %*] Logged in
        """
    )
    assert world.authenticator.calls == 3


async def test_hundred_wrong_passwords_keep_the_connection() -> None:
    lines = []
    for i in range(100):
        lines.append(f"C1 t{i} LOGIN alice wrong{i}")
        lines.append(f"S1 t{i} NO [AUTHENTICATIONFAILED] Authentication failed")
    lines += ["C1 last LOGIN alice secret-a", "S1 last OK %*"]
    world = await run_transcript("\n".join(lines))
    assert world.authenticator.calls == 101


async def test_non_utf8_credentials_fail_without_asking() -> None:
    # A literal carries bytes that are not UTF-8.
    world = World()
    await run_transcript(
        r"""
        C1 a LOGIN {2+}
        C1 \xff\xfe secret
        S1 a NO [AUTHENTICATIONFAILED] Authentication failed
        """,
        world,
    )
    assert world.authenticator.calls == 0


async def test_logindisabled_before_tls() -> None:
    world = World(allow_plaintext_auth=False, starttls_available=True)
    await run_transcript(
        f"""
        C1 a CAPABILITY
        S1 * CAPABILITY {CAPS} STARTTLS LOGINDISABLED
        S1 a OK Capability completed
        C1 b LOGIN alice secret-a
        S1 b NO [PRIVACYREQUIRED] Plaintext authentication disallowed
        C1 c AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldC1h
        S1 c NO [PRIVACYREQUIRED] Plaintext authentication disallowed
        C1 d STARTTLS
        S1 d OK Begin TLS negotiation now
        C1 e CAPABILITY
        S1 * CAPABILITY {CAPS} AUTH=PLAIN AUTH=LOGIN
        S1 e OK Capability completed
        C1 f STARTTLS
        S1 f BAD STARTTLS not available
        C1 g LOGIN alice secret-a
        S1 g OK [CAPABILITY {AUTH_CAPS}] Logged in
        """,
        world,
    )
    assert world.authenticator.calls == 1


async def test_starttls_not_offered_without_tls_support() -> None:
    await run_transcript(
        """
        C1 a STARTTLS
        S1 a BAD STARTTLS not available
        """
    )


async def test_authenticate_plain_variants() -> None:
    # base64("\0alice\0secret-a") = AGFsaWNlAHNlY3JldC1h
    await run_transcript(
        """
        C1 a AUTHENTICATE PLAIN AGFsaWNlAHdyb25n
        S1 a NO [AUTHENTICATIONFAILED] Authentication failed
        C1 b AUTHENTICATE PLAIN =
        S1 b NO [AUTHENTICATIONFAILED] Authentication failed
        C1 c AUTHENTICATE PLAIN
        S1 +%*
        C1 *
        S1 c BAD Authentication cancelled
        C1 d AUTHENTICATE PLAIN
        S1 +%*
        C1 not base64!
        S1 d BAD Invalid base64 in SASL response
        C1 e AUTHENTICATE XOAUTH9
        S1 e NO Unsupported authentication mechanism
        C1 f authenticate plain
        S1 +%*
        C1 AGFsaWNlAHNlY3JldC1h
        S1 f OK [CAPABILITY %*] Logged in
        """
    )


async def test_authenticate_plain_with_foreign_authzid_fails() -> None:
    # base64("bob\0alice\0secret-a")
    await run_transcript(
        """
        C1 a AUTHENTICATE PLAIN Ym9iAGFsaWNlAHNlY3JldC1h
        S1 a NO [AUTHENTICATIONFAILED] Authentication failed
        """
    )


async def test_authenticate_login_mechanism() -> None:
    # YWxpY2U= alice, c2VjcmV0LWE= secret-a
    await run_transcript(
        """
        C1 a AUTHENTICATE LOGIN
        S1 + VXNlcm5hbWU6
        C1 YWxpY2U=
        S1 + UGFzc3dvcmQ6
        C1 c2VjcmV0LWE=
        S1 a OK [CAPABILITY %*] Logged in
        """
    )


@pytest.mark.parametrize("done", ["DONE", "done"])
async def test_idle_in_authenticated_state(done: str) -> None:
    await run_transcript(
        f"""
        C1 a LOGIN alice secret-a
        S1 a OK %*
        C1 b IDLE
        S1 + idling
        C1 {done}
        S1 b OK Idle completed
        C1 c IDLE
        S1 + idling
        C1 STOP
        S1 c BAD Expected DONE
        """
    )


async def test_eof_during_idle_ends_the_session() -> None:
    await run_transcript(
        """
        C1 a LOGIN alice secret-a
        S1 a OK %*
        C1 b IDLE
        S1 + idling
        E1
        X1
        """
    )
