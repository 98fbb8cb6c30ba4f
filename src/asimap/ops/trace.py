"""Per-connection protocol traces (``--trace`` / ``TRACE``, ``--trace-dir``).

asimap 2.x users debug a misbehaving client by turning tracing on and
reading the IMAP conversation afterwards (design.md section 2).  The driver
reports every byte both ways through one narrow interface, :class:`Tracer`
(design.md section 3: operations are side channels the core calls, never
the other way round).  Disabled, the tracer is :data:`NULL_TRACER`, whose
methods do nothing: one method call per chunk is the whole cost.

Enabled, :class:`TraceDirectory` writes one file per connection, as JSON
lines (one object a line, easy to ``grep`` and to load)::

    {"t": 0.0, "event": "connect", "peer": "127.0.0.1", "listener": "imaps"}
    {"t": 0.000412, "dir": "s", "data": "* OK [CAPABILITY ...] ready\\r\\n"}
    {"t": 0.013, "dir": "c", "data": "a LOGIN demo ***\\r\\n"}
    {"t": 0.2, "event": "close"}

``t`` is seconds since the connection was accepted (monotonic clock);
``dir`` is ``c`` for client bytes and ``s`` for server bytes.  ``data`` is
one protocol line or one literal: CR and LF are written as ``\\r`` and
``\\n``, a backslash as ``\\\\``, and bytes that are not UTF-8 as ``\\xNN``,
so the exact bytes can be recovered from any line that was not shortened.

What a trace never contains, and why:

* passwords: LOGIN's password argument (quoted, atom or literal), the
  SASL initial response of AUTHENTICATE (RFC 4959) and every SASL
  response line of the exchange (RFC 3501 section 6.2.2) become ``***``.
  Redaction is done on the client bytes by recognising the command, so it
  holds whatever the session does with them;
* unbounded data: a line or literal longer than :data:`MAX_CHUNK` bytes
  keeps its first :data:`MAX_CHUNK` bytes and ends with ``…[N bytes]``
  (N bytes left out), so an APPEND of a 50 MB message costs a few KB of
  trace and a 4 GB literal announcement costs nothing.

POP3 conversations are traced the same way (lines only, no literals);
``PASS``'s argument, ``APOP``'s digest and ``AUTH``'s initial response
and SASL lines become ``***``.

Files live in ``trace_dir`` (created mode 0700; each file 0600, because a
trace holds mail), named ``<UTC timestamp>-<peer>-<pid>-<counter>.jsonl``.
In worker mode those files hold each conversation up to its login; the
user's worker writes the rest into its own rotating per-user file
(:mod:`asimap.ops.trace_files`).
Writes go through a 64 KiB buffer -- small blocking writes to a local
file, never a long stall of the event loop -- flushed at least once a
second while data flows, and on close.  Tracing can never break serving:
if the directory or file cannot be created, the connection is served
untraced and the failure is logged.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

#: Bytes of one line or literal kept in a trace; the rest is counted.
MAX_CHUNK = 4096
#: Write buffer of a trace file.
WRITE_BUFFER = 64 * 1024
#: Longest time buffered trace data waits before being flushed (seconds).
FLUSH_INTERVAL = 1.0

REDACTED = b"***"

# A literal marker ends a line: ``{N}``, ``{N+}`` (RFC 7888), ``~{N}``
# (RFC 3516 literal8).  At most 20 digits, as the reader accepts.
_LITERAL_MARKER = re.compile(rb"~?\{(\d{1,20})(\+?)\}\r?\n\Z")
#: Bytes of a line's end kept even when the line is cut, to find a marker.
_TAIL = 32


class Tracer(Protocol):
    """What the connection driver reports; one object per connection."""

    def on_connect(self, peer: str, listener: str) -> None: ...

    def on_client_bytes(self, data: bytes) -> None: ...

    def on_server_bytes(self, data: bytes) -> None: ...

    def on_tls(self) -> None: ...

    def on_close(self) -> None: ...


class NullTracer:
    """Tracing disabled: every report is dropped at the cost of a call."""

    def on_connect(self, peer: str, listener: str) -> None:
        pass

    def on_client_bytes(self, data: bytes) -> None:
        pass

    def on_server_bytes(self, data: bytes) -> None:
        pass

    def on_tls(self) -> None:
        pass

    def on_close(self) -> None:
        pass


NULL_TRACER = NullTracer()


def escape(data: bytes) -> str:
    r"""Bytes as readable, reversible text: ``\\``, ``\r``, ``\n``, ``\xNN``."""
    text = data.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")
    return text.replace("\r", "\\r").replace("\n", "\\n")


# ---------------------------------------------------------------------------
# Framing: bytes of one direction into lines and literals, bounded
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Chunk:
    """A line (CRLF included) or a literal, cut to :data:`MAX_CHUNK`."""

    kept: bytearray = field(default_factory=bytearray)
    dropped: int = 0
    tail: bytes = b""

    def add(self, data: bytes, start: int, stop: int) -> None:
        """Count ``data[start:stop]``, keeping it only up to the bound."""
        room = MAX_CHUNK - len(self.kept)
        if room > 0:
            self.kept += data[start : min(stop, start + room)]
        self.dropped += max(0, stop - start - max(room, 0))

    def add_line_bytes(self, data: bytes, start: int, stop: int) -> None:
        self.add(data, start, stop)
        self.tail = (self.tail + data[max(start, stop - _TAIL) : stop])[-_TAIL:]

    def literal_marker(self) -> tuple[int, bool] | None:
        """``(size, synchronizing)`` when the line ends with a literal marker."""
        match = _LITERAL_MARKER.search(self.tail)
        if match is None:
            return None
        return int(match.group(1)), match.group(2) != b"+"

    def render(self, replacement: bytes | None = None) -> str:
        if replacement is not None:
            return escape(replacement)
        text = escape(bytes(self.kept))
        if self.dropped:
            text += f"…[{self.dropped} bytes]"
        return text


@dataclass(slots=True)
class _Segment:
    kind: str  # "line" or "literal"
    chunk: _Chunk


class _Framer:
    """Splits one direction's bytes into line and literal segments.

    A line ending with a literal marker is followed by that many bytes of
    literal (RFC 3501 section 4.3).  For a synchronizing literal the client
    waits for the server's continuation (section 7.5), so the framer of
    client bytes is told by :meth:`literal_refused` when the server refused
    it instead and the next bytes are a new line.
    """

    def __init__(self, follow_synchronizing: bool, *, literals: bool = True) -> None:
        self._follow_sync = follow_synchronizing
        #: False for POP3, which has lines only (RFC 1939 section 3).
        self._literals = literals
        self._line = _Chunk()
        self._literal: _Chunk | None = None
        self._literal_left = 0
        #: Size of a synchronizing literal announced but not yet accepted.
        self.pending_sync: int | None = None

    def feed(self, data: bytes) -> list[_Segment]:
        segments: list[_Segment] = []
        pos, end = 0, len(data)
        while pos < end:
            if self.pending_sync is not None:
                # The client did not wait for "+": take it as the literal.
                self.literal_accepted()
            if self._literal is not None:
                take = min(self._literal_left, end - pos)
                self._literal.add(data, pos, pos + take)
                self._literal_left -= take
                pos += take
                if self._literal_left == 0:
                    segments.append(_Segment("literal", self._literal))
                    self._literal = None
                continue
            newline = data.find(b"\n", pos)
            if newline < 0:
                self._line.add_line_bytes(data, pos, end)
                break
            self._line.add_line_bytes(data, pos, newline + 1)
            pos = newline + 1
            line, self._line = self._line, _Chunk()
            segments.append(_Segment("line", line))
            marker = line.literal_marker() if self._literals else None
            if marker is None:
                continue
            size, synchronizing = marker
            if synchronizing and self._follow_sync:
                self.pending_sync = size
            elif size == 0:
                segments.append(_Segment("literal", _Chunk()))
            else:
                self._start_literal(size)
        return segments

    def flush(self) -> list[_Segment]:
        """Whatever is left at the end of the connection."""
        segments: list[_Segment] = []
        if self._literal is not None and (self._literal.kept or self._literal.dropped):
            segments.append(_Segment("literal", self._literal))
        if self._line.kept or self._line.dropped:
            segments.append(_Segment("line", self._line))
        self._literal, self._line = None, _Chunk()
        return segments

    def literal_accepted(self) -> None:
        if self.pending_sync is not None:
            size, self.pending_sync = self.pending_sync, None
            if size:
                self._start_literal(size)

    def literal_refused(self) -> None:
        self.pending_sync = None

    def _start_literal(self, size: int) -> None:
        self._literal = _Chunk()
        self._literal_left = size


# ---------------------------------------------------------------------------
# Redaction: which client arguments are secrets
# ---------------------------------------------------------------------------

#: Commands with secret arguments, and the index of the first secret one
#: (0 is the first argument after the command name).
_SECRET_FROM = {b"LOGIN": 1, b"AUTHENTICATE": 1}
_TAG_AND_NAME = re.compile(rb"([^ \r\n]*) ([A-Za-z]+)")


@dataclass(slots=True)
class _Command:
    """The client command being traced, as far as redaction needs it."""

    tag: bytes
    secret_from: int | None
    args: int = 0
    sasl: bool = False


def _redact_args(text: bytes, command: _Command) -> bytes:
    """Replace every argument at or past ``secret_from`` by ``***``.

    Tokens are quoted strings (with backslash escapes), literal markers
    and atoms; the count carries over between the line segments of a
    command so a literal argument is counted where it stands.
    """
    assert command.secret_from is not None
    out = bytearray()
    end = len(text.rstrip(b"\r\n"))
    index = 0
    while index < end:
        if text[index] == 0x20:
            out.append(0x20)
            index += 1
            continue
        start = index
        if text[index] == 0x22:  # quoted string
            index += 1
            while index < end and text[index] != 0x22:
                index += 2 if text[index] == 0x5C else 1
            index = min(index + 1, end)
        else:
            while index < end and text[index] != 0x20:
                index += 1
        token = text[start:index]
        is_marker = _LITERAL_MARKER.search(token + b"\n") is not None
        if command.args >= command.secret_from and not is_marker:
            out += REDACTED
        else:
            out += token
        if not is_marker:
            command.args += 1
    return bytes(out + text[end:])


class _ClientRedactor:
    """Follows client commands to know which segments hold secrets."""

    def __init__(self) -> None:
        self.command: _Command | None = None
        #: The literal being read is a secret argument.
        self._secret_literal = False

    def line(self, chunk: _Chunk, starts_literal: bool) -> bytes | None:
        """The replacement text for a line, or None to keep it."""
        raw = bytes(chunk.kept)
        command = self.command
        if command is not None and command.sasl:
            # RFC 3501 6.2.2: every client line is a SASL response.
            return REDACTED + b"\r\n"
        if command is None:
            match = _TAG_AND_NAME.match(raw)
            name = match.group(2).upper() if match else b""
            tag = match.group(1) if match else b""
            command = _Command(tag, _SECRET_FROM.get(name))
            self.command = command
            if command.secret_from is None:
                replacement = None
            else:
                assert match is not None
                head = raw[: match.end()]
                replacement = head + _redact_args(raw[match.end() :], command)
                if name == b"AUTHENTICATE" and not starts_literal:
                    command.sasl = True
        elif command.secret_from is not None:
            replacement = _redact_args(raw, command)
        else:
            replacement = None
        self._secret_literal = bool(
            starts_literal
            and command.secret_from is not None
            and command.args >= command.secret_from
        )
        if starts_literal:
            if command.secret_from is not None:
                command.args += 1
        elif not command.sasl:
            self.command = None
        if replacement is not None and chunk.dropped:
            replacement += b"..."
        return replacement

    def literal(self) -> bytes | None:
        if self._secret_literal:
            self._secret_literal = False
            return REDACTED
        return None

    def server_line(self, line: bytes) -> None:
        """A tagged server response ends the command it answers."""
        command = self.command
        if command is not None and line.startswith(command.tag + b" "):
            self.command = None


class _Pop3Redactor:
    """The secrets of a POP3 conversation: ``PASS``'s argument, ``APOP``'s
    digest (RFC 1939 section 7), ``AUTH``'s initial response and every
    client line of the SASL exchange until the server's ``+OK``/``-ERR``
    (RFC 5034 section 4)."""

    def __init__(self) -> None:
        self.command: _Command | None = None
        self._sasl = False

    def line(self, chunk: _Chunk, starts_literal: bool) -> bytes | None:
        del starts_literal  # POP3 has no literals
        if self._sasl:
            return REDACTED + b"\r\n"
        raw = bytes(chunk.kept)
        words = raw.rstrip(b"\r\n").split(b" ")
        name = words[0].upper()
        keep = {b"PASS": 1, b"APOP": 2, b"AUTH": 2}.get(name)
        if name == b"AUTH" and len(words) >= 2:
            self._sasl = True
        if keep is None or len(words) <= keep:
            return None
        return b" ".join([*words[:keep], REDACTED]) + b"\r\n"

    def literal(self) -> bytes | None:
        return None

    def server_line(self, line: bytes) -> None:
        if line.startswith((b"+OK", b"-ERR")):
            self._sasl = False


# ---------------------------------------------------------------------------
# The file tracer
# ---------------------------------------------------------------------------


class TraceStream(Protocol):
    """Where a :class:`FileTracer` writes: a file of its own, or its
    connection's share of a per-user file (:mod:`asimap.ops.trace_files`)."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class FileTracer:
    """Writes one connection's trace to an open file (see module doc)."""

    def __init__(
        self,
        stream: TraceStream,
        *,
        protocol: str = "imap",
        fields: dict[str, object] | None = None,
    ) -> None:
        """``protocol``: ``imap`` or ``pop3`` (framing and redaction);
        ``fields`` are added to every record (the connection's id when
        connections share a file)."""
        self._stream = stream
        self._start = time.monotonic()
        self._last_flush = self._start
        imap = protocol != "pop3"
        self._client = _Framer(follow_synchronizing=True, literals=imap)
        self._server = _Framer(follow_synchronizing=False, literals=imap)
        self._redactor: _ClientRedactor | _Pop3Redactor = (
            _ClientRedactor() if imap else _Pop3Redactor()
        )
        self._fields = fields or {}
        self._closed = False

    def on_connect(self, peer: str, listener: str) -> None:
        self._record({"event": "connect", "peer": peer, "listener": listener})

    def on_client_bytes(self, data: bytes) -> None:
        if self._closed:
            return
        for segment in self._client.feed(data):
            self._client_segment(segment)

    def on_server_bytes(self, data: bytes) -> None:
        if self._closed:
            return
        for segment in self._server.feed(data):
            if segment.kind == "line":
                self._server_line(bytes(segment.chunk.kept))
            self._record({"dir": "s", "data": segment.chunk.render()})

    def on_tls(self) -> None:
        self._record({"event": "tls"})

    def on_close(self) -> None:
        if self._closed:
            return
        for segment in self._client.flush():
            self._client_segment(segment)
        for segment in self._server.flush():
            self._record({"dir": "s", "data": segment.chunk.render()})
        self._record({"event": "close"})
        self._closed = True
        try:
            self._stream.close()
        except OSError as exc:
            log.warning("could not write a protocol trace: %s", exc)

    def _client_segment(self, segment: _Segment) -> None:
        if segment.kind == "line":
            starts_literal = segment.chunk.literal_marker() is not None
            replacement = self._redactor.line(segment.chunk, starts_literal)
        else:
            replacement = self._redactor.literal()
        self._record({"dir": "c", "data": segment.chunk.render(replacement)})

    def _server_line(self, line: bytes) -> None:
        # A continuation lets a pending synchronizing literal come; a tagged
        # answer instead means it was refused (RFC 3501 section 7.5).
        if isinstance(self._redactor, _Pop3Redactor):
            self._redactor.server_line(line)
            return
        if line.startswith(b"+"):
            self._client.literal_accepted()
            return
        command = self._redactor.command
        tagged = command is not None and line.startswith(command.tag + b" ")
        if tagged or line.startswith(b"* BAD"):
            self._client.literal_refused()
        self._redactor.server_line(line)

    def _record(self, fields: dict[str, object]) -> None:
        if self._closed:
            return
        now = time.monotonic()
        entry = {"t": round(now - self._start, 6), **self._fields, **fields}
        try:
            self._stream.write(json.dumps(entry, ensure_ascii=False) + "\n")
            if now - self._last_flush >= FLUSH_INTERVAL:
                self._last_flush = now
                self._stream.flush()
        except OSError as exc:
            log.warning("protocol trace stopped: %s", exc)
            self._closed = True


