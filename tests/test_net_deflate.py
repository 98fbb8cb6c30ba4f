"""The sans-IO halves of COMPRESS=DEFLATE (``asimap.net.deflate``).

The inflater must never produce more than one chunk per call, whatever
the input's ratio, and must report a corrupt stream as a connection
error; the deflater's every output must be complete for the peer.
"""

from __future__ import annotations

import zlib

import pytest

from asimap.net.deflate import CompressionError, Deflater, Inflater


def _client_stream(data: bytes, final: bool = False) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


def test_every_deflater_output_inflates_completely() -> None:
    deflater = Deflater()
    peer = zlib.decompressobj(-15)
    for piece in (b"* 1 EXISTS\r\n", b"a OK done\r\n" * 1000, b"", b"x"):
        assert peer.decompress(deflater.compress(piece)) == piece


def test_inflater_output_is_bounded_per_call() -> None:
    bomb = _client_stream(bytes(8 * 1024 * 1024))  # ~8 KB compressed
    inflater = Inflater(chunk=4096)
    total = 0
    out = inflater.feed(bomb)
    while out:
        assert len(out) <= 4096
        total += len(out)
        out = inflater.more()
    assert total == 8 * 1024 * 1024
    assert not inflater.has_pending


def test_inflater_fed_one_byte_at_a_time() -> None:
    text = b"a NOOP\r\nb LOGOUT\r\n" * 50
    stream = _client_stream(text)
    inflater = Inflater(chunk=7)
    got = bytearray()
    for i in range(len(stream)):
        out = inflater.feed(stream[i : i + 1])
        while out:
            got += out
            out = inflater.more()
    assert bytes(got) == text


def test_corrupt_stream_is_a_connection_error() -> None:
    inflater = Inflater()
    with pytest.raises(CompressionError):
        inflater.feed(b"\xff\xff\xff\xff")
    assert issubclass(CompressionError, ConnectionError)


def test_end_of_the_client_stream_is_seen() -> None:
    inflater = Inflater()
    assert inflater.feed(_client_stream(b"a NOOP\r\n", final=True)) == b"a NOOP\r\n"
    assert inflater.ended
    assert inflater.feed(b"anything after the end") == b""
