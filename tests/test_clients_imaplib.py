"""The whole server stack driven by Python's ``imaplib`` and raw sockets.

Real sockets, real TLS with a self-signed certificate the client trusts
explicitly, the real session, parser, authenticator and memory store.
"""

from __future__ import annotations

import imaplib
import socket
import ssl
import time

import pytest

from asimap.auth.throttle import LoginPenalty
from conftest import (
    PASSWORD,
    SAMPLE_MESSAGE,
    USER,
    ServerFactory,
    ServerThread,
    TlsFiles,
)

TIMEOUT = 10.0


def _imaps(server: ServerThread, tls_files: TlsFiles) -> imaplib.IMAP4_SSL:
    return imaplib.IMAP4_SSL(
        server.host,
        server.imaps_port,
        ssl_context=tls_files.client_context(),
        timeout=TIMEOUT,
    )


def test_imaps_session_append_fetch_store_search_expunge(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    client = _imaps(imap_server, tls_files)
    assert client.login(USER, PASSWORD)[0] == "OK"
    typ, data = client.select("INBOX")
    assert typ == "OK" and data == [b"0"]
    typ, data = client.append("INBOX", r"(\Flagged)", None, SAMPLE_MESSAGE)
    assert typ == "OK", data
    typ, data = client.select("INBOX")
    assert data == [b"1"]
    typ, data = client.fetch("1", "(FLAGS RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    meta, body = data[0]  # type: ignore[misc]
    assert body == SAMPLE_MESSAGE
    assert (
        b"\\Flagged" in meta and f"RFC822.SIZE {len(SAMPLE_MESSAGE)}".encode() in meta
    )
    typ, data = client.store("1", "+FLAGS", r"(\Seen)")
    assert typ == "OK"
    assert client.search(None, "SEEN") == ("OK", [b"1"])
    assert client.search(None, "SUBJECT", '"client test"') == ("OK", [b"1"])
    assert client.search(None, "UNSEEN") == ("OK", [b""])
    client.store("1", "+FLAGS", r"(\Deleted)")
    typ, data = client.expunge()
    assert typ == "OK" and data == [b"1"]
    assert client.search(None, "ALL") == ("OK", [b""])
    assert client.logout()[0] == "BYE"
    assert imap_server.authenticator is not None
    assert imap_server.authenticator.attempts == [(USER, True)]


def test_plain_port_requires_starttls_before_login(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    client = imaplib.IMAP4(imap_server.host, imap_server.imap_port, timeout=TIMEOUT)
    caps = set(client.capabilities)
    # RFC 3501 sections 6.2.1 and 6.2.3: no login without TLS.
    assert {"STARTTLS", "LOGINDISABLED"} <= caps
    assert not any(cap.startswith("AUTH=") for cap in caps)
    with pytest.raises(imaplib.IMAP4.error):
        client.login(USER, PASSWORD)
    assert imap_server.authenticator is not None
    assert imap_server.authenticator.attempts == []  # never even checked
    assert client.starttls(tls_files.client_context())[0] == "OK"
    caps = set(client.capabilities)
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps
    assert client.login(USER, PASSWORD)[0] == "OK"
    assert client.select("INBOX")[0] == "OK"
    client.logout()


def _raw_lines_until(sock: socket.socket | ssl.SSLSocket, tag: bytes) -> list[bytes]:
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        lines = data.split(b"\r\n")
        if any(line.startswith(tag + b" ") for line in lines):
            return lines
    raise AssertionError(f"no {tag!r} response in {data!r}")


def test_pipelined_command_after_starttls_is_discarded(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    """CVE-2011-0411 against the real stack: ``b`` arrives with STARTTLS."""
    raw = socket.create_connection(
        (imap_server.host, imap_server.imap_port), timeout=TIMEOUT
    )
    assert raw.recv(4096).startswith(b"* OK")
    raw.sendall(b"a STARTTLS\r\nb LOGIN demo demo\r\nb2 CAPABILITY\r\n")
    assert raw.recv(4096).startswith(b"a OK")
    sock = tls_files.client_context().wrap_socket(raw, server_hostname="localhost")
    sock.sendall(b"c CAPABILITY\r\n")
    lines = _raw_lines_until(sock, b"c")
    assert not any(line.startswith(b"b") for line in lines), lines
    assert any(line.startswith(b"c OK") for line in lines)
    assert imap_server.authenticator is not None
    assert imap_server.authenticator.attempts == []
    sock.close()


def _tls_socket(server: ServerThread, tls_files: TlsFiles) -> ssl.SSLSocket:
    raw = socket.create_connection((server.host, server.imaps_port), timeout=TIMEOUT)
    sock = tls_files.client_context().wrap_socket(raw, server_hostname="localhost")
    assert sock.recv(4096).startswith(b"* OK")
    return sock


def test_huge_line_and_huge_literal_leave_the_connection_usable(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    sock = _tls_socket(imap_server, tls_files)
    sock.sendall(b"a NOOP " + b"x" * (1024 * 1024) + b"\r\n")
    lines = _raw_lines_until(sock, b"a")
    assert any(line.startswith(b"a BAD") for line in lines)
    sock.sendall(b"b APPEND INBOX {4294967296}\r\n")
    lines = _raw_lines_until(sock, b"b")
    assert any(line.startswith((b"b NO", b"b BAD")) for line in lines), lines
    sock.sendall(b"c LOGIN demo demo\r\n")
    lines = _raw_lines_until(sock, b"c")
    assert any(line.startswith(b"c OK") for line in lines)
    sock.close()


def test_a_hundred_wrong_passwords_leave_the_server_answering(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    server = server_factory(
        auth_options={"failure_delay": 0.0, "penalty": LoginPenalty(max_delay=0.01)}
    )
    sock = _tls_socket(server, tls_files)
    sock.sendall(b"".join(b"w%d LOGIN other wrong%d\r\n" % (i, i) for i in range(100)))
    lines = _raw_lines_until(sock, b"w99")
    answers = [line for line in lines if line.startswith(b"w")]
    assert len(answers) == 100
    assert all(b" NO " in line for line in answers), answers[:3]
    # Another client is served at once; the attacking connection too.
    other = _imaps(server, tls_files)
    assert other.noop()[0] == "OK"
    other.logout()
    sock.sendall(b"z NOOP\r\n")
    assert any(line.startswith(b"z OK") for line in _raw_lines_until(sock, b"z"))
    sock.close()


def test_idle_timeout_logs_out(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    server = server_factory(idle_timeout_unauthenticated=0.5)
    sock = _tls_socket(server, tls_files)
    started = time.monotonic()
    data = sock.recv(4096)
    assert data == b"* BYE Autologout; idle for too long\r\n"
    assert time.monotonic() - started < 5
    assert sock.recv(4096) == b""
    sock.close()


def test_connection_limit_refuses_politely(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    """Every slot held by a logged-in user: a newcomer gets BYE (RFC 3501
    section 7.1.5), and gets in once a slot is free."""
    server = server_factory(max_connections=2)
    first = _imaps(server, tls_files)
    first.login(USER, PASSWORD)
    second = imaplib.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    second.starttls(ssl_context=tls_files.client_context())
    second.login(USER, PASSWORD)
    raw = socket.create_connection((server.host, server.imap_port), timeout=TIMEOUT)
    assert raw.recv(4096) == b"* BYE Too many connections\r\n"
    raw.close()
    first.logout()
    deadline = time.monotonic() + TIMEOUT
    while server.call(lambda: _count(server)) >= 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    third = _imaps(server, tls_files)
    assert third.noop()[0] == "OK"
    third.logout()
    second.logout()


async def _count(server: ServerThread) -> int:
    return int(server.server.connection_count)


def test_ipv6_loopback(server_factory: ServerFactory, tls_files: TlsFiles) -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python was built without IPv6")
    server = server_factory(address="::1")
    client = imaplib.IMAP4_SSL(
        "::1",
        server.imaps_port,
        ssl_context=tls_files.client_context(),
        timeout=TIMEOUT,
    )
    assert client.login(USER, PASSWORD)[0] == "OK"
    client.logout()


def test_big_messages_in_one_fetch_arrive_whole(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    """Message data over 64 KiB is written as buffers of its own
    (encoder.encode_parts): several in one FETCH arrive intact, in order."""
    client = _imaps(imap_server, tls_files)
    assert client.login(USER, PASSWORD)[0] == "OK"
    bodies = [SAMPLE_MESSAGE + (b"%d" % n) * 150_000 + b"\r\n" for n in range(1, 4)]
    for body in bodies:
        assert client.append("INBOX", None, None, body)[0] == "OK"
    client.select("INBOX")
    typ, data = client.fetch("1:3", "(UID BODY.PEEK[] RFC822.SIZE)")
    assert typ == "OK"
    got = [item[1] for item in data if isinstance(item, tuple)]
    assert got == bodies
    assert client.logout()[0] == "BYE"
