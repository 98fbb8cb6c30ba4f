"""POP3 against the real stack with Python's ``poplib`` and raw sockets.

Real sockets and TLS on loopback, the real authenticator and the memory
store shared with IMAP clients of the same user: deletions at QUIT reach a
selected IMAP client as ``* n EXPUNGE``, a dropped POP3 connection deletes
nothing, and an IMAP expunge during a POP3 session only makes RETR fail.
"""

from __future__ import annotations

import contextlib
import imaplib
import poplib
import socket
import time

import pytest

from asimap.pop3.transfer import normalise
from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles

TIMEOUT = 15.0


def make_message(n: int, body: bytes = b"") -> bytes:
    return (
        f"From: a@example.org\r\nSubject: pop3 test {n}\r\n"
        f"Message-ID: <pop3-{n}@example.org>\r\n\r\n".encode()
        + (body or f"body {n}\r\n".encode())
    )


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerThread:
    return server_factory(enable_pop3=True, pop3_port=0, pop3_stls_port=0)


def imap_login(server: ServerThread, tls_files: TlsFiles) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(
        server.host,
        server.imaps_port,
        ssl_context=tls_files.client_context(),
        timeout=TIMEOUT,
    )
    client.login(USER, PASSWORD)
    return client


def append_messages(
    server: ServerThread, tls_files: TlsFiles, *messages: bytes
) -> None:
    client = imap_login(server, tls_files)
    for raw in messages:
        typ, data = client.append("INBOX", "", None, raw)
        assert typ == "OK", data
    client.logout()


def _pop3s(server: ServerThread, tls_files: TlsFiles) -> poplib.POP3_SSL:
    return poplib.POP3_SSL(
        server.host,
        server.ports["pop3s"],
        context=tls_files.client_context(),
        timeout=TIMEOUT,
    )


def _logged_in(server: ServerThread, tls_files: TlsFiles) -> poplib.POP3_SSL:
    client = _pop3s(server, tls_files)
    client.user(USER)
    client.pass_(PASSWORD)
    return client


def _wait_for_connections(server: ServerThread, count: int) -> None:
    """Wait until the server has noticed closed connections."""
    deadline = time.monotonic() + TIMEOUT
    while server.server.connection_count != count:
        assert time.monotonic() < deadline, "connections did not close"
        time.sleep(0.02)


def test_pop3s_session_stat_list_uidl_retr_top_dele_quit(
    server: ServerThread, tls_files: TlsFiles
) -> None:
    messages = [make_message(n) for n in range(1, 4)]
    append_messages(server, tls_files, *messages)
    client = _pop3s(server, tls_files)
    assert client.getwelcome() == b"+OK asimap POP3 ready"
    caps = client.capa()
    assert "USER" in caps and caps["SASL"] == ["PLAIN", "LOGIN"] and "STLS" not in caps
    client.user(USER)
    client.pass_(PASSWORD)
    total = sum(len(m) for m in messages)
    assert client.stat() == (3, total)
    _resp, listing, _octets = client.list()
    assert listing == [f"{n} {len(m)}".encode() for n, m in enumerate(messages, 1)]
    _resp, uidl, _octets = client.uidl()
    assert len({line.split()[1] for line in uidl}) == 3
    _resp, lines, octets = client.retr(2)
    assert b"\r\n".join(lines) + b"\r\n" == messages[1]
    assert octets == len(messages[1])  # poplib counts un-stuffed octets, like LIST
    _resp, top, _octets = client.top(3, 0)
    assert top[-1] == b"" and top[1] == b"Subject: pop3 test 3"
    assert client.dele(1).startswith(b"+OK")
    with pytest.raises(poplib.error_proto, match="already deleted"):
        client.retr(1)
    assert client.stat() == (2, total - len(messages[0]))
    assert client.quit().startswith(b"+OK")
    imap = imap_login(server, tls_files)
    imap.select("INBOX")
    _typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    text = b"".join(
        part[0] + part[1] if isinstance(part, tuple) else part for part in data
    )
    assert b"pop3 test 1" not in text
    assert text.count(b"\\Seen") == 1  # RETR 2 marked it seen
    imap.logout()


