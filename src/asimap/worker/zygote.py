"""The zygote: a pre-loaded template process that forks user workers.

Starting a Python interpreter and importing the server costs far more
than the 150 ms a login may take, so ``asimapd`` forks this process once
at start-up -- before any event loop or thread exists, so the fork copies
nothing half-locked -- and it imports everything a worker needs.  For each
login of a user without a worker, the main process sends a ``spawn``
request with the worker's end of a fresh socketpair; the zygote forks a
child that becomes the worker (:mod:`asimap.worker.child`), which costs a
fork and no imports.

The zygote's loop is synchronous and tiny: wait on its control socket and
on SIGCHLD (through a wakeup pipe), fork on request, reap every child that
exits (no zombies) and report it to the main process.  It keeps the
privileges the main process started with, because it has to give each
worker the identity of its mail root's owner; it never touches mail.
Its control socket reaching end-of-file means the main process is gone:
it waits briefly for its children, then exits.

Messages (see :mod:`asimap.worker.protocol`):

* main -> zygote: ``spawn`` {id, username, maildir} + the worker's socket;
  ``reload-logging``.
* zygote -> main: ``spawned`` {id, pid}, ``spawn-failed`` {id, error},
  ``exited`` {pid, status}.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import select
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asimap.config import Config
from asimap.worker.protocol import BlockingReceiver, Message, send_blocking

if TYPE_CHECKING:
    from asimap.imap.server import StoreSeeder

log = logging.getLogger(__name__)

#: How long the zygote waits for its workers once the main process is gone.
EXIT_GRACE = 10.0


@dataclass(slots=True)
class ZygoteHandle:
    """The main process's view of its zygote: pid and control socket
    (and, for a zygote started as a new process after the first one died,
    :mod:`asimap.worker.respawn`, its :class:`subprocess.Popen`)."""

    pid: int
    sock: socket.socket
    process: subprocess.Popen[bytes] | None = None

    def reap(self, timeout: float) -> None:
        """Wait for the zygote to exit (it waits for its workers); kill it
        if it takes longer than ``timeout``.  Blocking: run in a thread."""
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                done, _status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                return
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


def set_process_name(name: str) -> None:
    """Name this process in ``ps``/``/proc/PID/comm`` (at most 15 bytes)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_bytes(name.encode()[:15])


def start_zygote(config: Config, seed: StoreSeeder | None = None) -> ZygoteHandle:
    """Fork the zygote.  Call before starting any event loop or thread."""
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # the zygote
        code = 70
        try:
            parent_end.close()
            code = Zygote(child_end, config, seed).run()
        except BaseException:
            log.exception("zygote failed")
        finally:
            os._exit(code)
    child_end.close()
    return ZygoteHandle(pid, parent_end)


class Zygote:
    """The zygote's synchronous loop (see the module docstring)."""

    def __init__(
        self, sock: socket.socket, config: Config, seed: StoreSeeder | None
    ) -> None:
        self._sock = sock
        self._config = config
        self._seed = seed
        self._children: set[int] = set()
        self._wakeup_r, self._wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def run(self) -> int:
        set_process_name("asimap-zygote")
        # The main process decides when things stop: a Ctrl-C on the
        # terminal, a SIGHUP, or a service manager's SIGTERM to the whole
        # group reach us too.  We exit when the main process lets go of
        # our control socket, after our workers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.set_wakeup_fd(self._wakeup_w)
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
        # Everything a worker runs is imported here, once.
        from asimap.worker.preload import preload

        started = time.monotonic()
        count = preload()
        # What was preloaded is shared with every worker until written to;
        # the cyclic GC writes to every object it scans, so without this a
        # worker's first collections unshare most of it (10 workers: 8 MB
        # more PSS).
        gc.freeze()
        log.debug("zygote: %d modules in %.2f s", count, time.monotonic() - started)

        receiver = BlockingReceiver(self._sock)
        while True:
            try:
                ready, _, _ = select.select(
                    [self._sock.fileno(), self._wakeup_r], [], []
                )
            except InterruptedError:
                continue
            if self._wakeup_r in ready:
                self._drain_wakeups()
                self._reap()
            if self._sock.fileno() in ready:
                message = receiver.receive()
                if message is None:
                    break
                self._handle(message)
        self._wait_for_children()
        return 0

    def _handle(self, message: Message) -> None:
        if message.op == "spawn":
            self._spawn(message)
        elif message.op == "reload-logging":
            self._reload_logging()
        else:
            log.warning("zygote: unknown request %r", message.op)
        message.close_fds()

    def _spawn(self, message: Message) -> None:
        request_id = message.header.get("id")
        username = str(message.header.get("username", ""))
        maildir = Path(str(message.header.get("maildir", "")))
        if len(message.fds) != 1 or not username:
            send_blocking(
                self._sock,
                {"op": "spawn-failed", "id": request_id, "error": "bad request"},
            )
            return
        worker_fd = message.fds[0]
        try:
            pid = os.fork()
        except OSError as exc:
            send_blocking(
                self._sock, {"op": "spawn-failed", "id": request_id, "error": str(exc)}
            )
            return
        if pid == 0:
            self._become_worker(worker_fd, username, maildir)
        self._children.add(pid)
        send_blocking(self._sock, {"op": "spawned", "id": request_id, "pid": pid})

    def _become_worker(self, worker_fd: int, username: str, maildir: Path) -> None:
        """In the forked child: shed the zygote's state, run the worker."""
        code = 70
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            self._sock.close()
            os.close(self._wakeup_r)
            os.close(self._wakeup_w)
            from asimap.worker.child import worker_main

            sock = socket.socket(fileno=worker_fd)
            code = worker_main(sock, self._config, self._seed, username, maildir)
        except BaseException:
            log.exception("worker for %s failed", username)
        finally:
            logging.shutdown()
            os._exit(code)

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wakeup_r, 512):
                pass

    def _reap(self) -> None:
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self._children.clear()
                return
            if pid == 0:
                return
            self._children.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                send_blocking(self._sock, {"op": "exited", "pid": pid, "status": code})

    def _reload_logging(self) -> None:
        from asimap.ops.logging_setup import LoggingSetupError, setup_logging

        try:
            setup_logging(self._config)
        except LoggingSetupError as exc:
            log.error("zygote: cannot reload logging: %s", exc)

    def _wait_for_children(self) -> None:
        """Workers see the main process go too and stop; wait for them."""
        deadline = time.monotonic() + EXIT_GRACE
        while self._children and time.monotonic() < deadline:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.05)
            else:
                self._children.discard(pid)
        for pid in self._children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
