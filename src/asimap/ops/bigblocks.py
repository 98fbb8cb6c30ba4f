"""Big memory blocks go back to the system when freed (glibc's malloc).

Why: a 25 MB APPEND or FETCH needs a few blocks of about its size (the
literal as it arrives, the message's bytes, the file read back).  glibc
serves a block of 128 KiB or more with a mapping of its own, returned to
the system by ``free`` -- but each such free raises that threshold to the
block's size (up to 32 MiB), so the next big blocks come from the heap,
and a heap gives back only what is free at its very top.  After three
25 MB APPENDs and FETCHes a worker kept ~75 MB it no longer used, for
as long as it lived (measured with ``python -m bench.suite bulk``).

Fixing the threshold with ``mallopt(M_MMAP_THRESHOLD)`` switches that
adjustment off: every block of :data:`THRESHOLD` or more is a mapping of
its own and is unmapped when freed, in every thread's arena.  A mapping
costs a system call and fresh zeroed pages, negligible next to a
megabyte of message data; small objects are untouched (Python's own
allocator serves them).  Set once in the main process before the zygote
is forked: forked processes inherit it.  Elsewhere than glibc it does
nothing.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

#: Blocks at least this large get a mapping of their own.
THRESHOLD = 1024 * 1024

#: ``<malloc.h>``: mallopt(3) parameter number of M_MMAP_THRESHOLD.
_M_MMAP_THRESHOLD = -3


def return_big_blocks(threshold: int = THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold``; True if it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on error (musl's stub: always 0).
    done = bool(mallopt(_M_MMAP_THRESHOLD, threshold))
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD) not available: big blocks may stay")
    return done