def test_plain_port_requires_stls_before_credentials(
    server: ServerThread, tls_files: TlsFiles
) -> None:
    client = poplib.POP3(server.host, server.ports["pop3"], timeout=TIMEOUT)
    caps = client.capa()
    assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Plaintext"):
        client.user(USER)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Plaintext"):
        client.pass_(PASSWORD)
    assert server.authenticator is not None and server.authenticator.attempts == []
    client.stls(tls_files.client_context())
    caps = client.capa()
    assert "STLS" not in caps and "USER" in caps
    client.user(USER)
    assert client.pass_(PASSWORD).startswith(b"+OK Logged in")
    assert client.stat() == (0, 0)
    client.quit()


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while marker not in data:
        assert time.monotonic() < deadline, data[-200:]
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_commands_pipelined_after_stls_are_discarded(
    server: ServerThread, tls_files: TlsFiles
) -> None:
    """CVE-2011-0411: USER/PASS arrive in the same packet as STLS."""
    raw = socket.create_connection((server.host, server.ports["pop3"]), TIMEOUT)
    assert _read_until(raw, b"\r\n").startswith(b"+OK")
    raw.sendall(b"STLS\r\nUSER demo\r\nPASS demo\r\n")
    assert _read_until(raw, b"\r\n") == b"+OK Begin TLS negotiation now\r\n"
    sock = tls_files.client_context().wrap_socket(raw, server_hostname="localhost")
    sock.sendall(b"STAT\r\n")
    assert _read_until(sock, b"\r\n") == b"-ERR STAT not allowed now\r\n"
    assert server.authenticator is not None and server.authenticator.attempts == []
    sock.close()


def test_quit_deletion_reaches_an_imap_client_as_expunge(
    server: ServerThread, tls_files: TlsFiles
) -> None:
    append_messages(
        server, tls_files, make_message(1), make_message(2), make_message(3)
    )
    imap = imap_login(server, tls_files)
    assert imap.select("INBOX") == ("OK", [b"3"])
    pop = _logged_in(server, tls_files)
    pop.dele(2)
    imap.noop()
    assert imap.response("EXPUNGE") == ("EXPUNGE", [None])  # nothing yet
    pop.quit()
    typ, _data = imap.noop()
    assert typ == "OK"
    assert imap.response("EXPUNGE") == ("EXPUNGE", [b"2"])
    assert imap.search(None, "ALL") == ("OK", [b"1 2"])
    imap.logout()


def test_dropped_connection_deletes_nothing(
    server: ServerThread, tls_files: TlsFiles
) -> None:
    append_messages(server, tls_files, make_message(1), make_message(2))
    pop = _logged_in(server, tls_files)
    pop.dele(1)
    pop.dele(2)
    pop.file.close()  # no QUIT: drop the connection
    pop.sock.close()
    _wait_for_connections(server, 0)
    again = _logged_in(server, tls_files)
    assert again.stat()[0] == 2
    again.quit()


def test_message_expunged_over_imap_during_the_session(
    server: ServerThread, tls_files: TlsFiles
) -> None:
    append_messages(server, tls_files, make_message(1), make_message(2))
    pop = _logged_in(server, tls_files)
    imap = imap_login(server, tls_files)
    imap.select("INBOX")
    imap.store("1", "+FLAGS", "(\\Deleted)")
    imap.expunge()
    imap.logout()
    with pytest.raises(poplib.error_proto, match="Message 1 no longer exists"):
        pop.retr(1)
    assert pop.stat()[0] == 2  # the snapshot keeps its numbering
    assert pop.retr(2)[1][1] == b"Subject: pop3 test 2"
    assert pop.quit().startswith(b"+OK")


