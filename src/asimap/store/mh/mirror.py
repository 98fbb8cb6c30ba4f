"""The selected folders' changes, mirrored in memory on the event loop.

Why: after every command a selected session asks the store what changed
since the MODSEQ it last saw (``changes_since``, RFC 3501 section 7.4.1's
untagged updates), and ``claim_recent`` when new mail arrived.  As jobs of
the store's single thread these were half of all its jobs with twenty
connections on one INBOX, and each waited in the queue behind the writes
(fsyncs) of the others: most of a command's latency.

So the store's thread *publishes*, at the end of every job, what changed
in each mirrored folder since its last report (rows and tombstones with a
greater MODSEQ, read with the indexes on MODSEQ), and how far it has
checked the file watcher's events for the folder.  The event loop keeps
them in a :class:`ChangeLog` per folder and answers from it, with no job,
as long as it may:

* the folder was *current* at that report (:mod:`.freshness`: the
  database mirrors the folder, every watcher event checked), and
* no watcher event for the folder came since (:meth:`WatchFeed.quiet`,
  which reads the inotify descriptor first, so an nmh ``mark`` that
  returned before the command is seen, as by a job).

Otherwise -- an event not yet checked (an nmh tool, or a job writing the
folder right now), no watcher, a MODSEQ older than the log -- the caller
runs the job as before.  SQLite stays the only durable copy: the log is
rebuilt from it whenever a report does not follow on from the last one.
"""

from __future__ import annotations

import bisect
import sqlite3
from collections.abc import Set
from dataclasses import dataclass

from asimap.store.base import Changes, MessageState, StoreError
from asimap.store.mh.db import decode_flags
from asimap.store.mh.freshness import Freshness
from asimap.store.mh.paths import check_mh_name, folder_relpath

#: Folders mirrored at once (each costs a query at the end of every job).
MAX_MIRRORED = 64

#: Entries a log keeps before it drops its oldest half (a session asking
#: about older MODSEQs runs a job instead).
MAX_ENTRIES = 20_000

#: ``since`` of a report that starts a log afresh.
RESTART = -1


@dataclass(frozen=True, slots=True)
class Report:
    """One folder at the end of one job (store thread -> event loop)."""

    #: The folder, relative to the root (the watcher feed's key).
    folder: str
    #: The feed's epoch and its count of the folder's events handed to
    #: the store's thread when this report was made.
    epoch: int
    handed: int
    #: The database mirrors the folder, every event handed over checked.
    current: bool
    #: The HIGHESTMODSEQ of the last report (:data:`RESTART`: none).
    since: int
    highest: int
    forgotten: int
    #: Rows with MODSEQ > ``since`` and their \\Recent, in MODSEQ order.
    changed: tuple[tuple[MessageState, bool], ...]
    #: (UID, MODSEQ) of tombstones with MODSEQ > ``since``.
    expunged: tuple[tuple[int, int], ...]
    #: Every recent UID (on a restart, or after recent was claimed).
    recent: frozenset[int] | None


class Publisher:
    """The store thread's side: which folders are mirrored, and from which
    HIGHESTMODSEQ their next report starts (worker thread only)."""

    def __init__(self) -> None:
        self._since: dict[int, int] = {}
        #: Mailboxes whose \\Recent was claimed since the last report.
        self._claimed: set[int] = set()

    def follow(self, mailbox_id: int) -> None:
        """Report ``mailbox_id`` from the end of this job on."""
        if mailbox_id not in self._since and len(self._since) < MAX_MIRRORED:
            self._since[mailbox_id] = RESTART

    def claimed(self, mailbox_id: int) -> None:
        """No message of ``mailbox_id`` is \\Recent at the end of this job
        (a claim moves no MODSEQ, so it is said apart)."""
        if mailbox_id in self._since:
            self._claimed.add(mailbox_id)

    def stop(self) -> None:
        """Follow nothing any more (the database is closing)."""
        self._since.clear()
        self._claimed.clear()

    def restart(self) -> None:
        """After a failed report: every log starts afresh at the next one."""
        for mailbox_id in self._since:
            self._since[mailbox_id] = RESTART
        self._claimed.clear()

    def report(
        self, conn: sqlite3.Connection, fresh: Freshness, foreign: Set[int]
    ) -> dict[int, Report]:
        """What changed in each followed folder since its last report
        (``foreign``: mailboxes whose file holds a tool change the database
        has not imported yet, never current)."""
        if not self._since:
            return {}
        feed = fresh.feed
        reports: dict[int, Report] = {}
        for mailbox_id, since in list(self._since.items()):
            row = conn.execute(
                "SELECT name, highestmodseq, forgotten_modseq FROM mailboxes "
                "WHERE id=?",
                (mailbox_id,),
            ).fetchone()
            if row is None:
                del self._since[mailbox_id]  # deleted: its log dies with it
                continue
            name, highest, forgotten = row
            try:
                folder = folder_relpath(check_mh_name(name))
            except StoreError:
                del self._since[mailbox_id]
                continue
            claimed = mailbox_id in self._claimed
            changed: tuple[tuple[MessageState, bool], ...] = ()
            expunged: tuple[tuple[int, int], ...] = ()
            if highest != since and since != RESTART:
                changed = tuple(
                    (MessageState(uid, decode_flags(flags), modseq), bool(recent))
                    for uid, flags, modseq, recent in conn.execute(
                        "SELECT uid, flags, modseq, recent FROM messages "
                        "WHERE mailbox_id=? AND modseq>? ORDER BY modseq",
                        (mailbox_id, since),
                    )
                )
                expunged = tuple(
                    conn.execute(
                        "SELECT uid, modseq FROM tombstones "
                        "WHERE mailbox_id=? AND modseq>? ORDER BY modseq",
                        (mailbox_id, since),
                    )
                )
            recent: frozenset[int] | None = frozenset() if claimed else None
            if since == RESTART and not claimed:
                recent = frozenset(
                    uid
                    for (uid,) in conn.execute(
                        "SELECT uid FROM messages WHERE mailbox_id=? AND recent=1",
                        (mailbox_id,),
                    )
                )
            reports[mailbox_id] = Report(
                folder=folder,
                epoch=fresh.epoch,
                handed=0 if feed is None else feed.handed(folder),
                current=mailbox_id not in foreign
                and fresh.is_current(fresh.root / folder),
                since=since,
                highest=highest,
                forgotten=forgotten,
                changed=changed,
                expunged=expunged,
                recent=recent,
            )
            self._since[mailbox_id] = highest
        self._claimed.clear()
        return reports


