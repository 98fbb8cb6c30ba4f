"""State and row helpers shared by every job of the MH store's core.

Split out of :mod:`asimap.store.mh.core` (read its docstring first):
:class:`CoreBase` holds one account's connection, root and bookkeeping,
and the helpers that read and write message rows; the reconciling
(:mod:`~asimap.store.mh.reconcile`), the jobs that change a folder
(:mod:`~asimap.store.mh.writes`) and the reading jobs
(:mod:`~asimap.store.mh.core`) build on it, in that order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from stat import S_ISDIR

from asimap.store.base import (
    MailboxNotFound,
    QuotaLimits,
    StoreError,
)
from asimap.store.mh import repair, seqfile, sequences
from asimap.store.mh.db import decode_flags, encode_flags, transaction
from asimap.store.mh.files import FileIdentity
from asimap.store.mh.freshness import Freshness, WatchFeed
from asimap.store.mh.mirror import Publisher, Report
from asimap.store.mh.paths import check_mh_name, folder_path, folder_relpath
from asimap.store.mh.seqcache import OurSequences
from asimap.store.names import DELIMITER

log = logging.getLogger(__name__)

#: A stamp this close to "now" may hide a change in the same clock tick.
RACY_NS = 50_000_000

#: A message file this new may have been created after a tool's folder
#: scan (see :meth:`Core._restore_unknown`).
YOUNG_NS = 10_000_000_000

#: Most message files remembered per folder as created by us (a COPY of
#: a whole big folder keeps only its newest).
CREATED_LIMIT = 65_536

#: Mailbox names whose directory levels :meth:`CoreBase.folder_of` keeps.
_LEVELS_CACHED = 4096

#: Merge attempts when a tool keeps rewriting the file under us.
WRITE_RETRIES = 20

#: Longest wait for an nmh tool to release its lock on ``.mh_sequences``
#: (nmh itself gives up on a held lock after about five seconds).
NMH_WAIT_LIMIT_S = 2.0


#: A folder whose directory or sequence file changed more recently than
#: this may have an nmh tool half way through an operation.
QUIET_NS = 100_000_000


QUIET_LIMIT_S = 1.0


def _is_quiet(folder: Path, dir_seen: int | None, seq_ours: str | None) -> bool:
    """No recent change to the folder or its sequences that we did not
    make or see ourselves."""
    try:
        dir_mtime = os.stat(folder).st_mtime_ns
    except FileNotFoundError:
        return True
    if dir_mtime != dir_seen and time.time_ns() - dir_mtime < QUIET_NS:
        return False
    path = folder / seqfile.SEQUENCES_FILE
    return _stamp(path) == seq_ours or not _is_fresh(path, QUIET_NS)


def _is_fresh(path: Path, within_ns: int) -> bool:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return False
    return time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) < within_ns


_INSERT_MESSAGE = (
    "INSERT INTO messages (mailbox_id, uid, num, ino, size, mtime_ns, "
    "flags, modseq, internaldate, tz_minutes, recent, savedate) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

#: System flags by folded spelling (RFC 3501 section 2.3.2).
_SYSTEM = {f.lower(): f for f in sequences.FLAG_TO_SEQUENCE}


class KeywordRefused(StoreError):
    """A keyword that an MH sequence cannot hold (e.g. ``flagged``)."""


@dataclass(frozen=True, slots=True)
class _Row:
    uid: int
    num: int
    identity: FileIdentity
    flags: frozenset[str]
    recent: bool


def _stamp(path: Path, now_ns: int | None = None) -> str:
    """What identifies a file's current content cheaply; "racy" when
    ``now_ns`` is given and the file changed too recently for its
    timestamp to be trusted."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return "missing"
    if now_ns is not None and now_ns - stat.st_mtime_ns < RACY_NS:
        return "racy"
    return seqfile.stamp_of(stat)


def _dir_stamp(folder: Path, now_ns: int) -> int:
    stat = os.stat(folder)
    if now_ns - stat.st_mtime_ns < RACY_NS:
        return -1
    return stat.st_mtime_ns


