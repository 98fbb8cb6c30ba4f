"""QUOTA and REPLACE over real sockets, through a real ``asimapd``.

The limits are given as command-line flags, so this also shows them
travelling from the main process through the zygote into the user's worker
process and its MH store (design.md section 2: flags, environment, ``.env``).
imaplib, a real client, appends until the server says ``NO [OVERQUOTA]``;
the refusal of a synchronizing literal comes *before* the upload, which
only a socket can show.
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterator

import pytest

from conftest import TlsFiles
from worker_harness import PASSWORDS, Asimapd, LineClient, MailSetup, mail_setup

#: Messages of exactly 1000 octets.
BODY = b"Subject: quota filler\r\n\r\n" + b"x" * 973 + b"\r\n"


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


@pytest.fixture
def server(setup: MailSetup, tls_files: TlsFiles) -> Iterator[Asimapd]:
    daemon = Asimapd(
        setup,
        tls_files.cert,
        tls_files.key,
        "--quota-storage=4K",
        "--quota-messages=10",
    )
    try:
        yield daemon
    finally:
        assert daemon.stop() == 0, daemon.log()


def _imaplib(server: Asimapd) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(
        "127.0.0.1",
        server.ports["imaps"],
        ssl_context=server.client_context(),
        timeout=10,
    )
    assert client.login("demo", PASSWORDS["demo"])[0] == "OK"
    return client


def test_imaplib_appends_until_overquota(server: Asimapd, setup: MailSetup) -> None:
    assert len(BODY) == 1000
    client = _imaplib(server)
    typ, data = client.capability()  # imaplib keeps the pre-login list
    assert typ == "OK"
    advertised = set(data[0].split())
    assert {b"QUOTA", b"QUOTA=RES-STORAGE", b"QUOTA=RES-MESSAGE"} <= advertised
    assert b"REPLACE" in advertised
    accepted = 0
    while True:
        try:
            typ, data = client.append("INBOX", None, None, BODY)
        except imaplib.IMAP4.error as exc:
            # imaplib raises on a NO to the literal's continuation.
            assert "[OVERQUOTA]" in str(exc), exc
            break
        if typ != "OK":
            assert b"[OVERQUOTA]" in data[0], data
            break
        accepted += 1
        assert accepted < 10, "the quota never stopped the appends"
    assert accepted == 4  # 4 x 1000 octets <= 4096 < 5 x 1000
    typ, data = client.getquotaroot("INBOX")
    assert typ == "OK"
    roots, quotas = data
    assert roots == [b'"INBOX" ""']
    assert quotas == [b'"" (STORAGE 4 4 MESSAGE 4 10)']
    # The refused message never reached the MH folder.
    inbox = setup.roots["demo"] / "inbox"
    assert sorted(p.name for p in inbox.iterdir() if p.name.isdigit()) == [
        "1",
        "2",
        "3",
        "4",
    ]
    assert client.logout()[0] == "BYE"


def test_synchronizing_literal_is_refused_before_upload(server: Asimapd) -> None:
    client = LineClient(server.tls_socket())
    assert client.line().startswith(b"* OK")
    reply = client.command(b"a", f"LOGIN demo {PASSWORDS['demo']}".encode())
    assert reply[-1].startswith(b"a OK")
    # 5000 octets can never fit in 4 KiB: NO at once, no "+" to send them.
    client.send(b"b APPEND INBOX {5000}\r\n")
    assert client.line() == b"b NO [OVERQUOTA] Over quota"
    # The connection goes on; a REPLACE that fits works over the wire.
    client.send(b"c APPEND Drafts {" + str(len(BODY)).encode() + b"+}\r\n" + BODY)
    client.send(b"\r\n")
    assert re.fullmatch(rb"c OK \[APPENDUID \d+ 1\] Append completed", client.line())
    assert client.command(b"d", b"SELECT Drafts")[-1].startswith(b"d OK")
    small = b"Subject: v2\r\n\r\nshort\r\n"
    client.send(b"e REPLACE 1 Drafts {" + str(len(small)).encode() + b"}\r\n")
    assert client.line().startswith(b"+ ")
    client.send(small + b"\r\n")
    lines = client.until_tagged(b"e")
    assert re.fullmatch(rb"\* OK \[APPENDUID \d+ 2\] .*", lines[0]), lines
    assert b"* 1 EXPUNGE" in lines
    assert lines[-1] == b"e OK Replace completed"
    reply = client.command(b"f", b'GETQUOTA ""')
    assert reply == [
        b'* QUOTA "" (STORAGE 1 4 MESSAGE 1 10)',
        b"f OK Getquota completed",
    ]
    client.command(b"z", b"LOGOUT")
