"""Message bytes as RETR and TOP send them, and their exact sizes (pure).

What goes on the wire (RFC 1939 sections 3 and 7): the message with every
line ending in CRLF (a bare LF becomes CRLF; a bare CR is left alone, it
does not end a line), a CRLF appended when the message does not end with a
line end, each line starting with ``.`` byte-stuffed, and the ``.``
terminator line.

Sizes (LIST, STAT, RFC 1939 section 5 "exact size"): we report the octets
of the CRLF-normalised message, final CRLF included, *without* the
byte-stuffing dots and the terminator -- what the client holds once it has
un-stuffed the response.  This is what Dovecot reports, and it makes
``LIST n`` equal ``len()`` of what ``poplib``, fetchmail or curl return.

Large messages stream in :data:`CHUNK` sized pieces: each piece goes
through two ``bytes.replace`` calls for line ends and one for stuffing
(all in C), never a Python loop per line.  Chunk boundaries are moved
past a CR so that a CRLF is never split (which would make it look like a
bare LF), and whether the next chunk starts a line is carried over.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: Bytes of the stored message handled per step (before stuffing).
CHUNK = 256 * 1024

#: The end of the header: the first empty line (RFC 5322 section 2.1).
_HEADER_END = re.compile(rb"\n\r?\n")


def wire_size(raw: bytes) -> int:
    """Octets of ``raw`` once CRLF-normalised, final CRLF included."""
    if not raw:
        return 0
    bare_lf = raw.count(b"\n") - raw.count(b"\r\n")
    missing_end = 0 if raw.endswith(b"\n") else 2
    return len(raw) + bare_lf + missing_end


def normalise(raw: bytes) -> bytes:
    """The whole CRLF-normalised message (tests and small messages)."""
    data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if data and not data.endswith(b"\n"):
        data += b"\r\n"
    return data


def stuffed_chunks(raw: bytes, end: int | None = None) -> Iterator[bytes]:
    """``raw[:end]`` normalised and byte-stuffed, in pieces, followed by a
    closing CRLF if needed and the terminator line."""
    stop = len(raw) if end is None else end
    position = 0
    at_line_start = True
    while position < stop:
        cut = min(position + CHUNK, stop)
        if cut < stop and raw[cut - 1] == 0x0D:  # keep a CRLF in one piece
            cut += 1
        piece = raw[position:cut].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        piece = piece.replace(b"\n.", b"\n..")
        if at_line_start and piece.startswith(b"."):
            piece = b"." + piece
        at_line_start = piece.endswith(b"\n")
        position = cut
        yield piece
    if stop and not at_line_start:
        yield b"\r\n"
    yield b".\r\n"


def top_end(raw: bytes, lines: int) -> int:
    """Where TOP's extract ends: the header, the empty line, and the first
    ``lines`` body lines (RFC 1939 section 7).  A message without an empty
    line is all header."""
    if raw.startswith(b"\n"):
        body = 1
    elif raw.startswith(b"\r\n"):
        body = 2
    else:
        match = _HEADER_END.search(raw)
        if match is None:
            return len(raw)
        body = match.end()
    if lines == 0:
        return body
    if raw.count(b"\n", body) < lines:
        return len(raw)
    position = body
    for _ in range(lines):
        position = raw.index(b"\n", position) + 1
    return position
