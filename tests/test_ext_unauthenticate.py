"""UNAUTHENTICATE (RFC 8437) in one process: transcripts, then sockets.

RFC 8437 section 3: valid in the authenticated and selected states; OK
returns the connection to the not-authenticated state, a selected
mailbox is closed without expunging, and the client may authenticate
again -- as another user.  Worker mode (the connection goes back to the
main process) is in ``test_worker_unauthenticate``.
"""

from __future__ import annotations

from conftest import PASSWORD, USER, ServerThread, TlsFiles
from deflate_client import LineClient
from transcript import add_messages, append_lines, message, run_transcript

SELECT_LINES = "\n".join(["        S1 %*"] * 9)


async def test_unauthenticate_then_login_as_another_user() -> None:
    async def seed(world: object) -> None:
        await add_messages(world, "alice", "INBOX", message("for alice"))  # type: ignore[arg-type]
        await add_messages(world, "bob", "INBOX", message("for bob 1"))  # type: ignore[arg-type]
        await add_messages(world, "bob", "INBOX", message("for bob 2"))  # type: ignore[arg-type]

    await run_transcript(
        f"""
        C1 a LOGIN alice secret-a
        S1 a OK [CAPABILITY %* UNAUTHENTICATE%*] Logged in
        C1 b SELECT INBOX
{SELECT_LINES}
        S1 b OK %*
        C1 c STORE 1 +FLAGS.SILENT (\\Deleted)
        S1 c OK %*
        # Closed silently: no EXPUNGE, nothing but the tagged OK.
        C1 d UNAUTHENTICATE
        S1 d OK Not authenticated now
        # Not-authenticated state again: mailbox commands are refused.
        C1 e SELECT INBOX
        S1 e BAD SELECT not allowed in the not authenticated state
        C1 f CAPABILITY
        S1 * CAPABILITY %* AUTH=PLAIN AUTH=LOGIN
        S1 f OK %*
        C1 g UNAUTHENTICATE
        S1 g BAD UNAUTHENTICATE not allowed in the not authenticated state
        C1 h LOGIN bob secret-b
        S1 h OK %*
        C1 i SEARCH ALL
        S1 i BAD %*
        C1 j EXAMINE INBOX
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS %*
        S1 * 2 EXISTS
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 j OK [READ-ONLY] %*
        C1 k FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])
        S1 * 1 FETCH %*
        S1 Subject: for bob 1
        S1
        S1 )
        S1 * 2 FETCH %*
        S1 Subject: for bob 2
        S1
        S1 )
        S1 k OK %*
        C1 l UNAUTHENTICATE
        S1 l OK %*
        # alice's message was not expunged by leaving.
        C1 m LOGIN alice secret-a
        S1 m OK %*
        C1 n STATUS INBOX (MESSAGES)
        S1 * STATUS "INBOX" (MESSAGES 1)
        S1 n OK %*
        """,
        before=seed,  # type: ignore[arg-type]
    )


async def test_unauthenticate_resets_enable_and_compress_stays() -> None:
    await run_transcript(
        """
        C1 a LOGIN alice secret-a
        S1 a OK %*
        C1 b ENABLE UTF8=ACCEPT
        S1 * ENABLED UTF8=ACCEPT
        S1 b OK %*
        C1 c COMPRESS DEFLATE
        S1 c OK DEFLATE active
        C1 d UNAUTHENTICATE
        S1 d OK %*
        # AUTHENTICATE works as well as LOGIN (SASL PLAIN, RFC 4616).
        C1 e AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldC1h
        S1 e OK [CAPABILITY %* COMPRESS=DEFLATE UNAUTHENTICATE%*] %*
        # ENABLE starts afresh (RFC 5161 ties it to the session) ...
        C1 f ENABLE UTF8=ACCEPT
        S1 * ENABLED UTF8=ACCEPT
        S1 f OK %*
        # ... while the compression layer below the protocol stays on.
        C1 g COMPRESS DEFLATE
        S1 g NO [COMPRESSIONACTIVE] %*
        """
    )


def test_unauthenticate_over_tls_with_compression(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    """--workers=off: UNAUTHENTICATE under COMPRESS, then another user."""
    client = LineClient.connect(imap_server.imaps_port, tls_files.client_context())
    assert client.read_line().startswith(b"* OK")
    assert client.command("a", f"LOGIN {USER} {PASSWORD}")[-1].startswith(b"a OK")
    message_bytes = b"Subject: demo's\r\n\r\nx\r\n"
    client.line(f"p APPEND INBOX {{{len(message_bytes)}+}}")
    client.send(message_bytes + b"\r\n")
    assert client.until_tagged("p")[-1].startswith(b"p OK")
    assert client.compress() == b"z OK DEFLATE active"
    assert client.command("s", "SELECT INBOX")[-1].startswith(b"s OK")
    # UNAUTHENTICATE and LOGIN pipelined in one compressed write.
    client.line("u UNAUTHENTICATE\r\nb LOGIN other other-secret")
    assert client.until_tagged("u") == [b"u OK Not authenticated now"]
    assert client.until_tagged("b")[-1].startswith(b"b OK")
    status = client.command("c", "STATUS INBOX (MESSAGES)")
    assert status[0] == b'* STATUS "INBOX" (MESSAGES 0)'
    client.close()


async def test_unauthenticate_ends_notify() -> None:
    # NOTIFY (RFC 5465) belongs to the authenticated session: after
    # UNAUTHENTICATE, news of alice's mailboxes must not reach a
    # connection that may next log in as someone else.
    await run_transcript(
        f"""
        C1 a LOGIN alice secret-a
        S1 a OK %*
        C1 n NOTIFY SET (personal (MessageNew MessageExpunge))
        S1 n OK NOTIFY completed
        C2 a LOGIN alice secret-a
        S2 a OK %*
        {append_lines(2, "b", "Drafts", message("seen by NOTIFY"))}
        S2 b OK %*
        S1 * STATUS "Drafts" (UIDNEXT 2 MESSAGES 1)
        C1 d UNAUTHENTICATE
        S1 d OK Not authenticated now
        {append_lines(2, "c", "Drafts", message("not for C1 any more"))}
        S2 c OK %*
        C1 e NOOP
        S1 e OK %*
        C1 f LOGIN bob secret-b
        S1 f OK %*
        {append_lines(2, "g", "Drafts", message("still not"))}
        S2 g OK %*
        C1 h NOOP
        S1 h OK %*
        """
    )
