"""The MH store's job thread (store/mh/worker.py): one job at a time, in
order, results and errors handed back, a cancelled job that never started
skipped, queued jobs finished at shutdown."""

from __future__ import annotations

import asyncio
import threading

import pytest

from asimap.store.mh.worker import Worker


async def test_jobs_run_in_order_on_one_thread() -> None:
    worker = Worker("test-worker")
    seen: list[tuple[int, str]] = []

    def job(n: int) -> int:
        seen.append((n, threading.current_thread().name))
        return n * 2

    try:
        results = await asyncio.gather(
            *(worker.call(lambda n=n: job(n)) for n in range(50))
        )
        assert results == [n * 2 for n in range(50)]
        assert [n for n, _ in seen] == list(range(50))
        assert {name for _, name in seen} == {"test-worker"}
    finally:
        worker.shutdown()


async def test_errors_reach_the_caller_and_the_thread_goes_on() -> None:
    worker = Worker("test-worker")
    touched_fails = [True]

    def take_touched() -> dict[int, int]:
        if touched_fails[0]:
            touched_fails[0] = False
            raise KeyError("bookkeeping")
        return {1: 2}

    worker.bind(take_touched)
    try:
        with pytest.raises(KeyError):
            await worker.call(lambda: 1)  # the bookkeeping after it failed
        with pytest.raises(ZeroDivisionError):
            await worker.call(lambda: 1 / 0)
        assert await worker.run(lambda: "ok") == ("ok", {1: 2}, None)
    finally:
        worker.shutdown()


async def test_a_cancelled_job_that_never_started_is_skipped() -> None:
    worker = Worker("test-worker")
    gate = threading.Event()
    ran: list[str] = []
    try:
        first = asyncio.ensure_future(worker.call(gate.wait))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(worker.call(lambda: ran.append("second")))
        await asyncio.sleep(0.01)
        second.cancel()
        await asyncio.sleep(0.01)
        gate.set()
        assert await first is True
        assert await worker.call(lambda: ran.append("third")) is None
        assert ran == ["third"]
    finally:
        worker.shutdown()


async def test_shutdown_finishes_the_queued_jobs() -> None:
    worker = Worker("test-worker")
    done: list[int] = []
    gate = threading.Event()
    waiting = [asyncio.ensure_future(worker.call(gate.wait))]
    waiting += [
        asyncio.ensure_future(worker.call(lambda n=n: done.append(n))) for n in range(5)
    ]
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.to_thread(worker.shutdown)
    assert done == list(range(5))
    await asyncio.gather(*waiting)
    with pytest.raises(RuntimeError):
        await worker.call(lambda: None)


async def test_what_a_job_touched_is_delivered_even_if_its_caller_left() -> None:
    """A caller cancelled while its job runs does not hide the job's
    changes: waiters must still wake and the mirror must still learn."""
    worker = Worker("test-worker")
    delivered: list[tuple[dict[int, int], object]] = []
    worker.bind(lambda: {7: 3}, lambda: "report", lambda t, r: delivered.append((t, r)))
    gate = threading.Event()
    started = threading.Event()

    def job() -> None:
        started.set()
        gate.wait()

    try:
        caller = asyncio.ensure_future(worker.call(job))
        await asyncio.to_thread(started.wait)
        caller.cancel()
        gate.set()
        await worker.call(lambda: None)  # after the first job's delivery
        assert caller.cancelled()
        assert delivered[0] == ({7: 3}, "report")
        assert len(delivered) == 2
    finally:
        worker.shutdown()
