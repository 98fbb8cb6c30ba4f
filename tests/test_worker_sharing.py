"""Worker mode as a user sees it: one worker per user, shared, lingering.

Real ``asimapd`` processes on loopback (see ``worker_harness``): the
workers are found through ``/proc`` by the names they give themselves.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator

import pytest

from conftest import SAMPLE_MESSAGE, TlsFiles
from worker_harness import PASSWORDS, Asimapd, LineClient, MailSetup, mail_setup


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


@pytest.fixture
def server(setup: MailSetup, tls_files: TlsFiles) -> Iterator[Asimapd]:
    daemon = Asimapd(
        setup, tls_files.cert, tls_files.key, "--enable-pop3", "--pop3-port=0"
    )
    try:
        yield daemon
    finally:
        assert daemon.stop() == 0, daemon.log()


def login(server: Asimapd, user: str = "demo", port: str = "imaps") -> LineClient:
    client = LineClient(server.tls_socket(port))
    assert client.line().startswith(b"* OK")
    reply = client.command(b"a", f"LOGIN {user} {PASSWORDS[user]}".encode())
    assert reply[-1].startswith(b"a OK [CAPABILITY "), reply
    return client


def test_one_user_shares_a_worker_another_user_gets_another(server: Asimapd) -> None:
    first = login(server)
    demo = server.wait_for_worker("demo")
    second = login(server)
    assert server.workers() == {"demo": demo}
    third = login(server, "other")
    other = server.wait_for_worker("other")
    assert other != demo
    assert server.workers() == {"demo": demo, "other": other}
    for client in (first, second, third):
        assert client.command(b"n", b"NOOP")[-1] == b"n OK NOOP completed"
        client.close()


def test_changes_reach_the_users_other_connection_and_wake_idle(
    server: Asimapd,
) -> None:
    watcher = login(server)
    assert watcher.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    watcher.send(b"i IDLE\r\n")
    assert watcher.line().startswith(b"+ ")
    writer = login(server)
    size = len(SAMPLE_MESSAGE)
    writer.send(b"w APPEND INBOX {%d+}\r\n" % size + SAMPLE_MESSAGE + b"\r\n")
    assert writer.until_tagged(b"w")[-1].startswith(b"w OK [APPENDUID ")
    # IDLE wakes without the watcher doing anything (RFC 2177).
    assert watcher.line() == b"* 1 EXISTS"
    watcher.send(b"DONE\r\n")
    assert watcher.until_tagged(b"i")[-1].startswith(b"i OK")
    assert writer.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    assert writer.command(b"d", b"STORE 1 +FLAGS (\\Deleted)")[-1].startswith(b"d OK")
    fetch, done = watcher.command(b"n", b"NOOP")
    assert fetch.startswith(b"* 1 FETCH (FLAGS (\\Deleted")
    assert done == b"n OK NOOP completed"
    assert writer.command(b"e", b"EXPUNGE")[-1].startswith(b"e OK")
    assert watcher.command(b"m", b"NOOP") == [b"* 1 EXPUNGE", b"m OK NOOP completed"]


def test_commands_pipelined_after_login_run_in_the_worker(server: Asimapd) -> None:
    client = LineClient(server.tls_socket())
    assert client.line().startswith(b"* OK")
    # One packet: LOGIN and two more commands behind it.
    client.send(b"a LOGIN demo demo\r\nb SELECT INBOX\r\nc NOOP\r\n")
    assert client.until_tagged(b"a")[-1].startswith(b"a OK [CAPABILITY ")
    assert client.until_tagged(b"b")[-1].startswith(b"b OK [READ-WRITE]")
    assert client.until_tagged(b"c") == [b"c OK NOOP completed"]


def test_sasl_login_with_pipelined_command(server: Asimapd) -> None:
    client = LineClient(server.tls_socket())
    assert client.line().startswith(b"* OK")
    plain = base64.b64encode(b"\0demo\0demo")
    client.send(b"a AUTHENTICATE PLAIN " + plain + b'\r\nb LIST "" INBOX\r\n')
    assert client.until_tagged(b"a")[-1].startswith(b"a OK [CAPABILITY ")
    assert client.until_tagged(b"b")[-1].startswith(b"b OK")


def test_pop3_and_imap_of_one_user_share_the_worker(server: Asimapd) -> None:
    imap = login(server)
    messages = [SAMPLE_MESSAGE.replace(b"client test", b"pop3 %d" % n) for n in (0, 1)]
    for n, message in enumerate(messages):
        imap.send(b"w%d APPEND INBOX {%d+}\r\n" % (n, len(message)) + message + b"\r\n")
        assert imap.until_tagged(b"w%d" % n)[-1].startswith(b"w%d OK" % n)
    assert imap.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    worker = server.wait_for_worker("demo")
    pop3 = LineClient(server.tls_socket("pop3s"))
    assert pop3.line().startswith(b"+OK")
    pop3.send(b"USER demo\r\nPASS demo\r\n")
    assert pop3.line().startswith(b"+OK")
    size = sum(map(len, messages))
    assert pop3.line() == b"+OK Logged in, 2 messages (%d octets)" % size
    assert server.workers() == {"demo": worker}
    pop3.send(b"DELE 1\r\nQUIT\r\n")
    assert pop3.line().startswith(b"+OK")
    assert pop3.line().startswith(b"+OK")
    assert imap.command(b"n", b"NOOP") == [b"* 1 EXPUNGE", b"n OK NOOP completed"]


def test_plain_connection_is_passed_to_the_worker_with_pipelined_input(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    """The client's own socket goes to the worker (no relay); production
    never allows LOGIN without TLS, so a test launcher turns that on."""
    daemon = Asimapd(setup, tls_files.cert, tls_files.key, plaintext_login=True)
    try:
        raw = socket.create_connection(("127.0.0.1", daemon.ports["imap"]), 10)
        client = LineClient(raw)
        assert client.line().startswith(b"* OK")
        client.send(b"a LOGIN demo demo\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
        assert client.until_tagged(b"a")[-1].startswith(b"a OK [CAPABILITY ")
        assert client.until_tagged(b"b")[-1].startswith(b"b OK")
        assert client.until_tagged(b"c") == [
            b"* BYE Logging out",
            b"c OK Logout completed",
        ]
        # The worker closed the connection and the main process let go of
        # its own descriptor: the client sees the end.
        assert client.rest() == b""
    finally:
        assert daemon.stop() == 0, daemon.log()


def test_worker_lingers_then_exits_and_the_next_login_starts_another(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    daemon = Asimapd(setup, tls_files.cert, tls_files.key, "--worker-linger=1")
    try:
        client = login(daemon)
        first = daemon.wait_for_worker("demo")
        client.command(b"z", b"LOGOUT")
        client.close()
        time.sleep(0.5)
        assert daemon.workers() == {"demo": first}  # still lingering
        deadline = time.monotonic() + 10
        while daemon.workers():
            assert time.monotonic() < deadline, "worker did not exit"
            time.sleep(0.05)
        again = login(daemon)
        assert daemon.wait_for_worker("demo") != first
        again.close()
    finally:
        assert daemon.stop() == 0, daemon.log()


def test_max_workers_refuses_a_new_user_for_now(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    daemon = Asimapd(setup, tls_files.cert, tls_files.key, "--max-workers=1")
    try:
        first = login(daemon)
        client = LineClient(daemon.tls_socket())
        assert client.line().startswith(b"* OK")
        reply = client.command(b"a", b"LOGIN other other-secret")
        assert reply == [
            b"a NO [UNAVAILABLE] Too many users logged in; try again later"
        ]
        # The refused connection is still usable, and the user with a
        # worker still gets in.
        assert client.command(b"n", b"NOOP") == [b"n OK NOOP completed"]
        login(daemon).close()
        first.close()
    finally:
        assert daemon.stop() == 0, daemon.log()
