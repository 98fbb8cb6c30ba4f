"""Abuse at scale: floods of connections and guesses while a user works.

The admission rules (asimap.net.admission) and the login penalty
(asimap.auth.throttle) have their own unit and socket tests; this one puts
them under the load an attacker brings, all at once, with the limits as
shipped: a thousand silent pre-login connections from fifty addresses
(slowloris), two thousand connection attempts from one address, and a
storm of wrong passwords from another -- while a user who logged in before
keeps working and the owner logs in afresh.  The limits it relies on are
listed in docs/reliability.md ("Abuse").
"""

from __future__ import annotations

import imaplib
import socket
import threading
import time
from collections import Counter

import pytest

from asimap.auth.throttle import LoginPenalty
from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles

TIMEOUT = 30.0
SLOW_ADDRESSES = 50
PER_ADDRESS = 20  # the default --max-prelogin-per-address
FLOOD = 2000


def _connect(server: ServerThread, source: str) -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", server.imap_port), timeout=TIMEOUT, source_address=(source, 0)
    )


def _first_line(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def _imaps(server: ServerThread, tls_files: TlsFiles) -> imaplib.IMAP4_SSL:
    return imaplib.IMAP4_SSL(
        "127.0.0.1",
        server.imaps_port,
        ssl_context=tls_files.client_context(),
        timeout=TIMEOUT,
    )


@pytest.mark.timeout(300)
def test_floods_and_guessing_leave_users_served(
    server_factory: ServerFactory,
    tls_files: TlsFiles,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="asimap.auth.authenticator")
    caplog.set_level("INFO", logger="asimap.imap.server")
    # The shipped limits, but wrong-password pauses and penalties short
    # enough for a test (their growth is tested in tests/test_auth_*.py).
    server = server_factory(
        auth_options={"failure_delay": 0.0, "penalty": LoginPenalty(max_delay=0.05)}
    )
    worker = _imaps(server, tls_files)
    worker.login(USER, PASSWORD)
    assert worker.select("INBOX")[0] == "OK"

    # Slowloris: twenty silent connections from each of fifty addresses,
    # each sending a byte now and then.
    slow: list[socket.socket] = []
    for i in range(SLOW_ADDRESSES * PER_ADDRESS):
        sock = _connect(server, f"127.0.2.{1 + i // PER_ADDRESS}")
        sock.sendall(b"a")
        slow.append(sock)

    # A flood from one address: only its share gets a greeting.
    answers: Counter[bytes] = Counter()
    flood: list[socket.socket] = []
    for _ in range(FLOOD):
        sock = _connect(server, "127.0.3.1")
        line = _first_line(sock)
        answers[line if line.startswith(b"* BYE") else line[:4]] += 1
        flood.append(sock)
    refused = b"* BYE Too many connections from your address"
    assert answers[refused] == FLOOD - PER_ADDRESS, answers
    assert answers[b"* OK"] == PER_ADDRESS, answers

    # A storm of wrong passwords from yet another address, meanwhile.
    stop = threading.Event()
    guesses = 0

    # (Over implicit TLS: the plain port wants STARTTLS before LOGIN.)
    def guess_tls() -> None:
        nonlocal guesses
        raw = socket.create_connection(
            ("127.0.0.1", server.imaps_port),
            timeout=TIMEOUT,
            source_address=("127.0.4.1", 0),
        )
        tls = tls_files.client_context().wrap_socket(raw, server_hostname="localhost")
        _first_line(tls)
        while not stop.is_set():
            tls.sendall(b"g LOGIN %s wrong\r\n" % USER.encode())
            line = _first_line(tls)
            assert line.startswith(b"g NO "), line
            guesses += 1
        tls.close()

    guesser = threading.Thread(target=guess_tls)
    guesser.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while guesses < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        # The owner logs in afresh, from an address of its own, and works.
        owner = _imaps(server, tls_files)
        assert owner.login(USER, PASSWORD)[0] == "OK"
        assert owner.select("INBOX")[0] == "OK"
        assert owner.uid("FETCH", "1:*", "(FLAGS)")[0] == "OK"
        owner.logout()
        # The user logged in before it all is still served.
        assert worker.noop()[0] == "OK"
        assert worker.uid("FETCH", "1:*", "(UID)")[0] == "OK"
    finally:
        stop.set()
        guesser.join(TIMEOUT)
    worker.logout()
    assert guesses >= 5
    # Nobody but the guessing address was made to wait.
    delayed = [r.getMessage() for r in caplog.records if "delayed" in r.getMessage()]
    assert delayed, "the guessing address was never penalised"
    assert all("from 127.0.4.1 delayed" in m for m in delayed), delayed

    # The flood did not flood the log: one line per address and kind.
    refusals = [
        r.getMessage()
        for r in caplog.records
        if r.name == "asimap.imap.server" and "refused" in r.getMessage()
    ]
    assert len(refusals) == 1, refusals[:3]
    dropped_lines = [
        r.getMessage()
        for r in caplog.records
        if "dropped to make room" in r.getMessage()
    ]
    assert 0 < len(dropped_lines) <= SLOW_ADDRESSES, len(dropped_lines)

    # The server never held more than its limit, and the oldest slow
    # connections were dropped to make room for the newer ones.
    count = server.call(lambda: _count(server))
    assert count <= 1000
    dropped = 0
    for sock in slow:
        sock.settimeout(0.05)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            data = None
        if data is not None and b"Too many connections waiting to log in" in data:
            dropped += 1
    assert dropped > 0
    for sock in slow + flood:
        sock.close()


async def _count(server: ServerThread) -> int:
    return int(server.server.connection_count)
