"""A new zygote after the first one died, started as a fresh process.

The first zygote is forked before the main process has an event loop or
a thread (:func:`asimap.worker.zygote.start_zygote`).  If it dies (killed
by an administrator, by the OOM killer), no new worker could start until
asimapd restarted.  Forking a replacement from the main process is not
safe any more: it has threads now, and a child forked from a threaded
process may inherit a lock some other thread held at that instant.  So
the replacement is a new interpreter: ``python -m asimap.worker.respawn
FD`` (fork immediately followed by exec, which :mod:`subprocess` does
safely in a threaded process), with the zygote's end of a new
socketpair as descriptor ``FD``, and the configuration and store seeder
pickled on its standard input.  It sets up logging, imports what workers
need (preload) and runs the same :class:`~asimap.worker.zygote.Zygote`
loop; its workers drop privileges exactly as before.

A seeder that cannot be pickled (a lambda in a test) is left out, with a
warning: the replacement then starts workers without seeding new
accounts, which only the quickstart demo and tests use.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from asimap.config import Config
from asimap.worker.zygote import ZygoteHandle

if TYPE_CHECKING:
    from asimap.imap.server import StoreSeeder

log = logging.getLogger(__name__)


def _payload(config: Config, seed: StoreSeeder | None) -> bytes:
    try:
        return pickle.dumps((config, seed))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        log.warning("the new zygote will not seed new accounts: %s", exc)
        return pickle.dumps((config, None))


def spawn_zygote(config: Config, seed: StoreSeeder | None) -> ZygoteHandle:
    """Start a fresh zygote process (blocking for a fork and an exec)."""
    payload = _payload(config, seed)
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = dict(os.environ)
    # The interpreter must import this very asimap, installed or not.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, env.get("PYTHONPATH", "")) if p
    )
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "asimap.worker.respawn", str(child_end.fileno())],
            stdin=subprocess.PIPE,
            pass_fds=[child_end.fileno()],
            env=env,
        )
    except BaseException:
        parent_end.close()
        raise
    finally:
        child_end.close()
    assert process.stdin is not None
    try:
        process.stdin.write(payload)
        process.stdin.close()
    except OSError as exc:  # it died at once; the channel will say so
        log.error("new zygote did not take its configuration: %s", exc)
    return ZygoteHandle(process.pid, parent_end, process)


def main(argv: list[str]) -> int:
    """The new zygote's process: read the configuration, become the zygote."""
    fd = int(argv[1])
    # exec made this process dumpable again (asimap.ops.coredump).
    from asimap.ops.coredump import forbid_core_dumps

    forbid_core_dumps()
    config, seed = pickle.load(sys.stdin.buffer)
    # Workers must not inherit the configuration pipe as their stdin.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    from asimap.ops.logging_setup import LoggingSetupError, setup_logging

    try:
        setup_logging(config)
    except LoggingSetupError as exc:
        print(f"asimap zygote: {exc}", file=sys.stderr)
    from asimap.worker.zygote import Zygote

    return Zygote(socket.socket(fileno=fd), config, seed).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
