"""The POP3 connection driver: one client socket, one session, bytes both ways.

The only POP3 code that touches a socket.  Like the IMAP driver it reads
through a :class:`asimap.net.pipe.Pipe` (an :class:`asyncio.Protocol` with
a received-bytes queue we own), fed to the reader by a
:class:`~asimap.net.pipe_feeder.PipeFeeder`, for the same reason: at STLS
every plaintext byte the client pipelined after the command must be
dropped, never read as if it had come under TLS (RFC 2595 section 4,
CVE-2011-0411), and a queue of our own can be emptied before
``loop.start_tls`` takes over.  The pipe also gives flow control both
ways, so a 20 MB RETR is written piece by piece at the pace the client
reads.

Timeouts bound each wait for client input and each wait for the client to
accept output: ``Timeouts.unauthenticated`` before login,
``Timeouts.authenticated`` after (RFC 1939 section 3 asks for an
autologout timer of at least 10 minutes; the default is 30).  An
autologout, like a dropped connection, never enters the UPDATE state, so
nothing is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from asimap.imap.driver import SHUTDOWN_FLUSH, Timeouts
from asimap.imap.session.services import Services
from asimap.net.pipe import Pipe, StopReading
from asimap.net.pipe_feeder import PipeFeeder
from asimap.ops.trace import NULL_TRACER, Tracer
from asimap.pop3.commands import Command, parse_line
from asimap.pop3.reader import MAX_LINE, Eof, Event, Line, LineReader, LineTooLong
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
        tracer: Tracer = NULL_TRACER,
    ) -> None:
        """``unparsed``: client input read before this driver existed (a
        connection handed to a worker with commands pipelined after PASS
        or AUTH, RFC 2449 PIPELINING); it is read before the pipe.
        ``tracer`` sees every byte both ways (``--trace``); the caller has
        told it ``on_connect``, the driver tells it the rest."""
        self._pipe = pipe
        self._timeouts = timeouts
        self._stls_context = stls_context
        self._tracer = tracer
        self._reader = LineReader()
        if unparsed:
            tracer.on_client_bytes(unparsed)
        self._reader.feed(unparsed)
        self._feeder: PipeFeeder[Event] = PipeFeeder(
            pipe,
            self._reader,
            eof=Eof(),
            idle_timeout=self._idle_timeout,
            on_client_bytes=tracer.on_client_bytes,
        )
        self._detached = False
        #: Set by :meth:`shutdown`: the goodbye text.
        self._stopping: str | None = None
        #: Whether the command being run has sent anything yet.
        self._answered = False
        #: Set when a timeout or shutdown interrupted a SASL exchange; the
        #: connection ends once the command has been answered.
        self._pending_stop: str | None = None
        self.peer_host: str = pipe.peer_host
        self.tls_active: bool = pipe.tls
        self.stls_available: bool = not pipe.tls and stls_context is not None
        self._session = Pop3Session(self, services)

    # Pop3IO ------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        self._answered = True
        self._tracer.on_server_bytes(data)
        await self._pipe.send(data, self._idle_timeout())

    async def read_line(self) -> bytes | None:
        self._reader.max_line = SASL_MAX_LINE
        try:
            event = await self._feeder.next_event()
        except StopReading as stop:
            self._pending_stop = stop.bye_text
            return None
        finally:
            self._reader.max_line = MAX_LINE
        return event.data if isinstance(event, Line) else None

    async def start_tls(self) -> None:
        if self._stls_context is None or self.tls_active:
            raise RuntimeError("STLS is not available on this connection")
        # RFC 2595 section 4 / CVE-2011-0411: drop pipelined plaintext.
        dropped = self._feeder.discard()
        if dropped:
            log.info(
                "%s: dropped %d plaintext bytes after STLS", self.peer_host, dropped
            )
        await self._pipe.start_tls(self._stls_context, self._timeouts.handshake)
        self.tls_active = True
        self.stls_available = False
        self._tracer.on_tls()

    # Server control ----------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        """Whether the client has logged in (see asimap.net.admission)."""
        return bool(self._session.authenticated)

    def shutdown(self, bye_text: str = "Server shutting down") -> None:
        """End the connection: at once if it waits for the client, after
        the running command otherwise.  Nothing is committed.  If the
        server then cancels the command (it took too long), the client gets
        ``-ERR [SYS/TEMP]`` as its answer when nothing of one was sent yet,
        and what was written is flushed (bounded) before closing."""
        self._stopping = bye_text
        self._pipe.interrupt(bye_text)

    def detach(self) -> tuple[Pipe, bytes]:
        """Give the connection up to the user's worker process: the pipe
        (reading stopped) and the client bytes received but not yet read.
        The driver then ends without closing the pipe."""
        self._detached = True
        return self._pipe, self._feeder.detach()

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
        except StopReading as stop:
            await self._say_goodbye(stop.bye_text)
        except (ConnectionError, ssl.SSLError) as exc:
            log.debug("%s: pop3 connection ended: %r", self.peer_host, exc)
        except Exception:
            log.exception("%s: pop3 internal error, closing", self.peer_host)
            await self._say_goodbye("Internal error")
        except asyncio.CancelledError:
            # The server stops and this command ran past its grace period.
            self._goodbye_now(self._stopping or "Server shutting down")
            raise
        finally:
            try:
                await self._session.close()
            except Exception:
                log.exception("%s: error while closing a pop3 session", self.peer_host)
            if not self._detached:
                if self._stopping is not None:
                    # Let the last answer leave before the process exits.
                    with contextlib.suppress(TimeoutError, ConnectionError):
                        await self._pipe.flush(SHUTDOWN_FLUSH)
                self._pipe.close()
            self._tracer.on_close()

    # internals ---------------------------------------------------------------

    async def _serve_one(self) -> bool:
        event = await self._feeder.next_event()
        if isinstance(event, Line):
            self._answered = False
            keep = await self._session.handle(parse_line(event.data))
            if self._pending_stop is not None:
                raise StopReading(self._pending_stop)
            return keep
        if isinstance(event, LineTooLong):
            if not await self._session.note_invalid():
                return False
            await self.send(err(f"Line too long (limit {event.limit} octets)"))
            return True
        return False  # Eof

    def _idle_timeout(self) -> float:
        if self._session.authenticated:
            return self._timeouts.authenticated
        return self._timeouts.unauthenticated

    def _goodbye_now(self, text: str) -> None:
        """The cancelled command's answer, without waiting -- only if none
        of it was sent: a partial multi-line answer cannot be ended with
        an ``-ERR`` (the client would take it as message text)."""
        if self._detached or self._answered:
            return
        data = err(text, Code.SYS_TEMP)
        self._tracer.on_server_bytes(data)
        with contextlib.suppress(ConnectionError):
            self._pipe.write(data)

    async def _say_goodbye(self, text: str) -> None:
        """RFC 1939 has no unsolicited responses; like Dovecot we send one
        ``-ERR`` line before closing, which clients report as the reason."""
        try:
            await self.send(err(text, Code.SYS_TEMP))
        except Exception as exc:  # the peer may already be gone
            log.debug("%s: could not send goodbye: %r", self.peer_host, exc)
