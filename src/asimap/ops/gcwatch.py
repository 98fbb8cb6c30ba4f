"""Time every cyclic garbage collection, for finding pauses (a debug aid).

A collection stops the whole process: with thousands of connections in one
event loop, every one of them waits until it ends.  Setting
``ASIMAP_GC_TRACE`` to a file name makes each asimapd process (main,
zygote, workers: the hook is installed before the zygote forks, and a fork
keeps it) append a line per collection to that file::

    <pid> t=<time> gen=<generation> ms=<pause> cpu_ms=<cpu>
        collected=<n> tracked=<objects>

(one line each).  ``ms`` is the pause as the connections saw it, ``cpu_ms``
the part of it this thread ran (on a loaded machine the rest is waiting for
a core).  ``tracked`` (full collections only; -1 otherwise) counts the
objects the collector follows in the process (the permanent generation of
:func:`gc.freeze` excluded), so a run shows both how long a pause was and
what made it long.  The file is opened once, before privileges are
dropped, so workers write to it as their user too.
Off by default: nothing is installed.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time

ENV = "ASIMAP_GC_TRACE"

_fd = -1
_started = 0.0
_cpu_started = 0.0


def install_from_env() -> bool:
    """Install the hook when ``ASIMAP_GC_TRACE`` names a file."""
    path = os.environ.get(ENV, "")
    if not path or _fd >= 0:
        return False
    install(path)
    return True


def install(path: str) -> None:
    """Append a line per collection to ``path`` (shared by forked children)."""
    global _fd
    _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    # Workers run as their users: let them write to it after the drop.
    os.fchmod(_fd, 0o666)
    gc.callbacks.append(_on_collection)


def _on_collection(phase: str, info: dict[str, int]) -> None:
    global _started, _cpu_started
    if phase == "start":
        _started = time.perf_counter()
        _cpu_started = time.thread_time()
        return
    ms = (time.perf_counter() - _started) * 1000
    cpu_ms = (time.thread_time() - _cpu_started) * 1000
    # Counting is itself a walk of the heap: only after a full collection.
    tracked = _tracked() if info["generation"] == 2 else -1
    line = (
        f"{os.getpid()} t={time.time():.3f} gen={info['generation']} ms={ms:.1f} "
        f"cpu_ms={cpu_ms:.1f} collected={info['collected']} tracked={tracked}\n"
    )
    with contextlib.suppress(OSError):
        os.write(_fd, line.encode())


def _tracked() -> int:
    """Objects the collector follows now (after a full collection)."""
    return len(gc.get_objects())
