"""Group commit: STOREs on one folder that wait together are written once.

Why: every STORE that changes a flag makes ``.mh_sequences`` durable
again -- a temporary file, its fsync, a rename -- and commits a SQLite
transaction.  The store runs one job at a time on its worker thread
(:mod:`asimap.store.mh.worker`), so with many connections on one folder
(a mail client with several connections, a shared INBOX) the STOREs
queued behind each other's fsyncs, one after another, and the worker
spent its time waiting for the disk.

How: STOREs for a folder join a pending group until the worker reaches
the group's job; that job takes every STORE that joined so far, runs them
in order (:meth:`asimap.store.mh.writes.Writer.store_many`: each sees the
changes of the ones before it, each gets its own MODSEQ), writes the
sequence file and commits the rows once, and only then answers every
caller.  A STORE arriving while that job runs starts the next group.  So
nothing is answered before it is durable, a crash leaves the file and the
database either before or after the whole group (design rule 1: one
atomic rename, one transaction), and an idle server still writes a lone
STORE at once: a group waits for no timer, only for the worker.

One connection never has two STOREs in the same group (a session runs
its commands one at a time), so the order of one client's commands is
kept; the order between connections was already the worker's to choose.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from asimap.store.base import StoreResult
from asimap.store.mh.corebase import KeywordRefused
from asimap.store.mh.writes import StoreRequest

#: What a group's job returns: one outcome per request, in order.
Outcomes = list[StoreResult | KeywordRefused]

_Waiter = tuple[StoreRequest, "asyncio.Future[StoreResult]"]


class StoreGroups:
    """Per mailbox, the STOREs waiting for the worker (event loop side).

    ``run`` runs a job on the worker and wakes the mailboxes it changed
    (:meth:`asimap.store.mh.store.MHStore.call`); ``store_many`` is the
    core's batch job.  The pending lists are shared with the worker
    thread, which takes a group when its job starts: hence the lock.
    """

    def __init__(
        self,
        run: Callable[[Callable[[], Outcomes]], Awaitable[Outcomes]],
        store_many: Callable[[int, list[StoreRequest]], Outcomes],
    ) -> None:
        self._run = run
        self._store_many = store_many
        self._lock = threading.Lock()
        self._pending: dict[int, list[_Waiter]] = {}
        #: The running group tasks (a reference keeps them alive).
        self._tasks: set[asyncio.Task[None]] = set()

    async def store(self, mailbox_id: int, request: StoreRequest) -> StoreResult:
        """Run ``request`` in the folder's next group; its own result."""
        future: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
        # Retrieved here, so that the error of a caller who went away is
        # not reported as never retrieved.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        with self._lock:
            waiting = self._pending.get(mailbox_id)
            if waiting is None:
                self._pending[mailbox_id] = [(request, future)]
            else:
                waiting.append((request, future))
        if waiting is None:
            task = asyncio.create_task(self._group(mailbox_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: a caller that goes away (a dropped connection) must
        # not cancel the group's other callers, and its STORE may already
        # be on its way to the disk anyway.
        return await asyncio.shield(future)

    def _take(self, mailbox_id: int) -> list[_Waiter]:
        with self._lock:
            return self._pending.pop(mailbox_id, [])

    async def _group(self, mailbox_id: int) -> None:
        taken: list[_Waiter] = []

        def job() -> Outcomes:
            # On the worker thread: whoever joined until now is in.
            taken.extend(self._take(mailbox_id))
            return self._store_many(mailbox_id, [r for r, _ in taken])

        try:
            outcomes = await self._run(job)
        except BaseException as exc:
            # Not one of them is written (the transaction rolled back), or
            # the job never ran: everybody gets the error.
            for _, future in taken or self._take(mailbox_id):
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), outcome in zip(taken, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