class ChangeLog:
    """The event loop's side: one folder's changes since ``base``."""

    def __init__(self) -> None:
        #: Answers are complete for MODSEQs >= base.
        self.base = 0
        self.highest = 0
        self.forgotten = 0
        self.ready = False
        self.report: Report | None = None
        #: (MODSEQ, UID) of every change since base, ascending.
        self._modseqs: list[int] = []
        self._uids: list[int] = []
        #: UID -> current state, for rows changed since base.
        self._states: dict[int, MessageState] = {}
        #: UID -> MODSEQ of its expunge, since base.
        self._gone: dict[int, int] = {}
        #: UIDs whose \\Recent no session has claimed yet (None: unknown).
        self.recent: set[int] | None = None

    def apply(self, report: Report) -> None:
        """Take one report (they come in job order).  One that does not
        follow on from the last (the first, or one lost with a cancelled
        job) starts the log afresh at its HIGHESTMODSEQ."""
        self.report = report
        self.forgotten = report.forgotten
        if report.since == RESTART or not self.ready or report.since != self.highest:
            self._restart(report.highest)
            self.recent = None if report.recent is None else set(report.recent)
            return
        entries = sorted(
            [(state.modseq, state.uid) for state, _ in report.changed]
            + [(modseq, uid) for uid, modseq in report.expunged]
        )
        if entries and self._modseqs and entries[0][0] <= self._modseqs[-1]:
            self._restart(report.highest)  # never expected: MODSEQs only grow
            self.recent = None
            return
        for state, recent in report.changed:
            self._states[state.uid] = state
            if recent and self.recent is not None:
                self.recent.add(state.uid)
        for uid, modseq in report.expunged:
            self._states.pop(uid, None)
            self._gone[uid] = modseq
            if self.recent is not None:
                self.recent.discard(uid)
        for modseq, uid in entries:
            self._modseqs.append(modseq)
            self._uids.append(uid)
        if report.recent is not None:
            self.recent = set(report.recent)
        self.highest = report.highest
        if len(self._uids) > MAX_ENTRIES:
            self._trim()

    def _restart(self, highest: int) -> None:
        self.base = self.highest = highest
        self._modseqs.clear()
        self._uids.clear()
        self._states.clear()
        self._gone.clear()
        self.ready = True

    def _trim(self) -> None:
        """Drop the older half: :attr:`base` moves up past it."""
        cut = len(self._uids) // 2
        self.base = self._modseqs[cut - 1]
        dropped = set(self._uids[:cut])
        del self._modseqs[:cut]
        del self._uids[:cut]
        kept = set(self._uids)
        for uid in dropped - kept:
            self._states.pop(uid, None)
            self._gone.pop(uid, None)

    def answers(self, modseq: int) -> bool:
        return self.ready and modseq >= self.base

    def since(self, modseq: int) -> Changes:
        """What ``Core.changes_since`` would say (``answers(modseq)``)."""
        start = bisect.bisect_right(self._modseqs, modseq)
        uids = set(self._uids[start:])
        changed: list[MessageState] = []
        expunged: list[int] = []
        for uid in sorted(uids):
            state = self._states.get(uid)
            if state is not None:
                if state.modseq > modseq:
                    changed.append(state)
            elif self._gone.get(uid, 0) > modseq:
                expunged.append(uid)
        return Changes(
            highestmodseq=self.highest,
            changed=tuple(changed),
            expunged=tuple(expunged),
            expunged_complete=modseq >= self.forgotten,
        )

    def gone_since_base(self, uid: int) -> bool:
        return uid in self._gone
