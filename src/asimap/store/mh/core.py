"""The synchronous heart of the MH store: one folder at a time.

Everything here runs on the store's single worker thread (see
:mod:`asimap.store.mh.worker`), never on the event loop, and each public
method is one job.  Because the worker runs one job at a time, every
read-modify-write inside this process is atomic without further locks;
against nmh tools running at the same time we rely on atomic renames,
``os.link`` number claiming and, when enabled, nmh's fcntl lock on
``.mh_sequences`` (:func:`asimap.store.mh.seqfile.locked`).

Reconciling with MH tools
-------------------------
A folder is rescanned only when its directory mtime or its
``.mh_sequences`` (mtime, size, inode) differ from what the last scan
recorded.  File timestamps are coarse (a kernel tick), so a stamp taken
less than :data:`RACY_NS` after the file changed is not trusted: the next
check rescans (the "racy timestamp" rule git uses for its index).

A rescan matches files to database rows by (number, identity), then by
identity alone -- ``folder -pack`` and ``sortm`` rename files, keeping
inode, size and mtime, so the UID follows its message and nothing is
visible to clients.  Files left over are new messages (new UIDs in number
order); rows left over were expunged (a tombstone each).  A file whose
identity changed under the same number was rewritten by a tool: the old
UID is expunged and the file gets a new one.  Then ``.mh_sequences`` gives
the flags; every difference bumps that message's MODSEQ.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from asimap.imap.responses import Encoded
from asimap.message.model import Message
from asimap.store.base import (
    Changes,
    MailboxNotFound,
    MailboxStatus,
    MessageGone,
    MessageInfo,
    MessageState,
    MessageSummary,
    QuotaLimits,
    StoreError,
    StoreMode,
    StoreResult,
    summarize,
)
from asimap.store.mh import files, objectids, quota, repair, seqfile, sequences
from asimap.store.mh.db import decode_flags, encode_flags, transaction
from asimap.store.mh.files import FileIdentity
from asimap.store.mh.paths import folder_path

#: A stamp this close to "now" may hide a change in the same clock tick.
RACY_NS = 50_000_000

#: A message file this new may have been created after a tool's folder
#: scan (see :meth:`Core._restore_unknown`).
YOUNG_NS = 10_000_000_000

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


class Core:
    """Folder-level operations on one account (worker thread only)."""

    #: Expunge tombstones kept per mailbox; older ones are forgotten and
    #: reported with ``expunged_complete=False``.
    max_tombstones = 100_000

    #: The account's limits (RFC 9208), set by ``MHStore.set_quota_limits``.
    quota_limits = QuotaLimits()

    def __init__(
        self,
        conn: sqlite3.Connection,
        root: Path,
        unseen: tuple[str, ...],
        locking: bool,
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
        #: Recent APPENDs, to put back one that nmh inc overwrites.
        self.fresh = repair.FreshAppends()

    def take_touched(self) -> dict[int, int]:
        """Hand over (and reset) the mailboxes changed since the last call."""
        touched, self.touched = self.touched, {}
        return touched

    # -- mailbox rows ------------------------------------------------------

    def mailbox_name(self, mailbox_id: int) -> str:
        row = self.conn.execute(
            "SELECT name FROM mailboxes WHERE id=?", (mailbox_id,)
        ).fetchone()
        if row is None:
            raise MailboxNotFound("Mailbox no longer exists")
        return str(row[0])

    def folder_of(self, mailbox_id: int) -> Path:
        """The directory of a mailbox; MailboxNotFound when it vanished."""
        folder = folder_path(self.root, self.mailbox_name(mailbox_id))
        if not folder.is_dir():
            self.forget_mailbox(mailbox_id)
            raise MailboxNotFound("Mailbox no longer exists")
        return folder

    def forget_mailbox(self, mailbox_id: int) -> None:
        """Drop a mailbox whose directory is gone (``rmf``, DELETE)."""
        with transaction(self.conn):
            self.conn.execute("DELETE FROM mailboxes WHERE id=?", (mailbox_id,))
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

    # -- reconciling -------------------------------------------------------

    def refresh(self, mailbox_id: int) -> int:
        """Rescan the folder if its directory or sequences changed; return
        HIGHESTMODSEQ (what a waiter compares against)."""
        folder = self.folder_of(mailbox_id)
        if not self._unchanged(mailbox_id, folder):
            with seqfile.locked(folder, self.locking):
                self._rescan(mailbox_id, folder)
        return self.highest(mailbox_id)

    def _unchanged(self, mailbox_id: int, folder: Path) -> bool:
        row = self.conn.execute(
            "SELECT dir_mtime_ns, seq_stamp FROM mailboxes WHERE id=?", (mailbox_id,)
        ).fetchone()
        if row is None or row[0] == -1 or row[1] in ("", "racy"):
            return False
        if not self.locking and self.orphans.pending(folder):
            return False  # a tool wrote into a file we had replaced
        stat = os.stat(folder)
        seq = _stamp(folder / seqfile.SEQUENCES_FILE)
        return bool(stat.st_mtime_ns == row[0] and seq == row[1])

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

    def _read_sequences(self, folder: Path) -> str:
        """The sequence file's text, never caught half way through an nmh
        rewrite.

        nmh rewrites ``.mh_sequences`` in place: ``ftruncate`` and then
        ``write``, holding its fcntl lock (:mod:`seqfile`).  A read between
        the two sees an empty file, which would read as "every message left
        every sequence".  With locking we hold the lock ourselves, so no
        tool is writing.  Without, :func:`seqfile.read_unlocked` retries a
        read made while a tool held the lock or the file moved.
        """
        if self.locking:
            return seqfile.read_text(folder)
        snapshot = seqfile.read_unlocked(folder)
        if snapshot is None:
            return ""
        snapshot.close()
        return snapshot.text

    def _wait_for_nmh(self, folder: Path) -> None:
        """Without locking of our own, wait (bounded by
        :data:`NMH_WAIT_LIMIT_S`) while an nmh tool holds its write lock on
        the sequence file: it is between reading and rewriting it, and
        both reading now (half-written) and renaming now (orphans its
        write) would lose something.  With locking, :func:`seqfile.locked`
        already waits for it."""
        if self.locking:
            return
        deadline = time.monotonic() + NMH_WAIT_LIMIT_S
        while seqfile.held_by_other(folder) and time.monotonic() < deadline:
            time.sleep(0.002)

    def _wait_quiet(self, folder: Path) -> None:
        """Wait (bounded) until no one but us changed the folder for
        :data:`QUIET_NS`; a rescan calls this when it finds files renumbered.

        An nmh tool may be half way through: ``sortm`` and ``folder -pack``
        rename files first and rewrite ``.mh_sequences`` last, through a
        descriptor they opened at the start.  Scanning then would pair the
        new numbers with the old sequences, and writing the sequences back
        would orphan the tool's own write.  With locking, nmh holds its lock
        for the whole operation and :func:`seqfile.locked` waits instead.
        """
        if self.locking:
            return
        deadline = time.monotonic() + QUIET_LIMIT_S
        while not _is_quiet(
            folder, self._dir_seen.get(folder), self._written.get(folder)
        ):
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)

    def _rescan(self, mailbox_id: int, folder: Path, waited: bool = False) -> None:
        """Bring the database in line with the folder (see module doc)."""
        on_disk = files.message_numbers(folder)
        rows = self._rows(mailbox_id)
        matched: dict[int, tuple[_Row, int, os.stat_result]] = {}  # by uid
        pending: dict[int, os.stat_result] = {}
        by_num = {row.num: row for row in rows}
        for num, stat in on_disk.items():
            row = by_num.get(num)
            if row is not None and row.identity == FileIdentity.of(stat):
                matched[row.uid] = (row, num, stat)
            else:
                pending[num] = stat
        if pending:
            by_identity: dict[FileIdentity, list[_Row]] = {}
            for row in rows:
                if row.uid not in matched:
                    by_identity.setdefault(row.identity, []).append(row)
            for num in sorted(pending):
                stat = pending[num]
                candidates = by_identity.get(FileIdentity.of(stat))
                if candidates:
                    row = candidates.pop(0)
                    matched[row.uid] = (row, num, stat)
                    del pending[num]
        renumbered = any(num != row.num for row, num, _ in matched.values())
        if renumbered and not waited and not self.locking:
            # folder -pack or sortm, perhaps still running: see _wait_quiet.
            self._wait_quiet(folder)
            self._rescan(mailbox_id, folder, waited=True)
            return
        repaired = self._repair_overwritten(mailbox_id, folder, rows, matched, on_disk)
        gone = [r.uid for r in rows if r.uid not in matched and r.uid not in repaired]
        # The first scan of a folder we never served imports it: its
        # messages are recent only if the file says so (asimap 2.x kept a
        # Recent sequence); later newcomers (inc, refile) are recent.
        (uidnext, seq_stamp) = self.conn.execute(
            "SELECT uidnext, seq_stamp FROM mailboxes WHERE id=?", (mailbox_id,)
        ).fetchone()
        # Never scanned before (stamps still at their defaults): an empty
        # folder's first scan must not make the next refile "imported".
        initial = not rows and uidnext == 1 and seq_stamp == ""

        # This scan imports everything the file holds, so whatever foreign
        # change an earlier write merged into it is imported here; a write
        # at the end of this scan may mark the mailbox again.
        self._foreign.discard(mailbox_id)
        text = self._read_sequences(folder)
        base_text = self._synced.get(folder)
        parsed = sequences.parse(text)
        if base_text is not None and text != base_text:
            parsed = self._restore_unknown(folder, sequences.parse(base_text), parsed)
        parsed = self._fold_orphans(folder, parsed)
        file_flags = sequences.flags_by_number(parsed, self.unseen)
        base_flags = (
            None
            if base_text is None
            else sequences.flags_by_number(sequences.parse(base_text), self.unseen)
        )
        spelling = self._spelling(mailbox_id)

        def flags_for(
            num: int, previous: frozenset[str] | None, old_num: int | None = None
        ) -> frozenset[str]:
            found = file_flags.get(num)
            result: set[str] = set()
            for flag in found.flags if found else ():
                if not flag.startswith("\\"):
                    flag = spelling.setdefault(flag.casefold(), flag)
                result.add(flag)
            prev_seen = None if previous is None else "\\Seen" in previous
            known = False
            base: sequences.FileFlags | None = None
            if base_flags is not None and old_num is not None:
                known, base = True, base_flags.get(old_num)
            if sequences.settle_seen(found, prev_seen, base, base_known=known):
                result.add("\\Seen")
            return frozenset(result)

        def newcomer_flags(num: int) -> frozenset[str]:
            """Flags of a new file.  One that replaced a message we knew
            under the same number (nmh ``inc`` opens ``O_CREAT|O_TRUNC``
            without ``O_EXCL``, so it can overwrite a number we had just
            claimed) does not inherit that message's sequences: only what
            differs from them is the tool's doing."""
            flags = flags_for(num, None)
            old = by_num.get(num)
            if old is None or old.uid in matched:
                return flags
            return frozenset(f for f in flags if f == "\\Seen" or f not in old.flags)

        with transaction(self.conn):
            modseq: int | None = None

            def bump() -> int:
                nonlocal modseq
                if modseq is None:
                    modseq = self._bump(mailbox_id)
                return modseq

            for row, num, _stat in matched.values():
                flags = flags_for(num, row.flags, row.num)
                if flags != row.flags:
                    self.conn.execute(
                        "UPDATE messages SET num=?, flags=?, modseq=? "
                        "WHERE mailbox_id=? AND uid=?",
                        (num, encode_flags(flags), bump(), mailbox_id, row.uid),
                    )
                elif num != row.num:
                    # Renumbered by folder -pack / sortm: invisible to IMAP.
                    self.conn.execute(
                        "UPDATE messages SET num=? WHERE mailbox_id=? AND uid=?",
                        (num, mailbox_id, row.uid),
                    )
            # Our APPENDs put back under fresh numbers: same UID, bytes and
            # flags, so nothing for IMAP to see.
            self.conn.executemany(
                "UPDATE messages SET num=?, ino=?, size=?, mtime_ns=? "
                "WHERE mailbox_id=? AND uid=?",
                [
                    (num, st.st_ino, st.st_size, st.st_mtime_ns, mailbox_id, uid)
                    for uid, (num, st) in repaired.items()
                ],
            )
            if gone:
                self._remove_rows(mailbox_id, gone, bump())
            if pending:
                # New files get UIDs in number order, in one statement: the
                # first scan of a 100,000-message folder inserts them all.
                recent_file = parsed.sequences.get(sequences.RECENT_SEQUENCE, set())
                numbers = sorted(pending)
                first_uid = self._take_uids(mailbox_id, len(numbers))
                saved_now = int(time.time())
                new_modseq = bump()
                self.conn.executemany(
                    _INSERT_MESSAGE,
                    [
                        (
                            mailbox_id,
                            first_uid + index,
                            num,
                            pending[num].st_ino,
                            pending[num].st_size,
                            pending[num].st_mtime_ns,
                            encode_flags(newcomer_flags(num)),
                            new_modseq,
                            pending[num].st_mtime_ns // 1_000_000_000,
                            0,
                            int(not initial or num in recent_file),
                            # RFC 8514 section 3: for a file an MH tool put
                            # here, the moment we first saw it.
                            saved_now,
                        )
                        for index, num in enumerate(numbers)
                    ],
                )
            self._save_spelling(mailbox_id, spelling)
            self._write_sequences(mailbox_id, folder, text)
            self._record_stamps(mailbox_id, folder)

    def _repair_overwritten(
        self,
        mailbox_id: int,
        folder: Path,
        rows: Sequence[_Row],
        matched: dict[int, tuple[_Row, int, os.stat_result]],
        on_disk: dict[int, os.stat_result],
    ) -> dict[int, tuple[int, os.stat_result]]:
        """Store again, under fresh numbers, our recent APPENDs whose file
        nmh ``inc`` overwrote in place (:mod:`asimap.store.mh.repair`);
        UID -> (new number, stat).  The overwriting file stays where it is
        and becomes a new message."""
        repaired: dict[int, tuple[int, os.stat_result]] = {}
        start = max(max(on_disk, default=0), self._max_num(mailbox_id)) + 1
        for row in rows:
            if row.uid in matched:
                continue
            fresh = self.fresh.overwritten(
                mailbox_id, row.num, row.uid, on_disk.get(row.num)
            )
            if fresh is None:
                continue
            num, stat = files.store_new(folder, fresh.data, start, fresh.mtime_ns)
            start = num + 1
            self.fresh.forget(mailbox_id, row.num)
            self.fresh.remember(
                mailbox_id,
                num,
                row.uid,
                fresh.data,
                fresh.mtime_ns,
                FileIdentity.of(stat),
            )
            repaired[row.uid] = (num, stat)
        return repaired

    def _restore_unknown(
        self,
        folder: Path,
        base: sequences.SequenceFile,
        theirs: sequences.SequenceFile,
    ) -> sequences.SequenceFile:
        """``theirs`` (a tool's rewrite of ``base``) without the drops of
        messages the tool never saw (:func:`sequences.restore_unseen_by_tool`).

        "Young" is a message file whose inode changed less than
        :data:`YOUNG_NS` before now: a tool's scan-to-write takes
        milliseconds, and the rescan that meets its write follows it
        closely, because every job of ours checks the folder first.
        """
        now = time.time_ns()
        young = {
            num
            for num, stat in files.message_numbers(folder).items()
            if now - stat.st_ctime_ns < YOUNG_NS
        }
        return sequences.restore_unseen_by_tool(base, theirs, young)

    def _fold_orphans(
        self, folder: Path, parsed: sequences.SequenceFile
    ) -> sequences.SequenceFile:
        """``parsed`` plus what tools wrote into inodes we had replaced.

        Each such write is a tool's read-modify-write of the old file: its
        delta against what the old inode held is applied to the current
        sequences (three-way, as :func:`sequences.merge_sequences`), so the
        rescan imports it and the write that follows puts it in the file.
        """
        if self.locking:
            return parsed
        changes = self.orphans.take(folder)
        if not changes:
            return parsed
        kept = sequences.preserved_lines(parsed, self.unseen)
        current = sequences.interpreted(parsed, self.unseen)
        for before, after in changes:
            base = sequences.parse(before)
            theirs = self._restore_unknown(folder, base, sequences.parse(after))
            current = sequences.merge_sequences(
                sequences.interpreted(base, self.unseen),
                sequences.interpreted(theirs, self.unseen),
                current,
            )
        merged = sequences.SequenceFile(
            sequences={**current, **{n: parsed.sequences[n] for n in kept}},
            raw_lines=dict(kept),
        )
        return merged

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

    # -- writing sequences ---------------------------------------------------

    def _write_sequences(
        self,
        mailbox_id: int,
        folder: Path,
        text: str | None = None,
    ) -> None:
        """Rewrite ``.mh_sequences`` from the database, keeping the lines
        we do not interpret; skipped when nothing would change.

        ``text`` is the file as the caller last synchronised with it (a
        rescan passes what it read); otherwise the text we last read or
        wrote is the base.  The file is read again here, and if a tool
        changed it since the base, its changes are merged in
        (:func:`~asimap.store.mh.sequences.merge_sequences`) instead of
        being overwritten, and imported into the database right after.

        With locking, the caller holds nmh's lock: nothing moves, and the
        file is rewritten in place (:func:`seqfile.write_locked`).  Without,
        the file is replaced by rename unless it moved since we read it or
        a tool holds its lock (then we merge again); the inode we replaced
        is watched (:class:`seqfile.OrphanWatch`) for the write of a tool
        that had already locked it.
        """
        path = folder / seqfile.SEQUENCES_FILE
        base = text if text is not None else self._synced.get(folder)
        triples = [
            (num, decode_flags(flags), bool(recent))
            for num, flags, recent in self.conn.execute(
                "SELECT num, flags, recent FROM messages WHERE mailbox_id=?",
                (mailbox_id,),
            )
        ]
        ours = sequences.build_sequences(triples, self.unseen)
        for attempt in range(WRITE_RETRIES):
            snapshot: seqfile.Snapshot | None = None
            if self.locking:
                current = seqfile.read_text(folder)
            else:
                self._wait_for_nmh(folder)
                snapshot = seqfile.read_unlocked(folder)
                current = "" if snapshot is None else snapshot.text
            try:
                current_parsed = sequences.parse(current)
                merged = ours
                if base is not None and current != base:
                    base_parsed = sequences.parse(base)
                    theirs = self._restore_unknown(folder, base_parsed, current_parsed)
                    merged = sequences.merge_sequences(
                        sequences.interpreted(base_parsed, self.unseen),
                        sequences.interpreted(theirs, self.unseen),
                        ours,
                    )
                    self._foreign.add(mailbox_id)
                wanted = sequences.format_file(
                    merged, sequences.preserved_lines(current_parsed, self.unseen)
                )
                if wanted != current:
                    if self.locking:
                        seqfile.write_locked(folder, wanted)
                    else:
                        read_stamp = "missing" if snapshot is None else snapshot.stamp
                        moved = _stamp(path) != read_stamp or seqfile.held_by_other(
                            folder
                        )
                        if moved and attempt < WRITE_RETRIES - 1:
                            continue  # a tool is writing or wrote: merge again
                        # (The last attempt writes anyway: our change must
                        # reach the file, and the orphan watch keeps the
                        # tool's.)
                        seqfile.write_atomically(folder, wanted)
                        if snapshot is not None:
                            self.orphans.add(folder, snapshot)
                    self._written[folder] = _stamp(path)
            finally:
                if snapshot is not None:
                    snapshot.close()
            self._synced[folder] = wanted
            if mailbox_id in self._foreign and not self._importing:
                # The file now holds a tool's change the database lacks, and
                # the base says we have seen it: import it now, or a later
                # merge would take it for ours and drop it.
                # Each import rescan rewrites the file and may meet (and
                # merge) a newer tool change: import until none is left
                # (bounded; if a tool keeps writing, the mark stays and the
                # next job rescans).
                self._importing = True
                try:
                    for _ in range(WRITE_RETRIES):
                        self._rescan(mailbox_id, folder, waited=True)
                        if mailbox_id not in self._foreign:
                            break
                finally:
                    self._importing = False
            return

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

    # -- reading ---------------------------------------------------------------

    def status(self, mailbox_id: int) -> MailboxStatus:
        self.refresh(mailbox_id)
        uidvalidity, uidnext, highest = self.conn.execute(
            "SELECT uidvalidity, uidnext, highestmodseq FROM mailboxes WHERE id=?",
            (mailbox_id,),
        ).fetchone()
        messages, unseen, recent, size, deleted, deleted_size = self.conn.execute(
            "SELECT count(*), "
            "coalesce(sum(instr(flags, '\\Seen') = 0), 0), "
            "coalesce(sum(recent), 0), coalesce(sum(size), 0), "
            "coalesce(sum(instr(flags, '\\Deleted') > 0), 0), "
            "coalesce(sum(size * (instr(flags, '\\Deleted') > 0)), 0) "
            "FROM messages WHERE mailbox_id=?",
            (mailbox_id,),
        ).fetchone()
        return MailboxStatus(
            uidvalidity=uidvalidity,
            uidnext=uidnext,
            messages=messages,
            unseen=unseen,
            recent=recent,
            highestmodseq=highest,
            size=size,
            deleted=deleted,
            deleted_storage=deleted_size,
            mailboxid=objectids.mailboxid(self.conn, mailbox_id),
        )

    def states(self, mailbox_id: int) -> tuple[MessageState, ...]:
        self.refresh(mailbox_id)
        return tuple(
            MessageState(uid, decode_flags(flags), modseq)
            for uid, flags, modseq in self.conn.execute(
                "SELECT uid, flags, modseq FROM messages WHERE mailbox_id=? "
                "ORDER BY uid",
                (mailbox_id,),
            )
        )

    def changes_since(self, mailbox_id: int, modseq: int) -> Changes:
        self.refresh(mailbox_id)
        highest, forgotten = self.conn.execute(
            "SELECT highestmodseq, forgotten_modseq FROM mailboxes WHERE id=?",
            (mailbox_id,),
        ).fetchone()
        changed = tuple(
            MessageState(uid, decode_flags(flags), m)
            for uid, flags, m in self.conn.execute(
                "SELECT uid, flags, modseq FROM messages "
                "WHERE mailbox_id=? AND modseq>? ORDER BY uid",
                (mailbox_id, modseq),
            )
        )
        expunged = tuple(
            uid
            for (uid,) in self.conn.execute(
                "SELECT uid FROM tombstones WHERE mailbox_id=? AND modseq>? "
                "ORDER BY uid",
                (mailbox_id, modseq),
            )
        )
        return Changes(
            highestmodseq=highest,
            changed=changed,
            expunged=expunged,
            expunged_complete=modseq >= forgotten,
        )

    def keywords(self, mailbox_id: int) -> frozenset[str]:
        found: set[str] = set()
        for (flags,) in self.conn.execute(
            "SELECT DISTINCT flags FROM messages WHERE mailbox_id=?", (mailbox_id,)
        ):
            found.update(f for f in decode_flags(flags) if not f.startswith("\\"))
        return frozenset(found)

    def claim_recent(self, mailbox_id: int) -> frozenset[int]:
        folder = self.folder_of(mailbox_id)
        with seqfile.locked(folder, self.locking):
            if not self._unchanged(mailbox_id, folder):
                self._rescan(mailbox_id, folder)
            claimed = frozenset(
                uid
                for (uid,) in self.conn.execute(
                    "SELECT uid FROM messages WHERE mailbox_id=? AND recent=1",
                    (mailbox_id,),
                )
            )
            if claimed:
                with transaction(self.conn):
                    self.conn.execute(
                        "UPDATE messages SET recent=0 WHERE mailbox_id=?", (mailbox_id,)
                    )
                    self._write_sequences(mailbox_id, folder)
                    self._record_stamps(mailbox_id, folder)
        return claimed

    def info(self, mailbox_id: int, uid: int) -> MessageInfo:
        row = self.conn.execute(
            "SELECT size, internaldate, tz_minutes, savedate FROM messages "
            "WHERE mailbox_id=? AND uid=?",
            (mailbox_id, uid),
        ).fetchone()
        if row is None:
            raise MessageGone(f"Message UID {uid} no longer exists")
        return MessageInfo(
            uid=uid,
            internaldate=to_datetime(row[1], row[2]),
            size=row[0],
            savedate=_savedate(row[3]),
        )

    def exists(self, mailbox_id: int, uid: int) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM messages WHERE mailbox_id=? AND uid=?",
                (mailbox_id, uid),
            ).fetchone()
            is not None
        )

    def read(self, mailbox_id: int, uid: int) -> bytes:
        """The raw bytes of a message, verified to be the file we know."""
        for attempt in range(2):
            row = self.conn.execute(
                "SELECT num, ino, size, mtime_ns FROM messages "
                "WHERE mailbox_id=? AND uid=?",
                (mailbox_id, uid),
            ).fetchone()
            if row is None:
                break
            folder = self.folder_of(mailbox_id)
            try:
                with open(folder / str(row[0]), "rb") as handle:
                    stat = os.fstat(handle.fileno())
                    if FileIdentity.of(stat) == FileIdentity(row[1], row[2], row[3]):
                        return handle.read()
            except (FileNotFoundError, IsADirectoryError):
                pass
            if attempt == 0:
                # Renumbered or removed by a tool since the last scan.
                with seqfile.locked(folder, self.locking):
                    self._rescan(mailbox_id, folder)
        raise MessageGone(f"Message UID {uid} no longer exists")

    def summaries(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageSummary]:
        """Summaries from the cache; messages not cached yet are parsed once
        here (on the worker thread) and cached for good."""
        wanted = list(dict.fromkeys(uids))
        found: dict[int, MessageSummary] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                "SELECT m.uid, m.size, m.internaldate, m.tz_minutes, s.envelope, "
                "s.bodystructure, s.body, s.headers, s.emailid, s.threadid, "
                "m.savedate FROM messages m "
                "JOIN summaries s ON s.mailbox_id=m.mailbox_id AND s.uid=m.uid "
                f"WHERE m.mailbox_id=? AND m.uid IN ({marks}) "
                # Cached before schema 3 (no object ids): rebuilt below.
                "AND s.emailid IS NOT NULL",
                (mailbox_id, *chunk),
            ):
                uid, size, seconds, tz, envelope, structure, body, headers = row[:8]
                emailid, threadid, saved = row[8:]
                found[uid] = MessageSummary(
                    uid=uid,
                    size=size,
                    internaldate=to_datetime(seconds, tz),
                    envelope=Encoded(envelope),
                    bodystructure=Encoded(structure),
                    body=Encoded(body),
                    headers={k: tuple(v) for k, v in json.loads(headers).items()},
                    emailid=emailid,
                    threadid=threadid,
                    savedate=_savedate(saved),
                )
        missing = [uid for uid in wanted if uid not in found]
        fresh: list[MessageSummary] = []
        for uid in missing:
            try:
                info = self.info(mailbox_id, uid)
                summary = summarize(info, Message(self.read(mailbox_id, uid)))
            except MessageGone:
                continue
            found[uid] = summary
            fresh.append(summary)
        if fresh:
            with transaction(self.conn):
                self.conn.executemany(
                    "INSERT OR REPLACE INTO summaries (mailbox_id, uid, envelope, "
                    "bodystructure, body, headers, emailid, threadid) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            mailbox_id,
                            summary.uid,
                            summary.envelope.data,
                            summary.bodystructure.data,
                            summary.body.data,
                            json.dumps(
                                {k: list(v) for k, v in summary.headers.items()}
                            ),
                            summary.emailid,
                            summary.threadid,
                        )
                        for summary in fresh
                    ],
                )
        return [found[uid] for uid in wanted if uid in found]

    # -- writing ---------------------------------------------------------------

    def _max_num(self, mailbox_id: int) -> int:
        (value,) = self.conn.execute(
            "SELECT coalesce(max(num), 0) FROM messages WHERE mailbox_id=?",
            (mailbox_id,),
        ).fetchone()
        return int(value)

    def append(
        self,
        mailbox_id: int,
        data: bytes,
        flags: Iterable[str],
        internaldate: datetime | None,
    ) -> int:
        """APPEND: write durably, claim a number, then record (module doc)."""
        folder = self.folder_of(mailbox_id)
        seconds, tz_minutes = from_datetime(internaldate)
        with seqfile.locked(folder, self.locking):
            if not self._unchanged(mailbox_id, folder):
                self._rescan(mailbox_id, folder)
            with transaction(self.conn):
                quota.check(self.conn, self.quota_limits, 1, len(data))
                stored = self.normalise(mailbox_id, flags)
                num, stat = files.store_new(
                    folder, data, self._max_num(mailbox_id) + 1, seconds * 1_000_000_000
                )
                try:
                    uid = self._insert(
                        mailbox_id,
                        num,
                        stat,
                        stored,
                        (seconds, tz_minutes),
                        self._bump(mailbox_id),
                    )
                    # nmh inc may still overwrite this number in place.
                    self.fresh.remember(
                        mailbox_id,
                        num,
                        uid,
                        data,
                        seconds * 1_000_000_000,
                        FileIdentity.of(stat),
                    )
                    self._write_sequences(mailbox_id, folder)
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        (folder / str(num)).unlink()
                    raise
                self._record_stamps(mailbox_id, folder)
        return uid

    def store(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        mode: StoreMode,
        flags: Iterable[str],
        unchanged_since: int | None,
    ) -> StoreResult:
        folder = self.folder_of(mailbox_id)
        with seqfile.locked(folder, self.locking):
            if not self._unchanged(mailbox_id, folder):
                self._rescan(mailbox_id, folder)
            with transaction(self.conn):
                given = self.normalise(mailbox_id, flags)
                wanted = sorted(set(uids))
                current = self._flags_and_modseq(mailbox_id, wanted)
                to_change: dict[int, frozenset[str]] = {}
                conflicts: list[int] = []
                for uid in wanted:
                    if uid not in current:
                        continue
                    old, modseq = current[uid]
                    if unchanged_since is not None and modseq > unchanged_since:
                        conflicts.append(uid)  # RFC 7162 section 3.1.3
                        continue
                    new = _apply(old, mode, given)
                    if new != old:
                        to_change[uid] = new
                updated: list[MessageState] = []
                if to_change:
                    modseq = self._bump(mailbox_id)
                    self.conn.executemany(
                        "UPDATE messages SET flags=?, modseq=? "
                        "WHERE mailbox_id=? AND uid=?",
                        [
                            (encode_flags(new), modseq, mailbox_id, uid)
                            for uid, new in to_change.items()
                        ],
                    )
                    updated = [
                        MessageState(uid, new, modseq) for uid, new in to_change.items()
                    ]
                    self._write_sequences(mailbox_id, folder)
                    self._record_stamps(mailbox_id, folder)
        return StoreResult(updated=tuple(updated), conflicts=tuple(conflicts))

    def _flags_and_modseq(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, tuple[frozenset[str], int]]:
        result: dict[int, tuple[frozenset[str], int]] = {}
        wanted = sorted(set(uids))
        # By primary key, in chunks (SQLite's variable limit): a STORE on a
        # few messages of a 100,000-message folder reads a few rows.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for uid, flags, modseq in self.conn.execute(
                "SELECT uid, flags, modseq FROM messages "
                f"WHERE mailbox_id=? AND uid IN ({marks})",
                (mailbox_id, *chunk),
            ):
                result[uid] = (decode_flags(flags), modseq)
        return result

    def expunge(self, mailbox_id: int, uids: Sequence[int] | None) -> tuple[int, ...]:
        folder = self.folder_of(mailbox_id)
        with seqfile.locked(folder, self.locking):
            if not self._unchanged(mailbox_id, folder):
                self._rescan(mailbox_id, folder)
            among = None if uids is None else set(uids)
            doomed = [
                uid
                for uid, flags, _ in self._all(mailbox_id)
                if "\\Deleted" in flags and (among is None or uid in among)
            ]
            return self._remove(mailbox_id, folder, doomed)

    def _all(self, mailbox_id: int) -> list[tuple[int, frozenset[str], int]]:
        return [
            (uid, decode_flags(flags), num)
            for uid, flags, num in self.conn.execute(
                "SELECT uid, flags, num FROM messages WHERE mailbox_id=? ORDER BY uid",
                (mailbox_id,),
            )
        ]

    def remove_uids(self, mailbox_id: int, uids: Sequence[int]) -> tuple[int, ...]:
        """Expunge exactly ``uids`` whatever their flags (MOVE to another
        store)."""
        folder = self.folder_of(mailbox_id)
        with seqfile.locked(folder, self.locking):
            return self._remove(mailbox_id, folder, uids)

    def _remove(
        self, mailbox_id: int, folder: Path, uids: Iterable[int]
    ) -> tuple[int, ...]:
        """Unlink the files of ``uids`` (still present), tombstone them, and
        rewrite the sequences.  Called with the folder lock held."""
        wanted = set(uids)
        rows = [
            (uid, num, FileIdentity(ino, size, mtime))
            for uid, num, ino, size, mtime in self.conn.execute(
                "SELECT uid, num, ino, size, mtime_ns FROM messages WHERE mailbox_id=?",
                (mailbox_id,),
            )
            if uid in wanted
        ]
        if not rows:
            return ()
        numbers: list[int] = []
        for _uid, num, identity in rows:
            path = folder / str(num)
            try:
                stat = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                continue
            # Never unlink a file a tool put under this number meanwhile.
            if FileIdentity.of(stat) == identity:
                numbers.append(num)
        files.remove_messages(folder, numbers)
        gone = sorted(uid for uid, _, _ in rows)
        with transaction(self.conn):
            self._remove_rows(mailbox_id, gone, self._bump(mailbox_id))
            self._write_sequences(mailbox_id, folder)
            self._record_stamps(mailbox_id, folder)
        return tuple(gone)

    def copy(
        self, source_id: int, uids: Sequence[int], target_id: int, move: bool
    ) -> tuple[tuple[int, int], ...]:
        """COPY / MOVE (RFC 6851: the sources go whatever their flags)."""
        source = self.folder_of(source_id)
        target = self.folder_of(target_id)
        wanted = set(uids)
        # Copy what the source holds now: a file inc overwrote since our
        # last look is put back first (see _repair_overwritten).
        with seqfile.locked(source, self.locking):
            if not self._unchanged(source_id, source):
                self._rescan(source_id, source)
        rows = [
            row
            for row in self.conn.execute(
                "SELECT uid, num, flags, internaldate, tz_minutes, size, "
                "ino, mtime_ns FROM messages WHERE mailbox_id=? ORDER BY uid",
                (source_id,),
            )
            if row[0] in wanted
        ]
        pairs: list[tuple[int, int]] = []
        if not rows:
            return ()
        if not move:
            # A MOVE leaves the account's usage as it was (RFC 6851 section
            # 4.1 lets it succeed where COPY would overrun); a COPY is
            # checked whole, before the first file is linked.
            quota.check(
                self.conn, self.quota_limits, len(rows), sum(r[5] for r in rows)
            )
        with seqfile.locked(target, self.locking):
            if not self._unchanged(target_id, target):
                self._rescan(target_id, target)
            with transaction(self.conn):
                modseq = self._bump(target_id)
                start = self._max_num(target_id) + 1
                for uid, num, flags, seconds, tz_minutes, size, ino, mtime in rows:
                    known = FileIdentity(ino, size, mtime)
                    try:
                        new_num, stat = self._copy_file(
                            source, num, known, target, start, seconds
                        )
                    except FileNotFoundError:
                        # The file under that number is no longer this
                        # message: look again (a tool renumbered it, or inc
                        # overwrote it and the rescan puts ours back).
                        with seqfile.locked(source, self.locking):
                            self._rescan(source_id, source, waited=True)
                        where = self.conn.execute(
                            "SELECT num, ino, size, mtime_ns FROM messages "
                            "WHERE mailbox_id=? AND uid=?",
                            (source_id, uid),
                        ).fetchone()
                        if where is None:
                            continue  # removed by a tool: nothing to copy
                        try:
                            new_num, stat = self._copy_file(
                                source,
                                where[0],
                                FileIdentity(where[1], where[2], where[3]),
                                target,
                                start,
                                seconds,
                            )
                        except FileNotFoundError:
                            continue
                    start = new_num + 1
                    new_uid = self._insert(
                        target_id,
                        new_num,
                        stat,
                        decode_flags(flags),
                        (seconds, tz_minutes),
                        modseq,
                    )
                    self._copy_summary(source_id, uid, target_id, new_uid)
                    pairs.append((uid, new_uid))
                self._write_sequences(target_id, target)
                self._record_stamps(target_id, target)
        if move and pairs:
            with seqfile.locked(source, self.locking):
                self._remove(source_id, source, [s for s, _ in pairs])
        return tuple(pairs)

    @staticmethod
    def _copy_file(
        source: Path,
        num: int,
        known: FileIdentity,
        target: Path,
        start: int,
        seconds: int,
    ) -> tuple[int, os.stat_result]:
        """Copy message ``num`` of ``source`` into ``target`` (first free
        number >= ``start``); FileNotFoundError when the file under ``num``
        is not the message we know (``known``)."""
        path = source / str(num)
        if source != target:
            return files.link_or_copy(path, target, start, known)
        with open(path, "rb") as handle:
            if FileIdentity.of(os.fstat(handle.fileno())) != known:
                raise FileNotFoundError(path)
            data = handle.read()
        return files.store_new(target, data, start, seconds * 1_000_000_000)

    def _copy_summary(self, source_id: int, uid: int, target_id: int, new: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO summaries (mailbox_id, uid, envelope, "
            "bodystructure, body, headers, emailid, threadid) "
            "SELECT ?, ?, envelope, bodystructure, body, headers, emailid, "
            "threadid FROM summaries WHERE mailbox_id=? AND uid=?",
            (target_id, new, source_id, uid),
        )


def _apply(
    current: frozenset[str], mode: StoreMode, given: frozenset[str]
) -> frozenset[str]:
    """The flags after a STORE in ``mode`` (RFC 3501 section 6.4.6)."""
    if mode is StoreMode.REPLACE:
        return given
    if mode is StoreMode.ADD:
        return current | given
    return current - given
