"""The memory limit of a worker process (``--worker-memory-limit``).

One user's mail must not be able to exhaust the host: a worker that needs
more than the limit fails instead of growing.  The limit is set in the
worker right after the fork, before it serves anything, as
``RLIMIT_DATA`` (soft and hard, so the worker can never raise it):

* ``RLIMIT_DATA`` counts the process's private writable memory -- the heap,
  anonymous mappings (Python's arenas and every large object), thread
  stacks -- which is what grows when a command parses or builds too much.
  Since Linux 4.7 it covers ``mmap`` as well as ``brk``.
* ``RLIMIT_AS`` would count the *address space*, which says little about
  memory in use: every thread's malloc arena reserves 64 MiB of it up
  front, shared libraries and a memory-mapped SQLite database count whole,
  so a limit tight enough to matter would refuse ordinary work, and a
  loose one would not bound anything.
* ``RLIMIT_RSS`` is not enforced by Linux at all.

When an allocation is refused, Python raises :class:`MemoryError` in the
code that asked; the IMAP session answers that command ``NO [LIMIT]``
(RFC 5530 section 3) and the worker goes on.  Should the error strike where
nothing can answer (C code that aborts, the event loop itself), the worker
dies; the main process then says ``* BYE`` to that user's connections only,
and the user's next login starts a new worker.

The main process (and ``--workers=off``, where every user shares it) is
not limited: there the limit would be everyone's.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)


def apply_memory_limit(limit: int | None) -> None:
    """Limit this process's data memory to ``limit`` octets (None: leave
    the inherited limit).  A lower inherited hard limit is kept."""
    if limit is None:
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    except (ValueError, OSError) as exc:
        log.warning("cannot limit worker memory to %d octets: %s", limit, exc)
