"""Messages between the main process, the zygote and the workers.

Every channel is one end of a ``socketpair`` (``AF_UNIX``): nothing has a
name in the file system or the abstract namespace and nothing listens, so
only a process that was handed the socket can talk on it (design.md
section 4 rule 3; asimap 2.x exposed each user process on a TCP port).

A frame is::

    u32 header length | u32 data length | header (UTF-8 JSON object) | data

The header is a small JSON object with an ``"op"`` field and, when file
descriptors travel with the frame (``SCM_RIGHTS``), an ``"fds"`` count.
``data`` carries raw bytes (a client's pipelined input) without base64.
Both lengths are bounded (:data:`MAX_HEADER`, :data:`MAX_DATA`): a frame
announcing more is a protocol error and the channel is closed, so a
confused or hostile peer can never make the other side allocate without
limit.

Messages (``op``) between the main process (M) and a worker (W):

* M->W ``handoff``: a logged-in connection (descriptor: the client's
  socket, or the worker's end of a TLS relay; data: unparsed input);
  ``exit`` (answer to ``idle``), ``shutdown``.
* W->M ``ready``, ``failed``, ``closed`` (a connection ended), ``idle``
  (lingered long enough), and ``unauthenticated``: a connection answered
  UNAUTHENTICATE (RFC 8437) and goes back to the main process (data: the
  client bytes the worker received but did not parse; descriptor, for a
  relayed TLS connection only: the worker's end of the relay).
* The zygote's ``spawn``/``spawned``/``spawn-failed``/``exited`` and
  ``reload-logging`` (:mod:`asimap.worker.zygote`).

Descriptors are sent with the first byte of their frame.  On a stream
socket the kernel hands them out with that byte, never later, so the
receiver keeps a FIFO of received descriptors and gives each complete
frame the number it announced: descriptors can arrive early (with a
frame's first bytes) but never after the frame's last byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Largest JSON header; ours are a few hundred bytes (ID data included).
MAX_HEADER = 64 * 1024
#: Largest data part: a connection's unparsed input at handoff (bounded by
#: the reader's and the pipe's own limits, well under this).
MAX_DATA = 2 * 1024 * 1024
#: Descriptors accepted with one receive call (a frame carries at most 2).
MAX_FDS = 8
_PREFIX = struct.Struct(">II")
_RECV_SIZE = 256 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


@dataclass(slots=True)
class Message:
    """One received frame: its header, its data and its descriptors.

    The receiver owns ``fds`` and must close every one it does not keep.
    """

    header: dict[str, Any]
    data: bytes = b""
    fds: list[int] = field(default_factory=list)

    @property
    def op(self) -> str:
        return str(self.header.get("op", ""))

    def close_fds(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()


def encode_frame(header: dict[str, Any], data: bytes = b"", nfds: int = 0) -> bytes:
    """The wire form of one message (raises ValueError when over a bound)."""
    if nfds:
        header = {**header, "fds": nfds}
    raw = json.dumps(header, separators=(",", ":")).encode()
    if len(raw) > MAX_HEADER:
        raise ValueError(f"message header too large ({len(raw)} bytes)")
    if len(data) > MAX_DATA:
        raise ValueError(f"message data too large ({len(data)} bytes)")
    return _PREFIX.pack(len(raw), len(data)) + raw + data


class FrameDecoder:
    """Bytes and descriptors in, complete :class:`Message` values out."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._fds: deque[int] = deque()

    def feed(self, data: bytes, fds: Sequence[int] = ()) -> list[Message]:
        self._buffer += data
        self._fds.extend(fds)
        messages: list[Message] = []
        while len(self._buffer) >= _PREFIX.size:
            header_len, data_len = _PREFIX.unpack_from(self._buffer)
            if header_len > MAX_HEADER or data_len > MAX_DATA:
                raise ProtocolError(f"frame too large ({header_len}+{data_len})")
            end = _PREFIX.size + header_len + data_len
            if len(self._buffer) < end:
                break
            raw = bytes(self._buffer[_PREFIX.size : _PREFIX.size + header_len])
            payload = bytes(self._buffer[_PREFIX.size + header_len : end])
            del self._buffer[:end]
            messages.append(self._message(raw, payload))
        return messages

    def close(self) -> None:
        """Close descriptors that arrived without a complete frame."""
        while self._fds:
            with contextlib.suppress(OSError):
                os.close(self._fds.popleft())

    def _message(self, raw: bytes, payload: bytes) -> Message:
        try:
            header = json.loads(raw)
        except ValueError as exc:
            raise ProtocolError(f"bad header: {exc}") from None
        if not isinstance(header, dict) or not isinstance(header.get("op"), str):
            raise ProtocolError("header is not an object with an op")
        count = header.get("fds", 0)
        if not isinstance(count, int) or not 0 <= count <= MAX_FDS:
            raise ProtocolError("bad descriptor count")
        if count > len(self._fds):
            raise ProtocolError("frame announced descriptors that did not arrive")
        fds = [self._fds.popleft() for _ in range(count)]
        return Message(header, payload, fds)


