"""Incremental, bounded framing of client input into IMAP commands (sans-IO).

An IMAP command is not one line: every literal (``{n}``, ``{n+}``, ``~{n}``,
``~{n+}``; RFC 3501 section 4.3, RFC 7888, RFC 3516) splits it into line
segments with raw bytes between them, and a *synchronizing* literal needs
the server's ``+`` continuation before the client sends it (RFC 3501 section
7.5).  This module turns a stream of bytes into *events*, and nothing else:
it owns no socket and no clock, so the asyncio driver, test harnesses and
fuzzers drive it identically (design.md section 3, modelled on h11).

How to drive it::

    reader.feed(data)                     # or feed_eof()
    while (event := reader.next_event()) is not None:
        ...                               # answer LiteralPending at once

Work happens lazily in :meth:`CommandReader.next_event`, so a mode switch
(raw line mode for SASL or IDLE, :meth:`discard_buffered` for STARTTLS)
applies to every byte not yet turned into an event.  The driver must drain
events after each ``feed`` to keep memory bounded by one read chunk plus the
limits below.

The state machine, as a table (state: what the reader is doing with bytes):

=========== ================================================================
LINE        looking for LF within ``max_line`` bytes; a complete line either
            ends the command (CommandFrame), announces a literal
            (LiteralPending → PAUSED, or FrameError when over a limit), or is
            a RawLine in raw line mode.
LONG_LINE   the line exceeded ``max_line``: bytes are dropped up to LF,
            keeping only the first bytes (for the tag) and the last bytes
            (for a literal marker); then FrameError "line too long".
PAUSED      a LiteralPending was emitted; nothing happens until the driver
            calls accept_literal() (→ LITERAL) or reject_literal().
LITERAL     copying exactly ``size`` bytes into the command.
DISCARD     counting away a literal of a command being dropped, never
            storing it (a 4 GB announcement costs nothing).
CLOSED      Eof was emitted; nothing more ever happens.
=========== ================================================================

A command being *dropped* (after reject_literal() of a non-synchronizing
literal or a limit hit on one) keeps being consumed line by line, its
further non-synchronizing literals discarded by counting, until a line that
ends it; then the pending FrameError (if any) is emitted.  A limit hit on a
synchronizing literal is reported at once: the client will not send it
(RFC 3501 section 7.5), so the next line is the next command.

Choices worth knowing:

* NUL bytes in a line are kept; the parser rejects them with a precise
  message (RFC 3501 section 9 forbids NUL outside literal8).
* Lines end with CRLF; a bare LF is accepted too (as Dovecot does).
* A literal marker is recognised only in the last :data:`_TAIL` bytes of a
  line and with at most 20 digits: the same rule whether the line was kept
  or skipped as too long, so framing never depends on chunking.
* Eof is emitted once when input has ended and no event is left; a command
  cut short by EOF is dropped silently (nobody is left to answer it).
* Nothing here raises on any input; misuse of the API (answering a literal
  that was not announced) raises RuntimeError.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from asimap.imap.limits import DEFAULT_LIMITS, Limits

# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandFrame:
    """One complete command.

    ``len(lines) == len(literals) + 1``; lines carry no CRLF and every line
    but the last ends with its literal marker, verbatim, so the parser knows
    which literals were binary or non-synchronizing.
    """

    lines: tuple[bytes, ...]
    literals: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class LiteralPending:
    """A line ended with a literal marker; the reader waits for a decision.

    The driver answers with accept_literal() (sending ``+`` first when
    ``synchronizing``) or reject_literal() (sending a tagged NO/BAD).
    ``lines``/``literals`` are the command so far, so the driver (or the
    parser) can decide from the command name, e.g. APPEND may take
    ``max_literal`` while other commands only ``max_small_literal``.
    """

    lines: tuple[bytes, ...]
    literals: tuple[bytes, ...]
    size: int
    synchronizing: bool
    binary: bool


@dataclass(frozen=True, slots=True)
class FrameError:
    """The command broke framing or a limit; answer ``tag BAD [code] text``.

    ``tag`` is None when the command's tag is unusable (send ``* BAD``).
    The reader has already resynchronised to the next command.
    """

    tag: str | None
    message: str
    code: str | None


@dataclass(frozen=True, slots=True)
class RawLine:
    """A line read in raw line mode (SASL response, IDLE ``DONE``)."""

    line: bytes


@dataclass(frozen=True, slots=True)
class Eof:
    """The client closed its side; no more events will follow."""


Event = CommandFrame | LiteralPending | FrameError | RawLine | Eof

# --------------------------------------------------------------------------
# Marker and tag recognition
# --------------------------------------------------------------------------

#: How many bytes at the end of a line may hold a literal marker.
_TAIL = 32

#: Received pieces of a literal at least this large are kept as they came
#: and joined once at its end (one copy of a 25 MB message, not two);
#: smaller ones are gathered into pieces of this size first, so that a
#: literal trickled in a byte at a time costs no object per byte.
_PIECE = 16 * 1024

# RFC 3501 section 9 "literal", RFC 7888 "literal+", RFC 3516 "literal8".
_MARKER_RE = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\Z")

#: Bytes that may not appear in a tag: RFC 3501 section 9, tag = 1*<any
#: ASTRING-CHAR except "+">; ASTRING-CHAR excludes atom-specials but
#: allows "]".
_TAG_FORBIDDEN = frozenset(b'(){%*"\\+ ')


@dataclass(frozen=True, slots=True)
class _Marker:
    size: int
    synchronizing: bool
    binary: bool


def _find_marker(line: bytes) -> _Marker | None:
    """Return the literal marker ending ``line``, looking only at its tail."""
    match = _MARKER_RE.search(line[-_TAIL:])
    if match is None:
        return None
    return _Marker(
        size=int(match.group(2)),
        synchronizing=not match.group(3),
        binary=bool(match.group(1)),
    )


def _first_token(line: bytes) -> tuple[bytes, bool]:
    """Return the first token and whether it is known to be complete."""
    space = line.find(b" ")
    if space < 0:
        return line, False
    return line[:space], True


def _valid_tag(token: bytes, max_tag: int) -> str | None:
    """Return ``token`` as a tag if it is one (RFC 3501 section 9)."""
    if not token or len(token) > max_tag:
        return None
    if any(b < 0x21 or b > 0x7E or b in _TAG_FORBIDDEN for b in token):
        return None
    return token.decode("ascii")


#: Commands whose literals are messages: their size limit is APPENDLIMIT,
#: refused by the session with ``NO [TOOBIG]`` (RFC 7889, RFC 8508).
_MESSAGE_COMMANDS = frozenset({b"APPEND", b"REPLACE"})

# --------------------------------------------------------------------------
# The reader
# --------------------------------------------------------------------------


class _State(enum.Enum):
    LINE = enum.auto()
    LONG_LINE = enum.auto()
    PAUSED = enum.auto()
    LITERAL = enum.auto()
    DISCARD = enum.auto()
    CLOSED = enum.auto()


class CommandReader:
    """Turns client bytes into :data:`Event` values; see the module doc."""

    def __init__(
        self, limits: Limits = DEFAULT_LIMITS, *, literal_plus: bool = True
    ) -> None:
        self._limits = limits
        #: False means LITERAL- (RFC 7888 section 5): non-synchronizing
        #: literals above ``max_nonsync_literal`` are refused.
        self._literal_plus = literal_plus
        self._buf = bytearray()
        #: Leading bytes of _buf already searched for LF in vain, so that a
        #: line trickled in one byte at a time costs O(n), not O(n^2).
        self._scanned = 0
        self._state = _State.LINE
        self._eof = False
        self._raw = False
        # The command being assembled.
        self._lines: list[bytes] = []
        self._literals: list[bytes] = []
        self._size = 0
        self._tag: str | None = None
        self._pending: _Marker | None = None
        # The literal being read: whole pieces, a tail being gathered, and
        # their total size.
        self._pieces: list[bytes] = []
        self._literal = bytearray()
        self._literal_size = 0
        self._remaining = 0
        # Dropping a command: consume it to its end, then emit _drop_error.
        self._dropping = False
        self._drop_error: FrameError | None = None
        # An over-long line: its first and last bytes.
        self._long_head = b""
        self._long_tail = b""

    # -- input ---------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Append received bytes; bytes after EOF are ignored."""
        if self._eof or self._state is _State.CLOSED or not data:
            return
        if (
            self._state is _State.LITERAL
            and not self._buf
            and len(data) < self._remaining
        ):
            # The middle of a big literal (a 25 MB APPEND arrives in
            # thousands of chunks): straight into it, without passing
            # through the input buffer and a slice of it.
            self._add_literal(data)
            self._remaining -= len(data)
            return
        if self._state is _State.DISCARD and not self._buf:
            # Count discarded literal bytes away at once, so that even a
            # driver that feeds several chunks before draining never holds
            # them.
            taken = min(self._remaining, len(data))
            self._remaining -= taken
            data = data[taken:]
        self._buf += data

    def feed_eof(self) -> None:
        """Note that the client closed its side."""
        self._eof = True

    @property
    def buffered(self) -> int:
        """Bytes held in memory: unprocessed input plus the partial command."""
        held = len(self._buf) + self._literal_size
        return held + sum(map(len, self._lines)) + sum(map(len, self._literals))

    def discard_buffered(self) -> int:
        """Drop all unprocessed input and any partial command; return count.

        Used right after STARTTLS: plaintext pipelined behind it must never
        be read as if it came over TLS (CVE-2011-0411).
        """
        count = self.buffered
        self._consume(len(self._buf))
        self._reset_command()
        self._dropping = False
        self._drop_error = None
        if self._state is not _State.CLOSED:
            self._state = _State.LINE
        return count

    def take_unprocessed(self) -> bytes:
        """Remove and return the input not yet turned into events.

        Only at a command boundary (right after a command frame, the
        moment a connection moves to a worker process): the bytes are whole
        commands the client pipelined, and the new owner's reader starts
        from them exactly where this one stopped.
        """
        if self._state is not _State.LINE or not self._at_boundary():
            raise RuntimeError("not at a command boundary")
        data = bytes(self._buf)
        self._consume(len(self._buf))
        return data

    def set_raw_line_mode(self, on: bool) -> None:
        """While on, each line at a command boundary is a RawLine event."""
        self._raw = on

    # -- answers to LiteralPending -----------------------------------------

    def accept_literal(self) -> None:
        """Read the announced literal into the command."""
        marker = self._take_pending()
        self._state = _State.LITERAL
        self._remaining = marker.size
        self._clear_literal()

    def reject_literal(self) -> None:
        """Drop the command whose literal was announced.

        A synchronizing literal will not be sent (the driver answers NO/BAD
        instead of ``+``), so the next line is the next command.  A
        non-synchronizing one is on its way and is discarded by counting,
        with the rest of its command.
        """
        marker = self._take_pending()
        self._reset_command()
        self._state = _State.LINE
        if not marker.synchronizing:
            self._dropping = True
            self._drop_error = None
            self._start_discard(marker.size)

    def _take_pending(self) -> _Marker:
        marker = self._pending
        if self._state is not _State.PAUSED or marker is None:
            raise RuntimeError("no literal is pending")
        self._pending = None
        return marker

    # -- event production ----------------------------------------------------

    def next_event(self) -> Event | None:
        """Return the next event, or None when more input is needed."""
        while True:
            state = self._state
            if state is _State.CLOSED or state is _State.PAUSED:
                return None
            if state is _State.DISCARD:
                progressed = self._step_discard()
            elif state is _State.LITERAL:
                progressed = self._step_literal()
            elif state is _State.LONG_LINE:
                progressed, event = self._step_long_line()
                if event is not None:
                    return event
            else:
                progressed, event = self._step_line()
                if event is not None:
                    return event
            if not progressed:
                if self._eof:
                    self._state = _State.CLOSED
                    self._consume(len(self._buf))
                    self._reset_command()
                    return Eof()
                return None

    def _consume(self, count: int) -> None:
        """Drop ``count`` leading bytes of input (O(1) for bytearray)."""
        del self._buf[:count]
        self._scanned = 0

    def _step_discard(self) -> bool:
        taken = min(self._remaining, len(self._buf))
        self._consume(taken)
        self._remaining -= taken
        if self._remaining:
            return False
        self._state = _State.LINE
        return True

    def _step_literal(self) -> bool:
        taken = min(self._remaining, len(self._buf))
        with memoryview(self._buf) as view:
            self._add_literal(view[:taken])  # no intermediate copy of the slice
        self._consume(taken)
        self._remaining -= taken
        if self._remaining:
            return False
        if self._literal:
            self._pieces.append(bytes(self._literal))
        literal = b"".join(self._pieces)
        self._literals.append(literal)
        self._size += len(literal)
        self._clear_literal()
        self._state = _State.LINE
        return True

    def _add_literal(self, data: bytes | memoryview) -> None:
        """Add received literal bytes (see :data:`_PIECE`)."""
        self._literal_size += len(data)
        if isinstance(data, bytes) and len(data) >= _PIECE:
            if self._literal:
                self._pieces.append(bytes(self._literal))
                self._literal = bytearray()
            self._pieces.append(data)
            return
        self._literal += data
        if len(self._literal) >= _PIECE:
            self._pieces.append(bytes(self._literal))
            self._literal = bytearray()

    def _clear_literal(self) -> None:
        self._pieces = []
        self._literal = bytearray()
        self._literal_size = 0

    def _step_line(self) -> tuple[bool, Event | None]:
        max_line = self._limits.max_line
        end = self._buf.find(b"\n", self._scanned, max_line)
        if end >= 0:
            raw_length = end + 1
            line = bytes(self._buf[:end])
            self._consume(raw_length)
            if line.endswith(b"\r"):
                line = line[:-1]
            return True, self._complete_line(line, raw_length)
        if len(self._buf) < max_line:
            self._scanned = len(self._buf)
            return False, None
        # RFC 3501 leaves line length to the server; we bound it and drop
        # the excess unread (design.md section 4 rule 2).
        self._long_head = bytes(self._buf[: min(self._limits.max_tag + 1, max_line)])
        self._long_tail = bytes(self._buf[max(0, max_line - _TAIL) : max_line])
        self._consume(max_line)
        self._state = _State.LONG_LINE
        return True, None

    def _step_long_line(self) -> tuple[bool, Event | None]:
        end = self._buf.find(b"\n")
        if end < 0:
            self._long_tail = (self._long_tail + self._buf)[-_TAIL:]
            self._consume(len(self._buf))
            return False, None
        tail = (self._long_tail + self._buf[:end])[-_TAIL:]
        self._consume(end + 1)
        if tail.endswith(b"\r"):
            tail = tail[:-1]
        self._state = _State.LINE
        return True, self._complete_long_line(self._long_head, tail)

    # -- line handling -------------------------------------------------------

    def _at_boundary(self) -> bool:
        return not self._lines and not self._dropping

    def _complete_line(self, line: bytes, raw_length: int) -> Event | None:
        if self._raw and self._at_boundary():
            return RawLine(line)
        marker = _find_marker(line)
        if self._dropping:
            return self._continue_drop(marker)
        first = not self._lines
        self._lines.append(line)
        self._size += raw_length
        if first:
            token, _ = _first_token(line)
            self._tag = _valid_tag(token, self._limits.max_tag)
            if len(token) > self._limits.max_tag:
                return self._abort(FrameError(None, "tag too long", "LIMIT"), marker)
        if self._size > self._limits.max_command:
            return self._abort(self._error("command too long", "LIMIT"), marker)
        if marker is None:
            frame = CommandFrame(tuple(self._lines), tuple(self._literals))
            self._reset_command()
            return frame
        error = self._check_literal(marker)
        if error is not None:
            return self._abort(error, marker)
        self._pending = marker
        self._state = _State.PAUSED
        return LiteralPending(
            lines=tuple(self._lines),
            literals=tuple(self._literals),
            size=marker.size,
            synchronizing=marker.synchronizing,
            binary=marker.binary,
        )

    def _complete_long_line(self, head: bytes, tail: bytes) -> Event | None:
        self._long_head = self._long_tail = b""
        if self._raw and self._at_boundary():
            return FrameError(None, "line too long", "LIMIT")
        marker = _find_marker(tail)
        if self._dropping:
            return self._continue_drop(marker)
        if not self._lines:
            token, complete = _first_token(head)
            self._tag = _valid_tag(token, self._limits.max_tag) if complete else None
        return self._abort(self._error("line too long", "LIMIT"), marker)

    def _check_literal(self, marker: _Marker) -> FrameError | None:
        """Apply the literal limits before a single literal byte is read."""
        limits = self._limits
        if len(self._literals) >= limits.max_literals:
            return self._error("too many literals", "LIMIT")
        if marker.size > self._literal_cap():
            return self._error("literal too big", "TOOBIG")
        if (
            not self._literal_plus
            and not marker.synchronizing
            and marker.size > limits.max_nonsync_literal
        ):
            # RFC 7888 section 5: a LITERAL- server refuses a larger
            # non-synchronizing literal as section 4 describes -- tagged
            # BAD [TOOBIG] (TOOBIG is required for APPEND), the literal's
            # bytes read and dropped, the connection kept.
            return self._error("non-synchronizing literal too big", "TOOBIG")
        if self._size + marker.size > limits.max_command:
            return self._error("command too big", "TOOBIG")
        return None

    def _literal_cap(self) -> int:
        """The largest single literal this command may announce.

        Message-carrying commands (APPEND, and REPLACE of RFC 8508) are
        capped only by ``max_command``: their per-message limit is
        APPENDLIMIT, which RFC 7889 section 4 answers with ``NO [TOOBIG]``
        -- the session's decision on the LiteralPending, still before a
        byte is read.  Every other command gets ``max_literal`` here.
        """
        words = self._lines[0].split(b" ", 3) if self._lines else []
        if len(words) > 1 and words[1].upper() == b"UID":
            words = words[1:]
        if len(words) > 1 and words[1].upper() in _MESSAGE_COMMANDS:
            return max(self._limits.max_literal, self._limits.max_command)
        return self._limits.max_literal

    def _error(self, message: str, code: str | None) -> FrameError:
        return FrameError(self._tag, message, code)

    def _abort(self, error: FrameError, marker: _Marker | None) -> Event | None:
        """Drop the current command because of ``error``.

        With a non-synchronizing literal announced, its bytes and the rest of
        the command are coming regardless: consume them, then report.
        """
        self._reset_command()
        if marker is not None and not marker.synchronizing:
            self._dropping = True
            self._drop_error = error
            self._start_discard(marker.size)
            return None
        return error

    def _continue_drop(self, marker: _Marker | None) -> Event | None:
        if marker is not None and not marker.synchronizing:
            self._start_discard(marker.size)
            return None
        # The dropped command ended here (a synchronizing literal will not
        # be sent without our "+", which never comes).
        error = self._drop_error
        self._dropping = False
        self._drop_error = None
        return error

    def _start_discard(self, size: int) -> None:
        self._remaining = size
        self._state = _State.DISCARD

    def _reset_command(self) -> None:
        self._lines = []
        self._literals = []
        self._clear_literal()
        self._size = 0
        self._tag = None
        self._pending = None
        self._long_head = self._long_tail = b""
