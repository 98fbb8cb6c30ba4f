"""Relaying a TLS connection between its client and the user's worker.

TLS stays in the main process (one place holds the keys, and a worker
never needs them), so after login a TLS connection is relayed: one end of
a fresh socketpair goes to the worker, which reads and writes plaintext on
it as if it were the client's socket; the other end is joined here to the
client's TLS transport.  The relay is two :class:`asyncio.Protocol`
objects that pass each received chunk straight to the other transport --
no lines, no parsing, no copies beyond the ones the transports make.

Memory is bounded both ways: each transport's write buffer has a high-water
mark (:data:`RELAY_BUFFER`); above it the transport asks us to pause
writing, and we pause *reading* on the other side until it drains.  So a
25 MB FETCH to a slow client holds at most a few hundred KB here.

UNAUTHENTICATE (RFC 8437) ends a relay without ending the connection:
:meth:`Relay.reclaim` stops forwarding, collects the client bytes already
forwarded that the worker never read (from the worker's end, which the
worker sends back), lets every byte the worker wrote reach the client, and
hands the client transport back to the main process.

The relay decides nothing about the end of the conversation.  When the
worker side closes, the manager knows why -- the worker finished the
connection (``closed`` message) or the worker died -- and calls
:meth:`Relay.finish` with the ``* BYE`` to send in the second case, once
everything the worker wrote has been passed on.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
from collections.abc import Callable
from typing import cast

log = logging.getLogger(__name__)

#: High-water mark of each direction's write buffer.
RELAY_BUFFER = 256 * 1024
#: Largest piece written into the client's TLS transport at once.  The
#: transport encrypts a write whole into a memory buffer (OpenSSL's BIO)
#: that keeps its size for the rest of the connection: one 256 KiB chunk
#: of a big FETCH left every connection that ever fetched one holding
#: that much, idle or not.  Pieces keep it to one piece.
TLS_PIECE = 64 * 1024
#: How long a relay whose worker side closed waits to learn why.
FINISH_TIMEOUT = 10.0
#: How long :meth:`Relay.reclaim` waits for the two sides to settle.
RECLAIM_TIMEOUT = 30.0


class ReclaimFailed(ConnectionError):
    """The connection could not be taken back (the client left meanwhile)."""


class _Side(asyncio.Protocol):
    """One end of the relay; forwards what it receives to the other end.

    A side, its peer, its relay and its transport refer to one another
    while the connection lives.  When the side's transport is lost (its
    last callback) it lets go of all three, so a closed connection is freed
    by reference counting at once: a cycle left behind would wait for the
    cyclic collector, whose full collections walk every connection of the
    main process and stop them all meanwhile.
    """

    # Two per relayed connection, alive as long as it is (slots: no dict).
    __slots__ = ("lost", "name", "peer", "relay", "transport")

    def __init__(self, relay: Relay, name: str) -> None:
        self.relay: Relay | None = relay
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=RELAY_BUFFER)

    def data_received(self, data: bytes) -> None:
        relay = self.relay
        if relay is None:
            return
        if relay.reclaiming and self is relay.client_side:
            # Not forwarded any more: it belongs to the main process now.
            relay.held += data
            return
        peer = self.peer
        if peer is None or peer.transport is None or peer.transport.is_closing():
            return
        if len(data) <= TLS_PIECE or self is relay.client_side:
            peer.transport.write(data)
            return
        view = memoryview(data)
        for start in range(0, len(data), TLS_PIECE):
            peer.transport.write(view[start : start + TLS_PIECE])

    def eof_received(self) -> bool | None:
        if self.relay is not None:
            self.relay.side_ended(self)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        relay = self.relay
        if relay is not None:
            relay.side_ended(self)
        # No callback comes after this one: break the cycles.
        if self.peer is not None:
            self.peer.peer = None
        self.peer = None
        self.transport = None
        self.relay = None

    def pause_writing(self) -> None:
        # Our transport's buffer is full: stop reading the other side.
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        peer = self.peer.transport if self.peer is not None else None
        relay = self.relay
        if relay is not None and relay.reclaiming and self is relay.worker_side:
            return  # the client's reading stays paused until handed back
        if peer is not None and not peer.is_closing():
            peer.resume_reading()


def _nothing(_relay: Relay) -> None:
    """The default :attr:`Relay.on_done`."""


class Relay:
    """Joins a client's TLS transport to a worker's socket."""

    __slots__ = (
        "_client",
        "_client_transport",
        "_decided",
        "_finished",
        "_outcome",
        "_timer",
        "_worker",
        "_worker_ended",
        "_worker_eof",
        "held",
        "on_done",
        "reclaiming",
    )

    def __init__(self, client: asyncio.Transport) -> None:
        self._client = _Side(self, "client")
        self._worker = _Side(self, "worker")
        self._client.peer = self._worker
        self._worker.peer = self._client
        self._client_transport = client
        self._worker_ended = False
        self._outcome: bytes | None = None
        self._decided = False
        self._finished = False
        self._timer: asyncio.TimerHandle | None = None
        #: Set by :meth:`reclaim`: the connection is going back to main.
        self.reclaiming = False
        #: Client bytes received while reclaiming (not forwarded).
        self.held = bytearray()
        self._worker_eof: asyncio.Future[None] | None = None
        #: Called once, with the relay, when both ends are closed.  (It is
        #: given the relay rather than closing over it: a closure kept here
        #: would be a reference cycle, see :class:`_Side`.)
        self.on_done: Callable[[Relay], None] = _nothing

    @property
    def client_side(self) -> _Side:
        return self._client

    @property
    def worker_side(self) -> _Side:
        return self._worker

    async def reclaim(self, worker_end: socket.socket | None) -> bytes:
        """Take the connection back from the worker (UNAUTHENTICATE).

        ``worker_end`` is the worker's end of the socketpair, sent back by
        the worker after it stopped reading and flushed its last response.
        Returns the client bytes forwarded to the worker but not read by
        it, followed by any received since; afterwards the client
        transport belongs to the caller (reading paused) and the relay is
        done.  Raises :class:`ReclaimFailed` if the client left meanwhile.
        """
        loop = asyncio.get_running_loop()
        self.reclaiming = True
        self._worker_eof = loop.create_future()
        if self._timer is not None:  # the worker side may have ended first
            self._timer.cancel()
            self._timer = None
        client = self._client_transport
        if not client.is_closing():
            client.pause_reading()
        worker = self._worker.transport
        async with asyncio.timeout(RECLAIM_TIMEOUT):
            # 1. Every client byte forwarded so far reaches the socketpair.
            while (
                worker is not None
                and not worker.is_closing()
                and worker.get_write_buffer_size() > 0
            ):
                await asyncio.sleep(0.005)
            # 2. What the worker never read is still in its end.
            unread = bytearray()
            if worker_end is not None:
                with worker_end:
                    worker_end.setblocking(False)
                    while True:
                        try:
                            chunk = worker_end.recv(256 * 1024)
                        except (BlockingIOError, InterruptedError):
                            break
                        if not chunk:
                            break
                        unread += chunk
            # 3. Both descriptors of the worker's end are closed now: our
            # side reads the worker's last bytes, passes them on, then EOF.
            if not self._worker_ended:
                await self._worker_eof
        if worker is not None and not worker.is_closing():
            worker.close()
        self._finished = True
        if client.is_closing():
            raise ReclaimFailed("the client left during UNAUTHENTICATE")
        return bytes(unread) + bytes(self.held)

    async def start(self, worker_end: socket.socket) -> None:
        """Join the client transport (reading paused by the caller's detach)
        to ``worker_end``; reading resumes once both sides are in place."""
        # The transport made for ``worker_end`` keeps a copy of the context
        # it is made in for the rest of the connection, and the handoff
        # runs inside the LOGIN command, whose context holds its session
        # (asimap.store.feed.ORIGIN): that kept the pre-login driver and
        # session of every relayed connection alive here, a dozen objects
        # more for the collector to walk per connection.  A fresh context
        # holds nothing.
        await asyncio.get_running_loop().create_task(
            self._join(worker_end), context=contextvars.Context()
        )

    async def _join(self, worker_end: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        await loop.connect_accepted_socket(lambda: self._worker, sock=worker_end)
        client = self._client_transport
        client.set_protocol(self._client)
        self._client.connection_made(client)
        if client.is_closing():
            self.side_ended(self._client)
            return
        client.resume_reading()

    def finish(self, bye: bytes | None) -> None:
        """The manager learned why the worker side ends: normally (None) or
        because the worker died (``bye`` goes to the client after every
        byte the worker wrote)."""
        self._decided = True
        self._outcome = bye
        self._maybe_close_client()

    def side_ended(self, side: _Side) -> None:
        if side is self._client:
            # The client left (or TLS failed): let the worker read EOF
            # after what was already passed on.
            worker = self._worker.transport
            if worker is not None and not worker.is_closing():
                worker.close()
            client = self._client.transport
            if client is not None and not client.is_closing():
                client.close()
        elif self.reclaiming:
            self._worker_ended = True
            if self._worker_eof is not None and not self._worker_eof.done():
                self._worker_eof.set_result(None)
            return
        else:
            self._worker_ended = True
            if not self._decided and self._timer is None:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(FINISH_TIMEOUT, self.finish, None)
            self._maybe_close_client()
        self._check_done()

    def _maybe_close_client(self) -> None:
        if not (self._worker_ended and self._decided):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        client = self._client_transport
        if not client.is_closing():
            if self._outcome:
                client.write(self._outcome)
            client.close()
        self._check_done()

    def _check_done(self) -> None:
        if self._finished:
            return
        worker = self._worker.transport
        worker_done = worker is None or worker.is_closing()
        if worker_done and self._client_transport.is_closing():
            self._finished = True
            self.on_done(self)
