"""Every bad input of the core-server issue, over a real TLS socket.

design.md section 4, rule 2: bad input gets a clear tagged ``BAD``/``NO``
(untagged ``* BAD`` where no tag can be read), memory stays bounded, the
connection survives where the protocol allows, the server always does.
Each test sends the raw bytes, asserts the exact answer, then proves the
SAME connection still works (``x NOOP`` -> ``x OK``).

The last test runs ``asimapd`` as a separate process and reads its memory
from ``/proc``: 20 one-megabyte lines, a 4 GB non-synchronizing literal
followed by 200 MB of bytes, and 10,000-deep parentheses must not make it
grow by more than :data:`MEMORY_BOUND`.
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asimap.auth.hashers import make_password
from asimap.auth.throttle import LoginPenalty
from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles

TIMEOUT = 15.0
AUTH_FAILED = b"NO [AUTHENTICATIONFAILED] Authentication failed"
DEEP = 10_000


class Raw:
    """A raw client socket: exact bytes out, exact lines back."""

    def __init__(self, sock: socket.socket, greeted: bool = True) -> None:
        """``greeted=False`` after STARTTLS: no new greeting comes."""
        self.sock = sock
        self._buffer = b""
        self.greeting = self.read_line() if greeted else b""
        assert not greeted or self.greeting.startswith(b"* OK"), self.greeting

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        deadline = time.monotonic() + TIMEOUT
        while b"\r\n" not in self._buffer:
            if time.monotonic() > deadline:
                raise AssertionError(f"no line within {TIMEOUT}s: {self._buffer!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed; pending {self._buffer!r}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def until(self, prefix: bytes) -> list[bytes]:
        """Lines up to and including the first that starts with ``prefix``."""
        lines = [self.read_line()]
        while not lines[-1].startswith(prefix):
            lines.append(self.read_line())
        return lines

    def command(self, line: bytes) -> list[bytes]:
        """Send one command line; its responses through the tagged one."""
        tag = line.split(b" ", 1)[0]
        self.send(line + b"\r\n")
        return self.until(tag + b" ")

    def answer(self, line: bytes) -> bytes:
        """The tagged answer of a command that has no untagged responses."""
        lines = self.command(line)
        assert len(lines) == 1, lines
        return lines[0]

    def assert_alive(self) -> None:
        assert self.answer(b"x NOOP") == b"x OK NOOP completed"

    def nothing_pending(self, wait: float = 0.3) -> bool:
        """True when the server sent nothing more within ``wait`` seconds."""
        if self._buffer:
            return False
        self.sock.settimeout(wait)
        try:
            self._buffer += self.sock.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError):
            pass
        finally:
            self.sock.settimeout(TIMEOUT)
        return not self._buffer

    def close(self) -> None:
        self.sock.close()


def _tls(port: int, tls_files: TlsFiles, source: str = "127.0.0.1") -> Raw:
    """``source``: another loopback address (127.0.0.2 ...) is another
    client address as far as the server can tell."""
    raw = socket.create_connection(
        ("127.0.0.1", port), timeout=TIMEOUT, source_address=(source, 0)
    )
    return Raw(tls_files.client_context().wrap_socket(raw, server_hostname="localhost"))


@pytest.fixture
def server(imap_server: ServerThread) -> ServerThread:
    return imap_server


@pytest.fixture
def anon(server: ServerThread, tls_files: TlsFiles) -> Iterator[Raw]:
    """A TLS connection, not logged in."""
    client = _tls(server.imaps_port, tls_files)
    yield client
    client.close()


@pytest.fixture
def authed(anon: Raw) -> Raw:
    assert anon.answer(b"l LOGIN demo demo").startswith(b"l OK")
    return anon


@pytest.fixture
def selected(authed: Raw) -> Raw:
    """INBOX of a fresh memory store: empty."""
    lines = authed.command(b"s SELECT INBOX")
    assert b"* 0 EXISTS" in lines and lines[-1].startswith(b"s OK")
    return authed


# --- syntax ---


def test_unterminated_quote(anon: Raw) -> None:
    assert anon.answer(b'a LOGIN "demo') == b"a BAD Unterminated quoted string"
    assert anon.answer(b'b LOGIN demo "demo') == b"b BAD Unterminated quoted string"
    anon.assert_alive()


def test_nul_bytes_in_a_command(anon: Raw) -> None:
    assert anon.answer(b"a NO\x00OP") == b"a BAD NUL character in command"
    assert anon.answer(b"b LOGIN de\x00mo demo") == b"b BAD NUL character in command"
    anon.assert_alive()


def test_random_eight_bit_garbage(authed: Raw) -> None:
    """Logged in: three invalid commands before login would end the
    connection (tests/test_prelogin_invalid.py)."""
    anon = authed
    rng = random.Random(20240101)
    garbage = bytes(rng.randrange(0x80, 0x100) for _ in range(2000))
    anon.send(garbage[:200] + b"\r\n")
    assert anon.read_line() == b"* BAD Invalid tag"
    anon.send(garbage + b"\r\n")  # no space: all of it would be the tag
    assert anon.read_line() == b"* BAD [LIMIT] tag too long"
    # A readable tag followed by bytes that are not UTF-8.
    assert anon.answer(b"a " + garbage[:50]) == b"a BAD Invalid command name"
    anon.assert_alive()


def test_a_line_of_0xff(anon: Raw) -> None:
    anon.send(b"\xff" * 200 + b"\r\n")
    assert anon.read_line() == b"* BAD Invalid tag"
    anon.send(b"\xff" * 100_000 + b"\r\n")
    assert anon.read_line() == b"* BAD [LIMIT] line too long"
    anon.assert_alive()


def test_unknown_command(anon: Raw) -> None:
    # asimap 2.x disconnected here (design.md section 2); we answer BAD.
    assert anon.answer(b"a FROBNICATE x") == b"a BAD Unknown command FROBNICATE"
    anon.assert_alive()


def test_empty_line(anon: Raw) -> None:
    anon.send(b"\r\n")
    assert anon.read_line() == b"* BAD Empty command"
    anon.assert_alive()


def test_tag_only_line(anon: Raw) -> None:
    assert anon.answer(b"lonely") == b"lonely BAD Missing command name"
    anon.assert_alive()


def test_very_long_tag(anon: Raw) -> None:
    anon.send(b"t" * 1000 + b" NOOP\r\n")
    # No tag can be echoed back, so the answer is untagged (RFC 3501 7.1.3).
    assert anon.read_line() == b"* BAD [LIMIT] tag too long"
    anon.send(b"t" * 100_000 + b" NOOP\r\n")
    assert anon.read_line() == b"* BAD [LIMIT] line too long"
    anon.assert_alive()


def test_one_megabyte_command_line(authed: Raw) -> None:
    line = b"a NOOP " + b"x" * (1024 * 1024)
    assert authed.answer(line) == b"a BAD [LIMIT] line too long"
    authed.assert_alive()


# --- nesting ---


def test_ten_thousand_parentheses_in_search(selected: Raw) -> None:
    deep = b"(" * DEEP + b"ALL" + b")" * DEEP
    assert (
        selected.answer(b"a SEARCH " + deep) == b"a BAD Search keys nested too deeply"
    )
    unclosed = b"b SEARCH " + b"(" * DEEP
    assert selected.answer(unclosed) == b"b BAD Search keys nested too deeply"
    nots = b"c UID SEARCH " + b"NOT " * DEEP + b"ALL"
    assert selected.answer(nots) == b"c BAD Search keys nested too deeply"
    ors = b"d SEARCH " + b"OR ALL " * 5000 + b"ALL"
    assert selected.answer(ors) == b"d BAD Search keys nested too deeply"
    selected.assert_alive()


def test_ten_thousand_parentheses_in_fetch(selected: Raw) -> None:
    deep = b"(" * DEEP + b"FLAGS" + b")" * DEEP
    assert selected.answer(b"a FETCH 1:* " + deep) == b"a BAD Invalid FETCH item"
    assert selected.answer(b"b UID FETCH 1:* " + deep) == b"b BAD Invalid FETCH item"
    selected.assert_alive()


def test_deep_parentheses_before_login(anon: Raw) -> None:
    deep = b"(" * DEEP + b"ALL" + b")" * DEEP
    assert anon.answer(b"a SEARCH " + deep) == b"a BAD Search keys nested too deeply"
    anon.assert_alive()


# --- sequence sets on an empty mailbox ---


def test_whole_uid_range_on_an_empty_mailbox(selected: Raw) -> None:
    # RFC 3501 6.4.8: a UID range naming no message is not an error.
    everything = b"1:4294967295"
    assert selected.answer(b"a UID FETCH " + everything + b" FLAGS") == (
        b"a OK Fetch completed"
    )
    assert selected.answer(b"b UID STORE " + everything + b" +FLAGS (\\Seen)") == (
        b"b OK Store completed"
    )
    assert selected.command(b"c UID SEARCH UID " + everything) == [
        b"* SEARCH",
        b"c OK Search completed",
    ]
    assert selected.answer(b"d UID COPY " + everything + b" INBOX") == (
        b"d OK Copy completed"
    )
    selected.assert_alive()


def test_sequence_numbers_beyond_an_empty_mailbox(selected: Raw) -> None:
    # RFC 3501 9 (seq-number): message sequence numbers must exist.
    assert selected.answer(b"a FETCH 1:4294967295 FLAGS") == (
        b"a BAD Invalid message sequence number"
    )
    assert selected.answer(b"b FETCH 4294967296 FLAGS").startswith(b"b BAD ")
    selected.assert_alive()


# --- literals ---


def test_synchronizing_four_gigabyte_literal_is_refused_without_continuation(
    authed: Raw,
) -> None:
    # RFC 3501 7.5: the server refuses before "+", so the client never sends.
    authed.send(b"a APPEND INBOX {4294967296}\r\n")
    assert authed.read_line() == b"a BAD [TOOBIG] literal too big"
    assert authed.nothing_pending()
    authed.assert_alive()


def test_synchronizing_four_gigabyte_literal_before_login(anon: Raw) -> None:
    anon.send(b"a LOGIN demo {4294967296}\r\n")
    assert anon.read_line() == b"a BAD [TOOBIG] literal too big"
    anon.assert_alive()


def test_non_synchronizing_literal_over_the_limit_is_counted_away(
    authed: Raw,
) -> None:
    """RFC 7888 section 4, choice 1: the bytes are read (counted, never
    stored) and the command is refused -- with RFC 7889's NO [TOOBIG], an
    APPEND above APPENDLIMIT; the connection goes on."""
    size = 64 * 1024 * 1024 + 1  # Limits.max_literal + 1
    authed.send(b"a APPEND INBOX {%d+}\r\n" % size)
    block = b"x" * (1024 * 1024)
    for _ in range(size // len(block)):
        authed.send(block)
    authed.send(b"x" * (size % len(block)) + b"\r\n")
    assert authed.read_line() == b"a NO [TOOBIG] Message too large"
    authed.assert_alive()


def test_non_synchronizing_four_gigabyte_literal_keeps_the_server_serving(
    server: ServerThread, tls_files: TlsFiles, authed: Raw
) -> None:
    """The literal is counted away as it streams: no answer until it ends,
    so the client gives up; others are served all along."""
    authed.send(b"a APPEND INBOX {4294967296+}\r\n")
    block = b"\0" * (1024 * 1024)
    for _ in range(32):
        authed.send(block)
    assert authed.nothing_pending()
    other = _tls(server.imaps_port, tls_files)
    assert other.answer(b"b LOGIN demo demo").startswith(b"b OK")
    other.assert_alive()
    other.close()


def test_append_to_a_missing_mailbox_answers_before_the_literal(authed: Raw) -> None:
    # RFC 3501 6.3.11: NO [TRYCREATE]; the literal is never sent.
    authed.send(b"a APPEND nosuch (\\Seen) {1000}\r\n")
    assert authed.read_line() == b"a NO [TRYCREATE] Mailbox does not exist"
    assert authed.nothing_pending()
    authed.assert_alive()
    # With LITERAL+ the bytes come anyway: they are skipped, not executed.
    authed.send(b"b APPEND nosuch {10+}\r\nc LOGOUT\r\n\r\n")
    assert authed.read_line() == b"b NO [TRYCREATE] Mailbox does not exist"
    authed.assert_alive()


# --- state ---


def test_select_before_login(anon: Raw) -> None:
    assert anon.answer(b"a SELECT INBOX") == (
        b"a BAD SELECT not allowed in the not authenticated state"
    )
    anon.assert_alive()


def test_fetch_before_select(authed: Raw) -> None:
    assert authed.answer(b"a FETCH 1 FLAGS") == (
        b"a BAD FETCH not allowed in the authenticated state"
    )
    authed.assert_alive()


def test_starttls_after_tls(anon: Raw) -> None:
    assert anon.answer(b"a STARTTLS") == b"a BAD STARTTLS not available"
    anon.assert_alive()


def test_login_twice(authed: Raw) -> None:
    assert authed.answer(b"a LOGIN demo demo") == (
        b"a BAD LOGIN not allowed in the authenticated state"
    )
    authed.assert_alive()


def test_login_on_the_plain_port_before_starttls(
    server: ServerThread, tls_files: TlsFiles
) -> None:
    sock = socket.create_connection(("127.0.0.1", server.imap_port), timeout=TIMEOUT)
    plain = Raw(sock)
    assert b"LOGINDISABLED" in plain.greeting
    capability, done = plain.command(b"a CAPABILITY")
    assert b" LOGINDISABLED" in capability and b" STARTTLS" in capability
    assert b"AUTH=" not in capability and done == b"a OK Capability completed"
    # RFC 3501 6.2.3 and RFC 9051 7.1 (PRIVACYREQUIRED).
    assert plain.answer(b"b LOGIN demo demo") == (
        b"b NO [PRIVACYREQUIRED] Plaintext authentication disallowed"
    )
    plain.assert_alive()
    assert server.authenticator is not None
    assert server.authenticator.attempts == []  # the password was not checked
    assert plain.answer(b"c STARTTLS") == b"c OK Begin TLS negotiation now"
    context = tls_files.client_context()
    tls = Raw(context.wrap_socket(sock, server_hostname="localhost"), greeted=False)
    assert tls.answer(b"d STARTTLS") == b"d BAD STARTTLS not available"
    assert tls.answer(b"e LOGIN demo demo").startswith(b"e OK")
    tls.assert_alive()
    tls.close()


# --- password guessing ---


def _hundred_wrong_passwords(client: Raw, users: list[bytes]) -> None:
    client.send(
        b"".join(
            b"w%d LOGIN %s wrong%d\r\n" % (i, users[i % len(users)], i)
            for i in range(100)
        )
    )
    for i in range(100):
        assert client.read_line() == b"w%d %s" % (i, AUTH_FAILED)
    client.assert_alive()


def _auth_server(server_factory: ServerFactory) -> ServerThread:
    """The login penalty as in production but capped at 10 ms, so a hundred
    penalised attempts take a second; the dummy hash that unknown users are
    checked against is cheap."""
    return server_factory(
        auth_options={
            "failure_delay": 0.0,
            "penalty": LoginPenalty(max_delay=0.01),
            "dummy_hash": make_password("dummy", iterations=1000),
        }
    )


def test_a_hundred_wrong_passwords_never_lock_the_owner_out(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    """Anyone who knows a username used to be able to keep its owner out:
    four failures from anywhere locked the user out everywhere, right
    password or not.  Now failures only slow down their own address: the
    owner logs in from another address, and even from the attacker's."""
    server = _auth_server(server_factory)
    attacker = _tls(server.imaps_port, tls_files, source="127.0.0.2")
    _hundred_wrong_passwords(attacker, [USER.encode()])
    owner = _tls(server.imaps_port, tls_files)
    login = b"n LOGIN %s %s" % (USER.encode(), PASSWORD.encode())
    assert owner.answer(login).startswith(b"n OK ")
    owner.close()
    assert attacker.answer(login.replace(b"n ", b"z ", 1)).startswith(b"z OK ")
    attacker.close()
    assert server.authenticator is not None
    # Every attempt was verified (none refused unchecked).
    assert server.authenticator.attempts.count((USER, False)) == 100


