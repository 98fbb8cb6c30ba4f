"""LITERAL- (RFC 7888 section 5), the ``--literal-minus`` setting.

With the setting, the server advertises LITERAL- and never LITERAL+
(section 5: "MUST NOT advertise both"), accepts non-synchronizing
literals up to 4096 octets, and refuses larger ones as section 4
describes: tagged BAD with TOOBIG (required for APPEND), the literal's
bytes read and dropped, the connection kept.  Synchronizing literals are
unaffected.  Worker mode is covered in ``test_worker_conn``.
"""

from __future__ import annotations

import imaplib

from asimap.imap.limits import Limits
from conftest import PASSWORD, USER, ServerFactory, TlsFiles
from deflate_client import LineClient
from transcript import World, run_transcript

MINUS = Limits(literal_minus=True)


def _world() -> World:
    return World(limits=MINUS)


async def test_capability_lists_literal_minus_only() -> None:
    await run_transcript(
        """
        C1 a CAPABILITY
        S1 * CAPABILITY IMAP4rev1 %? LITERAL- SASL-IR %*
        S1 a OK %*
        C1 b LOGIN alice secret-a
        S1 b OK [CAPABILITY IMAP4rev1 %? LITERAL- SASL-IR %*] Logged in
        """,
        _world(),
    )


async def test_default_is_literal_plus() -> None:
    await run_transcript(
        """
        C1 a CAPABILITY
        S1 * CAPABILITY IMAP4rev1 %? LITERAL+ SASL-IR %*
        S1 a OK %*
        """
    )


async def test_rfc7888_login_example_is_accepted() -> None:
    # RFC 7888 section 3's example: small non-synchronizing literals.
    await run_transcript(
        """
        C1 A001 LOGIN {5+}
        C1 alice {8+}
        C1 secret-a
        S1 A001 OK %*
        """,
        _world(),
    )


async def test_large_nonsync_literal_is_refused_and_dropped() -> None:
    big = "x" * 4097
    await run_transcript(
        f"""
        C1 a LOGIN alice secret-a
        S1 a OK %*
        C1 c SELECT INBOX
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 c OK %*
        # 4096 octets is still fine.
        C1 b SEARCH SUBJECT {{4096+}}
        C1 {big[:4094]}
        C1
        S1 * SEARCH
        S1 b OK %*
        C1 d SEARCH SUBJECT {{4097+}}
        C1 {big}
        S1 d BAD [TOOBIG] non-synchronizing literal too big
        C1 e NOOP
        S1 e OK %*
        """,
        _world(),
    )


async def test_append_over_4096_gets_toobig_and_sync_literal_works() -> None:
    await run_transcript(
        """
        C1 a LOGIN alice secret-a
        S1 a OK %*
        C1 b APPEND INBOX {5000+}
        """
        + "C1 "
        + "z" * 4998
        + """
        C1
        S1 b BAD [TOOBIG] non-synchronizing literal too big
        C1 c APPEND INBOX {5000}
        S1 + Ready for literal
        """
        + "C1 "
        + "z" * 4998
        + """
        C1
        S1 c OK [APPENDUID %*] %*
        """,
        _world(),
    )


def test_literal_minus_over_a_real_socket(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    server = server_factory(literal_minus=True)
    client = LineClient.connect(server.imaps_port, tls_files.client_context())
    greeting = client.read_line()
    assert b" LITERAL- " in greeting and b"LITERAL+" not in greeting
    assert client.command("a", f"LOGIN {USER} {PASSWORD}")[-1].startswith(b"a OK")
    message = b"Subject: s\r\n\r\n" + b"m" * 6000 + b"\r\n"
    client.line(f"b APPEND INBOX {{{len(message)}+}}")
    client.send(message + b"\r\n")
    assert client.read_line() == b"b BAD [TOOBIG] non-synchronizing literal too big"
    assert client.command("c", "NOOP")[-1].startswith(b"c OK")
    client.close()
    # imaplib uses synchronizing literals: unaffected.
    imap = imaplib.IMAP4_SSL(
        "127.0.0.1", server.imaps_port, ssl_context=tls_files.client_context()
    )
    imap.login(USER, PASSWORD)
    assert imap.append("INBOX", None, None, message)[0] == "OK"
    imap.logout()
