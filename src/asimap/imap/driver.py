"""The connection driver: one client socket, one session, bytes both ways.

The driver is the only IMAP code that touches a socket.  It moves client
bytes into the sans-IO :class:`~asimap.imap.reader.CommandReader`, turns
the reader's events into calls on the session (``check_literal`` for an
announced literal, ``handle`` for a parsed command), and writes the
session's typed responses through the encoder.  It implements
:class:`~asimap.imap.clientio.ClientIO` for the session.

Why an :class:`asyncio.Protocol` (:class:`Pipe`) rather than asyncio
streams: STARTTLS must drop *every* plaintext byte the client pipelined
after the command (CVE-2011-0411).  A ``StreamReader`` keeps such bytes in
a private buffer that survives ``StreamWriter.start_tls``, where they would
be read as if they had arrived under TLS.  With our own protocol the
received-but-unread bytes are a queue we own and can empty, and
``loop.start_tls`` takes the transport over synchronously after that.  The
protocol also gives explicit flow control both ways: reading pauses when
the queue is full, writing waits in :meth:`Pipe.drain` while the kernel
buffer is full.

Timeouts follow RFC 3501 section 5.4 (autologout timer of at least 30
minutes once authenticated; shorter before login): they bound each wait
for client input and each wait for the client to accept output, never the
time a command spends running.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from asimap.imap import commands
from asimap.imap.encoder import encode
from asimap.imap.limits import Limits
from asimap.imap.parser import PendingCommand, describe_pending, parse_command
from asimap.imap.reader import (
    CommandFrame,
    CommandReader,
    Eof,
    FrameError,
    LiteralPending,
    RawLine,
)
from asimap.imap.responses import (
    Code,
    Continuation,
    Response,
    Status,
    Tagged,
    UntaggedStatus,
)
from asimap.ops.trace import NULL_TRACER, Tracer

log = logging.getLogger(__name__)

#: Received bytes queued (not yet fed to the reader) before reading pauses.
RECEIVE_HIGH_WATER = 256 * 1024


class SessionLike(Protocol):
    """What the driver needs of :class:`asimap.imap.session.Session`."""

    def greeting(self) -> Response: ...

    async def handle(self, command: commands.Command | commands.ParseError) -> bool: ...

    async def check_literal(
        self, pending: PendingCommand, size: int, synchronizing: bool
    ) -> Response | None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds a connection may stay silent (``Config`` idle timeouts)."""

    unauthenticated: float = 60.0
    authenticated: float = 30 * 60.0
    #: Bound on a TLS handshake (implicit TLS and STARTTLS).
    handshake: float = 30.0


class _StopReading(Exception):
    """Reading stopped for a reason the client is told in a ``* BYE``."""

    def __init__(self, bye_text: str) -> None:
        super().__init__(bye_text)
        self.bye_text = bye_text


