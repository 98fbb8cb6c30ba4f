"""Split client bytes into POP3 command lines, with a bound on line length.

RFC 2449 section 4 limits a command line to 255 octets including the CRLF;
we accept up to :data:`MAX_LINE` because some clients send long ``AUTH``
initial responses or passwords.  A longer line is reported once as
:class:`LineTooLong` and its remaining bytes are dropped up to the next LF,
so a client can never make us buffer more than the limit (design.md
section 4, rule 2) and the next command is read normally.

Sans-IO: :meth:`LineReader.feed` takes bytes, :meth:`LineReader.next_event`
hands out events; no sockets, no clocks.  A bare LF ends a line as well as
CRLF (clients on Unix pipes), the CR is never part of the line.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Longest accepted line, CRLF included (RFC 2449 requires 255).
MAX_LINE = 1024


@dataclass(frozen=True, slots=True)
class Line:
    """One complete line, without its line end."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line exceeded the limit; its bytes were (or will be) dropped."""

    limit: int


@dataclass(frozen=True, slots=True)
class Eof:
    """The client closed its side; a partial last line is discarded."""


Event = Line | LineTooLong | Eof


class LineReader:
    """Incremental, bounded line splitter (see the module docstring)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        #: Where the search for LF resumes, so trickled bytes cost O(n).
        self._scanned = 0
        #: True while dropping the rest of an over-long line.
        self._skipping = False
        self._eof = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet handed out as a line."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def feed_eof(self) -> None:
        self._eof = True

    def discard_buffered(self) -> int:
        """Drop every unread byte (STLS, RFC 2595 section 4); returns count."""
        dropped = len(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        self._skipping = False
        return dropped

    def take_unprocessed(self) -> bytes:
        """Remove and return the unread bytes (pipelined commands), for the
        worker process that takes the connection over after login."""
        data = b"" if self._skipping else bytes(self._buffer)
        self.discard_buffered()
        return data

    def next_event(self) -> Event | None:
        """The next event, or None when more bytes are needed."""
        while True:
            newline = self._buffer.find(b"\n", self._scanned)
            if newline < 0:
                if self._skipping:
                    self._buffer.clear()
                    self._scanned = 0
                elif len(self._buffer) >= self.max_line:
                    # Too long already: report now, drop what we have, and
                    # keep dropping until the LF arrives.
                    self._buffer.clear()
                    self._scanned = 0
                    self._skipping = True
                    return LineTooLong(self.max_line)
                else:
                    self._scanned = len(self._buffer)
                if self._eof:
                    self._buffer.clear()
                    return Eof()
                return None
            too_long = newline + 1 > self.max_line
            line = b"" if too_long or self._skipping else bytes(self._buffer[:newline])
            del self._buffer[: newline + 1]
            self._scanned = 0
            if self._skipping:
                self._skipping = False
                continue
            if too_long:
                return LineTooLong(self.max_line)
            if line.endswith(b"\r"):
                line = line[:-1]
            return Line(line)
