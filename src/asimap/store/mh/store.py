"""The MH store: an account's MH root served over the store interface.

:meth:`MHStore.open` opens (or, for a new account, lays out) the root and
its database on the store's worker thread; every later operation is a job
on that thread (:mod:`asimap.store.mh.worker`).  After each job the store
wakes the waiters of every mailbox whose HIGHESTMODSEQ the job advanced, so
IDLE sessions learn of changes made through any connection, by delivery,
or found in a rescan after an nmh tool ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

from asimap.store.base import (
    MailboxEntry,
    MailboxNotFound,
    MailboxStatus,
    QuotaLimits,
    QuotaUsage,
    Store,
    StoreError,
    StoreResult,
)
from asimap.store.feed import FeedKind
from asimap.store.mh import metadata, pending, quota
from asimap.store.mh.account import Account
from asimap.store.mh.db import DB_NAME, open_database
from asimap.store.mh.files import make_folder
from asimap.store.mh.folder_feed import FolderTracker
from asimap.store.mh.freshness import WatchFeed
from asimap.store.mh.grouping import Groups
from asimap.store.mh.legacy import read_legacy_db
from asimap.store.mh.mailbox import MHMailbox
from asimap.store.mh.mirror import ChangeLog, Report
from asimap.store.mh.paths import name_of_relpath
from asimap.store.mh.profile import (
    Profile,
    find_profile,
    protection_for,
    unseen_sequences_for,
)
from asimap.store.mh.space import Space
from asimap.store.mh.watch import FolderWatcher, make_watcher
from asimap.store.mh.worker import Touched, Worker
from asimap.store.mh.writes import AppendRequest, StoreRequest

log = logging.getLogger(__name__)

#: asimap 2.x's database at the MH root, read once for import.
LEGACY_DB_NAME = "asimap.db"

T = TypeVar("T")


#: How often replaced ``.mh_sequences`` inodes are checked for nmh writes
#: (IDLE clients must see an nmh ``mark`` within a second).
ORPHAN_CHECK_S = 0.5


class MHStore(Store):
    """All folders of one MH root."""

    def __init__(
        self, root: Path, worker: Worker, core: Account, space: Space | None = None
    ) -> None:
        self.root = root
        self.core = core
        self._worker = worker
        #: The room kept so that deletions work on a full disk.
        self.space = space or Space(root, mode=core.protection.file)
        self._mailboxes: dict[int, MHMailbox] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self._orphan_task: asyncio.Task[None] | None = None
        self._watcher: FolderWatcher | None = None
        #: Background summary fills (:meth:`MHMailbox.start_fill`).
        self.fills: set[asyncio.Task[None]] = set()
        #: Folders made or removed by MH tools, for the change feed.
        self.folders = FolderTracker(self)
        #: True while a file watcher feeds :meth:`notify_folder_changed`;
        #: otherwise waiting mailboxes poll.
        self.watching = False
        #: STOREs, EXPUNGEs and APPENDs on a folder that wait together are
        #: written once (group commit, :mod:`asimap.store.mh.grouping`).
        self.store_groups: Groups[StoreRequest, StoreResult] = Groups(
            self.call, lambda mailbox_id, batch: core.store_many(mailbox_id, batch)
        )
        self.expunge_groups: Groups[Sequence[int] | None, tuple[int, ...]] = Groups(
            self.call, lambda mailbox_id, batch: core.expunge_many(mailbox_id, batch)
        )
        self.append_groups: Groups[AppendRequest, int] = Groups(
            partial(self.call, adds=True),
            lambda mailbox_id, batch: core.append_many(mailbox_id, batch),
        )

    @classmethod
    async def open(
        cls,
        root: Path,
        *,
        locking: bool = False,
        create: bool = True,
        profile: Profile | None = None,
        watch: bool = True,
    ) -> MHStore:
        """Open the MH root ``root`` (created when ``create``; the first time
        we serve a root, ``create`` also makes the missing special-use
        folders, :meth:`Account.initialise`).

        ``profile`` defaults to the one nmh would use (``$MH`` or
        ``~/.mh_profile``); it only matters when its ``Path:`` is ``root``.
        ``watch`` starts a file watcher (:mod:`asimap.store.mh.watch`) so
        that changes made by MH tools wake IDLE sessions at once; without
        it, waiting mailboxes poll their folder every second.
        """
        root = root.expanduser()
        profile = profile if profile else find_profile()
        if not root.exists():
            if not create:
                raise MailboxNotFound(f"MH root {root} does not exist")
            # Directories above the root are not mail: they keep the
            # default mode (a private one could lock other users out).
            root.parent.mkdir(parents=True, exist_ok=True)
            # The profile of the root to be, compared before it exists.
            make_folder(root, protection_for(root, profile).folder)
        root = root.resolve()
        unseen = unseen_sequences_for(root, profile)
        protection = protection_for(root, profile)
        worker = Worker(name="asimap-mh")
        feed = WatchFeed()

        def setup() -> Account:
            legacy = None
            if not (root / DB_NAME).exists():
                # Before our database exists: if asimap.db cannot be read
                # now (LegacyDbUnreadable), we fail and try again next time
                # rather than hand out new UIDVALIDITYs for good.
                legacy = read_legacy_db(root / LEGACY_DB_NAME)
            conn, _ = open_database(root, protection.file)
            account = Account(conn, root, unseen, locking, protection, feed)
            try:
                account.initialise(create, legacy)
                # Before any folder is scanned: the files of a COPY or
                # MULTIAPPEND a crash cut short are not new mail.
                pending.recover(conn, account.root)
            except BaseException:
                conn.close()
                raise
            return account

        # Opening writes too (SQLite's -wal and -shm, the special-use
        # folders): on a full disk it may use the reserve, or a user could
        # not even log in to delete mail (space.py).
        space = Space(root, mode=protection.file)
        try:
            core = await worker.call(lambda: space.run(setup))
        except BaseException:
            worker.shutdown()
            raise
        store = cls(root, worker, core, space)
        worker.bind(core.end_job, core.report, store._delivered)
        if watch:
            # Setting up watches walks the tree: off the event loop.
            watcher = await asyncio.to_thread(partial(make_watcher, root, feed=feed))
            store._start_watching(watcher)
        return store

    def _start_watching(self, watcher: FolderWatcher) -> None:
        self._watcher = watcher
        self.watching = True
        # A fresh context: a task copies its creator's, and the store is
        # opened inside a session's LOGIN, whose ORIGIN would otherwise mark
        # every change nmh makes as that session's own -- and RFC 5465
        # section 5 has a client not told of its own changes (NOTIFY).
        self._watch_task = asyncio.create_task(
            self._follow(watcher),
            name=f"mh-watch {self.root}",
            context=contextvars.Context(),
        )
        self._orphan_task = asyncio.create_task(
            self._check_orphans(),
            name=f"mh-orphans {self.root}",
            context=contextvars.Context(),
        )

    async def _check_orphans(self) -> None:
        """Look for nmh writes into ``.mh_sequences`` inodes we replaced.

        Without locking, a tool that opened the file just before our rename
        writes its change into the old inode (:class:`seqfile.OrphanWatch`).
        That inode has no name any more, so the watcher sees no event: an
        IDLE client would wait for the next slow poll.  While such inodes
        are kept, check them every :data:`ORPHAN_CHECK_S` and rescan the
        folders a tool wrote into, which merges the change and wakes the
        waiters.
        """
        while True:
            await asyncio.sleep(ORPHAN_CHECK_S)
            if not self.core.orphans.watched():
                continue
            try:
                folders = await self.call(self.core.orphans.changed_folders)
                for folder in folders:
                    relpath = folder.relative_to(self.root).as_posix()
                    await self.notify_folder_changed(relpath)
            except Exception:
                log.exception("check of replaced sequence files failed")

    async def _follow(self, watcher: FolderWatcher) -> None:
        """Feed each batch of changed folders to :meth:`notify_folder_changed`."""
        try:
            async for batch in watcher.changes():
                for relpath in sorted(batch):
                    try:
                        await self.notify_folder_changed(relpath)
                    except Exception:
                        log.exception("rescan of %s after a change failed", relpath)
                try:
                    await self.folders.after_batch(batch)
                except Exception:
                    log.exception("folder list check after a change failed")
        finally:
            # Without the watcher, waiting mailboxes fall back to polling.
            self.watching = False

    # -- jobs ------------------------------------------------------------------

    async def call(self, fn: Callable[[], T], *, adds: bool = False) -> T:
        """Run ``fn`` on the worker, then wake mailboxes it changed.

        ``adds``: the job adds mail, so it may not use the room kept for
        deletions on a full disk (:mod:`asimap.store.mh.space`).
        """
        space = self.space
        # What the job touched was delivered before we resume (_delivered).
        result, _, _ = await self._worker.run(lambda: space.run(fn, adds=adds))
        if isinstance(result, BaseException):
            raise result
        return result

    def _delivered(self, touched: Touched, reports: dict[int, Report] | None) -> None:
        """After every job, on the event loop, whether or not its caller
        still waits: the mirror learns the job's report, and waiters of the
        mailboxes it changed wake."""
        if reports:
            self._mirror(reports)
        self._wake(touched)

    def _mirror(self, reports: dict[int, Report]) -> None:
        for mailbox_id, report in reports.items():
            mailbox = self._mailboxes.get(mailbox_id)
            if mailbox is not None:
                mailbox.log.apply(report)

    def quiet(self, log: ChangeLog) -> bool:
        """Whether ``log`` still tells the truth: its folder was current at
        its last report and no watcher event for it came since
        (:mod:`asimap.store.mh.mirror`)."""
        report = log.report
        feed = self.core.freshness.feed
        return (
            report is not None
            and report.current
            and feed is not None
            and feed.quiet(report.folder, report.handed, report.epoch)
        )

    def _wake(self, touched: Touched) -> None:
        for mailbox_id, modseq in touched.items():
            mailbox = self._mailboxes.get(mailbox_id)
            if mailbox is not None:
                if modseq > mailbox.highest_noted:
                    # Messages changed: tell the account-wide feed (NOTIFY).
                    self.feed.publish(FeedKind.MESSAGES, mailbox.name)
                mailbox.note_highest(modseq)

    async def notify_folder_changed(self, relpath: str) -> None:
        """A watcher saw ``relpath`` (relative to the root) change: rescan
        it if a session has it open, which wakes its waiters -- or, while
        someone follows the whole account (:attr:`feed`, RFC 5465 NOTIFY),
        whether open or not, so that an nmh ``inc`` into any folder is
        published."""
        name = name_of_relpath(relpath.strip("/"))
        if name is None:
            return  # the root, a hidden directory or a message number
        opened = [m for m in list(self._mailboxes.values()) if m.name == name]
        if not opened and self.feed.active and name:
            # Opening does not rescan; the poll below does, and publishes
            # what it finds through :meth:`_wake`.
            with contextlib.suppress(StoreError):
                opened = [await self.mailbox(name)]
        for mailbox in opened:
            with contextlib.suppress(MailboxNotFound):
                await mailbox.poll()

    # -- the Store interface -----------------------------------------------------

    async def list_mailboxes(self) -> tuple[MailboxEntry, ...]:
        return await self.call(self.core.list_mailboxes)

    async def create(self, name: str, special_use: Iterable[str] = ()) -> None:
        uses = list(special_use)
        async with self.folders.own_change():
            await self.call(lambda: self.core.create(name, uses), adds=True)
        self.feed.publish(FeedKind.CREATED, name)

    async def delete(self, name: str) -> None:
        async with self.folders.own_change():
            await self.call(lambda: self.core.delete(name))
        self.feed.publish(FeedKind.DELETED, name)

    async def rename(self, old: str, new: str) -> None:
        try:
            async with self.folders.own_change():
                await self.call(lambda: self.core.rename(old, new), adds=True)
            if old.upper() == "INBOX":
                # RFC 5465 section 5.4: a renamed INBOX is a new mailbox.
                self.feed.publish(FeedKind.CREATED, new)
            else:
                self.feed.publish(FeedKind.RENAMED, new, old_name=old)
        finally:
            names = await self.call(self.core.mailbox_names)
            for mailbox_id, mailbox in self._mailboxes.items():
                if mailbox_id in names:
                    mailbox.name = names[mailbox_id]

    async def subscribe(self, name: str) -> None:
        await self.call(lambda: self.core.subscribe(name))
        self.feed.publish(FeedKind.SUBSCRIPTION, name)

    async def unsubscribe(self, name: str) -> None:
        await self.call(lambda: self.core.unsubscribe(name))
        self.feed.publish(FeedKind.SUBSCRIPTION, name)

    async def mailbox(self, name: str) -> MHMailbox:
        core = self.core

        def open_it() -> tuple[int, str, int, int]:
            mailbox_id, canonical, uidvalidity = core.open_mailbox(name)
            return mailbox_id, canonical, uidvalidity, core.highest(mailbox_id)

        return self._opened(*await self.call(open_it))

    async def mailbox_status(self, name: str) -> tuple[MHMailbox, MailboxStatus]:
        """Opening and STATUS in one job of the store's thread, not two in
        a row behind the other connections' jobs."""
        core = self.core

        def open_it() -> tuple[int, str, int, MailboxStatus]:
            mailbox_id, canonical, uidvalidity = core.open_mailbox(name)
            return mailbox_id, canonical, uidvalidity, core.status(mailbox_id)

        mailbox_id, canonical, uidvalidity, status = await self.call(open_it)
        mailbox = self._opened(mailbox_id, canonical, uidvalidity, 0)
        mailbox.note_highest(status.highestmodseq)
        return mailbox, status

    def _opened(
        self, mailbox_id: int, canonical: str, uidvalidity: int, highest: int
    ) -> MHMailbox:
        mailbox = self._mailboxes.get(mailbox_id)
        if mailbox is None:
            mailbox = MHMailbox(self, mailbox_id, canonical, uidvalidity)
            self._mailboxes[mailbox_id] = mailbox
        mailbox.note_highest(highest)
        return mailbox

    def set_quota_limits(self, limits: QuotaLimits) -> None:
        super().set_quota_limits(limits)
        # Read by the worker thread's jobs; a reference swap is atomic.
        self.core.quota_limits = limits

    async def quota_usage(self) -> QuotaUsage:
        return await self.call(lambda: quota.usage(self.core.conn))

    async def get_metadata(self, mailbox: str) -> dict[str, bytes]:
        core = self.core

        def get() -> dict[str, bytes]:
            mailbox_id = core.open_mailbox(mailbox)[0] if mailbox else None
            return metadata.read(core.conn, mailbox_id)

        return await self.call(get)

    async def set_metadata(
        self, mailbox: str, changes: Mapping[str, bytes | None]
    ) -> None:
        core = self.core
        given = dict(changes)

        def put() -> str:
            if not mailbox:
                metadata.write(core.conn, None, given)
                return ""
            mailbox_id, canonical, _ = core.open_mailbox(mailbox)
            metadata.write(core.conn, mailbox_id, given)
            return canonical

        name = await self.call(put, adds=any(v is not None for v in given.values()))
        self.feed.publish(FeedKind.METADATA, name, entries=tuple(given))

    async def prepare_feed(self) -> None:
        await self.folders.prepare()

    def _close_database(self) -> None:
        """The last job: nothing is mirrored any more, then SQLite closes."""
        self.core.publisher.stop()
        self.core.conn.close()

    async def close(self) -> None:
        for fill in list(self.fills):
            fill.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fill
        if self._orphan_task is not None:
            self._orphan_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._orphan_task
            self._orphan_task = None
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
            self._watch_task = None
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.close()
            self._watcher = None
        with contextlib.suppress(Exception):
            await self._worker.call(self.core.orphans.close)
        with contextlib.suppress(Exception):
            await self._worker.call(self.core.fresh.close)
        with contextlib.suppress(Exception):
            await self._worker.call(self._close_database)
        self._worker.shutdown()
