"""The main process's side of the workers: one per user, on demand.

:class:`WorkerManager` is the ``Services.handoff`` of worker mode.  When a
session in the main process has authenticated a user, it calls
:meth:`WorkerManager.handoff`, which

1. finds the user's worker, or asks the zygote for one (refusing with
   :class:`~asimap.imap.session.services.HandoffRefused` when
   ``max_workers`` are already running or the worker cannot start -- the
   client hears ``NO [UNAVAILABLE]`` / ``-ERR [SYS/TEMP]`` and nothing was
   taken from its connection);
2. detaches the connection from the main-process driver, with every byte
   the client pipelined after its login;
3. sends the worker a ``handoff`` message with the connection: for a plain
   connection the client's socket itself (the main process keeps its own
   descriptor only to say ``* BYE`` should the worker die, and never reads
   it); for TLS the worker's end of a relay (:mod:`asimap.worker.relay`).

UNAUTHENTICATE (RFC 8437) brings a connection back: the worker sends
``unauthenticated`` with the bytes it had not parsed (and, for TLS, its
end of the relay, see :meth:`Relay.reclaim`); the connection's own pipe
reads again here and :attr:`WorkerManager.on_returned` -- the IMAP server
-- starts a not-authenticated session on it without a greeting.

The zygote is watched like a worker: its control socket reaching
end-of-file means it died.  Workers already running go on; a new zygote
is started as a fresh process (:mod:`asimap.worker.respawn`: forking one
from this threaded process would not be safe), and logins arriving
meanwhile wait for it.  A zygote that keeps dying soon after its start is
restarted with a growing delay (:data:`RESPAWN_DELAYS`), never in a
tight loop.

Workers are only reachable through their control socketpair, which only
this process holds.  A worker's death is seen as end-of-file on that
socket (the zygote reaps the process and reports its exit status): its
clients get ``* BYE`` (POP3: ``-ERR [SYS/TEMP]``) and the next login of
the user starts a new worker.  Nothing acknowledged is lost -- the store
writes a message durably before APPEND is answered -- and nothing partial
is left: an interrupted APPEND leaves at most a temporary file, which the
MH store removes when it next opens the folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from asimap.config import Config
from asimap.imap.driver import SHUTDOWN_FLUSH, Pipe
from asimap.imap.server import DRAIN_LIMIT, SHUTDOWN_GRACE
from asimap.imap.session.services import HandoffRefused, HandoffRequest
from asimap.worker.protocol import Channel, ChannelClosed, Message
from asimap.worker.relay import ReclaimFailed, Relay
from asimap.worker.zygote import ZygoteHandle

if TYPE_CHECKING:
    from asimap.imap.server import StoreSeeder

log = logging.getLogger(__name__)

#: How long a new worker may take to say it is ready.
START_TIMEOUT = 15.0
#: How long the zygote gets to exit, and orphaned workers to be reaped.
STOP_TIMEOUT = 10.0
#: How long workers get to end their connections at shutdown: a command
#: running gets a grace period, then is cancelled and awaited until its
#: session closed, then the last bytes are flushed (see
#: :func:`asimap.imap.server.drain`).
WORKER_STOP_TIMEOUT = SHUTDOWN_GRACE + DRAIN_LIMIT + SHUTDOWN_FLUSH + 5.0
#: A zygote that lived less than this died "at once": the next one waits.
ZYGOTE_MIN_LIFE = 10.0
#: Successive delays before restarting a zygote that keeps dying at once.
RESPAWN_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

IMAP_BYE = b"* BYE Server process for this account stopped; please reconnect\r\n"
POP3_BYE = b"-ERR [SYS/TEMP] Server process for this account stopped\r\n"


@runtime_checkable
class Detachable(Protocol):
    """What the handoff needs of a driver (IMAP or POP3)."""

    def detach(self) -> tuple[Pipe, bytes]: ...


@dataclass(eq=False, slots=True)
class _Connection:
    """A connection served by a worker, as the main process keeps it."""

    kind: str
    pipe: Pipe
    relay: Relay | None = None

    def worker_finished(self) -> None:
        """The worker finished with the connection normally."""
        if self.relay is not None:
            self.relay.finish(None)
        else:
            self.pipe.close()

    def worker_died(self) -> None:
        bye = POP3_BYE if self.kind == "pop3" else IMAP_BYE
        if self.relay is not None:
            self.relay.finish(bye)
            return
        with contextlib.suppress(ConnectionError):
            self.pipe.write(bye)
        self.pipe.close()


@dataclass(eq=False, slots=True)
class _Worker:
    username: str
    channel: Channel | None = None
    pid: int | None = None
    uid: int | None = None
    ready: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    connections: dict[int, _Connection] = field(default_factory=dict)
    handoffs_sent: int = 0
    retiring: bool = False
    #: The zygote that forked it (its parent, which reaps it).
    zygote_pid: int | None = None


class WorkerManager:
    """One worker per user, started through the zygote (module docstring)."""

    def __init__(
        self,
        config: Config,
        zygote: ZygoteHandle,
        seed: StoreSeeder | None = None,
    ) -> None:
        """``seed`` is handed to a zygote started after the first one died."""
        self._config = config
        self._zygote = zygote
        self._seed = seed
        self._zygote_channel: Channel | None = None
        self._zygote_up = asyncio.Event()
        self._zygote_started = time.monotonic()
        self._quick_deaths = 0
        self._respawner: asyncio.Task[None] | None = None
        self._reapers: set[asyncio.Future[None]] = set()
        #: TLS relays not finished yet (flushed at shutdown).
        self._relays: set[Relay] = set()
        self._requests = itertools.count(1)
        self._conn_ids = itertools.count(1)
        self._spawns: dict[int, asyncio.Future[int]] = {}
        self._workers: dict[str, _Worker] = {}
        self._retiring: dict[str, _Worker] = {}
        self._by_pid: dict[int, _Worker] = {}
        self._stopping = False
        #: Serves a connection a worker gave back (UNAUTHENTICATE): called
        #: with its pipe (reading again) and the client bytes not parsed
        #: yet.  Set by the IMAP server; None closes such connections.
        self.on_returned: Callable[[Pipe, bytes], None] | None = None
        self._returns: set[asyncio.Task[None]] = set()

    # lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Attach to the zygote's control socket (on the running loop)."""
        self._attach_zygote()

    @property
    def zygote_pid(self) -> int | None:
        """Pid of the live zygote (None while a new one is being started)."""
        return self._zygote.pid if self._zygote_up.is_set() else None

    def _attach_zygote(self) -> None:
        zygote = self._zygote
        self._zygote_channel = Channel(
            zygote.sock,
            self._on_zygote_message,
            lambda: self._on_zygote_lost(zygote),
        )
        self._zygote_started = time.monotonic()
        self._zygote_up.set()
        log.info("zygote running: pid %d", zygote.pid)

    @property
    def connection_count(self) -> int:
        workers = [*self._workers.values(), *self._retiring.values()]
        return sum(len(w.connections) for w in workers)

    def worker_pids(self) -> dict[str, int]:
        """Usernames and pids of the live workers (for logs and tests)."""
        return {
            name: w.pid
            for name, w in self._workers.items()
            if w.pid is not None and w.ready.done()
        }

    def reload(self) -> None:
        """SIGHUP: the zygote (so new workers) and every running worker
        take the new logging configuration."""
        channels = [self._zygote_channel]
        channels += [
            w.channel for w in (*self._workers.values(), *self._retiring.values())
        ]
        for channel in channels:
            if channel is not None and not channel.closed:
                with contextlib.suppress(ConnectionError):
                    channel.send({"op": "reload-logging"})

    async def shutdown(self) -> None:
        """Ask every worker to say BYE and exit, wait (bounded), then let
        the zygote go and reap it."""
        self._stopping = True
        workers = [*self._workers.values(), *self._retiring.values()]
        for worker in workers:
            if worker.channel is not None and not worker.channel.closed:
                with contextlib.suppress(ConnectionError):
                    worker.channel.send({"op": "shutdown"})
        waits = [asyncio.ensure_future(w.gone.wait()) for w in workers]
        if waits:
            _done, pending = await asyncio.wait(waits, timeout=WORKER_STOP_TIMEOUT)
            for waiter in pending:
                waiter.cancel()
        # What the workers wrote last (a BYE) reaches their TLS clients.
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_FLUSH
        while self._relays and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        for worker in workers:
            if worker.channel is not None:
                worker.channel.close()
        if self._respawner is not None:
            self._respawner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._respawner
        if self._zygote_channel is not None:
            self._zygote_channel.close()
        else:
            self._zygote.sock.close()
        await asyncio.to_thread(self._zygote.reap, STOP_TIMEOUT)
        if self._reapers:
            await asyncio.wait(self._reapers, timeout=STOP_TIMEOUT)

    # the handoff ------------------------------------------------------------

    async def handoff(self, io: object, request: HandoffRequest) -> None:
        """``Services.handoff``: give ``io``'s connection to the user's worker."""
        if not isinstance(io, Detachable):
            raise HandoffRefused("This connection cannot be handed over")
        worker = await self._worker_for(request)
        pipe, unparsed = io.detach()
        conn_id = next(self._conn_ids)
        connection = _Connection(request.protocol, pipe)
        worker.connections[conn_id] = connection
        header: dict[str, object] = {
            "op": "handoff",
            "conn": conn_id,
            "kind": request.protocol,
            "maildir": str(request.account.maildir),
            "tag": request.tag,
            "peer": pipe.peer_host,
            "tls": pipe.tls,
            "plaintext_ok": not pipe.tls,
            "client_id": [list(pair) for pair in request.client_id or ()],
        }
        try:
            fd = await self._connection_fd(connection)
            try:
                assert worker.channel is not None
                worker.handoffs_sent += 1
                worker.channel.send(header, unparsed, [fd])
            finally:
                os.close(fd)
        except (OSError, ValueError) as exc:
            # The worker went away while we handed over: the client hears
            # BYE like every other client of a dead worker.
            log.warning(
                "handoff to %s's worker failed: %s", request.account.username, exc
            )
            worker.connections.pop(conn_id, None)
            connection.worker_died()

    async def _connection_fd(self, connection: _Connection) -> int:
        """The descriptor the worker gets: the client's socket, or the
        worker's end of a new TLS relay."""
        transport = connection.pipe.transport
        if transport is None:
            raise ChannelClosed("connection already closed")
        if not connection.pipe.tls:
            sock = transport.get_extra_info("socket")
            if sock is None:
                raise ChannelClosed("connection has no socket")
            return os.dup(sock.fileno())
        main_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        relay = Relay(transport)
        connection.relay = relay
        self._relays.add(relay)
        relay.on_done = self._relays.discard
        try:
            await relay.start(main_end)
        except BaseException:
            main_end.close()
            worker_end.close()
            raise
        return worker_end.detach()

    # worker start -----------------------------------------------------------

    async def _worker_for(self, request: HandoffRequest) -> _Worker:
        if self._stopping:
            raise HandoffRefused("Server shutting down")
        username = request.account.username
        worker = self._workers.get(username)
        if worker is None:
            old = self._retiring.get(username)
            if old is not None:
                # Let the retiring worker close the store first.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(old.gone.wait(), STOP_TIMEOUT)
                worker = self._workers.get(username)
        if worker is None:
            if len(self._workers) + len(self._retiring) >= self._config.max_workers:
                log.warning(
                    "login of %s refused: %d workers", username, len(self._workers)
                )
                raise HandoffRefused("Too many users logged in; try again later")
            worker = _Worker(username)
            self._workers[username] = worker
            # A fresh context: the worker's channel (its transport keeps a
            # copy of the context it is made in) would otherwise keep the
            # session of the LOGIN that started the worker, for as long as
            # the worker lives.
            asyncio.get_running_loop().create_task(
                self._start(worker, request), context=contextvars.Context()
            )
        try:
            await asyncio.shield(worker.ready)
        except HandoffRefused:
            raise
        except Exception as exc:
            raise HandoffRefused("Cannot start a server process now") from exc
        if worker.channel is None or worker.channel.closed:
            raise HandoffRefused("Server process for this account stopped")
        return worker

    async def _start(self, worker: _Worker, request: HandoffRequest) -> None:
        main_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            worker.channel = Channel(
                main_end,
                lambda message: self._on_worker_message(worker, message),
                lambda: self._on_worker_lost(worker),
            )
            await self._wait_for_zygote()
            request_id = next(self._requests)
            spawned: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._spawns[request_id] = spawned
            if self._zygote_channel is None or self._zygote_channel.closed:
                raise HandoffRefused("Cannot start a server process now")
            worker.zygote_pid = self._zygote.pid
            self._zygote_channel.send(
                {
                    "op": "spawn",
                    "id": request_id,
                    "username": worker.username,
                    "maildir": str(request.account.maildir),
                },
                fds=[worker_end.fileno()],
            )
            worker_end.close()
            async with asyncio.timeout(START_TIMEOUT):
                worker.pid = await spawned
                self._by_pid[worker.pid] = worker
                await asyncio.shield(worker.ready)
        except BaseException as exc:
            worker_end.close()
            if not worker.ready.done():
                worker.ready.set_exception(
                    exc if isinstance(exc, Exception) else RuntimeError(str(exc))
                )
                # Retrieved by _worker_for; mark it so asyncio does not warn.
                worker.ready.exception()
            if worker.channel is not None:
                worker.channel.close()
            self._forget(worker)
            if not isinstance(exc, Exception):
                raise
            log.error("worker for %s did not start: %s", worker.username, exc)

    async def _wait_for_zygote(self) -> None:
        """A login while a new zygote is being started waits for it."""
        if self._zygote_up.is_set() or self._stopping:
            return
        try:
            await asyncio.wait_for(self._zygote_up.wait(), START_TIMEOUT)
        except TimeoutError:
            raise HandoffRefused("Cannot start a server process now") from None

    # the zygote's death -------------------------------------------------------

    def _on_zygote_lost(self, zygote: ZygoteHandle) -> None:
        if zygote is not self._zygote:
            return
        self._zygote_up.clear()
        self._zygote_channel = None
        for future in self._spawns.values():
            if not future.done():
                future.set_exception(HandoffRefused("Cannot start a server process"))
        self._spawns.clear()
        if self._stopping:
            return
        # Workers already running go on; new ones wait for a new zygote.
        log.error("the zygote (pid %d) is gone; starting a new one", zygote.pid)
        self._respawner = asyncio.get_running_loop().create_task(self._respawn(zygote))

    async def _respawn(self, dead: ZygoteHandle) -> None:
        dead.sock.close()
        await asyncio.to_thread(dead.reap, STOP_TIMEOUT)
        lived = time.monotonic() - self._zygote_started
        self._quick_deaths = self._quick_deaths + 1 if lived < ZYGOTE_MIN_LIFE else 0
        attempt = 0
        while not self._stopping:
            # The first death is answered at once; a zygote that keeps
            # dying young (or cannot start) is retried ever more slowly.
            quick = self._quick_deaths + attempt
            if quick > 1:
                await asyncio.sleep(RESPAWN_DELAYS[min(quick, len(RESPAWN_DELAYS)) - 1])
            from asimap.worker.respawn import spawn_zygote

            try:
                fresh = await asyncio.to_thread(spawn_zygote, self._config, self._seed)
            except OSError as exc:
                log.error("cannot start a new zygote: %s", exc)
                attempt += 1
                continue
            if self._stopping:
                fresh.sock.close()
                await asyncio.to_thread(fresh.reap, STOP_TIMEOUT)
                return
            self._zygote = fresh
            self._attach_zygote()
            return

    # messages ----------------------------------------------------------------

    def _on_zygote_message(self, message: Message) -> None:
        message.close_fds()
        header = message.header
        if message.op in ("spawned", "spawn-failed"):
            future = self._spawns.pop(int(header.get("id", 0)), None)
            if future is None or future.done():
                return
            if message.op == "spawned":
                future.set_result(int(header["pid"]))
            else:
                future.set_exception(HandoffRefused(str(header.get("error"))))
        elif message.op == "exited":
            pid, status = int(header.get("pid", 0)), header.get("status")
            worker = self._by_pid.pop(pid, None)
            name = worker.username if worker is not None else "?"
            level = logging.INFO if status == 0 else logging.WARNING
            log.log(level, "worker %d (%s) exited with status %s", pid, name, status)

    def _on_worker_message(self, worker: _Worker, message: Message) -> None:
        if message.op == "unauthenticated":
            self._on_unauthenticated(worker, message)
            return
        message.close_fds()
        header = message.header
        if message.op == "ready":
            worker.uid = header.get("uid")
            log.info(
                "worker for %s started: pid %s uid %s",
                worker.username,
                header.get("pid"),
                worker.uid,
            )
            if not worker.ready.done():
                worker.ready.set_result(None)
        elif message.op == "failed":
            if not worker.ready.done():
                worker.ready.set_exception(
                    HandoffRefused("Mail store unavailable for this account")
                )
            log.error("worker for %s refused: %s", worker.username, header.get("error"))
        elif message.op == "closed":
            connection = worker.connections.pop(int(header.get("conn", 0)), None)
            if connection is not None:
                connection.worker_finished()
        elif message.op == "idle":
            self._maybe_retire(worker, header.get("handoffs"))

    def _on_unauthenticated(self, worker: _Worker, message: Message) -> None:
        conn = int(message.header.get("conn", 0))
        connection = worker.connections.pop(conn, None)
        if connection is None or connection.kind != "imap":
            message.close_fds()
            return
        task = asyncio.get_running_loop().create_task(
            self._take_back(connection, message)
        )
        self._returns.add(task)
        task.add_done_callback(self._returns.discard)

    async def _take_back(self, connection: _Connection, message: Message) -> None:
        """Serve a connection here again after UNAUTHENTICATE (RFC 8437)."""
        unparsed = message.data
        worker_end: socket.socket | None = None
        try:
            if connection.relay is not None:
                if message.fds:
                    worker_end = socket.socket(fileno=message.fds.pop(0))
                unparsed += await connection.relay.reclaim(worker_end)
                transport = connection.pipe.transport
                if transport is None:
                    raise ReclaimFailed("connection without a transport")
                transport.set_protocol(connection.pipe)
            if self.on_returned is None or self._stopping:
                raise ReclaimFailed("not accepting connections")
            connection.pipe.reattach()
            self.on_returned(connection.pipe, unparsed)
        except (OSError, TimeoutError) as exc:
            log.info("connection not taken back after UNAUTHENTICATE: %s", exc)
            connection.pipe.close()
        finally:
            if connection.relay is not None:
                self._relays.discard(connection.relay)  # reclaimed: no done
            if worker_end is not None:
                worker_end.close()
            message.close_fds()

    def _maybe_retire(self, worker: _Worker, handoffs: object) -> None:
        """The worker lingered long enough: let it go, unless a handoff it
        has not seen yet is on its way."""
        if handoffs != worker.handoffs_sent or worker.connections:
            return
        if self._workers.get(worker.username) is worker:
            del self._workers[worker.username]
        worker.retiring = True
        self._retiring[worker.username] = worker
        assert worker.channel is not None
        with contextlib.suppress(ConnectionError):
            worker.channel.send({"op": "exit"})

    def _on_worker_lost(self, worker: _Worker) -> None:
        if not worker.ready.done():
            worker.ready.set_exception(HandoffRefused("Cannot start a server process"))
            worker.ready.exception()
        connections = list(worker.connections.values())
        worker.connections.clear()
        if connections or not (worker.retiring or self._stopping):
            log.warning(
                "worker for %s (pid %s) ended with %d connection(s)",
                worker.username,
                worker.pid,
                len(connections),
            )
        for connection in connections:
            connection.worker_died()
        self._forget(worker)
        if worker.pid is not None and worker.zygote_pid != self.zygote_pid:
            # Its zygote died: the worker was re-parented, to this process
            # if it is the init of its namespace.  Reap it if it is ours.
            self._by_pid.pop(worker.pid, None)
            reaper = asyncio.ensure_future(
                asyncio.to_thread(_reap_orphan, worker.pid, STOP_TIMEOUT)
            )
            self._reapers.add(reaper)
            reaper.add_done_callback(self._reapers.discard)

    def _forget(self, worker: _Worker) -> None:
        if self._workers.get(worker.username) is worker:
            del self._workers[worker.username]
        if self._retiring.get(worker.username) is worker:
            del self._retiring[worker.username]
        worker.gone.set()


def _reap_orphan(pid: int, timeout: float) -> None:
    """Collect a worker whose zygote died, if it became our child; its
    new parent (init, a subreaper) reaps it otherwise.  Blocking."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.05)
