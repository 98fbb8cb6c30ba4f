"""The third invalid command before login ends the connection
(asimap.net.prelogin), as Dovecot's login process does: IMAP answers each
with BAD, then ``* BYE Too many invalid commands``; POP3 answers two with
``-ERR`` and the third with ``-ERR Too many invalid commands``, then
closes.  Before the change both kept answering forever.

Transcripts over real sockets, with a real server; what does not count
(a refused login, a cancelled AUTHENTICATE, anything after login) is
checked too, so the rule cannot swallow a legitimate client.
"""

from __future__ import annotations

import socket
import ssl
import time

from conftest import PASSWORD, USER, ServerFactory, TlsFiles

TIMEOUT = 15.0


class Wire:
    """A line-oriented client over a socket, for transcripts."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self) -> bytes:
        deadline = time.monotonic() + TIMEOUT
        while b"\r\n" not in self.buffer:
            if time.monotonic() > deadline:
                raise AssertionError(f"no line within {TIMEOUT}s: {self.buffer!r}")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError(self.buffer)
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def closed(self) -> bool:
        """The server closed the connection (and sent nothing more)."""
        self.sock.settimeout(TIMEOUT)
        try:
            rest = self.sock.recv(4096)
        except ConnectionResetError:
            return True
        assert rest == b"", rest
        return self.buffer == b""

    def still_open(self) -> bool:
        self.sock.settimeout(0.3)
        try:
            return self.sock.recv(4096) != b""
        except TimeoutError:
            return True


def _imap(server_factory: ServerFactory, tls_files: TlsFiles | None = None) -> Wire:
    """Plain IMAP, or IMAPS with ``tls_files``."""
    server = server_factory()
    port = server.imap_port if tls_files is None else server.imaps_port
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    if tls_files is not None:
        sock = tls_files.client_context().wrap_socket(sock, server_hostname="localhost")
    wire = Wire(sock)
    assert wire.line().startswith(b"* OK")
    return wire


def test_imap_third_invalid_command_before_login_says_bye(
    server_factory: ServerFactory,
) -> None:
    wire = _imap(server_factory)
    # Unknown command, wrong state, malformed: each a BAD.
    wire.send(b"a1 FROBNICATE\r\n")
    assert wire.line().startswith(b"a1 BAD ")
    # A refused login is NO (the throttle's business) and does not count.
    wire.send(b"a2 LOGIN nobody wrong\r\n")
    assert wire.line().startswith(b"a2 NO ")
    wire.send(b"a3 SELECT INBOX\r\n")
    assert wire.line().startswith(b"a3 BAD ")
    wire.send(b"a4 NOOP\r\n")
    assert wire.line() == b"a4 OK NOOP completed"
    wire.send(b"a5 LOGIN\r\n")
    assert wire.line().startswith(b"a5 BAD ")
    assert wire.line() == b"* BYE Too many invalid commands"
    assert wire.closed()


def test_imap_counts_untagged_bad_and_line_errors(
    server_factory: ServerFactory,
) -> None:
    wire = _imap(server_factory)
    wire.send(b"\r\n")  # no tag at all: an untagged BAD
    assert wire.line().startswith(b"* BAD ")
    wire.send(b"x" * 70_000 + b"\r\n")  # over the line limit
    assert b"BAD" in wire.line()
    wire.send(b"b1 CAPABILITY extra\r\n")
    assert wire.line().startswith(b"b1 BAD ")
    assert wire.line() == b"* BYE Too many invalid commands"
    assert wire.closed()


def test_imap_invalid_commands_after_login_never_disconnect(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    wire = _imap(server_factory, tls_files)
    wire.send(b"c0 FROBNICATE\r\n")
    assert wire.line().startswith(b"c0 BAD ")
    wire.send(b"c1 FROBNICATE\r\n")
    assert wire.line().startswith(b"c1 BAD ")
    # Two spent before login; the login itself resets nothing but moves
    # the connection where nothing is counted.
    wire.send(f"c2 LOGIN {USER} {PASSWORD}\r\n".encode())
    while not (line := wire.line()).startswith(b"c2 "):
        pass
    assert line.startswith(b"c2 OK"), line
    for n in range(10):
        wire.send(b"d%d FROBNICATE\r\n" % n)
        assert wire.line().startswith(b"d%d BAD " % n)
    wire.send(b"z LOGOUT\r\n")
    assert wire.line().startswith(b"* BYE")


def test_imap_cancelled_authenticate_does_not_count(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    wire = _imap(server_factory, tls_files)
    for n in range(4):
        wire.send(b"s%d AUTHENTICATE PLAIN\r\n" % n)
        assert wire.line().startswith(b"+")
        wire.send(b"*\r\n")  # RFC 3501 6.2.2: the client cancels
        assert wire.line().startswith(b"s%d BAD " % n)
    assert wire.still_open()
    wire.send(b"s9 LOGOUT\r\n")
    assert wire.line().startswith(b"* BYE")


def _pop3(server_factory: ServerFactory, tls_files: TlsFiles) -> Wire:
    server = server_factory(enable_pop3=True, pop3_port=0)
    raw = socket.create_connection(
        ("127.0.0.1", server.ports["pop3s"]), timeout=TIMEOUT
    )
    sock: ssl.SSLSocket = tls_files.client_context().wrap_socket(
        raw, server_hostname="localhost"
    )
    wire = Wire(sock)
    assert wire.line().startswith(b"+OK")
    return wire


def test_pop3_third_invalid_command_before_login_closes(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    wire = _pop3(server_factory, tls_files)
    wire.send(b"FROBNICATE\r\n")
    assert wire.line().startswith(b"-ERR ")
    # A wrong password does not count.
    wire.send(b"USER nobody\r\n")
    assert wire.line().startswith(b"+OK")
    wire.send(b"PASS wrong\r\n")
    assert wire.line().startswith(b"-ERR ")
    wire.send(b"STAT\r\n")  # not before login
    assert wire.line().startswith(b"-ERR ")
    wire.send(b"NOOP x y z\r\n")
    assert wire.line() == b"-ERR Too many invalid commands"
    assert wire.closed()


def test_pop3_invalid_commands_after_login_never_disconnect(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    wire = _pop3(server_factory, tls_files)
    wire.send(b"FROBNICATE\r\n")
    assert wire.line().startswith(b"-ERR ")
    wire.send(f"USER {USER}\r\n".encode())
    assert wire.line().startswith(b"+OK")
    wire.send(f"PASS {PASSWORD}\r\n".encode())
    assert wire.line().startswith(b"+OK")
    for _ in range(5):
        wire.send(b"FROBNICATE\r\n")
        assert wire.line().startswith(b"-ERR ")
    wire.send(b"QUIT\r\n")
    assert wire.line().startswith(b"+OK")