class Pipe(asyncio.Protocol):
    """A byte pipe between an asyncio transport and one driver coroutine.

    Received data waits in a bounded queue (reading pauses above
    :data:`RECEIVE_HIGH_WATER`); writes go straight to the transport and
    :meth:`drain` waits while the transport has asked us to stop writing.
    """

    def __init__(self, on_connected: Callable[[Pipe], None]) -> None:
        self._on_connected = on_connected
        self._transport: asyncio.Transport | None = None
        self.tls = False
        self.peer_host = "unknown"
        self._chunks: deque[bytes] = deque()
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

    async def read(self) -> bytes | None:
        """The next received bytes; None at end of stream.

        Raises :class:`_StopReading` once :meth:`interrupt` was called.
        """
        while not self._chunks:
            if self._stop_reason is not None:
                raise _StopReading(self._stop_reason)
            if self._eof:
                return None
            self._data_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._data_waiter
            finally:
                self._data_waiter = None
        data = self._chunks.popleft()
        self._queued -= len(data)
        self._maybe_resume_reading()
        return data

    def discard(self) -> int:
        """Drop every received byte not read yet; returns how many."""
        dropped = self._queued
        self._chunks.clear()
        self._queued = 0
        self._maybe_resume_reading()
        return dropped

    def interrupt(self, bye_text: str) -> None:
        """Make the current and next waits for input raise ``_StopReading``."""
        self._stop_reason = bye_text
        self._wake_reader()

    def write(self, data: bytes) -> None:
        if self._closed or self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("connection closed")
        self._transport.write(data)

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

    async def start_tls(
        self, context: ssl.SSLContext, handshake_timeout: float
    ) -> None:
        """Switch the transport to TLS (server side).

        ``loop.start_tls`` pauses reading and takes the transport over before
        its first ``await``, so no plaintext received after the caller's
        :meth:`discard` can reach the reader.
        """
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            self._transport,
            self,
            context,
            server_side=True,
            ssl_handshake_timeout=handshake_timeout,
        )
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
        """
        self._detached = True
        self._reading_paused = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._queued = 0
        return data

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


class ConnectionDriver:
    """Runs one IMAP session over one :class:`Pipe` (implements ClientIO)."""

    def __init__(
        self,
        pipe: Pipe,
        session_factory: Callable[[ConnectionDriver], SessionLike],
        *,
        limits: Limits,
        timeouts: Timeouts,
        starttls_context: ssl.SSLContext | None = None,
        tracer: Tracer = NULL_TRACER,
        unparsed: bytes = b"",
    ) -> None:
        """``tracer`` sees every byte both ways (``--trace``); the caller
        has already told it ``on_connect``, the driver tells it the rest.
        ``unparsed`` is client input read before this driver existed (a
        connection handed to a worker with commands pipelined after LOGIN);
        it is parsed before anything read from the pipe."""
        self._pipe = pipe
        self._tracer = tracer
        self._limits = limits
        self._timeouts = timeouts
        self._starttls_context = starttls_context
        self._reader = CommandReader(limits, literal_plus=True)
        if unparsed:
            self._tracer.on_client_bytes(unparsed)
            self._reader.feed(unparsed)
        self._reader_eof = False
        self._utf8 = False
        self._authenticated = False
        self._detached = False
        self._current: commands.Command | None = None
        self._pending_bye: str | None = None
        self._broken = False
        self.peer_host: str = pipe.peer_host
        self.tls_active: bool = pipe.tls
        self.starttls_available: bool = not pipe.tls and starttls_context is not None
        self._session = session_factory(self)

    # ClientIO ----------------------------------------------------------------

    async def send(self, *responses: Response) -> None:
        for response in responses:
            self._note_authentication(response)
        data = b"".join(encode(r, utf8=self._utf8) for r in responses)
        await self._write(data)

    async def read_line(self) -> bytes | None:
        self._reader.set_raw_line_mode(True)
        try:
            event = await self._next_event()
        except _StopReading as stop:
            self._pending_bye = stop.bye_text
            return None
        except ConnectionError:
            self._broken = True
            return None
        finally:
            self._reader.set_raw_line_mode(False)
        if isinstance(event, RawLine):
            return event.line
        if isinstance(event, Eof):
            self._broken = True
        return None

    async def start_tls(self) -> None:
        if self._starttls_context is None or self.tls_active:
            raise RuntimeError("STARTTLS is not available on this connection")
        # CVE-2011-0411: whatever the client sent after STARTTLS in
        # plaintext is dropped, never executed under TLS (RFC 3501 6.2.1).
        dropped = self._reader.discard_buffered() + self._pipe.discard()
        if dropped:
            log.info(
                "%s: dropped %d plaintext bytes after STARTTLS", self.peer_host, dropped
            )
        try:
            await self._pipe.start_tls(self._starttls_context, self._timeouts.handshake)
        except OSError as exc:  # includes ssl.SSLError and TimeoutError
            self._broken = True
            self._pipe.abort()
            raise ConnectionAbortedError(f"TLS handshake failed: {exc}") from exc
        self.tls_active = True
        self.starttls_available = False
        self._tracer.on_tls()

    def set_utf8(self, enabled: bool) -> None:
        self._utf8 = enabled

    # Server control ------------------------------------------------------------

    def shutdown(self, bye_text: str = "Server shutting down") -> None:
        """Ask the connection to end: at once if it waits for the client,
        after the running command otherwise."""
        self._pipe.interrupt(bye_text)

    def detach(self) -> tuple[Pipe, bytes]:
        """Give the connection up to a new owner (the user's worker process).

        Called by the handoff while the session handles LOGIN/AUTHENTICATE:
        returns the pipe (reading stopped) and every client byte received
        but not parsed yet -- commands pipelined after the login, which the
        new owner must run.  The driver then ends without closing the pipe.
        """
        self._detached = True
        unparsed = self._reader.take_unprocessed() + self._pipe.detach()
        return self._pipe, unparsed

    async def run(self, first_command: commands.Command | None = None) -> None:
        """Serve the connection until it ends; never raises.

        ``first_command`` replaces the greeting: a worker that takes over a
        connection runs the LOGIN the main process already answered for
        (see :mod:`asimap.worker.child`), so its tagged OK is the first
        thing this driver sends.
        """
        try:
            if first_command is None:
                await self.send(self._session.greeting())
            elif not await self._run_command(first_command):
                return
            while await self._serve_one():
                pass
        except _StopReading as stop:
            await self._say_bye(stop.bye_text)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            log.debug("%s: connection ended: %r", self.peer_host, exc)
        except Exception:
            log.exception("%s: internal error, closing the connection", self.peer_host)
            await self._say_bye("Internal error")
        finally:
            await self._finish()

    # internals ---------------------------------------------------------------

    async def _serve_one(self) -> bool:
        """Handle one reader event; False when the connection should end."""
        event = await self._next_event()
        if isinstance(event, CommandFrame):
            parsed = parse_command(event.lines, event.literals, self._limits)
            keep = await self._run_command(parsed)
        elif isinstance(event, LiteralPending):
            await self._answer_literal(event)
            keep = True
        elif isinstance(event, FrameError):
            await self.send(_bad(event.tag, event.message, event.code))
            keep = True
        elif isinstance(event, Eof):
            return False
        else:  # RawLine outside raw-line mode cannot happen; ignore it.
            keep = True
        if self._pending_bye is not None:
            raise _StopReading(self._pending_bye)
        return keep and not self._broken

    async def _run_command(
        self, parsed: commands.Command | commands.ParseError
    ) -> bool:
        self._current = parsed if isinstance(parsed, commands.Command) else None
        try:
            return await self._session.handle(parsed)
        finally:
            self._current = None

    async def _answer_literal(self, event: LiteralPending) -> None:
        """RFC 3501 section 7.5 / RFC 7888: accept or refuse a literal
        *before* its bytes are read, so memory stays bounded."""
        pending = describe_pending(event.lines, event.literals)
        refusal = await self._session.check_literal(
            pending, event.size, event.synchronizing
        )
        if refusal is None:
            self._reader.accept_literal()
            if event.synchronizing:
                await self._write(encode(Continuation("Ready for literal")))
        else:
            self._reader.reject_literal()
            await self.send(refusal)

    async def _next_event(self) -> object:
        while True:
            event = self._reader.next_event()
            if event is not None:
                return event
            if self._reader_eof:
                return Eof()
            data = await self._receive()
            if data is None:
                self._reader_eof = True
                self._reader.feed_eof()
            else:
                self._tracer.on_client_bytes(data)
                self._reader.feed(data)

    async def _receive(self) -> bytes | None:
        try:
            async with asyncio.timeout(self._idle_timeout()):
                return await self._pipe.read()
        except TimeoutError:
            raise _StopReading("Autologout; idle for too long") from None

    async def _write(self, data: bytes) -> None:
        self._tracer.on_server_bytes(data)
        try:
            self._pipe.write(data)
            async with asyncio.timeout(self._idle_timeout()):
                await self._pipe.drain()
        except TimeoutError:
            # The client stopped reading: nothing more can reach it.
            self._broken = True
            self._pipe.abort()
            raise ConnectionAbortedError("client stopped reading") from None
        except ConnectionError:
            # Remembered so that the loop ends even if the session swallowed
            # the error while handling a command.
            self._broken = True
            raise

    def _idle_timeout(self) -> float:
        if self._authenticated:
            return self._timeouts.authenticated
        return self._timeouts.unauthenticated

    def _note_authentication(self, response: Response) -> None:
        """Track the session state for the idle timeout from what the session
        tells the client: a tagged OK to LOGIN/AUTHENTICATE (RFC 3501 6.2),
        PREAUTH, or an OK to UNAUTHENTICATE (RFC 8437)."""
        if isinstance(response, UntaggedStatus):
            if response.status is Status.PREAUTH:
                self._authenticated = True
            return
        current = self._current
        if (
            not isinstance(response, Tagged)
            or current is None
            or response.tag != current.tag
            or response.status is not Status.OK
        ):
            return
        if isinstance(current, commands.Login | commands.Authenticate):
            self._authenticated = True
        elif isinstance(current, commands.Unauthenticate):
            self._authenticated = False

    async def _say_bye(self, text: str) -> None:
        try:
            await self.send(UntaggedStatus(Status.BYE, text))
        except Exception as exc:  # the peer may already be gone
            log.debug("%s: could not send BYE: %r", self.peer_host, exc)

    async def _finish(self) -> None:
        try:
            await self._session.close()
        except Exception:
            log.exception("%s: error while closing the session", self.peer_host)
        if not self._detached:
            self._pipe.close()
        self._tracer.on_close()


def _bad(tag: str | None, message: str, code: str | None) -> Response:
    """``tag BAD [code] message``, or ``* BAD`` without a tag (RFC 3501 7.1.3)."""
    response_code = Code(code) if code else None
    if tag is None:
        return UntaggedStatus(Status.BAD, message, response_code)
    return Tagged(tag, Status.BAD, message, response_code)
