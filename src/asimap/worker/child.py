"""A user's worker process: the stores, and every connection of one user.

Forked by the zygote (:mod:`asimap.worker.zygote`), a worker first takes
the identity of its mail root's owner (:mod:`asimap.worker.privileges`),
then runs an event loop that owns the user's stores through a
:class:`~asimap.imap.server.StoreRegistry` -- one store object for all of
the user's IMAP and POP3 connections, so that a change made through one
reaches the others at once (EXISTS, EXPUNGE, FETCH; IDLE wakes) -- and
serves each connection the main process hands over with the ordinary
drivers and sessions.

A handed-over connection already logged in in the main process.  The
worker *replays* that login: the session runs a LOGIN (IMAP) or
``AUTH PLAIN`` (POP3) whose password is a one-time token that only this
worker's authenticator accepts, for that one user.  So the tagged
``OK [CAPABILITY ...]`` (or the POP3 ``+OK`` with the maildrop's size)
comes from exactly the code that answers logins in single-process mode,
and the first response after LOGIN measures the real worker path.

UNAUTHENTICATE (RFC 8437) sends a connection back: this worker can log
nobody in, so once the tagged OK is on the wire the connection goes to
the main process (``unauthenticated``) with the client bytes the worker
had received but not parsed, and, for a relayed TLS connection, the
worker's end of the relay (``SCM_RIGHTS``) so that the main process can
collect what it had forwarded but the worker had not read yet.  A plain
connection's socket needs no return trip: the main process never gave up
its own descriptor of it, and simply reads it again once the worker has
closed its copy.

The worker reports each finished connection (``closed``), and after
``worker_linger`` seconds without connections asks to retire (``idle``).
The main process answers ``exit`` only if it has handed over nothing the
worker has not seen, so a login racing with the retirement is never lost.
``shutdown`` (SIGTERM of the main process), SIGTERM, or the control
socket closing (the main process died) say ``* BYE`` to every client,
close the stores and exit.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import gc
import logging
import os
import pwd
import secrets
import signal
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from asimap.auth.account import Account
from asimap.config import Config
from asimap.imap import commands as imap_commands
from asimap.imap.driver import ConnectionDriver, Pipe, Timeouts
from asimap.imap.server import (
    StoreRegistry,
    StoreSeeder,
    drain,
    limits_for,
    quota_limits,
)
from asimap.imap.session import Session
from asimap.imap.session.services import Services
from asimap.ops.coredump import forbid_core_dumps
from asimap.ops.trace import NoTracing, TracerFactory
from asimap.ops.trace_files import UserTraceFile, open_user_trace_dir
from asimap.pop3 import commands as pop3_commands
from asimap.pop3.driver import Pop3Driver
from asimap.worker.memory import apply_memory_limit
from asimap.worker.privileges import (
    Identity,
    PrivilegeError,
    drop_privileges,
    target_identity,
)
from asimap.worker.protocol import Channel, Message, send_blocking
from asimap.worker.zygote import set_process_name

log = logging.getLogger(__name__)


def worker_main(
    sock: socket.socket,
    config: Config,
    seed: StoreSeeder | None,
    username: str,
    maildir: Path,
) -> int:
    """The forked worker's whole life; returns its exit status."""
    set_process_name(f"asimap-w:{username}")
    try:
        identity = target_identity(maildir, allow_root_mail=config.allow_root_mail)
        tracers = _user_tracers(config, username, identity)
        if identity is not None:
            drop_privileges(identity)
            # A change of uid resets the dumpable flag (asimap.ops.coredump).
            forbid_core_dumps()
            with contextlib.suppress(KeyError):
                os.environ["HOME"] = pwd.getpwuid(identity.uid).pw_dir
    except PrivilegeError as exc:
        log.error("worker for %s not started: %s", username, exc)
        with contextlib.suppress(OSError):
            send_blocking(sock, {"op": "failed", "error": str(exc)})
        return 1
    apply_memory_limit(config.worker_memory_limit)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    worker = Worker(sock, config, seed, username, tracers)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(worker.run())


def _user_tracers(
    config: Config, username: str, identity: Identity | None
) -> TracerFactory:
    """``--trace``: the user's own rotating trace file, in a folder made
    for (and owned by) the user while this process can still make it
    (:mod:`asimap.ops.trace_files`)."""
    if not config.trace:
        return NoTracing()
    owner = None if identity is None else (identity.uid, identity.gid)
    try:
        dir_fd = open_user_trace_dir(config.trace_dir, username, owner)
    except OSError as exc:
        log.warning("worker for %s: cannot trace: %s", username, exc)
        return NoTracing()
    return UserTraceFile(dir_fd)


