"""A raw IMAP conversation that keeps every octet the server sent.

The comparison is byte for byte, so this client parses nothing beyond what
it must to find where a response ends (RFC 9051 section 4.3: a line that
ends in ``{n}`` is followed by exactly ``n`` octets, then the response goes
on) and where a command's tagged reply is.  Literals *we* send are always
synchronizing (``{n}``, wait for ``+``), so both servers see exactly the
same bytes whether or not they offer LITERAL+.
"""

from __future__ import annotations

import re
import socket
import ssl

_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\+?\}\r\n\Z")
_CLIENT_LITERAL = re.compile(rb"~?\{(\d+)\}\r\n")

#: A server literal above this is a harness failure, not a comparison.
MAX_LITERAL = 64 * 1024 * 1024


class WireError(Exception):
    """The conversation broke (closed, timed out, unexpected continuation)."""


def _context() -> ssl.SSLContext:
    """Both servers use throw-away self-signed certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class RawClient:
    """One connection; ``run(tag, command)`` returns the raw responses."""

    def __init__(
        self, host: str, port: int, *, security: str, timeout: float = 300
    ) -> None:
        raw = socket.create_connection((host, port), timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock: socket.socket = raw
        self.buffer = b""
        if security == "tls":
            self.sock = _context().wrap_socket(raw)
        self.greeting = self.read_response()
        if security == "starttls":
            replies = self.run(b"S0", b"STARTTLS")
            if not replies[-1].startswith(b"S0 OK"):
                raise WireError(f"STARTTLS refused: {replies!r}")
            self.sock = _context().wrap_socket(raw)
            self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(1 << 16)
        except (TimeoutError, OSError) as exc:
            raise WireError(f"read failed: {exc!r}") from exc
        if not chunk:
            raise WireError("connection closed by server")
        self.buffer += chunk

    def _read_line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line, self.buffer = self.buffer[: end + 2], self.buffer[end + 2 :]
                return line
            self._fill()

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_response(self) -> bytes:
        """One whole response: its lines and literals, CRLFs included."""
        parts: list[bytes] = []
        while True:
            line = self._read_line()
            parts.append(line)
            match = _LITERAL_AT_END.search(line)
            if match is None:
                return b"".join(parts)
            size = int(match[1])
            if size > MAX_LITERAL:
                raise WireError(f"server literal of {size} octets")
            parts.append(self._read_exactly(size))

    def run(self, tag: bytes, command: bytes) -> list[bytes]:
        """Send ``tag command`` (literals as ``{n}\\r\\n`` + data inside) and
        read until the tagged reply; every response, tagged one last."""
        pieces = _split_literals(tag + b" " + command + b"\r\n")
        self.sock.sendall(pieces[0])
        responses: list[bytes] = []
        for piece in pieces[1:]:
            while True:
                response = self.read_response()
                if response.startswith(b"+"):
                    break
                responses.append(response)
                if response.startswith(tag + b" "):
                    return responses  # the literal was refused
            self.sock.sendall(piece)
        prefix = tag + b" "
        while True:
            response = self.read_response()
            if response.startswith(b"+") and not command.upper().startswith(
                (b"IDLE", b"AUTHENTICATE")
            ):
                raise WireError(f"unexpected continuation {response!r}")
            responses.append(response)
            if response.startswith(prefix):
                return responses


def _split_literals(data: bytes) -> list[bytes]:
    """Cut a command after each ``{n}\\r\\n`` marker: the first piece goes at
    once, each later one after the server's ``+`` continuation."""
    pieces: list[bytes] = []
    start = 0
    position = 0
    while True:
        match = _CLIENT_LITERAL.search(data, position)
        if match is None:
            pieces.append(data[start:])
            return pieces
        pieces.append(data[start : match.end()])
        start = match.end()
        position = match.end() + int(match[1])
