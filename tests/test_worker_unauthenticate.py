"""UNAUTHENTICATE (RFC 8437) in worker mode: the connection goes home.

A worker runs with one user's privileges and can authenticate nobody, so
after its tagged OK to UNAUTHENTICATE the connection returns to the main
process -- a relayed TLS connection by reclaiming the relay, a plain one
by the main process reading its own descriptor again -- together with
whatever the client pipelined.  The next LOGIN is then handed to the new
user's worker.  Under COMPRESS the DEFLATE state cannot leave the worker,
so UNAUTHENTICATE is neither offered nor accepted there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import TlsFiles
from deflate_client import LineClient
from worker_harness import Asimapd, MailSetup, mail_setup

PASSWORDS = {"demo": "demo", "other": "other-secret"}


@pytest.fixture
def daemon(tls_files: TlsFiles) -> Iterator[Asimapd]:
    setup: MailSetup
    with mail_setup() as setup:
        server = Asimapd(setup, tls_files.cert, tls_files.key, plaintext_login=True)
        try:
            yield server
        finally:
            assert server.stop() == 0, server.log()


def _connect(daemon: Asimapd, tls: bool) -> LineClient:
    if tls:
        client = LineClient(daemon.tls_socket())
    else:
        client = LineClient.connect(daemon.ports["imap"])
    assert client.read_line().startswith(b"* OK")
    return client


def _login(client: LineClient, user: str, tag: str = "a") -> bytes:
    reply = client.command(tag, f"LOGIN {user} {PASSWORDS[user]}")[-1]
    assert reply.startswith(f"{tag} OK [CAPABILITY ".encode()), reply
    return reply


def _append(client: LineClient, tag: str, subject: str) -> None:
    message = f"Subject: {subject}\r\n\r\nbody\r\n".encode()
    client.line(f"{tag} APPEND INBOX {{{len(message)}+}}")
    client.send(message + b"\r\n")
    assert client.until_tagged(tag)[-1].startswith(f"{tag} OK".encode())


def _subjects(client: LineClient, tag: str) -> list[bytes]:
    assert client.command(tag + "s", "SELECT INBOX")[-1].startswith(
        f"{tag}s OK".encode()
    )
    lines = client.command(tag, "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert lines[-1].startswith(f"{tag} OK".encode()), lines
    return [
        line.split(b"Subject: ")[1].split(b"\r\n")[0]
        for line in lines
        if b"Subject: " in line
    ]


@pytest.mark.parametrize("tls", [True, False], ids=["tls-relay", "plain-handoff"])
def test_unauthenticate_then_login_as_another_user(daemon: Asimapd, tls: bool) -> None:
    seed = _connect(daemon, tls)
    _login(seed, "other")
    _append(seed, "p", "for other")
    seed.close()

    client = _connect(daemon, tls)
    reply = _login(client, "demo")
    assert b" UNAUTHENTICATE" in reply
    _append(client, "q", "for demo")
    assert _subjects(client, "f") == [b"for demo"]
    demo_worker = daemon.wait_for_worker("demo")
    # A second connection of demo's, served by the same worker throughout.
    sibling = _connect(daemon, tls)
    _login(sibling, "demo")

    client.line("u UNAUTHENTICATE")
    assert client.until_tagged("u") == [b"u OK Not authenticated now"]
    # Served by the main process now: the pre-login capabilities.
    caps = client.command("c", "CAPABILITY")
    assert b"AUTH=PLAIN" in caps[0] and b"UNAUTHENTICATE" not in caps[0]
    assert client.command("x", "SELECT INBOX")[-1].startswith(b"x BAD")
    # SASL PLAIN (RFC 4616) with an initial response, as other.
    reply = client.command("b", "AUTHENTICATE PLAIN AG90aGVyAG90aGVyLXNlY3JldA==")[-1]
    assert reply.startswith(b"b OK [CAPABILITY "), reply
    assert _subjects(client, "g") == [b"for other"]
    assert daemon.workers()["demo"] == demo_worker
    assert "other" in daemon.workers()
    # demo's worker still serves the sibling connection.
    assert _subjects(sibling, "h") == [b"for demo"]
    assert client.command("l", "LOGOUT")[-1].startswith(b"l OK")
    sibling.close()


@pytest.mark.parametrize("tls", [True, False], ids=["tls-relay", "plain-handoff"])
def test_commands_pipelined_behind_unauthenticate_are_kept(
    daemon: Asimapd, tls: bool
) -> None:
    client = _connect(daemon, tls)
    _login(client, "demo")
    _append(client, "q", "demo again")
    # One write: the worker reads all of it, answers UNAUTHENTICATE and
    # gives the rest back; the main process runs the LOGIN and hands the
    # connection (and the SELECT) to other's worker.
    client.line(
        "u UNAUTHENTICATE\r\nb LOGIN other other-secret\r\nc SELECT INBOX\r\n"
        "d UNAUTHENTICATE\r\ne LOGIN demo demo\r\nf STATUS INBOX (MESSAGES)"
    )
    assert client.until_tagged("u") == [b"u OK Not authenticated now"]
    assert client.until_tagged("b")[-1].startswith(b"b OK [CAPABILITY ")
    select = client.until_tagged("c")
    assert select[-1].startswith(b"c OK") and b"* 0 EXISTS" in select
    assert client.until_tagged("d") == [b"d OK Not authenticated now"]
    assert client.until_tagged("e")[-1].startswith(b"e OK")
    assert client.until_tagged("f")[0] == b'* STATUS "INBOX" (MESSAGES 1)'
    client.close()


def test_no_unauthenticate_under_compress_in_a_worker(daemon: Asimapd) -> None:
    client = _connect(daemon, True)
    _login(client, "demo")
    assert client.compress() == b"z OK DEFLATE active"
    caps = client.command("c", "CAPABILITY")
    assert b" COMPRESS=DEFLATE" in caps[0] and b"UNAUTHENTICATE" not in caps[0]
    reply = client.command("u", "UNAUTHENTICATE")
    assert reply == [
        b"u NO [CANNOT] UNAUTHENTICATE is not available once COMPRESS is active"
    ]
    assert client.command("n", "NOOP")[-1].startswith(b"n OK")
    client.close()


def test_client_leaving_right_after_unauthenticate(daemon: Asimapd) -> None:
    """The connection comes back and ends cleanly; the server goes on."""
    for tls in (True, False):
        client = _connect(daemon, tls)
        _login(client, "demo")
        client.line("u UNAUTHENTICATE")
        client.close()
    again = _connect(daemon, True)
    _login(again, "demo")
    again.close()
