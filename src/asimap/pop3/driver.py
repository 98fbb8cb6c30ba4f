"""The POP3 connection driver: one client socket, one session, bytes both ways.

The only POP3 code that touches a socket.  It reuses the IMAP side's
:class:`asimap.imap.driver.Pipe` (an :class:`asyncio.Protocol` with a
received-bytes queue we own) for the same reason: at STLS every plaintext
byte the client pipelined after the command must be dropped, never read
as if it had come under TLS (RFC 2595 section 4, CVE-2011-0411), and a
queue of our own can be emptied before ``loop.start_tls`` takes over.
The pipe also gives flow control both ways, so a 20 MB RETR is written
piece by piece at the pace the client reads.

Timeouts bound each wait for client input and each wait for the client to
accept output: ``Timeouts.unauthenticated`` before login,
``Timeouts.authenticated`` after (RFC 1939 section 3 asks for an
autologout timer of at least 10 minutes; the default is 30).  An
autologout, like a dropped connection, never enters the UPDATE state, so
nothing is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from asimap.imap.driver import Pipe, Timeouts, _StopReading
from asimap.imap.session.services import Services
from asimap.pop3.commands import Command, parse_line
from asimap.pop3.reader import MAX_LINE, Eof, Line, LineReader, LineTooLong
from asimap.pop3.responses import Code, err
from asimap.pop3.session import Pop3Session

log = logging.getLogger(__name__)

#: Longest SASL response line (RFC 5034 section 4 exempts AUTH exchanges
#: from the 255-octet command limit).
SASL_MAX_LINE = 8192


class Pop3Driver:
    """Runs one POP3 session over one :class:`Pipe` (implements Pop3IO)."""

    def __init__(
        self,
        pipe: Pipe,
        services: Services,
        *,
        timeouts: Timeouts,
        stls_context: ssl.SSLContext | None = None,
        unparsed: bytes = b"",
    ) -> None:
        """``unparsed``: client input read before this driver existed (a
        connection handed to a worker with commands pipelined after PASS
        or AUTH, RFC 2449 PIPELINING); it is read before the pipe."""
        self._pipe = pipe
        self._timeouts = timeouts
        self._stls_context = stls_context
        self._reader = LineReader()
        self._reader.feed(unparsed)
        self._reader_eof = False
        self._detached = False
        #: Set when a timeout or shutdown interrupted a SASL exchange; the
        #: connection ends once the command has been answered.
        self._pending_stop: str | None = None
        self.peer_host: str = pipe.peer_host
        self.tls_active: bool = pipe.tls
        self.stls_available: bool = not pipe.tls and stls_context is not None
        self._session = Pop3Session(self, services)

    # Pop3IO ------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        try:
            self._pipe.write(data)
            async with asyncio.timeout(self._idle_timeout()):
                await self._pipe.drain()
        except TimeoutError:
            # The client stopped reading: nothing more can reach it.
            self._pipe.abort()
            raise ConnectionAbortedError("client stopped reading") from None

    async def read_line(self) -> bytes | None:
        self._reader.max_line = SASL_MAX_LINE
        try:
            event = await self._next_event()
        except _StopReading as stop:
            self._pending_stop = stop.bye_text
            return None
        finally:
            self._reader.max_line = MAX_LINE
        return event.data if isinstance(event, Line) else None

    async def start_tls(self) -> None:
        if self._stls_context is None or self.tls_active:
            raise RuntimeError("STLS is not available on this connection")
        # RFC 2595 section 4 / CVE-2011-0411: drop pipelined plaintext.
        dropped = self._reader.discard_buffered() + self._pipe.discard()
        if dropped:
            log.info(
                "%s: dropped %d plaintext bytes after STLS", self.peer_host, dropped
            )
        try:
            await self._pipe.start_tls(self._stls_context, self._timeouts.handshake)
        except OSError as exc:  # includes ssl.SSLError and TimeoutError
            self._pipe.abort()
            raise ConnectionAbortedError(f"TLS handshake failed: {exc}") from exc
        self.tls_active = True
        self.stls_available = False

    # Server control ----------------------------------------------------------

    def shutdown(self, bye_text: str = "Server shutting down") -> None:
        """End the connection: at once if it waits for the client, after
        the running command otherwise.  Nothing is committed."""
        self._pipe.interrupt(bye_text)

    def detach(self) -> tuple[Pipe, bytes]:
        """Give the connection up to the user's worker process: the pipe
        (reading stopped) and the client bytes received but not yet read.
        The driver then ends without closing the pipe."""
        self._detached = True
        unparsed = self._reader.take_unprocessed() + self._pipe.detach()
        return self._pipe, unparsed

    async def run(self, first_command: Command | None = None) -> None:
        """Serve the connection until it ends; never raises.

        ``first_command`` replaces the greeting: a worker taking over a
        connection runs the login the main process already accepted, so
        its ``+OK`` (with the maildrop's size) is the first line it sends.
        """
        try:
            if first_command is None:
                await self.send(self._session.greeting())
            elif not await self._session.handle(first_command):
                return
            while await self._serve_one():
                pass
        except _StopReading as stop:
            await self._say_goodbye(stop.bye_text)
        except (ConnectionError, ssl.SSLError) as exc:
            log.debug("%s: pop3 connection ended: %r", self.peer_host, exc)
        except Exception:
            log.exception("%s: pop3 internal error, closing", self.peer_host)
            await self._say_goodbye("Internal error")
        finally:
            try:
                await self._session.close()
            except Exception:
                log.exception("%s: error while closing a pop3 session", self.peer_host)
            if not self._detached:
                self._pipe.close()

    # internals ---------------------------------------------------------------

    async def _serve_one(self) -> bool:
        event = await self._next_event()
        if isinstance(event, Line):
            keep = await self._session.handle(parse_line(event.data))
            if self._pending_stop is not None:
                raise _StopReading(self._pending_stop)
            return keep
        if isinstance(event, LineTooLong):
            await self.send(err(f"Line too long (limit {event.limit} octets)"))
            return True
        return False  # Eof

    async def _next_event(self) -> Line | LineTooLong | Eof:
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
                self._reader.feed(data)

    async def _receive(self) -> bytes | None:
        try:
            async with asyncio.timeout(self._idle_timeout()):
                return await self._pipe.read()
        except TimeoutError:
            raise _StopReading("Autologout; idle for too long") from None

    def _idle_timeout(self) -> float:
        if self._session.authenticated:
            return self._timeouts.authenticated
        return self._timeouts.unauthenticated

    async def _say_goodbye(self, text: str) -> None:
        """RFC 1939 has no unsolicited responses; like Dovecot we send one
        ``-ERR`` line before closing, which clients report as the reason."""
        try:
            await self.send(err(text, Code.SYS_TEMP))
        except Exception as exc:  # the peer may already be gone
            log.debug("%s: could not send goodbye: %r", self.peer_host, exc)