def reload_logging(config: Config, username: str) -> None:
    """SIGHUP reached the main process: take its new logging configuration.

    This process runs as the mail owner, who may not be allowed to open
    what the configuration names (a root-only log file).  A configuration
    that fails half-way leaves no handler at all, so then the worker logs
    to its standard output (the main process's), and says why there.
    """
    from asimap.ops.logging_setup import LoggingSetupError, setup_logging

    try:
        setup_logging(config)
    except (LoggingSetupError, OSError) as exc:
        setup_logging(dataclasses.replace(config, log_config=None), search_dirs=())
        log.error(
            "worker for %s: cannot use the new logging configuration, "
            "logging to standard output: %s",
            username,
            exc,
        )
        return
    log.info("worker for %s: logging configuration reloaded", username)


class _ReplayAuthenticator:
    """Accepts exactly the one-time tokens of logins replayed in this worker.

    Nothing else can log in here: the worker is reachable only through the
    main process, and a token is good once, for its one user.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, Account] = {}

    def issue(self, account: Account) -> str:
        token = secrets.token_urlsafe(24)
        self._tokens[token] = account
        return token

    async def authenticate(
        self, username: str, password: str, peer_host: str
    ) -> Account | None:
        del peer_host
        account = self._tokens.pop(password, None)
        if account is None or account.username != username:
            return None
        return account


class Worker:
    """The event-loop side of a worker (see the module docstring)."""

    def __init__(
        self,
        sock: socket.socket,
        config: Config,
        seed: StoreSeeder | None,
        username: str,
        tracers: TracerFactory | None = None,
    ) -> None:
        self._sock = sock
        self._config = config
        self._username = username
        self._registry = StoreRegistry(
            config.store,
            seed,
            mh_locking=config.enable_mh_file_locking,
            quota=quota_limits(config),
        )
        self._auth = _ReplayAuthenticator()
        #: One for every connection (they are all alike).
        self._limits = limits_for(config)
        self._timeouts = Timeouts(
            unauthenticated=config.idle_timeout_authenticated,
            authenticated=config.idle_timeout_authenticated,
            handshake=min(30.0, config.idle_timeout_unauthenticated),
        )
        self._tracers = tracers or NoTracing()
        self._connections: dict[int, ConnectionDriver | Pop3Driver] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._handoffs = 0
        self._linger: asyncio.TimerHandle | None = None
        self._stop = asyncio.Event()
        self._channel: Channel | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        self._channel = Channel(self._sock, self._on_message, self._stop.set)
        self._channel.send(
            {"op": "ready", "pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}
        )
        log.info("worker for %s ready (uid %d)", self._username, os.getuid())
        # The zygote froze what it preloaded; what this worker set up since
        # (its configuration, registry, channel) lives as long as it does:
        # out of the collector's sight too (asimap.worker.zygote).
        gc.freeze()
        self._arm_linger()
        await self._stop.wait()
        if await self._close_connections():
            await self._registry.close_all()
        else:
            # A session still works with a store: closing the store under
            # it is what logged "Cannot operate on a closed database".
            # Leave it: every acknowledged change is already committed and
            # the process ends now.
            log.warning(
                "worker for %s: sessions still busy; exiting without closing "
                "the stores",
                self._username,
            )
        if self._channel is not None:
            self._channel.close()
        log.info("worker for %s exits", self._username)
        return 0

    # control messages ----------------------------------------------------

    def _on_message(self, message: Message) -> None:
        if message.op == "handoff":
            self._handoffs += 1
            self._cancel_linger()
            task = asyncio.get_running_loop().create_task(self._serve(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        message.close_fds()
        if message.op == "exit":
            if not self._connections and not self._tasks:
                self._stop.set()
        elif message.op == "shutdown":
            self._stop.set()
        elif message.op == "reload-logging":
            reload_logging(self._config, self._username)
        else:
            log.warning("worker: unknown message %r", message.op)

    def _send(self, header: dict[str, object]) -> None:
        if self._channel is not None and not self._channel.closed:
            with contextlib.suppress(ConnectionError):
                self._channel.send(header)

    def _arm_linger(self) -> None:
        self._cancel_linger()
        self._linger = asyncio.get_running_loop().call_later(
            self._config.worker_linger, self._linger_expired
        )

    def _cancel_linger(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def _linger_expired(self) -> None:
        self._linger = None
        if not self._connections and not self._tasks:
            # The main process answers "exit" unless a handoff is on its way.
            self._send({"op": "idle", "handoffs": self._handoffs})

    # connections -----------------------------------------------------------

    async def _serve(self, message: Message) -> None:
        """One handed-over connection, from takeover to its end.

        The handoff message (its header, the unparsed bytes) and what was
        needed to set the connection up are dropped before the connection
        is served: an IDLE connection may last for days, holding only its
        driver.
        """
        conn = int(message.header.get("conn", 0))
        try:
            try:
                serving = await self._take_over(conn, message)
            finally:
                message.close_fds()
            del message
            await serving
        except Exception:
            log.exception("worker: connection %d failed", conn)
        finally:
            self._connections.pop(conn, None)
            self._send({"op": "closed", "conn": conn})
            if not self._connections and not self._stop.is_set():
                self._arm_linger()

    async def _take_over(
        self, conn: int, message: Message
    ) -> Coroutine[Any, Any, None]:
        """Set up the driver of a handed-over connection; returns its run
        (not started yet)."""
        header = message.header
        if len(message.fds) != 1:
            raise ValueError("handoff without a connection")
        sock = socket.socket(fileno=message.fds.pop())
        peer = str(header.get("peer", "unknown"))
        tls = bool(header.get("tls", False))

        def connected(pipe: Pipe) -> None:
            # The worker's socket is the client's own socket (plain) or a
            # relay from the main process (TLS): take both facts from main.
            pipe.tls = tls
            pipe.peer_host = peer

        loop = asyncio.get_running_loop()
        _transport, pipe = await loop.connect_accepted_socket(
            lambda: Pipe(connected), sock=sock
        )
        account = Account(self._username, Path(str(header.get("maildir", ""))))
        token = self._auth.issue(account)
        services = Services(
            authenticator=self._auth,
            open_store=self._registry.open,
            limits=self._limits,
            allow_plaintext_auth=bool(header.get("plaintext_ok", False)),
            give_back=functools.partial(self._give_back, conn),
        )
        log.info(
            "worker %s: %s connection %d from %s (tls=%s, id=%s)",
            self._username,
            header.get("kind"),
            conn,
            peer,
            tls,
            header.get("client_id"),
        )
        if header.get("kind") == "pop3":
            return self._serve_pop3(conn, pipe, services, message.data, token)
        tag = str(header.get("tag") or "*")
        return self._serve_imap(conn, pipe, services, message.data, token, tag)

    def _serve_imap(
        self,
        conn: int,
        pipe: Pipe,
        services: Services,
        unparsed: bytes,
        token: str,
        tag: str,
    ) -> Coroutine[Any, Any, None]:
        tracer = self._tracers.new_tracer(pipe.peer_host)
        tracer.on_connect(pipe.peer_host, "imaps" if pipe.tls else "imap")
        driver = ConnectionDriver(
            pipe,
            lambda io: Session(io, services),
            limits=services.limits,
            timeouts=self._timeouts,
            tracer=tracer,
            unparsed=unparsed,
        )
        self._connections[conn] = driver
        login = imap_commands.Login(
            tag=tag, username=self._username.encode(), password=token.encode()
        )
        return driver.run(first_command=login)

    def _serve_pop3(
        self, conn: int, pipe: Pipe, services: Services, unparsed: bytes, token: str
    ) -> Coroutine[Any, Any, None]:
        tracer = self._tracers.new_tracer(pipe.peer_host, "pop3")
        tracer.on_connect(pipe.peer_host, "pop3s" if pipe.tls else "pop3")
        driver = Pop3Driver(
            pipe,
            services,
            timeouts=self._timeouts,
            unparsed=unparsed,
            tracer=tracer,
        )
        self._connections[conn] = driver
        # RFC 4616 PLAIN: authzid NUL authcid NUL password.
        plain = b"\0" + self._username.encode() + b"\0" + token.encode()
        auth = pop3_commands.Auth(
            mechanism="PLAIN", initial_response=base64.b64encode(plain)
        )
        return driver.run(first_command=auth)

    async def _give_back(self, conn: int, io: object) -> None:
        """``Services.give_back``: UNAUTHENTICATE answered, the main process
        takes the connection back (module docstring).

        The tagged OK is flushed out of this process first, so that it
        reaches the client before anything the main process says next.
        """
        if not isinstance(io, ConnectionDriver):
            raise TypeError("only IMAP connections can be given back")
        pipe, unparsed = io.detach()
        try:
            await pipe.flush(self._timeouts.authenticated)
        finally:
            fds: list[int] = []
            transport = pipe.transport
            if pipe.tls and transport is not None and not transport.is_closing():
                # TLS: our socket is the worker's end of the relay.
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    fds.append(sock.fileno())
            header: dict[str, object] = {"op": "unauthenticated", "conn": conn}
            if self._channel is not None and not self._channel.closed:
                with contextlib.suppress(ConnectionError, ValueError):
                    # Channel.send duplicates the descriptors it sends.
                    self._channel.send(header, unparsed, fds)
            # Our descriptor only: closing it never shuts the socket down.
            pipe.close()
        log.info(
            "worker %s: connection %d given back (UNAUTHENTICATE)", self._username, conn
        )

    async def _close_connections(self) -> bool:
        """End every connection before the stores close (see
        :func:`asimap.imap.server.drain`); True once all have ended."""
        self._cancel_linger()
        for driver in list(self._connections.values()):
            driver.shutdown()
        return await drain(list(self._tasks), f"worker for {self._username}")
