"""COMPRESS=DEFLATE (RFC 4978): transcripts, then real sockets in-process.

The transcripts show the command's answers (RFC 4978 section 3 and the
COMPRESSIONACTIVE code); the socket tests run a real DEFLATE
stream both ways with ``--workers=off`` (worker mode, through the TLS
relay and a handed-over plain socket, is in ``test_worker_compress``):
a large FETCH and APPEND through ``imaplib``, commands pipelined in the
same packet as COMPRESS, IDLE, a decompression bomb and a corrupt stream.
"""

from __future__ import annotations

import resource
import zlib

from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles
from deflate_client import DeflateIMAP4, LineClient
from transcript import run_transcript

TIMEOUT = 15.0

# -- transcripts ---------------------------------------------------------------


async def test_compress_transcript_rfc4978_example() -> None:
    # RFC 4978 section 3's example, after LOGIN: OK, then compressed.
    await run_transcript(
        """
        C1 a CAPABILITY
        S1 * CAPABILITY %*
        S1 a OK %*
        C1 b LOGIN alice secret-a
        S1 b OK [CAPABILITY %* COMPRESS=DEFLATE %*] Logged in
        C1 c COMPRESS DEFLATE
        S1 c OK DEFLATE active
        C1 d NOOP
        S1 d OK %*
        """
    )


async def test_compress_error_cases() -> None:
    world = await run_transcript(
        """
        # Not before authentication (RFC 4978 formal syntax: command-auth).
        C1 a COMPRESS DEFLATE
        S1 a BAD COMPRESS not allowed in the not authenticated state
        C1 b LOGIN alice secret-a
        S1 b OK %*
        # Unknown mechanism and missing argument: BAD (section 3).
        C1 c COMPRESS GZIP
        S1 c BAD Unknown compression mechanism GZIP
        C1 d COMPRESS
        S1 d BAD %*
        C1 e COMPRESS DEFLATE EXTRA
        S1 e BAD %*
        # Case does not matter for the mechanism name.
        C1 f compress deflate
        S1 f OK DEFLATE active
        # A second COMPRESS: NO [COMPRESSIONACTIVE] (RFC 4978 section 3).
        C1 g COMPRESS DEFLATE
        S1 g NO [COMPRESSIONACTIVE] DEFLATE is already active
        C1 h SELECT INBOX
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 h OK %*
        C1 i COMPRESS DEFLATE
        S1 i NO [COMPRESSIONACTIVE] DEFLATE is already active
        """
    )
    del world


# -- real sockets, --workers=off ---------------------------------------------


def _login(server: ServerThread, tls_files: TlsFiles) -> LineClient:
    client = LineClient.connect(server.imaps_port, tls_files.client_context())
    assert client.read_line().startswith(b"* OK")
    assert client.command("a", f"LOGIN {USER} {PASSWORD}")[-1].startswith(b"a OK")
    return client


