"""Admission of connections that have not logged in (asimap.net.admission).

The defect: with one global cap, connections that never log in -- each
sending a byte now and then, which restarted the idle timer -- could hold
every slot, and every new IMAP and POP3 client got ``BYE Too many
connections``.  These tests hold such connections open from other loopback
addresses (127.0.0.2 ...; the server sees each as its own client) and check
that the owner still logs in, that logged-in users keep being served, that
one address cannot take the whole budget, and that nobody stays more than
``login_timeout`` without logging in.
"""

from __future__ import annotations

import imaplib
import poplib
import socket
import ssl
import time

from asimap.net.admission import AdmissionLimits, RefusalLog, Verdict, admit
from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles

TIMEOUT = 15.0


# --- the decision, as a pure function ---


def test_accept_while_there_is_room() -> None:
    limits = AdmissionLimits(max_connections=10, max_prelogin=3)
    verdict = admit(limits, total=5, prelogin_peers=["a", "b"], peer="c")
    assert verdict is Verdict.ACCEPT


def test_full_budget_drops_the_oldest_waiting() -> None:
    limits = AdmissionLimits(max_connections=10, max_prelogin=3)
    verdict = admit(limits, total=3, prelogin_peers=["a", "b", "c"], peer="d")
    assert verdict is Verdict.ACCEPT_EVICTING_OLDEST
    # The global cap reached with some connections still waiting: the same.
    verdict = admit(limits, total=10, prelogin_peers=["a"], peer="d")
    assert verdict is Verdict.ACCEPT_EVICTING_OLDEST


def test_cap_full_of_logged_in_users_refuses() -> None:
    limits = AdmissionLimits(max_connections=10, max_prelogin=3)
    assert admit(limits, total=10, prelogin_peers=[], peer="d") is Verdict.REFUSE_FULL


def test_one_address_gets_its_share_only() -> None:
    limits = AdmissionLimits(
        max_connections=100, max_prelogin=50, max_prelogin_per_address=2
    )
    peers = ["a", "b", "a"]
    assert admit(limits, total=3, prelogin_peers=peers, peer="a") is (
        Verdict.REFUSE_ADDRESS
    )
    assert admit(limits, total=3, prelogin_peers=peers, peer="b") is Verdict.ACCEPT


# --- real sockets ---


def _plain(server: ServerThread, source: str) -> socket.socket:
    """A connection from ``source`` that reads its greeting and then just
    sits there, as the attack's did."""
    sock = socket.create_connection(
        ("127.0.0.1", server.imap_port), timeout=TIMEOUT, source_address=(source, 0)
    )
    assert sock.recv(4096).startswith(b"* OK")
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"still open after {TIMEOUT}s: {data!r}")


def _imaps(server: ServerThread, tls_files: TlsFiles) -> imaplib.IMAP4_SSL:
    return imaplib.IMAP4_SSL(
        "127.0.0.1",
        server.imaps_port,
        ssl_context=tls_files.client_context(),
        timeout=TIMEOUT,
    )


def test_idle_connections_never_lock_out_users(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    server = server_factory(
        max_connections=12, max_prelogin_connections=8, max_prelogin_per_address=4
    )
    logged_in = _imaps(server, tls_files)
    logged_in.login(USER, PASSWORD)
    logged_in.select("INBOX")
    # Four attacking addresses, four connections each: twice the budget.
    attackers = [_plain(server, f"127.0.0.{2 + i // 4}") for i in range(16)]
    # One address cannot take more than its share.
    extra = socket.create_connection(
        ("127.0.0.1", server.imap_port),
        timeout=TIMEOUT,
        source_address=("127.0.0.5", 0),
    )
    assert (
        _read_until_closed(extra) == b"* BYE Too many connections from your address\r\n"
    )
    extra.close()
    # The owner, from another address, logs in at once...
    owner = _imaps(server, tls_files)
    assert owner.login(USER, PASSWORD)[0] == "OK"
    assert owner.select("INBOX")[0] == "OK"
    owner.logout()
    # ... and the user logged in before the attack is still served.
    assert logged_in.noop()[0] == "OK"
    logged_in.logout()
    # The oldest attackers were dropped with a reason; the newest remain.
    dropped = 0
    for sock in attackers:
        sock.settimeout(0.2)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        finally:
            sock.close()
        assert data in (b"", b"* BYE Too many connections waiting to log in\r\n")
        dropped += 1
    assert dropped >= 16 - 8


def test_login_deadline_is_absolute(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    """A byte every 0.2 s kept a connection forever (the idle timer
    restarts on every byte); now it has ``login_timeout`` to log in."""
    server = server_factory(login_timeout=1.0)
    sock = _plain(server, "127.0.0.2")
    tls = _imaps(server, tls_files)
    tls.login(USER, PASSWORD)
    started = time.monotonic()
    received = b""
    tag = 0
    while time.monotonic() - started < TIMEOUT:
        tag += 1
        try:
            sock.sendall(b"n%d NOOP\r\n" % tag)
        except (BrokenPipeError, ConnectionResetError):
            break
        sock.settimeout(0.2)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:  # our NOOP after the server closed
            break
        if not chunk:
            break
        received += chunk
    sock.close()
    assert received.endswith(b"* BYE Login timeout\r\n"), received[-200:]
    # The logged-in connection, as old, is not touched.
    time.sleep(max(0.0, 1.5 - (time.monotonic() - started)))
    assert tls.noop()[0] == "OK"
    tls.logout()


def test_pop3_is_admitted_by_the_same_rules(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    server = server_factory(
        enable_pop3=True, pop3_port=0, max_prelogin_per_address=2, login_timeout=1.0
    )
    port = server.ports["pop3s"]
    context = tls_files.client_context()

    def pop3(source: str) -> ssl.SSLSocket:
        raw = socket.create_connection(
            ("127.0.0.1", port), timeout=TIMEOUT, source_address=(source, 0)
        )
        return context.wrap_socket(raw, server_hostname="localhost")

    first, second = pop3("127.0.0.2"), pop3("127.0.0.2")
    assert first.recv(4096).startswith(b"+OK")
    assert second.recv(4096).startswith(b"+OK")
    third = pop3("127.0.0.2")
    assert _read_until_closed(third) == (
        b"-ERR [SYS/TEMP] Too many connections from your address\r\n"
    )
    # Another address logs in; the two waiting ones time out.
    client = poplib.POP3_SSL(
        "127.0.0.1", port, context=tls_files.client_context(), timeout=TIMEOUT
    )
    client.user(USER)
    client.pass_(PASSWORD)
    assert _read_until_closed(first) == b"-ERR [SYS/TEMP] Login timeout\r\n"
    assert _read_until_closed(second) == b"-ERR [SYS/TEMP] Login timeout\r\n"
    assert client.stat()[0] >= 0
    client.quit()


def test_refusals_are_logged_once_a_minute_per_address_and_kind() -> None:
    now = [0.0]
    refusals = RefusalLog(interval=60.0, max_keys=2, clock=lambda: now[0])
    assert refusals.should_log("a", "address") == 0
    assert [refusals.should_log("a", "address") for _ in range(5)] == [None] * 5
    assert refusals.should_log("a", "full") == 0  # another kind
    now[0] = 61.0
    assert refusals.should_log("a", "address") == 5  # the five left out
    # Bounded: a third key pushes the oldest out, which then starts afresh.
    assert refusals.should_log("b", "address") == 0
    assert refusals.should_log("c", "address") == 0
    assert refusals.should_log("a", "full") == 0