def _receive(sock: socket.socket) -> tuple[bytes, list[int]]:
    data, fds, flags, _addr = socket.recv_fds(sock, _RECV_SIZE, MAX_FDS)
    if flags & socket.MSG_CTRUNC:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        raise ProtocolError("descriptors were truncated")
    return data, fds


# ---------------------------------------------------------------------------
# Blocking use (the zygote has no event loop)
# ---------------------------------------------------------------------------


def send_blocking(
    sock: socket.socket,
    header: dict[str, Any],
    data: bytes = b"",
    fds: Sequence[int] = (),
) -> None:
    """Send one message on a blocking socket."""
    frame = memoryview(encode_frame(header, data, len(fds)))
    sent = socket.send_fds(sock, [frame], list(fds)) if fds else sock.send(frame)
    if sent < len(frame):
        sock.sendall(frame[sent:])


class BlockingReceiver:
    """Receives messages on a blocking socket, one call at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._decoder = FrameDecoder()
        self._ready: deque[Message] = deque()

    def receive(self) -> Message | None:
        """The next message; None at end of stream."""
        while not self._ready:
            data, fds = _receive(self._sock)
            if not data:
                self._decoder.close()
                return None
            self._ready.extend(self._decoder.feed(data, fds))
        return self._ready.popleft()


# ---------------------------------------------------------------------------
# Event-loop use (main process and workers)
# ---------------------------------------------------------------------------


class ChannelClosed(ConnectionError):
    """The channel's peer is gone (or the channel was closed here)."""


class Channel:
    """A message channel over one non-blocking socket on the running loop.

    ``on_message`` is called for every received message, ``on_close`` once
    when the peer closes, breaks the protocol or the channel is closed.
    Sends never block: frames wait in a queue while the socket is full.
    """

    def __init__(
        self,
        sock: socket.socket,
        on_message: Callable[[Message], None],
        on_close: Callable[[], None],
    ) -> None:
        self._sock = sock
        self._sock.setblocking(False)
        self._on_message = on_message
        self._on_close = on_close
        self._decoder = FrameDecoder()
        self._outgoing: deque[tuple[memoryview, list[int]]] = deque()
        self._loop = asyncio.get_running_loop()
        self._writing = False
        self.closed = False
        self._loop.add_reader(sock.fileno(), self._readable)

    def send(
        self, header: dict[str, Any], data: bytes = b"", fds: Sequence[int] = ()
    ) -> None:
        """Queue one message; the caller keeps (and closes) its ``fds``
        only after this returns -- they are duplicated for the queue."""
        if self.closed:
            raise ChannelClosed("channel closed")
        frame = memoryview(encode_frame(header, data, len(fds)))
        self._outgoing.append((frame, [os.dup(fd) for fd in fds]))
        self._flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._sock.fileno())
        if self._writing:
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._sock.fileno())
        for _frame, fds in self._outgoing:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._outgoing.clear()
        self._decoder.close()
        self._sock.close()
        self._on_close()

    def _readable(self) -> None:
        try:
            data, fds = _receive(self._sock)
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, ProtocolError) as exc:
            log.warning("control channel failed: %s", exc)
            self.close()
            return
        if not data:
            for fd in fds:
                os.close(fd)
            self.close()
            return
        try:
            messages = self._decoder.feed(data, fds)
        except ProtocolError as exc:
            log.warning("control channel: %s", exc)
            self.close()
            return
        for message in messages:
            if self.closed:
                message.close_fds()
                continue
            self._on_message(message)

    def _flush(self) -> None:
        while self._outgoing:
            frame, fds = self._outgoing[0]
            try:
                if fds:
                    sent = socket.send_fds(self._sock, [frame], fds)
                else:
                    sent = self._sock.send(frame)
            except (BlockingIOError, InterruptedError):
                self._want_write(True)
                return
            except OSError as exc:
                log.debug("control channel send failed: %s", exc)
                self.close()
                return
            for fd in fds:
                os.close(fd)
            if sent < len(frame):
                self._outgoing[0] = (frame[sent:], [])
            else:
                self._outgoing.popleft()
        self._want_write(False)

    def _want_write(self, on: bool) -> None:
        if on and not self._writing:
            self._loop.add_writer(self._sock.fileno(), self._flush)
        elif not on and self._writing:
            self._loop.remove_writer(self._sock.fileno())
        self._writing = on
