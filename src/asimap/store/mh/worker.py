"""One thread per store for every SQLite and file operation.

design.md section 3: blocking work never runs on the event loop.  SQLite
connections belong to the thread that made them, and running one job at a
time makes each job an atomic read-modify-write within this process, so a
single thread taking jobs in order is both the simplest and the safest
choice: no per-mailbox locks to order, no torn state between two
coroutines.

The thread takes jobs from a plain queue and hands each outcome back with
one ``call_soon_threadsafe``.  ``loop.run_in_executor`` did the same
through a ``ThreadPoolExecutor``: a work item, a concurrent future chained
to an asyncio one, a semaphore and a lock per job -- about a tenth of the
worker's time with twenty connections on one INBOX, for jobs that mostly
take well under a millisecond.  A job whose caller was cancelled before
it started is skipped, as the executor skipped it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Mailbox id -> new HIGHESTMODSEQ, reported by the job that changed it.
Touched = dict[int, int]

#: What the thread hands back: the job's result (or exception), the
#: mailboxes it touched, and the report made after it.
Outcome = tuple[Any, Touched, Any]

_Item = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Outcome]",
    Callable[[], Any],
    contextvars.Context,
]


def _fail(future: asyncio.Future[Outcome], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class Worker:
    """Runs jobs on the store's thread; reports what each job touched."""

    def __init__(
        self, name: str, take_touched: Callable[[], Touched] | None = None
    ) -> None:
        self._take_touched = take_touched
        self._report: Callable[[], Any] | None = None
        self._deliver: Callable[[Touched, Any], None] | None = None
        self._jobs: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        # A daemon: an interpreter exiting without shutdown() must not wait
        # on an idle queue (every write is crash-safe on its own).
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def bind(
        self,
        take_touched: Callable[[], Touched],
        report: Callable[[], Any] | None = None,
        deliver: Callable[[Touched, Any], None] | None = None,
    ) -> None:
        """Set where touched mailboxes are collected (after the core
        exists), what else each job reports at its end, and ``deliver``,
        called on the event loop with both after every job -- even one
        whose caller was cancelled meanwhile, so that no change goes
        unannounced -- before the caller resumes."""
        self._take_touched = take_touched
        self._report = report
        self._deliver = deliver

    def _serve(self) -> None:
        while (item := self._jobs.get()) is not None:
            loop, future, fn, context = item
            if future.cancelled():
                continue  # its caller is gone and it never started
            try:
                outcome = self._job(fn)
            except BaseException as exc:  # the bookkeeping failed: say so
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_fail, future, exc)
                continue
            with contextlib.suppress(RuntimeError):  # the loop has closed
                # In the caller's context: what the delivery publishes
                # carries the caller as its origin (RFC 5465 section 5).
                loop.call_soon_threadsafe(
                    self._settle, future, outcome, context=context
                )

    def _settle(self, future: asyncio.Future[Outcome], outcome: Outcome) -> None:
        """On the event loop: deliver what the job touched, then resume
        its caller (if it still waits)."""
        try:
            if self._deliver is not None:
                self._deliver(outcome[1], outcome[2])
        finally:
            if not future.done():
                future.set_result(outcome)

    def _job(self, fn: Callable[[], Any]) -> Outcome:
        """Run ``fn``; collect what it touched on this thread, so the next
        job cannot mix its changes in."""
        try:
            result: Any = fn()
        except Exception as exc:  # handed back to the caller to raise
            result = exc
        touched = self._take_touched() if self._take_touched else {}
        report = self._report() if self._report else None
        return result, touched, report

    async def run(self, fn: Callable[[], T]) -> tuple[T | BaseException, Touched, Any]:
        """Run ``fn`` on the worker; its result (or exception), the
        mailboxes it changed and the ``report`` made after it."""
        if self._closed:
            raise RuntimeError("the store's worker has shut down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._jobs.put((loop, future, fn, contextvars.copy_context()))
        result, touched, report = await future
        return result, touched, report

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` and return its result (raising its exception)."""
        result, _, _ = await self.run(fn)
        if isinstance(result, BaseException):
            raise result
        return result

    def shutdown(self) -> None:
        """Finish the jobs already queued, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._jobs.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()
