"""One open MH folder, as the session sees it (:class:`asimap.store.base.Mailbox`).

A thin asynchronous face over :class:`asimap.store.mh.core.Core`: every
method is one job on the store's worker thread.  Waiting for changes uses
a fresh :class:`asyncio.Event` per change generation (set once, then
replaced), which needs no lock and is trivially cancellation-safe; the
store wakes it after any job that bumped this mailbox's HIGHESTMODSEQ
(our own writes, or a rescan that found an nmh tool's changes).  Without a
file watcher, a waiting mailbox polls its folder once a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from asimap.message.model import Message
from asimap.store.base import (
    Changes,
    Mailbox,
    MailboxNotFound,
    MailboxStatus,
    MessageGone,
    MessageInfo,
    MessageState,
    MessageSummary,
    MessageUnreadable,
    NewMessage,
    Opening,
    StoreMode,
    StoreResult,
)
from asimap.store.mh.mirror import ChangeLog
from asimap.store.mh.writes import AppendRequest, StoreRequest

if TYPE_CHECKING:
    from asimap.store.mh.store import MHStore

log = logging.getLogger(__name__)

#: How often a waiting mailbox checks its folder when no watcher runs.
POLL_SECONDS = 1.0

#: Parsed messages kept per mailbox (FETCH of bodies re-reads beyond it).
MESSAGE_CACHE = 64

#: Octets of raw messages that cache may hold: 64 messages near the 64 MiB
#: APPENDLIMIT, each held with its parsed header copies, would be gigabytes
#: kept after the FETCH that read them.  A message larger than this is
#: parsed for the command that asks and then let go.
MESSAGE_CACHE_BYTES = 16 * 1024 * 1024

#: UIDs per worker job in :meth:`MHMailbox.summaries`: a few hundred
#: milliseconds of cold summary building at most, a negligible number of
#: jobs when the summaries are cached.
SUMMARY_JOB = 500

#: Octets of message data one :meth:`MHMailbox.load` job reads at most
#: (beyond its first message).
LOAD_BYTES = 8 * 1024 * 1024

#: UIDs per job of the background fill: about a tenth of a second, so a
#: command of another connection waits at most that long behind it.
FILL_JOB = 100


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class MHMailbox(Mailbox):
    """An MH folder; UIDs and MODSEQs from the store's database."""

    def __init__(
        self, store: MHStore, mailbox_id: int, name: str, uidvalidity: int
    ) -> None:
        self._store = store
        self.mailbox_id = mailbox_id
        self.name = name
        self.uidvalidity = uidvalidity
        self._highest = 0
        self._changed = asyncio.Event()
        self._messages: OrderedDict[int, Message] = OrderedDict()
        self._fill: asyncio.Task[None] | None = None
        #: HIGHESTMODSEQ when a fill last found nothing to build.
        self._filled_at = -1
        #: This folder's changes as the store's thread reports them.
        self.log = ChangeLog()
        #: :meth:`poll`: whether a poll job runs (or is about to start), and
        #: the future of the one to start next (None: nobody asked yet).
        self._polling = False
        self._poll_next: asyncio.Future[None] | None = None

    # -- change notification -------------------------------------------------

    @property
    def highest_noted(self) -> int:
        """The highest MODSEQ the store told this object about."""
        return self._highest

    def note_highest(self, modseq: int) -> None:
        """Called by the store after a job changed this mailbox."""
        if modseq > self._highest:
            self._highest = modseq
            self._changed.set()
            self._changed = asyncio.Event()

    async def poll(self) -> None:
        """Rescan if the folder changed, and wake waiters if it did.

        Polls asked for together are one job: after a delivery every IDLE
        connection of the user starts waiting again, and each used to poll
        -- 900 jobs on the store's thread, ahead of the next command.  A
        poll asked for while one runs waits for the next one, which starts
        after that, so it still sees every change made before it was asked
        for (a watcher's event must not be answered by an older rescan).
        """
        waiter = self._poll_next
        if waiter is None:
            waiter = self._poll_next = asyncio.get_running_loop().create_future()
            # Nobody else may be left to see a failure of a shared poll.
            waiter.add_done_callback(_retrieve)
            if not self._polling:
                # Started at the loop's next turn, so that the polls asked
                # for in this one (all the views one change woke) join it.
                self._polling = True
                asyncio.get_running_loop().call_soon(self._start_poll)
        await asyncio.shield(waiter)

    def _start_poll(self) -> None:
        waiter, self._poll_next = self._poll_next, None
        assert waiter is not None
        self._polling = True
        job = asyncio.ensure_future(self._poll_once())

        def landed(_: object) -> None:
            self._polling = False
            if job.cancelled():
                waiter.cancel()
            elif (error := job.exception()) is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(None)
            if self._poll_next is not None:
                self._polling = True
                self._start_poll()

        job.add_done_callback(landed)

    async def _poll_once(self) -> None:
        core = self._store.core
        highest = await self._store.call(lambda: core.refresh(self.mailbox_id))
        self.note_highest(highest)

    async def wait_for_change(self, modseq: int) -> None:
        if self._highest <= modseq:
            await self.poll()
        while self._highest <= modseq:
            event = self._changed
            # With a watcher, a slow poll only guards against a lost event.
            timeout = POLL_SECONDS * (30 if self._store.watching else 1)
            try:
                async with asyncio.timeout(timeout):
                    await event.wait()
            except TimeoutError:
                await self.poll()

    # -- reading -------------------------------------------------------------

    async def status(self) -> MailboxStatus:
        status = await self._store.call(
            lambda: self._store.core.status(self.mailbox_id)
        )
        self.note_highest(status.highestmodseq)
        return status

    async def states(self) -> tuple[MessageState, ...]:
        states = await self._store.call(
            lambda: self._store.core.states(self.mailbox_id)
        )
        self.start_fill()
        return states

    async def opening(self, *, claim: bool) -> Opening:
        """SELECT's four questions in one job of the store's thread instead
        of four in a row, each a round trip behind the other connections'
        jobs (the MODSEQ is read first, as the session wants)."""
        core = self._store.core
        mailbox_id = self.mailbox_id

        def job() -> Opening:
            status = core.status(mailbox_id)
            states = core.states(mailbox_id)
            keywords = core.keywords(mailbox_id)
            if claim:
                recent = core.claim_recent(mailbox_id)
            else:
                recent = core.peek_recent(mailbox_id)
            return Opening(status, states, keywords, recent)

        opened = await self._store.call(job)
        self.note_highest(opened.status.highestmodseq)
        self.start_fill()
        return opened

    # -- summaries in the background --------------------------------------------

    def start_fill(self) -> None:
        """Build the header summaries this folder lacks, in the background
        (:mod:`.summarizing`: BODYSTRUCTURE waits until a FETCH asks).

        Called when a session opens the folder (SELECT, EXAMINE and POP3
        list its states).  A folder filled by nmh ``inc`` has no summary
        yet, and the first SEARCH on a header, SORT or THREAD used to build
        them all while the client waited (minutes for 100,000 messages);
        filled while the user reads, newest first, it is ready or nearly so
        when asked.  Small jobs (:data:`FILL_JOB`) queue with everybody
        else's, so no command waits behind more than one of them.
        """
        if self._filled_at == self._highest:
            return  # nothing new since the last fill
        if self._fill is None or self._fill.done():
            self._fill = asyncio.create_task(
                self._fill_summaries(), name=f"mh-fill {self.name}"
            )
            self._store.fills.add(self._fill)
            self._fill.add_done_callback(self._store.fills.discard)

    async def _fill_summaries(self) -> None:
        core = self._store.core
        try:
            highest = self._highest
            missing = await self._store.call(
                partial(core.unsummarised, self.mailbox_id)
            )
            if not missing:
                self._filled_at = highest
            for start in range(0, len(missing), FILL_JOB):
                chunk = missing[start : start + FILL_JOB]
                try:
                    await self._store.call(
                        partial(core.summaries, self.mailbox_id, chunk, False)
                    )
                except MessageUnreadable:
                    await self._fill_one_by_one(chunk)
        except MailboxNotFound:
            pass
        except Exception:
            log.exception("background summaries of %s failed", self.name)

    async def _fill_one_by_one(self, uids: Sequence[int]) -> None:
        """Summarise ``uids`` one job each, skipping unreadable files.

        A file the worker may not read (wrong owner or mode) fails the job
        of its whole chunk; the read has already logged it (once per
        message, :mod:`.unreadable`), and a command asking for it answers
        ``NO [UNAVAILABLE]``.  The background fill is nobody's command: it
        must neither stop at that file nor log a traceback for it.
        """
        core = self._store.core
        for uid in uids:
            try:
                await self._store.call(
                    partial(core.summaries, self.mailbox_id, [uid], False)
                )
            except MessageUnreadable:
                continue

    async def changes_since(self, modseq: int) -> Changes:
        log = self.log
        if log.answers(modseq) and self._store.quiet(log):
            # Nothing the store's thread has not reported (mirror.py).
            changes = log.since(modseq)
            self.note_highest(changes.highestmodseq)
            return changes
        changes = await self._store.call(
            lambda: self._store.core.changes_since(self.mailbox_id, modseq)
        )
        self.note_highest(changes.highestmodseq)
        return changes

    async def claim_recent(self) -> frozenset[int]:
        log = self.log
        if log.recent is not None and not log.recent and self._store.quiet(log):
            return frozenset()  # another session claimed them (mirror.py)
        return await self._store.call(
            lambda: self._store.core.claim_recent(self.mailbox_id)
        )

    async def peek_recent(self) -> frozenset[int]:
        log = self.log
        if log.recent is not None and self._store.quiet(log):
            return frozenset(log.recent)
        return await self._store.call(
            lambda: self._store.core.peek_recent(self.mailbox_id)
        )

    async def keywords(self) -> frozenset[str]:
        return await self._store.call(
            lambda: self._store.core.keywords(self.mailbox_id)
        )

    async def info(self, uid: int) -> MessageInfo:
        return await self._store.call(
            lambda: self._store.core.info(self.mailbox_id, uid)
        )

    async def message(self, uid: int) -> Message:
        core = self._store.core
        cached = self._messages.get(uid)
        if cached is not None:
            if not await self._store.call(lambda: core.exists(self.mailbox_id, uid)):
                self._messages.pop(uid, None)
                raise MessageGone(f"Message UID {uid} no longer exists")
            # Most recently used.  Not move_to_end: while we awaited the
            # worker, another session sharing this mailbox may have evicted
            # it (KeyError, seen under concurrent FETCHes).
            self._messages.pop(uid, None)
            self._messages[uid] = cached
            return cached
        raw = await self._store.call(lambda: core.read(self.mailbox_id, uid))
        message = Message(raw)
        if message.size > MESSAGE_CACHE_BYTES:
            return message
        self._messages[uid] = message
        cached_bytes = sum(m.size for m in self._messages.values())
        while len(self._messages) > MESSAGE_CACHE or cached_bytes > MESSAGE_CACHE_BYTES:
            cached_bytes -= self._messages.popitem(last=False)[1].size
        return message

    async def summaries(
        self, uids: Sequence[int], *, structure: bool = True
    ) -> list[MessageSummary]:
        """From the database cache: FETCH ENVELOPE/BODYSTRUCTURE of a big
        folder never parses a message file twice (design.md section 8).

        One worker job per :data:`SUMMARY_JOB` UIDs: the first SORT of a
        100,000-message folder builds every summary (about a minute), and
        as a single job it held the store's only worker thread all that
        time, stalling every other connection of the user.  Jobs queue in
        order, so another connection's job runs between two chunks.
        """
        wanted = list(dict.fromkeys(uids))
        out: list[MessageSummary] = []
        core = self._store.core
        for start in range(0, len(wanted), SUMMARY_JOB):
            chunk = wanted[start : start + SUMMARY_JOB]
            job = partial(core.summaries, self.mailbox_id, chunk, structure)
            out.extend(await self._store.call(job))
        return out

    async def load(
        self, uids: Sequence[int], *, content: bool = False
    ) -> list[tuple[MessageInfo, Message | None]]:
        """One worker job per batch (:meth:`Core.load`), bounded by
        :data:`LOAD_BYTES` of message data; the messages are parsed here,
        lazily, and not kept in the per-mailbox cache a FETCH fills (a
        SEARCH of 100,000 messages would only churn it)."""
        core = self._store.core
        out: list[tuple[MessageInfo, Message | None]] = []
        rest = list(uids)
        while rest:
            job = partial(core.load, self.mailbox_id, rest, content, LOAD_BYTES)
            loaded, consumed = await self._store.call(job)
            rest = rest[consumed:]
            out += [
                (info, None if raw is None else Message(raw)) for info, raw in loaded
            ]
        return out

    # -- changing ------------------------------------------------------------

    async def append(
        self,
        data: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> int:
        # Grouped as STOREs are (:mod:`asimap.store.mh.grouping`).
        request = AppendRequest(bytes(data), list(flags), internaldate)
        return await self._store.append_groups.submit(self.mailbox_id, request)

    async def append_all(self, messages: Sequence[NewMessage]) -> list[int]:
        """MULTIAPPEND as one job (:meth:`Writer.append_all`): one
        transaction, one ``.mh_sequences`` rewrite and one directory sync
        for all of them, and none stored when one fails."""
        if len(messages) == 1:
            (one,) = messages
            return [await self.append(one.data, one.flags, one.internaldate)]
        requests = [
            AppendRequest(bytes(m.data), list(m.flags), m.internaldate)
            for m in messages
        ]
        job = partial(self._store.core.append_all, self.mailbox_id, requests)
        return await self._store.call(job, adds=True)

    async def store(
        self,
        uids: Sequence[int],
        mode: StoreMode,
        flags: Iterable[str],
        unchanged_since: int | None = None,
    ) -> StoreResult:
        # Written together with the STOREs of other connections that wait
        # for the worker meanwhile (:mod:`asimap.store.mh.grouping`).
        request = StoreRequest(list(uids), mode, list(flags), unchanged_since)
        return await self._store.store_groups.submit(self.mailbox_id, request)

    async def expunge(self, uids: Sequence[int] | None = None) -> tuple[int, ...]:
        wanted = None if uids is None else list(uids)
        # Grouped as STOREs are (:mod:`asimap.store.mh.grouping`).
        return await self._store.expunge_groups.submit(self.mailbox_id, wanted)

    async def copy_to(
        self, uids: Sequence[int], destination: Mailbox
    ) -> tuple[tuple[int, int], ...]:
        return await self._transfer(uids, destination, move=False)

    async def move_to(
        self, uids: Sequence[int], destination: Mailbox
    ) -> tuple[tuple[int, int], ...]:
        return await self._transfer(uids, destination, move=True)

    async def _transfer(
        self, uids: Sequence[int], destination: Mailbox, move: bool
    ) -> tuple[tuple[int, int], ...]:
        wanted = sorted(set(uids))
        if isinstance(destination, MHMailbox) and destination._store is self._store:
            target = destination.mailbox_id
            # A MOVE (to Trash) is how many clients delete: it may use the
            # room kept for deletions on a full disk; a COPY adds (space.py).
            return await self._store.call(
                lambda: self._store.core.copy(self.mailbox_id, wanted, target, move),
                adds=not move,
            )
        # Another store: through its public interface.
        pairs: list[tuple[int, int]] = []
        for uid in wanted:
            try:
                message = await self.message(uid)
                info = await self.info(uid)
            except MessageGone:
                continue
            flags = {s.uid: s.flags for s in await self.states()}.get(uid, frozenset())
            pairs.append(
                (uid, await destination.append(message.raw, flags, info.internaldate))
            )
        if move and pairs:
            await self._store.call(
                lambda: self._store.core.remove_uids(
                    self.mailbox_id, [s for s, _ in pairs]
                )
            )
        return tuple(pairs)

    def __repr__(self) -> str:
        return f"<MHMailbox {self.name!r} id={self.mailbox_id}>"


__all__ = ["MHMailbox", "MailboxNotFound"]
