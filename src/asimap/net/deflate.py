"""The COMPRESS=DEFLATE layer (RFC 4978): raw DEFLATE both ways, bounded.

RFC 4978 section 3: after the tagged OK to ``COMPRESS DEFLATE`` each
direction is one raw DEFLATE stream (RFC 1951, no zlib or gzip wrapper,
hence ``wbits`` negative), and the RFC asks the sender to flush so that
the peer can read every complete response (its "Compression Efficiency"
discussion) -- we end each write with
``Z_SYNC_FLUSH``, which costs a few bytes but never leaves a response
stuck in the compressor while the client waits for it.

The two halves are asymmetric on purpose:

* :class:`Deflater` (server to client) chooses its own memory: the full
  32 KB window, because mail compresses much better when the next
  message's headers can refer to the previous one's (measured on the
  corpus, sync-flushed per message: 4.4x with 32 KB, 3.2x with 8 KB --
  Dovecot's 4.4x), but a smaller hash table (``memLevel`` 6 instead of
  8), which costs nothing measurable: about 160 KB of zlib state instead
  of 256 KB, only on connections that asked for COMPRESS.
* :class:`Inflater` (client to server) must accept the client's 32 KB
  window, and must never turn a small input into a large allocation: a
  client can send a megabyte that inflates to a gigabyte of zeros.  Its
  output comes out in pieces of at most :data:`INFLATE_CHUNK` bytes, the
  compressed remainder waiting in zlib's ``unconsumed_tail``, so the
  protocol reader's own limits (line length, literal and command size)
  apply to inflated input exactly as to plain input, one piece at a time.
"""

from __future__ import annotations

import zlib

#: Most inflated bytes produced from one call (bounds memory per connection).
INFLATE_CHUNK = 64 * 1024
#: Compression level: zlib's default trade-off (Dovecot's default too).
LEVEL = 6
#: Compressor window (2**15 = 32 KB) and memory level: ~160 KB of state.
_DEFLATE_WBITS = -15
_DEFLATE_MEMLEVEL = 6
#: Decompressor window: the largest RFC 1951 allows, whatever the client used.
_INFLATE_WBITS = -15


class CompressionError(ConnectionError):
    """The client's compressed stream is corrupt; the connection cannot go on
    (nothing after the error can be decoded)."""


class Deflater:
    """Server-to-client half: every :meth:`compress` result is complete."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(
            LEVEL, zlib.DEFLATED, _DEFLATE_WBITS, _DEFLATE_MEMLEVEL
        )

    def compress(self, data: bytes) -> bytes:
        """``data`` compressed and sync-flushed (RFC 4978), so the
        client can inflate all of it without waiting for more."""
        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)


class Inflater:
    """Client-to-server half, with bounded output (module docstring)."""

    def __init__(self, chunk: int = INFLATE_CHUNK) -> None:
        self._z = zlib.decompressobj(_INFLATE_WBITS)
        self._chunk = chunk
        #: Compressed input not inflated yet (zlib's ``unconsumed_tail``).
        self._pending = b""

    @property
    def has_pending(self) -> bool:
        """True while compressed input waits to be inflated."""
        return bool(self._pending)

    @property
    def ended(self) -> bool:
        """The client ended its DEFLATE stream (a final block): no more
        input can follow, which we treat as end of input."""
        return self._z.eof

    def feed(self, data: bytes) -> bytes:
        """Add compressed ``data``; return at most one chunk of output.

        Call :meth:`more` until it returns ``b""`` before feeding again,
        so the pending input never grows beyond one received chunk.
        """
        self._pending += data
        return self.more()

    def more(self) -> bytes:
        """The next piece of output from pending input (``b""`` if none)."""
        if not self._pending or self._z.eof:
            self._pending = b""
            return b""
        try:
            out = self._z.decompress(self._pending, self._chunk)
        except zlib.error as exc:
            self._pending = b""
            raise CompressionError(f"corrupt DEFLATE stream: {exc}") from None
        tail = self._z.unconsumed_tail
        if not out and len(tail) == len(self._pending):
            # No progress is impossible for a valid stream; never spin on it.
            self._pending = b""
            raise CompressionError("DEFLATE stream made no progress")
        self._pending = tail
        return out
