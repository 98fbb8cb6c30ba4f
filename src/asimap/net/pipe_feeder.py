"""Feed a sans-IO protocol reader from a :class:`~asimap.net.pipe.Pipe`.

The IMAP :class:`~asimap.imap.reader.CommandReader` and the POP3
:class:`~asimap.pop3.reader.LineReader` are sans-IO: bytes in, events out,
``None`` when they need more.  Pulling the next event is the same loop for
both -- ask the reader, and while it needs more, wait for bytes from the
pipe (bounded by the idle timeout, RFC 3501 section 5.4 / RFC 1939
section 3), pass them to the tracer and feed them, or feed the end of the
stream -- so it lives here once.  So do the two moments the reader's
unread bytes and the pipe's queue are taken together: STARTTLS/STLS
(dropped, CVE-2011-0411) and the handoff to a worker (returned).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from asimap.net.pipe import Pipe, StopReading

EventT = TypeVar("EventT")
EventT_co = TypeVar("EventT_co", covariant=True)


class SansIOReader(Protocol[EventT_co]):
    """What both protocol readers offer."""

    def feed(self, data: bytes) -> None: ...

    def feed_eof(self) -> None: ...

    def next_event(self) -> EventT_co | None: ...

    def discard_buffered(self) -> int: ...

    def take_unprocessed(self) -> bytes: ...


def _ignore(_data: bytes) -> None:
    return None


class PipeFeeder(Generic[EventT]):
    """Pulls events out of ``reader``, feeding it from ``pipe`` as needed.

    ``eof`` is the event returned for every call once the input has ended
    and the reader has nothing left (the IMAP reader reports its own end
    only once).  ``idle_timeout`` is read before every wait, so it follows
    the session's state (shorter before login).  ``on_client_bytes`` sees
    every byte read from the pipe, before the reader does (``--trace``).
    """

    def __init__(
        self,
        pipe: Pipe,
        reader: SansIOReader[EventT],
        *,
        eof: EventT,
        idle_timeout: Callable[[], float],
        on_client_bytes: Callable[[bytes], None] = _ignore,
    ) -> None:
        self._pipe = pipe
        self._reader = reader
        self._eof_event = eof
        self._idle_timeout = idle_timeout
        self._on_client_bytes = on_client_bytes
        self._eof = False

    async def next_event(self) -> EventT:
        """The reader's next event.

        Raises :class:`StopReading` when the client stays silent longer than
        the idle timeout (autologout) or the pipe was interrupted.
        """
        while True:
            event = self._reader.next_event()
            if event is not None:
                return event
            if self._eof:
                return self._eof_event
            data = await self._receive()
            if data is None:
                self._eof = True
                self._reader.feed_eof()
            else:
                self._on_client_bytes(data)
                self._reader.feed(data)

    def discard(self) -> int:
        """Drop every byte received but not yet made an event; returns how
        many (STARTTLS/STLS: plaintext must never be read as if it had come
        under TLS, RFC 3501 6.2.1, RFC 2595 section 4, CVE-2011-0411)."""
        return self._reader.discard_buffered() + self._pipe.discard()

    def detach(self) -> bytes:
        """Stop reading the pipe for good and return the unread client bytes
        (commands pipelined after a login), for the worker taking over."""
        return self._reader.take_unprocessed() + self._pipe.detach()

    async def _receive(self) -> bytes | None:
        try:
            async with asyncio.timeout(self._idle_timeout()):
                return await self._pipe.read()
        except TimeoutError:
            raise StopReading("Autologout; idle for too long") from None
