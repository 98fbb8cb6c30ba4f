"""Group commit: STOREs, EXPUNGEs and APPENDs on one folder that wait
together are written once.

Why: every STORE that changes a flag makes ``.mh_sequences`` durable
again -- a temporary file, its fsync, a rename -- and commits a SQLite
transaction; an EXPUNGE also unlinks files and fsyncs the directory, an
APPEND links its (fsynced) message file and fsyncs the directory.  The
store runs one job at a time on its worker thread
(:mod:`asimap.store.mh.worker`), so with many connections on one folder
(a mail client with several connections, a shared INBOX) these jobs
queued behind each other's fsyncs, one after another, and the worker
spent its time waiting for the disk.

How: requests of one kind for a folder join a pending group until the
worker reaches the group's job; that job takes every request that joined
so far, runs them in order as one batch
(:meth:`asimap.store.mh.writes.Writer.store_many`: each sees the changes
of the ones before it and gets its own MODSEQ;
:meth:`~asimap.store.mh.writes.Writer.expunge_many`,
:meth:`~asimap.store.mh.writes.Writer.append_many`), writes the
sequence file and commits the rows once, and only then answers every
caller.  A request arriving while that job runs starts the next group.
So nothing is answered before it is durable, a crash leaves the file and
the database either before or after the whole group (design rule 1: one
atomic rename, one transaction), and an idle server still writes a lone
STORE at once: a group waits for no timer, only for the worker.

One connection never has two requests in the same group (a session runs
its commands one at a time), so the order of one client's commands is
kept; the order between connections was already the worker's to choose.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from asimap.store.base import StoreError

#: A request of the group's kind, and what its caller gets.
R = TypeVar("R")
O = TypeVar("O")  # noqa: E741


class Groups(Generic[R, O]):
    """Per mailbox, the requests of one kind waiting for the worker
    (event loop side).

    ``run`` runs a job on the worker and wakes the mailboxes it changed
    (:meth:`asimap.store.mh.store.MHStore.call`); ``batch`` is the core's
    batch job: one outcome per request, in order, a :class:`StoreError`
    for a request refused alone.  The pending lists are shared with the
    worker thread, which takes a group when its job starts: hence the
    lock.
    """

    def __init__(
        self,
        run: Callable[
            [Callable[[], Sequence[O | StoreError]]],
            Awaitable[Sequence[O | StoreError]],
        ],
        batch: Callable[[int, list[R]], Sequence[O | StoreError]],
    ) -> None:
        self._run = run
        self._batch = batch
        self._lock = threading.Lock()
        self._pending: dict[int, list[tuple[R, asyncio.Future[O]]]] = {}
        #: The running group tasks (a reference keeps them alive).
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, mailbox_id: int, request: R) -> O:
        """Run ``request`` in the folder's next group; its own outcome."""
        future: asyncio.Future[O] = asyncio.get_running_loop().create_future()
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
        # not cancel the group's other callers, and its change may already
        # be on its way to the disk anyway.
        return await asyncio.shield(future)

    def _take(self, mailbox_id: int) -> list[tuple[R, asyncio.Future[O]]]:
        with self._lock:
            return self._pending.pop(mailbox_id, [])

    async def _group(self, mailbox_id: int) -> None:
        taken: list[tuple[R, asyncio.Future[O]]] = []

        def job() -> Sequence[O | StoreError]:
            # On the worker thread: whoever joined until now is in (and on
            # a retry, whoever joined since: the first try rolled back).
            taken.extend(self._take(mailbox_id))
            return self._batch(mailbox_id, [request for request, _ in taken])

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
            if isinstance(outcome, StoreError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