def test_a_hundred_wrong_passwords_across_users_slow_only_the_address(
    server_factory: ServerFactory, tls_files: TlsFiles, caplog: pytest.LogCaptureFixture
) -> None:
    """Guessing over many user names penalises the address (logged with its
    reason); a neighbour on another address is not touched, and the right
    password still works from the penalised address."""
    caplog.set_level("INFO", logger="asimap.auth.authenticator")
    server = _auth_server(server_factory)
    attacker = _tls(server.imaps_port, tls_files, source="127.0.0.3")
    _hundred_wrong_passwords(attacker, [b"user%d" % i for i in range(100)])
    login = b"n LOGIN %s %s" % (USER.encode(), PASSWORD.encode())
    neighbour = _tls(server.imaps_port, tls_files)
    assert neighbour.answer(login).startswith(b"n OK ")
    neighbour.close()
    assert attacker.answer(login).startswith(b"n OK ")
    attacker.close()
    messages = [r.getMessage() for r in caplog.records]
    assert "failed login: user 'user7' from 127.0.0.3: unknown user" in messages
    assert any(
        m.startswith("login of user 'user9' from 127.0.0.3 delayed") for m in messages
    )
    assert not any("from 127.0.0.1 delayed" in m for m in messages)


# --- memory, measured on a separate server process ---