def _savedate(seconds: int | None) -> datetime | None:
    """A stored save date (UTC epoch seconds; NULL: unknown, RFC 8514)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def to_datetime(seconds: int, tz_minutes: int) -> datetime:
    zone = UTC if tz_minutes == 0 else timezone(timedelta(minutes=tz_minutes))
    return datetime.fromtimestamp(seconds, zone)


def from_datetime(moment: datetime | None) -> tuple[int, int]:
    """INTERNALDATE as (epoch seconds, offset minutes); now when None."""
    if moment is None:
        moment = datetime.now(UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.utcoffset() or timedelta(0)
    return int(moment.timestamp()), int(offset.total_seconds() // 60)


class CoreBase:
    """One account's core state, and the row-level helpers (worker thread
    only)."""

    #: Expunge tombstones kept per mailbox; older ones are forgotten and
    #: reported with ``expunged_complete=False``.
    max_tombstones = 100_000

    #: The account's limits (RFC 9208), set by ``MHStore.set_quota_limits``.
    quota_limits = QuotaLimits()

    #: Mode of new message files: the profile's ``Msg-Protect`` (set by
    #: the account, :mod:`asimap.store.mh.profile`).
    message_mode = 0o600

    def __init__(
        self,
        conn: sqlite3.Connection,
        root: Path,
        unseen: tuple[str, ...],
        locking: bool,
        feed: WatchFeed | None = None,
    ) -> None:
        self.conn = conn
        self.root = root
        self.unseen = unseen
        self.locking = locking
        #: Mailbox id -> HIGHESTMODSEQ for every mailbox a job changed;
        #: drained by the async layer to wake waiters.
        self.touched: dict[int, int] = {}
        #: Per folder, the ``.mh_sequences`` text we last read in a rescan
        #: or wrote: the merge base when a tool changed the file since.
        self._synced: dict[Path, str] = {}
        #: Per folder, the stamp of our own last rename (never torn).
        self._written: dict[Path, str] = {}
        #: True while a write imports a merged tool change (no recursion).
        self._importing = False
        #: Per folder, the directory mtime after our last job there.
        self._dir_seen: dict[Path, int] = {}
        #: Mailboxes whose file now holds a merged tool change that the
        #: database has not imported yet.
        self._foreign: set[int] = set()
        #: Without locking: sequence-file inodes we replaced, in case an
        #: nmh tool writes its change into one (see :mod:`seqfile`).
        self.orphans = seqfile.OrphanWatch()
        #: Mailbox id -> number -> inode of the files a multi-message
        #: write is linking now: not mail until its COMMIT (pending.py).
        self.creating: dict[int, dict[int, int]] = {}
        #: Recent APPENDs, to put back one that nmh inc overwrites.
        self.fresh = repair.FreshAppends()
        #: Which folders the database mirrors, by the watcher's word.
        self.freshness = Freshness(root, feed)
        #: The sequences the rows want, kept between APPENDs.
        self.our_sequences = OurSequences(conn)
        #: Per folder, message files we created (APPEND, COPY, put-back)
        #: in the last :data:`YOUNG_NS`: number -> (identity, when).  Only
        #: these can be dropped by a tool whose folder scan predates them.
        self._created: dict[Path, OrderedDict[int, tuple[FileIdentity, int]]] = {}
        #: Per folder, files a tool made that we imported while they were in
        #: no unseen sequence, by number: when (``Reconciler._note_unlisted``).
        self._unlisted: dict[Path, dict[int, int]] = {}
        #: Per folder, numbers whose row an expunge removed while the file
        #: under the number was a tool's (inc wrote over ours): their
        #: sequence memberships in the file are our message's, not theirs.
        self._not_ours: dict[Path, set[int]] = {}
        #: What the event loop mirrors of the selected folders.
        self.publisher = Publisher()
        #: Mailbox name -> its directory levels (:meth:`folder_of`).
        self._levels: dict[str, tuple[str, ...]] = {}

    def report(self) -> dict[int, Report]:
        """At the end of every job, after :meth:`end_job`: the mirrored
        folders' changes (:mod:`~asimap.store.mh.mirror`).  Never raises:
        the job itself is done, and a report that fails only makes the
        event loop ask the store's thread again (a log that misses a
        report starts afresh at the next one)."""
        try:
            return self.publisher.report(self.conn, self.freshness, self._foreign)
        except Exception:
            log.exception("reporting the mirrored folders failed")
            self.publisher.restart()
            return {}

    def take_touched(self) -> dict[int, int]:
        """Hand over (and reset) the mailboxes changed since the last call."""
        touched, self.touched = self.touched, {}
        return touched

    def _note_created(self, folder: Path, num: int, stat: os.stat_result) -> None:
        """Remember that we just created message ``num`` (see
        :meth:`_young_created`); entries older than :data:`YOUNG_NS` go."""
        now = time.monotonic_ns()
        created = self._created.setdefault(folder, OrderedDict())
        created.pop(num, None)
        created[num] = (FileIdentity.of(stat), now)
        while created:
            oldest = next(iter(created.values()))
            if oldest[1] >= now - YOUNG_NS and len(created) <= CREATED_LIMIT:
                break
            created.popitem(last=False)

    def _young_created(self, folder: Path) -> set[int]:
        """Numbers of message files we created less than :data:`YOUNG_NS`
        ago and that still are those files: same inode, size and mtime --
        a file nmh ``inc`` wrote over ours in place keeps our inode, but it
        is inc's message, and nmh's changes to it are nmh's own."""
        created = self._created.get(folder)
        if not created:
            return set()
        since = time.monotonic_ns() - YOUNG_NS
        young: set[int] = set()
        for num, (identity, when) in created.items():
            if when < since:
                continue
            try:
                stat = os.stat(folder / str(num), follow_symlinks=False)
                if FileIdentity.of(stat) == identity:
                    young.add(num)
            except FileNotFoundError:
                continue
        return young

    # -- mailbox rows ------------------------------------------------------

    def mailbox_name(self, mailbox_id: int) -> str:
        row = self.conn.execute(
            "SELECT name FROM mailboxes WHERE id=?", (mailbox_id,)
        ).fetchone()
        if row is None:
            raise MailboxNotFound("Mailbox no longer exists")
        return str(row[0])

    def folder_of(self, mailbox_id: int) -> Path:
        """The directory of a mailbox; MailboxNotFound when it vanished.

        Every job asks this, so the common case is cheap: a folder whose
        levels are all plain directories (``lstat`` of each level below
        the root, one for INBOX) cannot leave the resolved root, and needs
        neither :func:`folder_path`'s ``realpath`` of the whole path nor
        its symlink checks.  Anything else (a symlink, a missing level)
        goes through :func:`folder_path` as before.
        """
        name = self.mailbox_name(mailbox_id)
        folder = self._plain_folder(name)
        if folder is not None:
            return folder
        folder = folder_path(self.root, name)
        if not folder.is_dir():
            self.forget_mailbox(mailbox_id)
            raise MailboxNotFound("Mailbox no longer exists")
        return folder

    def _plain_folder(self, name: str) -> Path | None:
        """``name``'s directory when every level of it is a real directory
        (no symlink), else None (see :meth:`folder_of`)."""
        levels = self._levels.get(name)
        if levels is None:
            try:
                levels = tuple(folder_relpath(check_mh_name(name)).split(DELIMITER))
            except StoreError:
                return None  # folder_path raises the proper error
            if len(self._levels) >= _LEVELS_CACHED:
                self._levels.clear()
            self._levels[name] = levels
        current = self.root
        for level in levels:
            current = current / level
            try:
                mode = os.lstat(current).st_mode
            except OSError:
                return None
            if not S_ISDIR(mode):
                return None
        return current

    def forget_mailbox(self, mailbox_id: int) -> None:
        """Drop a mailbox whose directory is gone (``rmf``, DELETE)."""
        with transaction(self.conn):
            self.conn.execute("DELETE FROM mailboxes WHERE id=?", (mailbox_id,))
        # Recent APPENDs' descriptors go too: they would keep the deleted
        # files' room taken.
        self.fresh.forget_missing(mailbox_id, set())
        self.touched[mailbox_id] = 2**63 - 1  # wake waiters: they get errors

    def highest(self, mailbox_id: int) -> int:
        row = self.conn.execute(
            "SELECT highestmodseq FROM mailboxes WHERE id=?", (mailbox_id,)
        ).fetchone()
        if row is None:
            raise MailboxNotFound("Mailbox no longer exists")
        return int(row[0])

    def _bump(self, mailbox_id: int) -> int:
        """Advance HIGHESTMODSEQ (inside a transaction); the new value."""
        modseq = self.highest(mailbox_id) + 1
        self.conn.execute(
            "UPDATE mailboxes SET highestmodseq=? WHERE id=?", (modseq, mailbox_id)
        )
        self.touched[mailbox_id] = modseq
        return modseq

    def _take_uids(self, mailbox_id: int, count: int) -> int:
        """Reserve ``count`` consecutive UIDs; the first of them."""
        row = self.conn.execute(
            "SELECT uidnext FROM mailboxes WHERE id=?", (mailbox_id,)
        ).fetchone()
        uid = int(row[0])
        self.conn.execute(
            "UPDATE mailboxes SET uidnext=? WHERE id=?", (uid + count, mailbox_id)
        )
        return uid

    def _take_uid(self, mailbox_id: int) -> int:
        row = self.conn.execute(
            "SELECT uidnext FROM mailboxes WHERE id=?", (mailbox_id,)
        ).fetchone()
        uid = int(row[0])
        self.conn.execute(
            "UPDATE mailboxes SET uidnext=? WHERE id=?", (uid + 1, mailbox_id)
        )
        return uid

    def _record_stamps(self, mailbox_id: int, folder: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._dir_seen[folder] = os.stat(folder).st_mtime_ns
        if mailbox_id in self._foreign:
            # We merged a tool's change that the database has not seen:
            # the next refresh must rescan (and that rescan clears the
            # mark).  Keeping the mark until then matters: a nested import
            # that recorded its stamps must not let the job around it
            # record "clean" stamps for a file the database lags behind.
            self.conn.execute(
                "UPDATE mailboxes SET seq_stamp='racy' WHERE id=?", (mailbox_id,)
            )
            return
        now = time.time_ns()
        self.conn.execute(
            "UPDATE mailboxes SET dir_mtime_ns=?, seq_stamp=? WHERE id=?",
            (
                _dir_stamp(folder, now),
                _stamp(folder / seqfile.SEQUENCES_FILE, now),
                mailbox_id,
            ),
        )

    def _rows(self, mailbox_id: int) -> list[_Row]:
        return [
            _Row(uid, num, FileIdentity(ino, size, mtime), decode_flags(flags), bool(r))
            for uid, num, ino, size, mtime, flags, r in self.conn.execute(
                "SELECT uid, num, ino, size, mtime_ns, flags, recent FROM messages "
                "WHERE mailbox_id=? ORDER BY uid",
                (mailbox_id,),
            )
        ]

    # -- keyword spelling ----------------------------------------------------

    def _spelling(self, mailbox_id: int) -> dict[str, str]:
        return dict(
            self.conn.execute(
                "SELECT folded, spelling FROM keyword_spelling WHERE mailbox_id=?",
                (mailbox_id,),
            ).fetchall()
        )

    def _save_spelling(self, mailbox_id: int, spelling: dict[str, str]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO keyword_spelling (mailbox_id, folded, spelling) "
            "VALUES (?, ?, ?)",
            [(mailbox_id, folded, spelled) for folded, spelled in spelling.items()],
        )

    def normalise(self, mailbox_id: int, flags: Iterable[str]) -> frozenset[str]:
        """Client flags -> stored flags (RFC 3501 section 2.3.2): system
        flags canonical, ``\\Recent`` dropped, keywords in the spelling the
        mailbox first saw, and only keywords a sequence can hold."""
        spelling = self._spelling(mailbox_id)
        result: set[str] = set()
        for flag in flags:
            folded = flag.lower()
            if folded == "\\recent":
                continue
            system = _SYSTEM.get(folded)
            if system is not None:
                result.add(system)
                continue
            try:
                sequences.check_keyword(flag, self.unseen)
            except sequences.SequenceError as exc:
                raise KeywordRefused(str(exc)) from None
            result.add(spelling.setdefault(flag.casefold(), flag))
        self._save_spelling(mailbox_id, spelling)
        return frozenset(result)

    # -- row helpers -----------------------------------------------------------

    def _insert(
        self,
        mailbox_id: int,
        num: int,
        stat: os.stat_result,
        flags: frozenset[str],
        date: tuple[int, int],
        modseq: int,
        recent: bool = True,
    ) -> int:
        uid = self._take_uid(mailbox_id)
        self.conn.execute(
            _INSERT_MESSAGE,
            (
                mailbox_id,
                uid,
                num,
                stat.st_ino,
                stat.st_size,
                stat.st_mtime_ns,
                encode_flags(flags),
                modseq,
                date[0],
                date[1],
                int(recent),
                int(time.time()),  # RFC 8514 section 3: saved now
            ),
        )
        return uid

    def _remove_rows(self, mailbox_id: int, uids: Sequence[int], modseq: int) -> None:
        """Delete rows and leave tombstones (bounded, oldest forgotten)."""
        params = [(mailbox_id, uid) for uid in uids]
        self.conn.executemany(
            "DELETE FROM messages WHERE mailbox_id=? AND uid=?", params
        )
        self.conn.executemany(
            "DELETE FROM summaries WHERE mailbox_id=? AND uid=?", params
        )
        self.conn.executemany(
            "INSERT OR REPLACE INTO tombstones (mailbox_id, uid, modseq) "
            "VALUES (?, ?, ?)",
            [(mailbox_id, uid, modseq) for uid in uids],
        )
        (count,) = self.conn.execute(
            "SELECT count(*) FROM tombstones WHERE mailbox_id=?", (mailbox_id,)
        ).fetchone()
        excess = count - self.max_tombstones
        if excess > 0:
            oldest = self.conn.execute(
                "SELECT uid, modseq FROM tombstones WHERE mailbox_id=? "
                "ORDER BY modseq, uid LIMIT ?",
                (mailbox_id, excess),
            ).fetchall()
            self.conn.executemany(
                "DELETE FROM tombstones WHERE mailbox_id=? AND uid=?",
                [(mailbox_id, uid) for uid, _ in oldest],
            )
            self.conn.execute(
                "UPDATE mailboxes SET forgotten_modseq=max(forgotten_modseq, ?) "
                "WHERE id=?",
                (max(m for _, m in oldest), mailbox_id),
            )

    # -- writing ---------------------------------------------------------------

    def _max_num(self, mailbox_id: int) -> int:
        (value,) = self.conn.execute(
            "SELECT coalesce(max(num), 0) FROM messages WHERE mailbox_id=?",
            (mailbox_id,),
        ).fetchone()
        return int(value)
