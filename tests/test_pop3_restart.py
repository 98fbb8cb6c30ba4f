"""UIDL survives a real restart of ``asimapd`` (RFC 1939 section 7).

``test_pop3_mh`` shows the mechanism (the MH store keeps UIDVALIDITY and
UIDs in its database); this test shows the promise end to end: a POP3
client that recorded the unique-ids, a server process that stops and a new
one that starts on the same mail, and the same ids for the same messages.
"""

from __future__ import annotations

import imaplib
import poplib

from conftest import SAMPLE_MESSAGE, TlsFiles
from worker_harness import Asimapd, MailSetup, mail_setup

TIMEOUT = 15.0


def _start(setup: MailSetup, tls_files: TlsFiles) -> Asimapd:
    return Asimapd(
        setup, tls_files.cert, tls_files.key, "--enable-pop3", "--pop3-port=0"
    )


def _uidl(server: Asimapd) -> dict[bytes, bytes]:
    """Message number -> unique-id, from one POP3 session."""
    client = poplib.POP3_SSL(
        "127.0.0.1",
        server.ports["pop3s"],
        context=server.client_context(),
        timeout=TIMEOUT,
    )
    try:
        client.user("demo")
        client.pass_("demo")
        _, lines, _ = client.uidl()
        pairs = (line.split(b" ", 1) for line in lines)
        return {number: uid for number, uid in pairs}
    finally:
        client.quit()


def test_uidl_is_the_same_after_asimapd_restarts(tls_files: TlsFiles) -> None:
    with mail_setup() as setup:
        server = _start(setup, tls_files)
        try:
            imap = imaplib.IMAP4_SSL(
                "127.0.0.1",
                server.ports["imaps"],
                ssl_context=server.client_context(),
                timeout=TIMEOUT,
            )
            imap.login("demo", "demo")
            for n in range(3):
                body = SAMPLE_MESSAGE.replace(
                    b"Subject:", f"X-N: {n}\r\nSubject:".encode()
                )
                assert imap.append("INBOX", None, None, body)[0] == "OK"
            imap.logout()
            before = _uidl(server)
        finally:
            assert server.stop() == 0, server.log()
        assert len(before) == 3 and len(set(before.values())) == 3

        restarted = _start(setup, tls_files)
        try:
            after = _uidl(restarted)
        finally:
            assert restarted.stop() == 0, restarted.log()
        assert after == before
