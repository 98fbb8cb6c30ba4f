"""The byte pipe between an asyncio transport and one connection driver.

Shared by the IMAP and POP3 drivers and by the worker processes that take
connections over after login.

Why an :class:`asyncio.Protocol` rather than asyncio streams: STARTTLS
(RFC 3501 6.2.1) and STLS (RFC 2595 section 4) must drop *every* plaintext
byte the client pipelined after the command (CVE-2011-0411).  A
``StreamReader`` keeps such bytes in a private buffer that survives
``StreamWriter.start_tls``, where they would be read as if they had
arrived under TLS.  With our own protocol the received-but-unread bytes
are a queue we own and can empty, and ``loop.start_tls`` takes the
transport over synchronously after that.  The protocol also gives explicit
flow control both ways: reading pauses when the queue is full, writing
waits in :meth:`Pipe.drain` while the kernel buffer is full.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import cast

from asimap.net.deflate import Deflater, Inflater

#: Received bytes queued (not yet fed to the reader) before reading pauses.
RECEIVE_HIGH_WATER = 256 * 1024
#: Writes larger than this are compressed in a thread, off the event loop.
COMPRESS_IN_THREAD = 256 * 1024


class StopReading(Exception):
    """Reading stopped (shutdown, autologout) for a reason the client is told:
    a ``* BYE`` in IMAP, a last ``-ERR`` line in POP3."""

    def __init__(self, bye_text: str) -> None:
        super().__init__(bye_text)
        self.bye_text = bye_text


class Pipe(asyncio.Protocol):
    """A byte pipe between an asyncio transport and one driver coroutine.

    Received data waits in a bounded queue (reading pauses above
    :data:`RECEIVE_HIGH_WATER`); writes go straight to the transport and
    :meth:`drain` waits while the transport has asked us to stop writing.

    A pipe lives as long as its connection, most of it waiting (IDLE), so
    it has slots, and its queue exists only while it holds bytes (an
    empty ``deque`` keeps a block of 64 slots).
    """

    __slots__ = (
        "_chunks",
        "_closed",
        "_data_waiter",
        "_deflater",
        "_detached",
        "_drain_waiter",
        "_eof",
        "_inflater",
        "_on_connected",
        "_queued",
        "_reading_paused",
        "_stop_reason",
        "_transport",
        "_writing_paused",
        "peer_host",
        "tls",
    )

    def __init__(self, on_connected: Callable[[Pipe], None]) -> None:
        self._on_connected = on_connected
        self._transport: asyncio.Transport | None = None
        self.tls = False
        self.peer_host = "unknown"
        #: Received bytes not read yet; None when there are none.
        self._chunks: deque[bytes] | None = None
        self._queued = 0
        self._eof = False
        self._closed = False
        self._reading_paused = False
        self._stop_reason: str | None = None
        self._data_waiter: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        #: Set by :meth:`detach`: this pipe no longer reads for its driver.
        self._detached = False
        #: COMPRESS=DEFLATE (RFC 4978) once :meth:`start_compression` ran.
        self._inflater: Inflater | None = None
        self._deflater: Deflater | None = None

    # asyncio.Protocol callbacks ------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.tls = transport.get_extra_info("sslcontext") is not None
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.peer_host = str(peer[0])
        self._on_connected(self)

    def data_received(self, data: bytes) -> None:
        if not data:
            return
        if self._chunks is None:
            self._chunks = deque()
        self._chunks.append(data)
        self._queued += len(data)
        if self._queued > RECEIVE_HIGH_WATER and not self._reading_paused:
            self._reading_paused = True
            assert self._transport is not None
            self._transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        # Keep a plain socket half-open so that commands pipelined before
        # the client's FIN are still answered; TLS transports cannot.
        return not self.tls

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._eof = True
        self._wake_reader()
        self._wake_drainer()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_drainer()

    # API for the driver ---------------------------------------------------

    @property
    def compressed(self) -> bool:
        """True once COMPRESS=DEFLATE is active (RFC 4978)."""
        return self._deflater is not None

    def start_compression(self, compressed_input: bytes = b"") -> None:
        """From now on reads inflate and writes deflate (RFC 4978 section 3).

        ``compressed_input`` is what the client sent after its COMPRESS
        command and the reader had already received: it is the start of the
        client's DEFLATE stream, queued before anything received later.
        """
        if self._deflater is not None:
            raise RuntimeError("compression is already active")
        self._inflater = Inflater()
        self._deflater = Deflater()
        if compressed_input:
            if self._chunks is None:
                self._chunks = deque()
            self._chunks.appendleft(compressed_input)
            self._queued += len(compressed_input)

    async def read(self) -> bytes | None:
        """The next received bytes; None at end of stream.

        With compression on, the next piece of inflated input (at most
        :data:`asimap.net.deflate.INFLATE_CHUNK` bytes), and the end of
        the client's DEFLATE stream counts as the end of input.  Raises
        :class:`StopReading` once :meth:`interrupt` was called, and
        :class:`~asimap.net.deflate.CompressionError` for a corrupt stream.
        """
        inflater = self._inflater
        if inflater is None:
            return await self._read_raw()
        while True:
            out = inflater.more()
            if out:
                return out
            if inflater.ended:
                return None
            raw = await self._read_raw()
            if raw is None:
                return None
            out = inflater.feed(raw)
            if out:
                return out

    async def _read_raw(self) -> bytes | None:
        while not self._chunks:
            if self._stop_reason is not None:
                raise StopReading(self._stop_reason)
            if self._eof:
                return None
            self._data_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._data_waiter
            finally:
                self._data_waiter = None
        data = self._chunks.popleft()
        if not self._chunks:
            self._chunks = None
        self._queued -= len(data)
        self._maybe_resume_reading()
        return data

    def discard(self) -> int:
        """Drop every received byte not read yet; returns how many."""
        dropped = self._queued
        self._chunks = None
        self._queued = 0
        self._maybe_resume_reading()
        return dropped

    def interrupt(self, bye_text: str) -> None:
        """Make the current and next waits for input raise ``StopReading``."""
        self._stop_reason = bye_text
        self._wake_reader()

    def write(self, data: bytes) -> None:
        """Write ``data`` now (compressed and flushed when COMPRESS is on)."""
        if self._deflater is not None:
            data = self._deflater.compress(data)
        self._write_raw(data)

    def _write_raw(self, data: bytes) -> None:
        self._check_open()
        assert self._transport is not None
        self._transport.write(data)

    def _check_open(self) -> None:
        if self._closed or self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("connection closed")

    async def drain(self) -> None:
        """Wait until the transport accepts more data (write backpressure)."""
        while self._writing_paused:
            if self._closed:
                raise ConnectionResetError("connection closed")
            self._drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
        if self._closed:
            raise ConnectionResetError("connection closed")

    async def send(self, data: bytes | Sequence[bytes], timeout: float) -> None:
        """Write ``data`` (bytes, or buffers to write one after the other)
        and wait at most ``timeout`` seconds until the transport accepts
        more.

        Several buffers go to the transport in one ``writelines`` (one
        ``writev`` where the loop supports it), without joining them.

        The bound is the client's idle allowance (RFC 3501 section 5.4,
        RFC 1939 section 3): a client that stops reading that long can be
        told nothing more, so the connection is aborted and
        ``ConnectionAbortedError`` raised.  A large write under COMPRESS is
        compressed in a thread (zlib releases the GIL), so one big FETCH
        does not stall the other connections of the process.
        """
        if not isinstance(data, bytes):
            if len(data) == 1:
                data = data[0]
            elif self._deflater is not None:
                data = b"".join(data)
        if isinstance(data, bytes):
            if self._deflater is not None and len(data) > COMPRESS_IN_THREAD:
                data = await asyncio.to_thread(self._deflater.compress, data)
                self._write_raw(data)
            else:
                self.write(data)
        else:
            self._check_open()
            assert self._transport is not None
            self._transport.writelines(data)
        try:
            async with asyncio.timeout(timeout):
                await self.drain()
        except TimeoutError:
            self.abort()
            raise ConnectionAbortedError("client stopped reading") from None

    async def start_tls(
        self, context: ssl.SSLContext, handshake_timeout: float
    ) -> None:
        """Switch the transport to TLS (server side).

        ``loop.start_tls`` pauses reading and takes the transport over before
        its first ``await``, so no plaintext received after the caller's
        :meth:`discard` can reach the reader.  A failed handshake aborts the
        connection (nothing can be said to the client in either clear text
        or TLS) and raises ``ConnectionAbortedError``.
        """
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        try:
            transport = await loop.start_tls(
                self._transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=handshake_timeout,
            )
        except OSError as exc:  # includes ssl.SSLError and TimeoutError
            self.abort()
            raise ConnectionAbortedError(f"TLS handshake failed: {exc}") from exc
        if transport is None:  # pragma: no cover - only for non-SSL loops
            raise ConnectionAbortedError("TLS upgrade failed")
        self._transport = transport
        self.tls = True
        # start_tls resumed reading on the raw transport; our queue is empty.
        self._reading_paused = False

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._transport

    def detach(self) -> bytes:
        """Stop reading for good and return the bytes received but not read.

        Used when the connection moves to a worker process: what the
        kernel still holds stays in the socket (for a plain connection the
        worker reads it there; for TLS the relay takes the transport over).
        A compressed connection cannot move: the DEFLATE state stays here.
        """
        if self._deflater is not None:
            raise RuntimeError("a compressed connection cannot be detached")
        self._detached = True
        self._reading_paused = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()
        data = b"".join(self._chunks or ())
        self._chunks = None
        self._queued = 0
        return data

    def reattach(self) -> None:
        """Read again, for a new driver in this process, after :meth:`detach`.

        The connection came back from a worker (UNAUTHENTICATE, RFC 8437):
        whatever the worker had received but not parsed is given to the new
        driver separately; what is still in the kernel is read from here.
        """
        self._detached = False
        self._reading_paused = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    async def flush(self, timeout: float) -> None:
        """Wait until every byte written so far has left this process
        (the transport's buffer is empty), at most ``timeout`` seconds.

        Needed before the connection changes hands: the next owner's
        writes must come after ours on the wire.
        """
        transport = self._transport
        async with asyncio.timeout(timeout):
            while (
                transport is not None
                and not transport.is_closing()
                and transport.get_write_buffer_size() > 0
            ):
                await asyncio.sleep(0.005)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # internals -------------------------------------------------------------

    def _maybe_resume_reading(self) -> None:
        if self._detached:
            return
        if self._reading_paused and self._queued <= RECEIVE_HIGH_WATER // 4:
            self._reading_paused = False
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()

    def _wake_reader(self) -> None:
        if self._data_waiter is not None and not self._data_waiter.done():
            self._data_waiter.set_result(None)

    def _wake_drainer(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
