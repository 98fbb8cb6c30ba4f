"""COMPRESS=DEFLATE (RFC 4978) and LITERAL- (RFC 7888) in worker mode.

The DEFLATE layer lives in the user's worker, which runs the session: over
implicit TLS the main process relays the (TLS-decrypted) compressed bytes
unchanged, and a plain connection's own socket is handed to the worker.
Each test runs a real ``asimapd`` with a real client-side DEFLATE stream:
a large FETCH, IDLE woken by another connection, commands pipelined behind
COMPRESS, and a decompression bomb measured against the worker's peak
memory (``VmHWM``).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import TlsFiles
from deflate_client import LineClient
from worker_harness import Asimapd, MailSetup, mail_setup

BIG = b"Subject: big\r\nFrom: a@example.org\r\n\r\n" + b"".join(
    b"line %06d with words that compress well enough\r\n" % i for i in range(40_000)
)


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


@pytest.fixture
def daemon(setup: MailSetup, tls_files: TlsFiles) -> Iterator[Asimapd]:
    """Worker mode with plaintext logins allowed, so both the TLS relay
    and the handed-over plain socket can be tested on one server."""
    server = Asimapd(
        setup, tls_files.cert, tls_files.key, "--literal-minus", plaintext_login=True
    )
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log()


def _connect(daemon: Asimapd, tls: bool) -> LineClient:
    if tls:
        client = LineClient(daemon.tls_socket())
    else:
        client = LineClient.connect(daemon.ports["imap"])
    greeting = client.read_line()
    # --literal-minus: the main process advertises LITERAL- only.
    assert greeting.startswith(b"* OK [CAPABILITY "), greeting
    assert b" LITERAL- " in greeting and b"LITERAL+" not in greeting
    return client


def _login(daemon: Asimapd, tls: bool, user: str = "demo") -> LineClient:
    client = _connect(daemon, tls)
    password = {"demo": "demo", "other": "other-secret"}[user]
    reply = client.command("a", f"LOGIN {user} {password}")[-1]
    assert reply.startswith(b"a OK [CAPABILITY "), reply
    assert b" COMPRESS=DEFLATE " in reply
    # ... and so does the worker that answered the login.
    assert b" LITERAL- " in reply and b"LITERAL+" not in reply
    return client


def _peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("tls", [True, False], ids=["tls-relay", "plain-handoff"])
def test_large_fetch_idle_and_pipelining_through_the_worker(
    daemon: Asimapd, tls: bool
) -> None:
    client = _login(daemon, tls)
    assert client.compress() == b"z OK DEFLATE active"
    # APPEND with a synchronizing literal (LITERAL- is on: > 4096 octets).
    client.line(f"p APPEND INBOX {{{len(BIG)}}}")
    assert client.read_line().startswith(b"+ ")
    client.send(BIG + b"\r\n")
    assert client.until_tagged("p")[-1].startswith(b"p OK [APPENDUID")
    assert client.command("s", "SELECT INBOX")[-1].startswith(b"s OK")
    lines = client.command("f", "FETCH 1 (BODY.PEEK[])")
    assert lines[-1].startswith(b"f OK")
    assert lines[0].endswith(b"\r\n" + BIG + b")")
    # IDLE, woken by another connection of the same user.
    client.line("i IDLE")
    assert client.read_line().startswith(b"+ ")
    other = _login(daemon, tls)
    small = b"Subject: s\r\n\r\nhi\r\n"
    other.line(f"q APPEND INBOX {{{len(small)}+}}")
    other.send(small + b"\r\n")
    assert other.until_tagged("q")[-1].startswith(b"q OK")
    assert client.read_line() == b"* 2 EXISTS"
    client.line("DONE")
    assert client.until_tagged("i")[-1].startswith(b"i OK")
    # A large non-synchronizing literal is refused (LITERAL-, RFC 7888 s. 5)
    # and the connection goes on.
    client.line(f"r APPEND INBOX {{{len(BIG)}+}}")
    client.send(BIG + b"\r\n")
    assert client.read_line() == b"r BAD [TOOBIG] non-synchronizing literal too big"
    assert client.command("n", "NOOP")[-1].startswith(b"n OK")
    assert client.command("l", "LOGOUT")[-1].startswith(b"l OK")
    other.close()


@pytest.mark.parametrize("tls", [True, False], ids=["tls-relay", "plain-handoff"])
def test_commands_pipelined_with_compress_reach_the_worker(
    daemon: Asimapd, tls: bool
) -> None:
    client = _connect(daemon, tls)
    # LOGIN, COMPRESS and compressed commands in one write: the main process
    # hands the unparsed COMPRESS line and the DEFLATE bytes to the worker.
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    tail = deflate.compress(b"b NOOP\r\nc SELECT INBOX\r\n")
    tail += deflate.flush(zlib.Z_SYNC_FLUSH)
    client.send_raw(b"a LOGIN demo demo\r\nz COMPRESS DEFLATE\r\n" + tail)
    assert client.until_tagged("a")[-1].startswith(b"a OK")
    assert client.read_line() == b"z OK DEFLATE active"
    client.start_layer(deflate)
    assert client.until_tagged("b")[-1].startswith(b"b OK")
    assert client.until_tagged("c")[-1].startswith(b"c OK")
    assert client.command("d", "NOOP")[-1].startswith(b"d OK")
    client.close()


def test_decompression_bomb_in_the_worker_stays_bounded(daemon: Asimapd) -> None:
    client = _login(daemon, True)
    worker = daemon.wait_for_worker("demo")
    assert client.compress() == b"z OK DEFLATE active"
    before = _peak_kb(worker)
    client.send(b"x NOOP ")
    client.send_zeros(64)  # 1 GiB inflated
    client.send(b"\r\n")
    assert client.read_line() == b"x BAD [LIMIT] line too long"
    assert client.command("y", "NOOP")[-1].startswith(b"y OK")
    grown = _peak_kb(worker) - before
    assert grown < 64 * 1024, f"worker peak memory grew by {grown} KB"
    client.close()


def test_relay_passes_compressed_bytes_unchanged(daemon: Asimapd) -> None:
    """The client's bytes on the wire (inside TLS) are DEFLATE, not
    plaintext: a response read without inflating is not IMAP text."""
    client = _login(daemon, True)
    assert client.compress() == b"z OK DEFLATE active"
    inflate = client._inflate
    client._inflate = None
    client.line("n NOOP")
    deadline = time.monotonic() + 10
    raw = text = b""
    while b"n OK" not in text and time.monotonic() < deadline:
        chunk = client.sock.recv(4096)
        raw += chunk
        text += inflate.decompress(chunk)
    assert text.startswith(b"n OK")
    assert b"n OK" not in raw
    client.close()
