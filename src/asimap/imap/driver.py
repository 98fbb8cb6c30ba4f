"""The connection driver: one client socket, one session, bytes both ways.

The driver is the only IMAP code that touches a socket.  It moves client
bytes into the sans-IO :class:`~asimap.imap.reader.CommandReader`, turns
the reader's events into calls on the session (``check_literal`` for an
announced literal, ``handle`` for a parsed command), and writes the
session's typed responses through the encoder.  It implements
:class:`~asimap.imap.clientio.ClientIO` for the session.

The socket side is a :class:`~asimap.net.pipe.Pipe` (see there why an
``asyncio.Protocol`` and not streams: STARTTLS must drop pipelined
plaintext, CVE-2011-0411); :class:`~asimap.net.pipe_feeder.PipeFeeder`
feeds the reader from it.  ``Pipe`` is still importable from here.

COMPRESS=DEFLATE (RFC 4978) is switched on here after the session sent
its tagged OK (:meth:`ConnectionDriver.start_compression`): whatever the
client pipelined behind the command is the start of its DEFLATE stream,
so the reader's unparsed bytes go back under the pipe's inflater.

Timeouts follow RFC 3501 section 5.4 (autologout timer of at least 30
minutes once authenticated; shorter before login): they bound each wait
for client input and each wait for the client to accept output, never the
time a command spends running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from asimap.imap import commands
from asimap.imap.encoder import encode, encode_parts
from asimap.imap.limits import Limits
from asimap.imap.parser import PendingCommand, describe_pending, parse_command
from asimap.imap.reader import (
    CommandFrame,
    CommandReader,
    Eof,
    Event,
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
from asimap.net.pipe import Pipe, StopReading
from asimap.net.pipe_feeder import PipeFeeder
from asimap.net.prelogin import TOO_MANY_TEXT, InvalidCommands
from asimap.ops.trace import NULL_TRACER, Tracer

__all__ = ["ConnectionDriver", "Pipe", "SessionLike", "Timeouts"]

log = logging.getLogger(__name__)


class SessionLike(Protocol):
    """What the driver needs of :class:`asimap.imap.session.Session`."""

    def greeting(self) -> Response: ...

    async def handle(self, command: commands.Command | commands.ParseError) -> bool: ...

    async def check_literal(
        self, pending: PendingCommand, size: int, synchronizing: bool
    ) -> Response | None: ...

    async def close(self) -> None: ...


@runtime_checkable
class UnsolicitedSource(Protocol):
    """A session that may speak between commands (NOTIFY, RFC 5465).

    While ``notifying``, the driver waits for the client's next command
    *and* for :meth:`wait_unsolicited`; whatever :meth:`unsolicited`
    returns is written at once, never inside a command's output.
    """

    @property
    def notifying(self) -> bool: ...

    async def wait_unsolicited(self) -> None: ...

    async def unsolicited(self) -> list[Response]: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds a connection may stay silent (``Config`` idle timeouts)."""

    unauthenticated: float = 60.0
    authenticated: float = 30 * 60.0
    #: Bound on a TLS handshake (implicit TLS and STARTTLS).
    handshake: float = 30.0


