"""Cyclic garbage collection paused while a big batch of objects is made.

Reading the cached summaries of a 100,000-message folder, or ordering its
messages for SORT and THREAD, allocates millions of small containers
(dicts, tuples, items) that live until the command ends and form no
cycles: reference counting frees them.  Each young-generation collection
walks them all again, and the collections that promote them walk the whole
heap of the process, which holds the selected views of every session:
loading 100,000 summaries took twice as long with collection on
(bench/cold_profile.py).  :func:`paused` turns it off for such a stretch.

The collector is per process and both the event loop and the MH store's
worker thread pause it, so pauses are counted: it is enabled again when
the last overlapping pause ends, and only if it was enabled when the first
began.  Code inside a pause must not create cyclic garbage in bulk (it
would stay until the next collection) and should not wait on I/O for long.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No cyclic garbage collection inside (see the module doc)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