#: Growth of the server's peak resident memory allowed for the whole abuse.
MEMORY_BOUND = 64 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes (Linux /proc)."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            number, unit = rest.split()
            assert unit == "kB"
            values[key] = int(number) * 1024
    return values


def _start_asimapd(
    tmp_path: Path, tls_files: TlsFiles, pwfile: Path
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = _free_port()
    log_path = tmp_path / "asimapd.log"
    command = [
        sys.executable,
        "-m",
        "asimap.cli",
        "--address=127.0.0.1",
        f"--port={port}",
        f"--cert={tls_files.cert}",
        f"--key={tls_files.key}",
        f"--pwfile={pwfile}",
        "--store=memory",
        # One process serves everything, so its memory is what the abuse
        # below stresses (worker mode has its own tests: test_worker_*).
        "--workers=off",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("TRACE", "DEBUG")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"asimapd exited: {log_path.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port, log_path
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"asimapd did not listen: {log_path.read_text()}")


def test_memory_stays_bounded_under_abuse(
    tmp_path: Path, tls_files: TlsFiles, pwfile: Path
) -> None:
    process, port, log_path = _start_asimapd(tmp_path, tls_files, pwfile)
    try:
        warm = _tls(port, tls_files)
        assert warm.answer(b"a LOGIN demo demo").startswith(b"a OK")
        assert warm.command(b"b SELECT INBOX")[-1].startswith(b"b OK")
        warm.close()
        baseline = _memory(process.pid)["VmRSS"]

        client = _tls(port, tls_files)
        assert client.answer(b"a LOGIN demo demo").startswith(b"a OK")
        assert client.command(b"b SELECT INBOX")[-1].startswith(b"b OK")
        for i in range(20):
            line = b"l%d NOOP " % i + b"x" * (1024 * 1024)
            assert client.answer(line) == b"l%d BAD [LIMIT] line too long" % i
        deep = b"(" * DEEP + b"ALL" + b")" * DEEP
        assert client.answer(b"d SEARCH " + deep) == (
            b"d BAD Search keys nested too deeply"
        )
        fetch = b"(" * DEEP + b"FLAGS" + b")" * DEEP
        assert client.answer(b"f FETCH 1:* " + fetch) == b"f BAD Invalid FETCH item"
        client.assert_alive()
        # 4 GB announced without waiting for "+"; 200 MB of it streamed.
        client.send(b"g APPEND INBOX {4294967296+}\r\n")
        block = os.urandom(1024 * 1024)
        for _ in range(200):
            client.send(block)
        assert client.nothing_pending()
        client.close()

        fresh = _tls(port, tls_files)
        assert fresh.answer(b"h LOGIN demo demo").startswith(b"h OK")
        fresh.assert_alive()
        fresh.close()
        after = _memory(process.pid)
        growth = after["VmHWM"] - baseline
        assert growth < MEMORY_BOUND, (
            f"peak RSS grew by {growth / 2**20:.1f} MiB "
            f"(baseline {baseline / 2**20:.1f} MiB, {after})"
        )
        assert process.poll() is None
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    assert process.returncode == 0, log_path.read_text()
