"""SIGTERM while a command is running: the command finishes or is
cancelled cleanly, the client gets its tagged response or ``* BYE``, and
only then are the stores closed.  Closing a store under a session still
using it logged ``sqlite3.ProgrammingError: Cannot operate on a closed
database``.

The slow command is made slow on the server side, for as long as the
test wants, with a real lock: ``ENABLE_MH_FILE_LOCKING`` is on and the
test holds nmh's lock on ``inbox/.mh_sequences`` (as ``inc`` or ``mark``
would), so a STORE waits for it in the store's thread.  SIGTERM arrives;
the grace period passes; the server cancels the command and says ``*
BYE``; the test releases the lock once the server has said (in its log)
that it cancelled the command; the store's work then ends, the session
closes, and only then the store.  The log holds no traceback.  Both in
worker mode (the worker drains) and with ``--workers=off``; and for a
POP3 QUIT, whose UPDATE step waits for the same lock.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Iterator

import pytest

from conftest import TlsFiles
from worker_harness import IS_ROOT, UIDS, Asimapd, LineClient, MailSetup, mail_setup

#: Long enough for the grace period to pass and the cancellation to be
#: logged on a loaded machine; the test goes on after it either way.
WAIT_FOR_CANCEL_S = 20.0


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        inbox = made.roots["demo"] / "inbox"
        inbox.mkdir()
        for n in range(1, 4):
            (inbox / str(n)).write_bytes(b"Subject: m%d\r\n\r\nbody\r\n" % n)
        if IS_ROOT:
            for path in (inbox, *inbox.iterdir()):
                os.chown(path, UIDS["demo"], UIDS["demo"])
        yield made


@pytest.mark.parametrize("mode", ["workers", "single-process"])
def test_sigterm_during_a_blocked_command_says_bye_and_closes_stores_last(
    setup: MailSetup,
    tls_files: TlsFiles,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENABLE_MH_FILE_LOCKING", "1")
    args = ["--workers=off"] if mode == "single-process" else []
    server = Asimapd(setup, tls_files.cert, tls_files.key, *args)
    lock_fd: int | None = None
    try:
        client = LineClient(server.tls_socket(), timeout=60)
        assert client.line().startswith(b"* OK")
        assert client.command(b"a", b"LOGIN demo demo")[-1].startswith(b"a OK")
        assert b"* 3 EXISTS" in client.command(b"s", b"SELECT INBOX")
        sequences = setup.roots["demo"] / "inbox" / ".mh_sequences"
        lock_fd = os.open(sequences, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.lockf(lock_fd, fcntl.LOCK_EX)  # what nmh's datalocking takes
        client.send(b"t STORE 1 +FLAGS (\\Flagged)\r\n")
        time.sleep(0.3)  # the STORE waits for the lock
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + WAIT_FOR_CANCEL_S
        while "command(s) still running" not in server.log():
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        os.close(lock_fd)  # the store's work can end now
        lock_fd = None
        received = client.rest()
        client.close()
        assert server.process.wait(60) == 0, server.log()
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
        if server.process.poll() is None:
            server.kill()
    log = server.log()
    assert "Traceback" not in log and "ProgrammingError" not in log, log
    assert "still busy" not in log, log  # the session ended before the store
    assert received in (
        b"* BYE Server shutting down\r\n",
        # Answered in time after all (a very slow machine): OK, then BYE.
        b"t OK Store completed\r\n* BYE Server shutting down\r\n",
    ), received


def test_sigterm_during_a_blocked_pop3_quit_answers_err(
    setup: MailSetup, tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for POP3: QUIT's UPDATE step waits for the lock; cancelled
    at shutdown, it is answered ``-ERR [SYS/TEMP]`` (RFC 2449 section 8,
    RFC 3206) instead of the connection just closing."""
    monkeypatch.setenv("ENABLE_MH_FILE_LOCKING", "1")
    server = Asimapd(
        setup, tls_files.cert, tls_files.key, "--enable-pop3", "--pop3-port=0"
    )
    lock_fd: int | None = None
    try:
        client = LineClient(server.tls_socket("pop3s"), timeout=60)
        assert client.line().startswith(b"+OK")
        client.send(b"USER demo\r\nPASS demo\r\n")
        assert client.line().startswith(b"+OK") and client.line().startswith(b"+OK")
        client.send(b"DELE 1\r\n")
        assert client.line().startswith(b"+OK")
        sequences = setup.roots["demo"] / "inbox" / ".mh_sequences"
        lock_fd = os.open(sequences, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.lockf(lock_fd, fcntl.LOCK_EX)
        client.send(b"QUIT\r\n")
        time.sleep(0.3)  # the UPDATE step waits for the lock
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + WAIT_FOR_CANCEL_S
        while "command(s) still running" not in server.log():
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        os.close(lock_fd)
        lock_fd = None
        received = client.rest()
        client.close()
        assert server.process.wait(60) == 0, server.log()
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
        if server.process.poll() is None:
            server.kill()
    log = server.log()
    assert "Traceback" not in log and "ProgrammingError" not in log, log
    assert "still busy" not in log, log
    assert received == b"-ERR [SYS/TEMP] Server shutting down\r\n", (received, log)