def test_huge_message_and_long_line_are_byte_exact(
    server: ServerThread, tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    # poplib refuses lines over 2048 octets by default; a client limit.
    monkeypatch.setattr(poplib, "_MAXLINE", 200_000)
    line = b"".join(bytes([65 + i % 26]) for i in range(100_000))
    long_line = make_message(1, line + b"\r\n")
    pattern = b"0123456789 .dotted and bare LF\n.\r\n" * 4
    huge_body = pattern * (20 * 1024 * 1024 // len(pattern))
    huge = make_message(2, huge_body).replace(b"\r\n\r\n", b"\n\n", 1)
    append_messages(server, tls_files, long_line, huge)
    pop = _logged_in(server, tls_files)
    for number, raw in ((1, long_line), (2, huge)):
        expected = normalise(raw)
        assert pop.list(number).split()[2] == str(len(expected)).encode()
        _resp, lines, _octets = pop.retr(number)
        assert b"\r\n".join(lines) + b"\r\n" == expected
    pop.quit()


def test_ten_thousand_bad_commands_after_login_each_get_err(
    server: ServerThread, tls_files: TlsFiles
) -> None:
    """Logged in, every bad command gets its -ERR and the session goes on;
    before login the third one ends the connection (asimap.net.prelogin,
    tests/test_prelogin_invalid.py)."""
    raw = socket.create_connection((server.host, server.ports["pop3s"]), TIMEOUT)
    sock = tls_files.client_context().wrap_socket(raw, server_hostname="localhost")
    assert _read_until(sock, b"\r\n").startswith(b"+OK")
    sock.sendall(b"USER demo\r\nPASS demo\r\n")
    assert b"+OK Logged in" in _read_until_count(sock, b"\r\n", 2)
    bad = [b"FROB", b"RETR 999999", b"LIST x", b"DELE -1", b"TOP 1", b"\x00\xff"]
    answers = b""
    for batch in range(100):
        payload = b"".join(bad[(batch + i) % len(bad)] + b"\r\n" for i in range(100))
        sock.sendall(payload)
        answers += _read_until_count(sock, b"\r\n", 100)
    lines = answers.split(b"\r\n")[:-1]
    assert len(lines) == 10_000 and all(line.startswith(b"-ERR ") for line in lines)
    # A line far over the limit: one -ERR, then the session carries on.
    sock.sendall(b"NOOP " + b"x" * 1_000_000 + b"\r\nNOOP\r\n")
    answers = _read_until_count(sock, b"\r\n", 2)
    assert answers.split(b"\r\n")[0] == b"-ERR Line too long (limit 1024 octets)"
    assert answers.split(b"\r\n")[1].startswith(b"+OK")
    sock.close()


def _read_until_count(sock: socket.socket, marker: bytes, count: int) -> bytes:
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while data.count(marker) < count:
        assert time.monotonic() < deadline, data[-200:]
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    return data


def test_uidl_is_stable_across_sessions(
    server: ServerThread, tls_files: TlsFiles
) -> None:
    append_messages(
        server, tls_files, make_message(1), make_message(2), make_message(3)
    )
    first = _logged_in(server, tls_files)
    before = dict(line.split() for line in first.uidl()[1])
    first.dele(1)
    first.quit()
    second = _logged_in(server, tls_files)
    after = dict(line.split() for line in second.uidl()[1])
    second.quit()
    assert list(after.values()) == [before[b"2"], before[b"3"]]


def test_connection_limit_is_shared_with_imap(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    server = server_factory(enable_pop3=True, pop3_port=0, max_connections=1)
    imap = imap_login(server, tls_files)
    with pytest.raises(poplib.error_proto, match="Too many connections"):
        _pop3s(server, tls_files)
    imap.logout()
    _wait_for_connections(server, 0)
    _pop3s(server, tls_files).quit()


def test_idle_client_is_logged_out_without_deleting(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    server = server_factory(
        enable_pop3=True,
        pop3_port=0,
        idle_timeout_unauthenticated=0.5,
        idle_timeout_authenticated=0.5,
    )
    append_messages(server, tls_files, make_message(1))
    pop = _logged_in(server, tls_files)
    pop.dele(1)
    time.sleep(1.0)
    with pytest.raises(poplib.error_proto, match="Autologout"):
        pop.stat()
    fresh = _logged_in(server, tls_files)
    assert fresh.stat()[0] == 1
    fresh.quit()


def test_no_pop3_listener_unless_enabled(server_factory: ServerFactory) -> None:
    server = server_factory()
    assert "pop3s" not in server.ports and "pop3" not in server.ports
    stls_only = server_factory(pop3_stls_port=0)
    assert "pop3" in stls_only.ports and "pop3s" not in stls_only.ports


def test_server_stop_says_goodbye(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    server = server_factory(enable_pop3=True, pop3_port=0)
    pop = _logged_in(server, tls_files)
    server.call(server.server.stop)
    # The -ERR was sent when the server stopped; the client reads it next.
    with pytest.raises(poplib.error_proto, match="shutting down"):
        pop.noop()


def test_timeout_inside_a_sasl_exchange_ends_the_connection(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    server = server_factory(
        enable_pop3=True, pop3_port=0, idle_timeout_unauthenticated=0.5
    )
    raw = socket.create_connection((server.host, server.ports["pop3s"]), TIMEOUT)
    sock = tls_files.client_context().wrap_socket(raw, server_hostname="localhost")
    assert _read_until(sock, b"\r\n").startswith(b"+OK")
    sock.sendall(b"AUTH PLAIN\r\n")
    assert _read_until(sock, b"aborted\r\n").startswith(b"+ \r\n-ERR Authentication")
    # The timed-out client is not served any more, even if it wakes up now.
    with contextlib.suppress(OSError):
        sock.sendall(b"CAPA\r\n")
    rest = b""
    while chunk := sock.recv(4096):
        rest += chunk
    assert rest == b"-ERR [SYS/TEMP] Autologout; idle for too long\r\n"
    sock.close()