#: How long a connection ended by a server shutdown may take to send its
#: last bytes (a client that does not read them loses them).
SHUTDOWN_FLUSH = 5.0


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
        # RFC 7888 section 5: LITERAL- refuses non-synchronizing literals
        # above 4096 octets; LITERAL+ accepts them up to the usual limits.
        self._reader = CommandReader(limits, literal_plus=not limits.literal_minus)
        if unparsed:
            self._tracer.on_client_bytes(unparsed)
            self._reader.feed(unparsed)
        self._feeder: PipeFeeder[Event] = PipeFeeder(
            pipe,
            self._reader,
            eof=Eof(),
            idle_timeout=self._idle_timeout,
            on_client_bytes=tracer.on_client_bytes,
        )
        self._utf8 = False
        self._authenticated = False
        self._detached = False
        self._current: commands.Command | None = None
        self._pending_bye: str | None = None
        #: BADs before login (asimap.net.prelogin).
        self._invalid = InvalidCommands()
        #: Set by :meth:`shutdown`: the BYE text.
        self._stopping: str | None = None
        self._broken = False
        self.peer_host: str = pipe.peer_host
        self.tls_active: bool = pipe.tls
        self.starttls_available: bool = not pipe.tls and starttls_context is not None
        self.compression_active: bool = pipe.compressed
        self._session = session_factory(self)
        session = self._session
        self._unsolicited = session if isinstance(session, UnsolicitedSource) else None
        #: The read of the next client event, kept across unsolicited
        #: writes (see :meth:`_next_event`).
        self._event_task: asyncio.Task[Event] | None = None

    # ClientIO ----------------------------------------------------------------

    async def send(self, *responses: Response) -> None:
        for response in responses:
            self._note_authentication(response)
            self._note_invalid(response)
        # One write of every response (a FETCH batch is one TLS record
        # run, one syscall); big message literals go uncopied.
        await self._write(*encode_parts(responses, utf8=self._utf8))

    async def read_line(self) -> bytes | None:
        self._reader.set_raw_line_mode(True)
        try:
            event = await self._feeder.next_event()
        except StopReading as stop:
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
        dropped = self._feeder.discard()
        if dropped:
            log.info(
                "%s: dropped %d plaintext bytes after STARTTLS", self.peer_host, dropped
            )
        try:
            await self._pipe.start_tls(self._starttls_context, self._timeouts.handshake)
        except ConnectionError:
            self._broken = True
            raise
        self.tls_active = True
        self.starttls_available = False
        self._tracer.on_tls()

    async def start_compression(self) -> None:
        """RFC 4978 section 3: after the tagged OK both directions are
        DEFLATE streams.  Bytes the reader holds beyond the COMPRESS
        command were compressed by the client: they go back to the pipe to
        be inflated first.  STARTTLS is never offered afterwards (TLS
        cannot be put beneath a running compression layer)."""
        self._pipe.start_compression(self._reader.take_unprocessed())
        self.compression_active = True
        self.starttls_available = False

    def set_utf8(self, enabled: bool) -> None:
        self._utf8 = enabled

    # Server control ------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        """Whether the client has logged in (the server's admission rules
        treat connections that have not differently)."""
        return self._authenticated

    def shutdown(self, bye_text: str = "Server shutting down") -> None:
        """Ask the connection to end: at once if it waits for the client,
        after the running command otherwise.  If the server then cancels
        the running command (it took too long), the client still gets the
        ``* BYE``, and what was written is flushed (bounded) before the
        connection closes."""
        self._stopping = bye_text
        self._pipe.interrupt(bye_text)

    def detach(self) -> tuple[Pipe, bytes]:
        """Give the connection up to a new owner (the user's worker process).

        Called by the handoff while the session handles LOGIN/AUTHENTICATE:
        returns the pipe (reading stopped) and every client byte received
        but not parsed yet -- commands pipelined after the login, which the
        new owner must run.  The driver then ends without closing the pipe.
        """
        self._detached = True
        return self._pipe, self._feeder.detach()

    async def run(
        self, first_command: commands.Command | None = None, *, greet: bool = True
    ) -> None:
        """Serve the connection until it ends; never raises.

        ``first_command`` replaces the greeting: a worker that takes over a
        connection runs the LOGIN the main process already answered for
        (see :mod:`asimap.worker.child`), so its tagged OK is the first
        thing this driver sends.  ``greet=False`` sends no greeting: the
        connection came back from a worker after UNAUTHENTICATE (RFC 8437),
        whose tagged OK the client already has.
        """
        try:
            if first_command is None:
                if greet:
                    await self.send(self._session.greeting())
            elif not await self._run_command(first_command):
                return
            # This frame lives as long as the connection: it would keep the
            # LOGIN (and the one-time token the worker was given as its
            # password) for as long, one more object for the collector to
            # walk per connection.
            first_command = None
            while await self._serve_one():
                pass
        except StopReading as stop:
            await self._say_bye(stop.bye_text)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            log.debug("%s: connection ended: %r", self.peer_host, exc)
        except Exception:
            log.exception("%s: internal error, closing the connection", self.peer_host)
            await self._say_bye("Internal error")
        except asyncio.CancelledError:
            # The server stops and this command ran past its grace period.
            self._bye_now(self._stopping or "Server shutting down")
            raise
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
            raise StopReading(self._pending_bye)
        return keep and not self._broken

    async def _next_event(self) -> Event:
        """The next reader event; meanwhile, unsolicited responses.

        Only between commands: a command's own output (and its SASL or
        IDLE exchange) is never interleaved.  The pending read survives
        each write, so no client byte is lost or reordered; a client that
        does not read blocks the write (bounded by the idle timeout) while
        the session's own queue stays bounded (NOTIFICATIONOVERFLOW).
        """
        source = self._unsolicited
        if self._event_task is None and (source is None or not source.notifying):
            return await self._feeder.next_event()
        if self._event_task is None:
            self._event_task = asyncio.ensure_future(self._feeder.next_event())
        event_task = self._event_task
        while source is not None and source.notifying:
            ready = asyncio.ensure_future(source.wait_unsolicited())
            await asyncio.wait({event_task, ready}, return_when=asyncio.FIRST_COMPLETED)
            if event_task.done():
                await _cancel(ready)
                break
            responses = await source.unsolicited()
            if responses:
                await self.send(*responses)
        self._event_task = None
        return await event_task

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

    async def _write(self, *parts: bytes) -> None:
        for part in parts:
            self._tracer.on_server_bytes(part)
        try:
            await self._pipe.send(parts, self._idle_timeout())
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

    def _note_invalid(self, response: Response) -> None:
        """Count the BADs before login; the third ends the connection
        after this command (:mod:`asimap.net.prelogin`)."""
        if (
            self._authenticated
            or not isinstance(response, Tagged | UntaggedStatus)
            or response.status is not Status.BAD
            or isinstance(self._current, commands.Authenticate)
        ):
            return
        if self._invalid.note():
            log.info("%s: %s before login", self.peer_host, TOO_MANY_TEXT.lower())
            self._pending_bye = TOO_MANY_TEXT

    async def _say_bye(self, text: str) -> None:
        try:
            await self.send(UntaggedStatus(Status.BYE, text))
        except Exception as exc:  # the peer may already be gone
            log.debug("%s: could not send BYE: %r", self.peer_host, exc)

    def _bye_now(self, text: str) -> None:
        """``* BYE`` without waiting: a cancelled command stopped between
        two writes, each whole, so the stream is at a response boundary
        (except under COMPRESS, where a cancelled compression in a thread
        may have left the DEFLATE stream behind: nothing more is sent)."""
        if self._detached or self.compression_active:
            return
        data = encode(UntaggedStatus(Status.BYE, text), utf8=self._utf8)
        self._tracer.on_server_bytes(data)
        with contextlib.suppress(ConnectionError):
            self._pipe.write(data)

    async def _finish(self) -> None:
        if self._event_task is not None:
            await _cancel(self._event_task)
            self._event_task = None
        try:
            await self._session.close()
        except Exception:
            log.exception("%s: error while closing the session", self.peer_host)
        if not self._detached:
            if self._stopping is not None and not self._broken:
                # Server shutdown: let the last responses and the BYE
                # leave before the process exits (bounded).
                with contextlib.suppress(TimeoutError, ConnectionError):
                    await self._pipe.flush(SHUTDOWN_FLUSH)
            self._pipe.close()
        self._tracer.on_close()
        # The session refers back to this driver (its ClientIO), and so does
        # the feeder (the idle timeout): without these the driver is freed
        # as soon as its task ends, instead of waiting for the cycle
        # collector -- in the main process that is every connection handed
        # to a worker.  Nothing reads them after the end.
        del self._session, self._unsolicited, self._feeder


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it, whatever it ends with."""
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _bad(tag: str | None, message: str, code: str | None) -> Response:
    """``tag BAD [code] message``, or ``* BAD`` without a tag (RFC 3501 7.1.3)."""
    response_code = Code(code) if code else None
    if tag is None:
        return UntaggedStatus(Status.BAD, message, response_code)
    return Tagged(tag, Status.BAD, message, response_code)
