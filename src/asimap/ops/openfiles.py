"""The process's open-file limit, raised at start-up as far as allowed.

Every client connection holds descriptors: in worker mode the main process
keeps the client's socket and its end of the relay socketpair (two per TLS
connection), and the worker one more.  Many systems start daemons with a
soft ``RLIMIT_NOFILE`` of 1024, far below what ``--max-connections`` may
ask for, while the hard limit is much higher.  An unprivileged process may
raise its soft limit up to the hard limit (setrlimit(2)), so the server
does that once, before it forks anything (the zygote and every worker
inherit the raised limit), and says in the log what it did.
"""

from __future__ import annotations

import logging
import resource
from pathlib import Path

log = logging.getLogger(__name__)

#: Descriptors the main process needs besides its connections (listeners,
#: log files, the zygote socket, the password file, the event loop).
RESERVED_DESCRIPTORS = 64
#: Descriptors per connection in the main process (client socket + relay).
DESCRIPTORS_PER_CONNECTION = 2
#: Linux's per-process ceiling when the hard limit is "unlimited".
_NR_OPEN = Path("/proc/sys/fs/nr_open")


def _ceiling(hard: int) -> int:
    """The highest soft limit we may ask for under ``hard``.

    RLIMIT_NOFILE cannot really be infinite: with an unlimited hard limit
    Linux still caps it at ``fs.nr_open``.
    """
    if hard != resource.RLIM_INFINITY:
        return hard
    try:
        return int(_NR_OPEN.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 1 << 20


def raise_open_file_limit(max_connections: int) -> int:
    """Raise the soft open-file limit to the hard one; return the new soft.

    Logs the change (or why there was none), and warns when even the new
    limit leaves too few descriptors for ``max_connections``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _ceiling(hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        log.info("open-file limit %s is already the hard limit", _show(soft))
    else:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning(
                "could not raise the open-file limit from %d to %d: %s",
                soft,
                target,
                exc,
            )
        else:
            log.info(
                "raised the open-file limit from %d to %d (hard limit %s)",
                soft,
                target,
                _show(hard),
            )
            soft = target
    needed = max_connections * DESCRIPTORS_PER_CONNECTION + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "open-file limit %d is below the %d that %d connections need; "
            "raise the hard limit (LimitNOFILE= in a systemd unit, ulimit -Hn) "
            "or lower --max-connections",
            soft,
            needed,
            max_connections,
        )
    return soft


def _show(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