def test_capability_before_and_after_login(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    client = LineClient.connect(imap_server.imaps_port, tls_files.client_context())
    greeting = client.read_line()
    assert b"COMPRESS=DEFLATE" not in greeting
    reply = client.command("a", f"LOGIN {USER} {PASSWORD}")
    assert b" COMPRESS=DEFLATE " in reply[-1]
    client.close()


def test_imaplib_large_append_and_fetch_compressed(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    client = DeflateIMAP4(
        "127.0.0.1",
        imap_server.imaps_port,
        ssl_context=tls_files.client_context(),
        timeout=TIMEOUT,
    )
    client.login(USER, PASSWORD)
    assert client.compress()[0] == "OK"
    # ~3 MB of varied text: many reads, many DEFLATE blocks each way.
    body = b"".join(
        b"line %06d of a long message, some words to compress\r\n" % i
        for i in range(60_000)
    )
    message = b"Subject: big\r\nFrom: a@example.org\r\n\r\n" + body
    typ, data = client.append("INBOX", None, None, message)
    assert typ == "OK", data
    assert client.select("INBOX")[0] == "OK"
    typ, data = client.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    meta, fetched = data[0]  # type: ignore[misc]
    assert fetched == message
    assert b"RFC822.SIZE %d" % len(message) in meta
    assert client.compress()[0] == "NO"  # COMPRESSIONACTIVE
    assert client.logout()[0] == "BYE"


def test_commands_pipelined_after_compress_are_inflated(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    client = _login(imap_server, tls_files)
    # One write: the COMPRESS line, then compressed commands right behind it
    # (RFC 4978 section 3: compression starts after the command's CRLF).
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    tail = deflate.compress(b"b NOOP\r\nc SELECT INBOX\r\n") + deflate.flush(
        zlib.Z_SYNC_FLUSH
    )
    client.send_raw(b"z COMPRESS DEFLATE\r\n" + tail)
    assert client.read_line() == b"z OK DEFLATE active"
    client.start_layer(deflate)  # the stream the pipelined bytes started
    assert client.until_tagged("b")[-1].startswith(b"b OK")
    assert client.until_tagged("c")[-1].startswith(b"c OK")
    assert client.command("d", "CAPABILITY")[0].startswith(b"* CAPABILITY")
    client.close()


def test_idle_under_compression(imap_server: ServerThread, tls_files: TlsFiles) -> None:
    idler = _login(imap_server, tls_files)
    assert idler.compress().startswith(b"z OK")
    assert idler.command("s", "SELECT INBOX")[-1].startswith(b"s OK")
    idler.line("i IDLE")
    assert idler.read_line().startswith(b"+ ")
    other = _login(imap_server, tls_files)
    message = b"Subject: x\r\n\r\nhi\r\n"
    other.line(f"p APPEND INBOX {{{len(message)}+}}")
    other.send(message + b"\r\n")
    assert other.until_tagged("p")[-1].startswith(b"p OK")
    # The EXISTS arrives while IDLE waits: the server flushed it.
    assert idler.read_line() == b"* 1 EXISTS"
    idler.line("DONE")
    assert idler.until_tagged("i")[-1].startswith(b"i OK")
    idler.close()
    other.close()


def test_decompression_bomb_hits_the_line_limit(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    """1 GB of zeros in about 1 MB of DEFLATE: inflated a piece at a time,
    it meets the 64 KB line limit like plain input, and memory stays put
    (the server runs in this process: its peak RSS is ours)."""
    client = _login(imap_server, tls_files)
    assert client.compress().startswith(b"z OK")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    client.send(b"x NOOP ")
    client.send_zeros(64)  # 64 * 16 MiB = 1 GiB of inflated input
    client.send(b"\r\n")
    assert client.read_line() == b"x BAD [LIMIT] line too long"
    # The connection survives and is usable.
    assert client.command("y", "NOOP")[-1].startswith(b"y OK")
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 200 * 1024, f"peak memory grew by {grown_kb} KB"
    client.close()


def test_bomb_inside_a_literal_is_refused_before_reading(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    client = _login(imap_server, tls_files)
    assert client.compress().startswith(b"z OK")
    client.line("x LOGIN {1073741824+}")
    client.send_zeros(64)
    client.send(b" pw\r\n")
    assert client.read_line() == b"x BAD [TOOBIG] literal too big"
    assert client.command("y", "NOOP")[-1].startswith(b"y OK")
    client.close()


def test_corrupt_stream_closes_only_that_connection(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    client = _login(imap_server, tls_files)
    assert client.compress().startswith(b"z OK")
    # Block type 3 does not exist in RFC 1951: the stream is invalid.
    client.send_raw(b"\xff\xff\xff\xff")
    assert client.is_closed()
    fresh = _login(imap_server, tls_files)
    assert fresh.command("n", "NOOP")[-1].startswith(b"n OK")
    fresh.close()


def test_compress_on_plain_starttls_connection(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    """STARTTLS, LOGIN, COMPRESS: DEFLATE under TLS (RFC 4978)."""
    server = server_factory()
    client = LineClient.connect(server.imap_port)
    assert client.read_line().startswith(b"* OK")
    assert client.command("s", "STARTTLS")[-1].startswith(b"s OK")
    client.sock = tls_files.client_context().wrap_socket(
        client.sock, server_hostname="127.0.0.1"
    )
    assert client.command("a", f"LOGIN {USER} {PASSWORD}")[-1].startswith(b"a OK")
    assert client.compress().startswith(b"z OK")
    assert client.command("l", 'LIST "" "*"')[-1].startswith(b"l OK")
    client.close()
