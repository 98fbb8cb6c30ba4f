"""The listeners: sockets, TLS, the connection limit, graceful stop.

:class:`ImapServer` owns the listening sockets -- implicit TLS on
``config.port`` (RFC 8314 section 3.2) and, when ``config.imap_port`` is
set, plain IMAP that must be upgraded with STARTTLS (RFC 3501 section
6.2.1) -- and one :class:`~asimap.imap.driver.ConnectionDriver` task per
client.  :func:`serve` runs a server until cancelled; :func:`run` is the
process entry point used by ``asimapd`` (uvloop when installed, SIGTERM
and SIGINT stop gracefully: listeners close, every client gets ``* BYE``;
SIGHUP reloads the password file, the certificate and the logging
configuration without dropping a connection).  POP3 (:mod:`asimap.pop3`)
listens beside IMAP when enabled, sharing the services (so a user's IMAP
and POP3 sessions share one store) and the connection limit.

With ``config.workers`` (the default) this process only listens, does TLS
and authenticates: :func:`run` forks the zygote before any event loop
exists, and each logged-in connection is handed to its user's worker
process (:mod:`asimap.worker`).  ``--workers=off`` serves everything here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from asimap.auth.account import Account
from asimap.auth.authenticator import PasswordFileAuthenticator
from asimap.config import Config
from asimap.imap.clientio import ClientIO
from asimap.imap.driver import ConnectionDriver, Pipe, SessionLike, Timeouts
from asimap.imap.encoder import encode
from asimap.imap.limits import Limits
from asimap.imap.responses import Status, UntaggedStatus
from asimap.imap.session import Session
from asimap.imap.session.services import Services
from asimap.net.admission import (
    AdmissionLimits,
    RefusalLog,
    Verdict,
    admit,
    default_max_prelogin,
)
from asimap.ops import gcwatch
from asimap.ops.bigblocks import return_big_blocks
from asimap.ops.coredump import forbid_core_dumps
from asimap.ops.openfiles import raise_open_file_limit
from asimap.ops.trace import Tracer, tracer_factory
from asimap.pop3.driver import Pop3Driver
from asimap.pop3.responses import Code as Pop3Code
from asimap.pop3.responses import err as pop3_err
from asimap.store.base import NO_QUOTA, QuotaLimits, Store
from asimap.tls import make_server_context

if TYPE_CHECKING:
    from asimap.worker.manager import WorkerManager
    from asimap.worker.zygote import ZygoteHandle

log = logging.getLogger(__name__)

#: How long clients may take to finish their current command at shutdown.
SHUTDOWN_GRACE = 5.0
#: How long cancelled commands may take to end at shutdown: they only wait
#: for store work already under way (which cannot be interrupted), then
#: close their session and flush their last bytes.
DRAIN_LIMIT = 30.0

#: Called once per account when its store is first opened (quickstart demo
#: mail, tests).
StoreSeeder = Callable[[Account, Store], Awaitable[None]]

#: Builds the session of a connection; :class:`Session` in production, a
#: scripted stand-in in driver tests.
SessionFactory = Callable[[ClientIO, Services], SessionLike]


class StoreRegistry:
    """One store per account for the life of the process.

    Every connection of a user shares the same store object, so that the
    store's change feed reaches all of them (RFC 3501 section 5.2).
    """

    def __init__(
        self,
        kind: str,
        seed: StoreSeeder | None = None,
        *,
        mh_locking: bool = False,
        quota: QuotaLimits = NO_QUOTA,
    ) -> None:
        if kind not in ("memory", "mh"):
            raise ValueError(f"store {kind!r} is not available; use 'mh' or 'memory'")
        self._kind = kind
        self._seed = seed
        self._mh_locking = mh_locking
        self._quota = quota
        self._stores: dict[str, Store] = {}
        self._lock = asyncio.Lock()

    async def open(self, account: Account) -> Store:
        async with self._lock:
            store = self._stores.get(account.username)
            if store is None:
                store = await self._make(account)
                store.set_quota_limits(self._quota)
                if self._seed is not None:
                    await self._seed(account, store)
                self._stores[account.username] = store
            return store

    async def _make(self, account: Account) -> Store:
        if self._kind == "mh":
            from asimap.store.mh import MHStore

            # The account's maildir is its MH root (design.md section 2).
            return await MHStore.open(
                account.maildir, locking=self._mh_locking, create=True
            )
        from asimap.store.memory import MemoryStore

        return MemoryStore.for_new_account()

    async def close_all(self) -> None:
        async with self._lock:
            stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            try:
                await store.close()
            except Exception:
                log.exception("error while closing a store")


def quota_limits(config: Config) -> QuotaLimits:
    """The per-account limits the configuration asks for (RFC 9208)."""
    return QuotaLimits(storage=config.quota_storage, messages=config.quota_messages)


def limits_for(config: Config) -> Limits:
    """The protocol limits a configuration asks for (main and workers)."""
    return Limits(literal_minus=config.literal_minus)


def build_services(
    config: Config, seed: StoreSeeder | None = None
) -> tuple[Services, StoreRegistry]:
    """The production services: password-file accounts, a store per account.

    The registry is returned too, so that its stores can be closed when the
    server stops.
    """
    registry = StoreRegistry(
        config.store,
        seed,
        mh_locking=config.enable_mh_file_locking,
        quota=quota_limits(config),
    )
    services = Services(
        authenticator=PasswordFileAuthenticator(config.pwfile),
        open_store=registry.open,
        limits=limits_for(config),
    )
    return services, registry


class ImapServer:
    """Listeners plus the set of live connections.

    Use as ``async with ImapServer(config, services) as server:``; the
    bound ports are in :attr:`ports` (useful with port 0).
    """

    def __init__(
        self,
        config: Config,
        services: Services,
        tls_context: ssl.SSLContext | None = None,
        session_factory: SessionFactory | None = None,
        workers: WorkerManager | None = None,
    ) -> None:
        """``workers``: worker mode; the manager is ``services.handoff``,
        and its connections count against ``max_connections`` too."""
        self._config = config
        self._services = services
        self._workers = workers
        self._session_factory: SessionFactory = session_factory or Session
        self._tls = tls_context or make_server_context(config.cert, config.key)
        #: The context new handshakes use; replaced by :meth:`reload`.
        self._current_tls = self._tls
        self._timeouts = Timeouts(
            unauthenticated=config.idle_timeout_unauthenticated,
            authenticated=config.idle_timeout_authenticated,
            handshake=min(30.0, config.idle_timeout_unauthenticated),
        )
        #: ``--trace``: one trace file per connection (asimap.ops.trace).
        self._tracers = tracer_factory(config.trace, config.trace_dir)
        self._listeners: list[asyncio.Server] = []
        self._drivers: dict[ConnectionDriver | Pop3Driver, asyncio.Task[None]] = {}
        self._admission = AdmissionLimits(
            max_connections=config.max_connections,
            max_prelogin=(
                config.max_prelogin_connections
                if config.max_prelogin_connections is not None
                else default_max_prelogin(config.max_connections)
            ),
            max_prelogin_per_address=config.max_prelogin_per_address,
        )
        #: Connections told to go to make room; they no longer count.
        self._evicted: set[ConnectionDriver | Pop3Driver] = set()
        #: A flood of refused connections must not flood the log as well.
        self._refusals = RefusalLog()
        #: Bound port of each listener: ``{"imaps": 993, "imap": 143}``.
        self.ports: dict[str, int] = {}
        if workers is not None:
            workers.on_returned = self._on_returned

    @property
    def connection_count(self) -> int:
        served_by_workers = (
            0 if self._workers is None else self._workers.connection_count
        )
        return len(self._drivers) - len(self._evicted) + served_by_workers

    async def reload(self) -> None:
        """SIGHUP: re-read the password file, the certificate and key, and
        the logging configuration; no connection is dropped.

        The listeners keep their context, whose SNI callback (called for
        every handshake, with or without SNI) switches each new connection
        to the newest context -- existing connections keep theirs.  A bad
        new certificate is logged and the old one stays in use.
        """
        reload_accounts = getattr(self._services.authenticator, "reload", None)
        if callable(reload_accounts):
            await asyncio.to_thread(reload_accounts)
        try:
            fresh = make_server_context(self._config.cert, self._config.key)
        except (OSError, ssl.SSLError) as exc:
            log.error("SIGHUP: keeping the old certificate: %s", exc)
        else:
            self._current_tls = fresh
            self._tls.sni_callback = self._choose_context
        from asimap.ops.logging_setup import LoggingSetupError, setup_logging

        try:
            setup_logging(self._config)
        except LoggingSetupError as exc:
            log.error("SIGHUP: keeping the logging configuration: %s", exc)
        if self._workers is not None:
            self._workers.reload()
        log.info("reloaded password file, certificate and logging configuration")

    def _choose_context(
        self,
        ssl_object: ssl.SSLObject | ssl.SSLSocket,
        name: str | None,
        _ctx: ssl.SSLContext,
    ) -> None:
        del name
        if self._current_tls is not self._tls:
            ssl_object.context = self._current_tls

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        host = self._config.address
        imaps = await loop.create_server(
            lambda: Pipe(self._on_connected),
            host,
            self._config.port,
            ssl=self._tls,
            ssl_handshake_timeout=self._timeouts.handshake,
            reuse_address=True,
        )
        self._listeners.append(imaps)
        self.ports["imaps"] = _bound_port(imaps)
        if self._config.imap_port is not None:
            imap = await loop.create_server(
                lambda: Pipe(self._on_connected),
                host,
                self._config.imap_port,
                reuse_address=True,
            )
            self._listeners.append(imap)
            self.ports["imap"] = _bound_port(imap)
        await self._start_pop3(host)
        log.info("listening on %s: %s", host, self.ports)

    async def stop(self) -> bool:
        """Close listeners, say BYE to every client, wait, then cancel
        (:func:`drain`).  True when every session here has ended, so the
        stores may be closed."""
        for listener in self._listeners:
            listener.close()
        for driver in list(self._drivers):
            driver.shutdown()
        drained = await drain(list(self._drivers.values()), "server")
        if self._workers is not None:
            await self._workers.shutdown()
        for listener in self._listeners:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.wait_closed(), SHUTDOWN_GRACE)
        self._listeners.clear()
        return drained

    async def __aenter__(self) -> ImapServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _on_returned(self, pipe: Pipe, unparsed: bytes) -> None:
        """A worker gave a connection back after UNAUTHENTICATE (RFC 8437):
        a fresh not-authenticated session serves it, without a greeting
        (the client already has the worker's tagged OK), starting with the
        commands the client pipelined behind UNAUTHENTICATE."""
        tracer = self._tracers.new_tracer(pipe.peer_host)
        tracer.on_connect(pipe.peer_host, "imaps" if pipe.tls else "imap")
        self._start_driver(pipe, tracer, unparsed, greet=False)

    def _start_driver(
        self, pipe: Pipe, tracer: Tracer, unparsed: bytes = b"", *, greet: bool = True
    ) -> None:
        driver = ConnectionDriver(
            pipe,
            lambda io: self._session_factory(io, self._services),
            limits=self._services.limits,
            timeouts=self._timeouts,
            starttls_context=None if pipe.tls else self._tls,
            tracer=tracer,
            unparsed=unparsed,
        )
        self._track(driver, driver.run(greet=greet))

    def _track(
        self,
        driver: ConnectionDriver | Pop3Driver,
        running: Coroutine[Any, Any, None],
    ) -> None:
        """Run a connection, with its deadline to log in."""
        loop = asyncio.get_running_loop()
        task = loop.create_task(running)
        self._drivers[driver] = task
        deadline = loop.call_later(
            self._config.login_timeout, self._login_deadline, driver
        )

        def done(_task: asyncio.Task[None]) -> None:
            deadline.cancel()
            self._drivers.pop(driver, None)
            self._evicted.discard(driver)

        task.add_done_callback(done)

    def _login_deadline(self, driver: ConnectionDriver | Pop3Driver) -> None:
        """``login_timeout`` after connecting: a client that has not logged
        in by now is sent away, however often it sent a byte (the idle timer
        restarts on each one).  A logged-in connection is checked again one
        period later, since UNAUTHENTICATE (RFC 8437) can undo a login."""
        if driver not in self._drivers or driver in self._evicted:
            return
        if driver.authenticated:
            asyncio.get_running_loop().call_later(
                self._config.login_timeout, self._login_deadline, driver
            )
            return
        log.info(
            "%s: not logged in after %.0f s, closing",
            driver.peer_host,
            self._config.login_timeout,
        )
        driver.shutdown("Login timeout")

    def _admit(self, pipe: Pipe, refuse: Callable[[str], None]) -> bool:
        """Apply asimap.net.admission to a new connection; ``refuse`` says
        goodbye in the connection's protocol.  False if it was refused."""
        waiting = [
            driver
            for driver in self._drivers
            if driver not in self._evicted and not driver.authenticated
        ]
        verdict = admit(
            self._admission,
            total=self.connection_count,
            prelogin_peers=[driver.peer_host for driver in waiting],
            peer=pipe.peer_host,
        )
        if verdict is Verdict.ACCEPT_EVICTING_OLDEST:
            oldest = waiting[0]
            unlogged = self._refusals.should_log(oldest.peer_host, "dropped")
            if unlogged is not None:
                log.warning(
                    "%s: dropped to make room: the oldest of %d connections not "
                    "logged in (new one from %s)%s",
                    oldest.peer_host,
                    len(waiting),
                    pipe.peer_host,
                    _more(unlogged),
                )
            self._evicted.add(oldest)
            oldest.shutdown("Too many connections waiting to log in")
            return True
        if verdict is Verdict.REFUSE_ADDRESS:
            unlogged = self._refusals.should_log(pipe.peer_host, "address")
            if unlogged is not None:
                log.warning(
                    "%s: refused, %d connections from it have not logged in%s",
                    pipe.peer_host,
                    self._admission.max_prelogin_per_address,
                    _more(unlogged),
                )
            refuse("Too many connections from your address")
            pipe.close()
            return False
        if verdict is Verdict.REFUSE_FULL:
            unlogged = self._refusals.should_log(pipe.peer_host, "full")
            if unlogged is not None:
                log.warning(
                    "%s: refused, too many connections%s",
                    pipe.peer_host,
                    _more(unlogged),
                )
            refuse("Too many connections")
            pipe.close()
            return False
        return True

    def _on_connected(self, pipe: Pipe) -> None:
        def refuse(text: str) -> None:
            # RFC 3501 section 7.1.5: BYE, then close.
            with contextlib.suppress(ConnectionError):
                pipe.write(encode(UntaggedStatus(Status.BYE, text)))

        if not self._admit(pipe, refuse):
            return
        tracer = self._tracers.new_tracer(pipe.peer_host)
        tracer.on_connect(pipe.peer_host, "imaps" if pipe.tls else "imap")
        self._start_driver(pipe, tracer)

    async def _start_pop3(self, host: str) -> None:
        """POP3 over implicit TLS on ``pop3_port`` when ``enable_pop3``;
        plain POP3 with STLS (RFC 2595) on ``pop3_stls_port`` whenever that
        port is set, like ``imap_port``: setting it is the opt-in."""
        loop = asyncio.get_running_loop()
        if self._config.enable_pop3:
            pop3s = await loop.create_server(
                lambda: Pipe(self._on_pop3_connected),
                host,
                self._config.pop3_port,
                ssl=self._tls,
                ssl_handshake_timeout=self._timeouts.handshake,
                reuse_address=True,
            )
            self._listeners.append(pop3s)
            self.ports["pop3s"] = _bound_port(pop3s)
        if self._config.pop3_stls_port is not None:
            pop3 = await loop.create_server(
                lambda: Pipe(self._on_pop3_connected),
                host,
                self._config.pop3_stls_port,
                reuse_address=True,
            )
            self._listeners.append(pop3)
            self.ports["pop3"] = _bound_port(pop3)

    def _on_pop3_connected(self, pipe: Pipe) -> None:
        """Like :meth:`_on_connected`; one connection limit for both
        protocols, since both share the process and the user's store."""

        def refuse(text: str) -> None:
            with contextlib.suppress(ConnectionError):
                pipe.write(pop3_err(text, Pop3Code.SYS_TEMP))

        if not self._admit(pipe, refuse):
            return
        tracer = self._tracers.new_tracer(pipe.peer_host, "pop3")
        tracer.on_connect(pipe.peer_host, "pop3s" if pipe.tls else "pop3")
        driver = Pop3Driver(
            pipe,
            self._services,
            timeouts=self._timeouts,
            stls_context=None if pipe.tls else self._tls,
            tracer=tracer,
        )
        self._track(driver, driver.run())


async def drain(tasks: list[asyncio.Task[None]], who: str) -> bool:
    """Shutdown order for connection tasks already told to stop (their
    drivers' ``shutdown``): stop accepting is done by the caller; here a
    command running gets :data:`SHUTDOWN_GRACE` to finish (its tagged
    response, then ``* BYE``); one still running is cancelled (the client
    gets ``* BYE``) and awaited, at most :data:`DRAIN_LIMIT`, until its
    session has closed.  Only then may the stores close: a store closed
    under a session still using it fails that session's next store call.
    Returns False if some task is still running at the end.
    """
    if not tasks:
        return True
    _done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
    if not pending:
        return True
    log.info("%s: cancelling %d command(s) still running", who, len(pending))
    for task in pending:
        task.cancel()
    _done, pending = await asyncio.wait(pending, timeout=DRAIN_LIMIT)
    return not pending


def _more(unlogged: int) -> str:
    """The tail of a refusal's log line: how many like it went unlogged."""
    return f" ({unlogged} more like it not logged)" if unlogged else ""


def _bound_port(server: asyncio.Server) -> int:
    sockets = server.sockets
    if not sockets:
        raise OSError("listener has no socket")
    return int(sockets[0].getsockname()[1])


async def serve(
    config: Config,
    *,
    services: Services | None = None,
    ready: asyncio.Event | None = None,
    zygote: ZygoteHandle | None = None,
    seed: StoreSeeder | None = None,
    hangup: asyncio.Event | None = None,
) -> None:
    """Serve until cancelled; ``ready`` is set once the listeners are bound.

    With ``zygote`` (worker mode) logged-in connections go to per-user
    workers; ``seed`` is for stores opened here (single-process mode).
    Each time ``hangup`` is set, the server reloads (SIGHUP).
    """
    registry: StoreRegistry | None = None
    if services is None:
        services, registry = build_services(config, seed)
    workers: WorkerManager | None = None
    if zygote is not None:
        from asimap.worker.manager import WorkerManager

        workers = WorkerManager(config, zygote, seed)
        workers.start()
        services = dataclasses.replace(services, handoff=workers.handoff)
    server = ImapServer(config, services, workers=workers)
    reloader: asyncio.Task[None] | None = None
    try:
        await server.start()
        # What start-up made (modules, configuration, listeners) lives as
        # long as the process: out of the collector's sight, so that a full
        # collection walks the connections only.
        gc.freeze()
        if hangup is not None:
            reloader = asyncio.get_running_loop().create_task(
                _reload_on(hangup, server)
            )
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        if reloader is not None:
            reloader.cancel()
        drained = await server.stop()
        if registry is not None and drained:
            await registry.close_all()
        elif registry is not None:
            log.warning("sessions still busy; exiting without closing the stores")
        if registry is not None:
            # The authenticator's hashing threads: let running checks end.
            close = getattr(services.authenticator, "close", None)
            if callable(close):
                await asyncio.to_thread(close)


async def _reload_on(hangup: asyncio.Event, server: ImapServer) -> None:
    while True:
        await hangup.wait()
        hangup.clear()
        try:
            await server.reload()
        except Exception:
            log.exception("reload failed")


async def serve_until_signalled(
    config: Config,
    *,
    services: Services | None = None,
    on_ready: Callable[[], None] | None = None,
    zygote: ZygoteHandle | None = None,
    seed: StoreSeeder | None = None,
) -> None:
    """:func:`serve` until SIGTERM or SIGINT arrives; SIGHUP reloads."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    hangup = asyncio.Event()
    server_task = loop.create_task(
        serve(
            config,
            services=services,
            ready=ready,
            zygote=zygote,
            seed=seed,
            hangup=hangup,
        )
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hangup.set)
    try:
        stopper = loop.create_task(stop.wait())
        if on_ready is not None:
            waiter = loop.create_task(ready.wait())
            await asyncio.wait(
                {server_task, waiter}, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            if ready.is_set():
                on_ready()
        await asyncio.wait({server_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not server_task.done():
            log.info("stopping")
            server_task.cancel()
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server_task
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)


def run(
    config: Config,
    *,
    services: Services | None = None,
    on_ready: Callable[[], None] | None = None,
    seed: StoreSeeder | None = None,
) -> int:
    """Process entry point: returns the exit status.

    ``on_ready`` is called once the listeners are bound (the quickstart
    prints its instructions then); ``seed`` fills a new account's store
    (in its worker, or here with ``--workers=off``).  In worker mode the
    zygote is forked first, while this process has no loop and no thread;
    the store kind is checked before the fork and the certificate right
    after it (never before: the key would be copied into every worker), so
    a bad configuration fails before any client is served.
    """
    # Before the zygote forks, so that every worker inherits the limits
    # (and the collection timing of ASIMAP_GC_TRACE, asimap.ops.gcwatch).
    gcwatch.install_from_env()
    forbid_core_dumps()
    raise_open_file_limit(config.max_connections)
    return_big_blocks()
    zygote: ZygoteHandle | None = None
    if config.workers:
        try:
            StoreRegistry(config.store)
        except ValueError as exc:
            log.error("asimapd cannot run: %s", exc)
            return 1
        from asimap.worker.zygote import start_zygote

        zygote = start_zygote(config, seed)
        # The certificate is checked only after the fork: the private key,
        # once loaded, stays in this process's memory, and every worker (run
        # as its user) is a copy of the zygote's (docs/security.md).
        try:
            make_server_context(config.cert, config.key)
        except (OSError, ssl.SSLError) as exc:
            log.error("asimapd cannot run: %s", exc)
            _stop_zygote(zygote)
            return 1
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(
                serve_until_signalled(
                    config,
                    services=services,
                    on_ready=on_ready,
                    zygote=zygote,
                    seed=seed,
                )
            )
    except (OSError, ssl.SSLError, ValueError) as exc:
        log.error("asimapd cannot run: %s", exc)
        if zygote is not None:
            _stop_zygote(zygote)
        return 1
    return 0


def _stop_zygote(zygote: ZygoteHandle) -> None:
    """Start-up failed after the fork: let the zygote go and reap it."""
    import os

    zygote.sock.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(zygote.pid, 0)
