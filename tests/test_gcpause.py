"""Counted pauses of the cyclic garbage collector (asimap.store.gcpause).

The event loop and the MH store's worker thread both pause collection
around bulk work; overlapping pauses must leave it as it was before the
first, never enabled early by the first to end nor left off by the last.
"""

from __future__ import annotations

import gc
import threading

from asimap.store import gcpause


def test_overlapping_pauses_restore_the_collector_once() -> None:
    assert gc.isenabled()
    first = gcpause.paused()
    second = gcpause.paused()
    first.__enter__()
    second.__enter__()
    assert not gc.isenabled()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the other pause still runs
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_pause_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with gcpause.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_pauses_from_two_threads() -> None:
    inside = threading.Event()
    release = threading.Event()

    def other() -> None:
        with gcpause.paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(10)
    with gcpause.paused():
        pass
    assert not gc.isenabled()  # the thread's pause is not over
    release.set()
    thread.join(10)
    assert gc.isenabled()
