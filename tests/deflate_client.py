"""A small blocking IMAP client with a real client-side DEFLATE layer.

Used by the COMPRESS (RFC 4978) and UNAUTHENTICATE (RFC 8437) tests over
real sockets.  :class:`LineClient` speaks lines and literals on a socket
(plain or TLS); after :meth:`LineClient.compress` every byte it sends is
raw DEFLATE (zlib ``wbits=-15``, sync-flushed per write, as a real client
does) and every byte it receives is inflated.  :class:`DeflateIMAP4` is the
same layer under the standard library's ``imaplib``, for the "real client"
conversations (large FETCH, APPEND).
"""

from __future__ import annotations

import imaplib
import socket
import ssl
import zlib
from typing import Any

TIMEOUT = 15.0

# imaplib checks a command's states against its own table; teach it ours.
imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("UNAUTHENTICATE", ("AUTH", "SELECTED"))


class LineClient:
    """Lines in, lines out; optionally compressed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(TIMEOUT)
        self._buffer = bytearray()
        self._deflate: Any = None
        self._inflate: Any = None

    @classmethod
    def connect(cls, port: int, context: ssl.SSLContext | None = None) -> LineClient:
        raw = socket.create_connection(("127.0.0.1", port), TIMEOUT)
        if context is None:
            return cls(raw)
        return cls(context.wrap_socket(raw, server_hostname="127.0.0.1"))

    # sending -------------------------------------------------------------

    def compressed(self, data: bytes) -> bytes:
        """``data`` through the client's DEFLATE stream (sync-flushed)."""
        assert self._deflate is not None
        out: bytes = self._deflate.compress(data) + self._deflate.flush(
            zlib.Z_SYNC_FLUSH
        )
        return out

    def send_zeros(self, chunks: int, chunk: int = 16 * 1024 * 1024) -> None:
        """``chunks * chunk`` zero bytes through the DEFLATE stream, cheaply.

        With the window full of zeros, each further chunk compresses to the
        same bytes, so the client compresses two chunks and repeats the
        second: a 1 GiB bomb costs the test well under a second to make.
        """
        assert self._deflate is not None and chunks >= 2
        # A copy of our (level 1) deflater continues the same stream.
        fast = self._deflate.copy()
        zeros = bytes(chunk)
        first = fast.compress(zeros) + fast.flush(zlib.Z_SYNC_FLUSH)
        second = fast.compress(zeros) + fast.flush(zlib.Z_SYNC_FLUSH)
        third = fast.compress(zeros) + fast.flush(zlib.Z_SYNC_FLUSH)
        assert second == third, "zeros did not compress to repeatable blocks"
        self.send_raw(first)
        for _ in range(chunks - 1):
            self.send_raw(second)
        self._deflate = fast

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, data: bytes) -> None:
        self.send_raw(self.compressed(data) if self._deflate is not None else data)

    def line(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.send(data + b"\r\n")

    # receiving -------------------------------------------------------------

    def _fill(self) -> bool:
        data = self.sock.recv(256 * 1024)
        if not data:
            return False
        if self._inflate is not None:
            data = self._inflate.decompress(data)
        self._buffer += data
        return True

    def read_line(self) -> bytes:
        """One line without CRLF; raises EOFError if the server closed."""
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            if not self._fill():
                raise EOFError(f"connection closed; unread {bytes(self._buffer)!r}")

    def read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise EOFError("connection closed inside a literal")
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def until_tagged(self, tag: str) -> list[bytes]:
        """Every line up to and including the tagged one (literals inline)."""
        lines: list[bytes] = []
        while True:
            line = self.read_line()
            if line.endswith(b"}") and b"{" in line:
                size = int(line[line.rindex(b"{") + 1 : -1])
                line += b"\r\n" + self.read_exact(size)
                line += self.read_line()
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def command(self, tag: str, text: str) -> list[bytes]:
        self.line(f"{tag} {text}")
        return self.until_tagged(tag)

    def is_closed(self) -> bool:
        """True when the server closed the connection (reads EOF)."""
        try:
            while self._fill():
                pass
        except (ConnectionError, zlib.error):
            return True
        return True

    # layers ----------------------------------------------------------------

    def compress(self, tag: str = "z") -> bytes:
        """COMPRESS DEFLATE; returns the tagged line (read uncompressed)."""
        self.line(f"{tag} COMPRESS DEFLATE")
        reply = self.read_line()
        if reply.startswith(f"{tag} OK".encode()):
            self.start_layer()
        return reply

    def start_layer(self, deflate: Any = None) -> None:
        """Switch this side to DEFLATE (the server said OK); ``deflate`` is
        a stream already begun by bytes pipelined behind COMPRESS."""
        self._deflate = deflate or zlib.compressobj(1, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)
        # Bytes received behind the OK are the server's DEFLATE stream.
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._buffer += self._inflate.decompress(rest)

    def close(self) -> None:
        self.sock.close()


class DeflateIMAP4(imaplib.IMAP4_SSL):
    """``imaplib.IMAP4_SSL`` that can run COMPRESS=DEFLATE."""

    _deflater: Any = None
    _inflater: Any = None
    _pending = b""

    def compress(self) -> tuple[str, list[Any]]:
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        if typ == "OK":
            self._deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
            self._inflater = zlib.decompressobj(-15)
            self._pending = b""
        return typ, data

    def send(self, data: bytes) -> None:
        if self._deflater is not None:
            data = self._deflater.compress(data) + self._deflater.flush(
                zlib.Z_SYNC_FLUSH
            )
        super().send(data)

    def _more(self) -> bool:
        chunk = self.sock.recv(256 * 1024)
        if not chunk:
            return False
        self._pending += self._inflater.decompress(chunk)
        return True

    def read(self, size: int) -> bytes:
        if self._inflater is None:
            return super().read(size)
        while len(self._pending) < size and self._more():
            pass
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def readline(self) -> bytes:
        if self._inflater is None:
            return super().readline()
        while b"\n" not in self._pending and self._more():
            pass
        end = self._pending.find(b"\n") + 1 or len(self._pending)
        data, self._pending = self._pending[:end], self._pending[end:]
        return data