class TraceDirectory:
    """Makes a :class:`FileTracer` per connection in one directory."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._counter = itertools.count(1)
        self._ready = False

    def new_tracer(self, peer: str, protocol: str = "imap") -> Tracer:
        """A tracer for a new connection; :data:`NULL_TRACER` on failure."""
        try:
            self._prepare()
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            safe_peer = re.sub(r"[^A-Za-z0-9.-]", "_", peer)[:64]
            name = f"{stamp}-{safe_peer}-{os.getpid()}-{next(self._counter)}.jsonl"
            fd = os.open(
                self._directory / name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                0o600,
            )
            stream = open(fd, "w", encoding="utf-8", buffering=WRITE_BUFFER)  # noqa: SIM115
        except OSError as exc:
            log.warning("cannot trace a connection from %s: %s", peer, exc)
            return NULL_TRACER
        return FileTracer(stream, protocol=protocol)

    def _prepare(self) -> None:
        if self._ready:
            return
        if not self._directory.is_dir():
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # mkdir's mode is filtered by the umask; traces hold mail.
            os.chmod(self._directory, 0o700)
        elif self._directory.stat().st_mode & 0o077:
            log.warning(
                "trace directory %s is readable by others; traces hold mail",
                self._directory,
            )
        self._ready = True


class TracerFactory(Protocol):
    def new_tracer(self, peer: str, protocol: str = "imap") -> Tracer: ...


class NoTracing:
    """The factory used when tracing is off."""

    def new_tracer(self, peer: str, protocol: str = "imap") -> Tracer:
        del peer, protocol
        return NULL_TRACER


def tracer_factory(enabled: bool, directory: Path) -> TracerFactory:
    """``TRACE``/``TRACE_DIR`` (design.md section 2) as a factory."""
    return TraceDirectory(directory) if enabled else NoTracing()
