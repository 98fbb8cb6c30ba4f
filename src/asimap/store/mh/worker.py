"""One thread per store for every SQLite and file operation.

design.md section 3: blocking work never runs on the event loop.  SQLite
connections belong to the thread that made them, and running one job at a
time makes each job an atomic read-modify-write within this process, so a
single-thread executor is both the simplest and the safest choice: no
per-mailbox locks to order, no torn state between two coroutines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

#: Mailbox id -> new HIGHESTMODSEQ, reported by the job that changed it.
Touched = dict[int, int]


class Worker:
    """Runs jobs on the store's thread; reports what each job touched."""

    def __init__(
        self, name: str, take_touched: Callable[[], Touched] | None = None
    ) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._take_touched = take_touched
        self._report: Callable[[], Any] | None = None

    def bind(
        self,
        take_touched: Callable[[], Touched],
        report: Callable[[], Any] | None = None,
    ) -> None:
        """Set where touched mailboxes are collected (after the core
        exists), and what else each job reports at its end."""
        self._take_touched = take_touched
        self._report = report

    async def run(self, fn: Callable[[], T]) -> tuple[T | BaseException, Touched, Any]:
        """Run ``fn`` on the worker; its result (or exception), the
        mailboxes it changed and the ``report`` made after it, collected on
        the worker thread itself so the next job cannot mix its changes in."""

        def job() -> tuple[T | BaseException, Touched, Any]:
            try:
                result: T | BaseException = fn()
            except Exception as exc:  # handed back to the caller to raise
                result = exc
            touched = self._take_touched() if self._take_touched else {}
            report = self._report() if self._report else None
            return result, touched, report

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, job)

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` and return its result (raising its exception)."""
        result, _, _ = await self.run(fn)
        if isinstance(result, BaseException):
            raise result
        return result

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
