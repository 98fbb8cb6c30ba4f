"""No core files from processes that hold secrets.

The main process holds the TLS private key, every password a client sends
(until it is verified) and the password file's hashes; a worker holds its
user's mail and, for a moment after a login, what the main process handed
it.  A core file would write all of that to disk, readable by whoever can
read the crash directory -- and ``core_pattern`` often points at a
system-wide one.  So at start-up each of these processes:

* sets ``RLIMIT_CORE`` to 0, soft and hard (setrlimit(2)): no core file is
  written, and the process cannot raise the limit again;
* marks itself not dumpable with ``prctl(PR_SET_DUMPABLE, 0)`` (Linux,
  prctl(2)): this also covers a ``core_pattern`` that pipes to a program
  (which ignores ``RLIMIT_CORE``), and stops other processes of the same
  user from attaching with ptrace or reading ``/proc/PID/mem``.

The flag is reset by ``execve`` and by a change of uid (to the value of
``fs.suid_dumpable``), so the respawned zygote (an exec) and each worker
(after dropping privileges) call this again.  Both settings survive
``fork``.  The cost: a debugger or ``py-spy`` needs root to attach to an
asimap process.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import resource
import sys

log = logging.getLogger(__name__)

#: From <linux/prctl.h>.
PR_SET_DUMPABLE = 4


def forbid_core_dumps() -> None:
    """Make this process leave no core file and refuse ptrace from peers.

    Never fails: a platform without prctl still gets the resource limit,
    and a refusal is logged rather than stopping the server.
    """
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as exc:
        log.warning("cannot set RLIMIT_CORE to 0: %s", exc)
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):  # no C library to load: nothing to do
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            log.warning(
                "cannot mark the process not dumpable: errno %d", ctypes.get_errno()
            )
