"""The jobs that change a folder: APPEND, STORE, EXPUNGE, COPY and MOVE.

Each takes nmh's lock when locking is on, brings the folder up to date
first (:mod:`asimap.store.mh.reconcile`), changes files and rows in one
transaction and writes the sequences back.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from asimap.store.base import (
    MessageState,
    OverQuota,
    StoreError,
    StoreMode,
    StoreResult,
    apply_store_mode,
    check_quota,
)
from asimap.store.mh import files, pending, quota, repair, seqfile
from asimap.store.mh.corebase import (
    KeywordRefused,
    from_datetime,
)
from asimap.store.mh.db import decode_flags, encode_flags, transaction
from asimap.store.mh.files import FileIdentity
from asimap.store.mh.reconcile import Reconciler
from asimap.store.mh.unreadable import unreadable


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """One STORE's arguments (:meth:`Writer.store_many`)."""

    uids: Sequence[int]
    mode: StoreMode
    flags: Iterable[str]
    unchanged_since: int | None


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One APPEND's arguments (:meth:`Writer.append_many`)."""

    data: bytes
    flags: Iterable[str]
    internaldate: datetime | None


class Writer(Reconciler):
    """The folder-changing jobs (worker thread only)."""

    def append(
        self,
        mailbox_id: int,
        data: bytes,
        flags: Iterable[str],
        internaldate: datetime | None,
    ) -> int:
        """APPEND: write durably, claim a number, then record (module doc)."""
        (outcome,) = self.append_many(
            mailbox_id, [AppendRequest(data, flags, internaldate)]
        )
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def append_many(
        self,
        mailbox_id: int,
        requests: Sequence[AppendRequest],
        *,
        whole: bool = False,
    ) -> list[int | StoreError]:
        """Several APPENDs to one folder, in order, as one durable write
        (group commit, :mod:`asimap.store.mh.grouping`; a MULTIAPPEND,
        :meth:`append_all`).

        Every check comes first: a request over quota (RFC 9208) or with a
        keyword an MH sequence cannot hold is refused alone -- or, with
        ``whole``, refuses them all -- before any file is written.  Then
        the message files are written and fsynced together
        (:func:`files.write_temps`) and each claims its number as a lone
        APPEND's does; the rows are committed in one transaction,
        ``.mh_sequences`` is rewritten once and the directory is fsynced
        once, for the links and the sequence file together.  Any failure
        removes every file of the write and is raised, so nobody is
        answered OK for a message that is not durable (design rule 1).

        With ``whole`` the files are recorded as pending before they are
        linked (one COMMIT for all, :mod:`asimap.store.mh.pending`), so
        that a crash before the rows' COMMIT leaves none of them either:
        the next open removes them instead of importing half a MULTIAPPEND.
        """
        folder = self.folder_of(mailbox_id)
        with seqfile.locked(folder, self.locking):
            self._ensure_current(mailbox_id, folder)
            # Outside any transaction (pending records commit on their own):
            # a new keyword's spelling may outlive a refused MULTIAPPEND,
            # which is harmless.
            outcomes, accepted = self._accept(mailbox_id, requests, whole)
            if not accepted:
                return [o for o in outcomes if o is not None]
            made: list[int] = []
            batch: contextlib.AbstractContextManager[pending.Creating | None]
            if whole:
                batch = pending.creating(self.conn, mailbox_id, folder, self.creating)
            else:
                batch = contextlib.nullcontext()
            try:
                with batch as creating:
                    linked = self._link_new(
                        mailbox_id, folder, accepted, made, creating
                    )
                    with transaction(self.conn):
                        for (index, request, stored), (num, stat) in zip(
                            accepted, linked, strict=True
                        ):
                            outcomes[index] = self._record_new(
                                mailbox_id, folder, request, stored, num, stat
                            )
                        written = self._written.get(folder)
                        self._write_sequences(mailbox_id, folder)
                        if self.locking or self._written.get(folder) == written:
                            # Unless the sequence file was just replaced by
                            # a rename, which fsyncs the folder (and so our
                            # links with it), the links are made durable here.
                            files.fsync_dir(folder)
                        with self.our_sequences.rows_untouched(mailbox_id):
                            self._record_stamps(mailbox_id, folder)
                        if creating is not None:
                            with self.our_sequences.rows_untouched(mailbox_id):
                                creating.settle()
            except BaseException:
                self.our_sequences.drop(mailbox_id)  # rolled back
                # Not recorded (the COMMIT itself may fail: a full disk),
                # so not acknowledged: the files go, or a rescan would
                # give them UIDs the clients never heard of.
                for num in made:
                    self.fresh.forget(mailbox_id, num)
                    files.unlink_in(folder, str(num))
                raise
        return [o for o in outcomes if o is not None]

    def append_all(
        self, mailbox_id: int, requests: Sequence[AppendRequest]
    ) -> list[int]:
        """MULTIAPPEND: every message stored, or none (RFC 3502 section
        6.3.11); their UIDs in order."""
        uids: list[int] = []
        for outcome in self.append_many(mailbox_id, requests, whole=True):
            if isinstance(outcome, BaseException):  # pragma: no cover - whole
                raise outcome
            uids.append(outcome)
        return uids

    def _accept(
        self, mailbox_id: int, requests: Sequence[AppendRequest], whole: bool
    ) -> tuple[
        list[int | StoreError | None],
        list[tuple[int, AppendRequest, frozenset[str]]],
    ]:
        """The checks of :meth:`append_many`, before anything is written:
        the outcome of each request so far (its refusal, or None), and the
        accepted ones with their index and stored flags.  Quota counts the
        accepted ones before it, as if they were stored already."""
        outcomes: list[int | StoreError | None] = []
        accepted: list[tuple[int, AppendRequest, frozenset[str]]] = []
        usage = quota.usage(self.conn) if self.quota_limits.limited else None
        count = octets = 0
        for index, request in enumerate(requests):
            try:
                if usage is not None:
                    check_quota(
                        self.quota_limits, usage, count + 1, octets + len(request.data)
                    )
                stored = self.normalise(mailbox_id, request.flags)
            except (OverQuota, KeywordRefused) as exc:
                if whole:
                    raise
                outcomes.append(exc)
                continue
            count += 1
            octets += len(request.data)
            outcomes.append(None)
            accepted.append((index, request, stored))
        return outcomes, accepted

    def _link_new(
        self,
        mailbox_id: int,
        folder: Path,
        accepted: Sequence[tuple[int, AppendRequest, frozenset[str]]],
        made: list[int],
        creating: pending.Creating | None = None,
    ) -> list[tuple[int, os.stat_result]]:
        """Write the accepted messages durably and link each as the next
        free number (also noted in ``made`` as it is linked, for the
        caller's clean-up); each number with the stat of the file we
        wrote, taken before the link (see :func:`files.store_new`).  The
        directory sync is the caller's.  With ``creating`` every file is
        recorded as pending before its link."""
        dates = [from_datetime(request.internaldate) for _, request, _ in accepted]
        temps = files.write_temps(
            folder,
            [
                (request.data, seconds * 1_000_000_000)
                for (_, request, _), (seconds, _) in zip(accepted, dates, strict=True)
            ],
            self.message_mode,
        )
        linked: list[tuple[int, os.stat_result]] = []
        try:
            start = self._max_num(mailbox_id) + 1
            # The pending records are no ``messages`` rows: the sequences
            # kept for the next APPEND stay exact (seqcache).
            with self.our_sequences.rows_untouched(mailbox_id):
                if creating is not None:
                    # Every file recorded before the first link: one COMMIT
                    # (another only for a number someone took meanwhile).
                    creating.expect(
                        (start + i, stat.st_ino) for i, (_, stat) in enumerate(temps)
                    )
                for temp, stat in temps:
                    if creating is None:
                        num = files.claim_number(folder, temp, start)
                    else:
                        num = files.claim_number(folder, temp, start, creating.claim)
                        creating.made(num, stat)
                    made.append(num)
                    self._note_created(folder, num, stat)
                    linked.append((num, stat))
                    start = num + 1
        finally:
            for temp, _ in temps:
                files.unlink_in(folder, temp.name)
        return linked

    def _record_new(
        self,
        mailbox_id: int,
        folder: Path,
        request: AppendRequest,
        stored: frozenset[str],
        num: int,
        stat: os.stat_result,
    ) -> int:
        """The row of one APPENDed message, linked as ``num`` (inside the
        caller's transaction); its UID."""
        seconds, tz_minutes = from_datetime(request.internaldate)
        before = self.our_sequences.token()
        uid = self._imported_already(mailbox_id, num, stat)
        if uid is None:
            uid = self._insert(
                mailbox_id,
                num,
                stat,
                stored,
                (seconds, tz_minutes),
                self._bump(mailbox_id),
            )
        else:
            self.conn.execute(
                "UPDATE messages SET flags=?, modseq=?, internaldate=?, "
                "tz_minutes=?, recent=1 WHERE mailbox_id=? AND uid=?",
                (
                    encode_flags(stored),
                    self._bump(mailbox_id),
                    seconds,
                    tz_minutes,
                    mailbox_id,
                    uid,
                ),
            )
        self.our_sequences.added(mailbox_id, before, num, stored, True)
        # nmh inc may still overwrite this number in place.
        identity = FileIdentity.of(stat)
        self.fresh.remember(
            mailbox_id,
            num,
            uid,
            request.data,
            seconds * 1_000_000_000,
            identity,
            repair.hold(folder / str(num), identity),
            folder,
        )
        return uid

    def _imported_already(
        self, mailbox_id: int, num: int, stat: os.stat_result
    ) -> int | None:
        """The UID of a row that already names the file we linked as
        ``num``: another store on this root (a delivery agent's process,
        or the worker next to one) rescanned between our link and this
        transaction and imported it.  The APPEND takes that row as its
        own (its UID is what the other store's clients saw) instead of
        adding a second: the next rescan would keep the higher UID and
        expunge the other from under its clients.  One look at the
        ``messages_by_num`` index."""
        row = self.conn.execute(
            "SELECT uid FROM messages WHERE mailbox_id=? AND num=? AND ino=? "
            "AND size=? AND mtime_ns=?",
            (mailbox_id, num, stat.st_ino, stat.st_size, stat.st_mtime_ns),
        ).fetchone()
        return None if row is None else int(row[0])

    def store(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        mode: StoreMode,
        flags: Iterable[str],
        unchanged_since: int | None,
    ) -> StoreResult:
        (outcome,) = self.store_many(
            mailbox_id, [StoreRequest(uids, mode, flags, unchanged_since)]
        )
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def store_many(
        self, mailbox_id: int, requests: Sequence[StoreRequest]
    ) -> list[StoreResult | StoreError]:
        """Several STOREs on one folder, in order, as one durable write
        (group commit, :mod:`asimap.store.mh.grouping`).

        Each request sees the rows as the ones before it left them, and
        gets its own MODSEQ, exactly as if they had run one after another;
        but the rows of all of them are committed in one transaction and
        ``.mh_sequences`` is rewritten (temp file, fsync, rename) once.  A
        request whose keyword an MH sequence cannot hold is refused alone
        (it is refused before it changes anything); any other failure --
        the sequence write on a full disk, a refused COMMIT -- rolls every
        request back and is raised, so no caller is answered OK for a
        change that is not durable (design rule 1).
        """
        folder = self.folder_of(mailbox_id)
        outcomes: list[StoreResult | StoreError] = []
        with seqfile.locked(folder, self.locking):
            self._ensure_current(mailbox_id, folder)
            with transaction(self.conn):
                changed = False
                for request in requests:
                    try:
                        given = self.normalise(mailbox_id, request.flags)
                    except KeywordRefused as exc:
                        outcomes.append(exc)
                        continue
                    result = self._store_rows(mailbox_id, request, given)
                    changed = changed or bool(result.updated)
                    outcomes.append(result)
                if changed:
                    self._write_sequences(mailbox_id, folder)
                    self._record_stamps(mailbox_id, folder)
        return outcomes

    def _store_rows(
        self, mailbox_id: int, request: StoreRequest, given: frozenset[str]
    ) -> StoreResult:
        """One STORE's row changes (inside the caller's transaction)."""
        wanted = sorted(set(request.uids))
        current = self._flags_and_modseq(mailbox_id, wanted)
        to_change: dict[int, frozenset[str]] = {}
        conflicts: list[int] = []
        for uid in wanted:
            if uid not in current:
                continue
            old, modseq = current[uid]
            since = request.unchanged_since
            if since is not None and modseq > since:
                conflicts.append(uid)  # RFC 7162 section 3.1.3
                continue
            new = apply_store_mode(old, request.mode, given)
            if new != old:
                to_change[uid] = new
        updated: list[MessageState] = []
        if to_change:
            modseq = self._bump(mailbox_id)
            self.conn.executemany(
                "UPDATE messages SET flags=?, modseq=? WHERE mailbox_id=? AND uid=?",
                [
                    (encode_flags(new), modseq, mailbox_id, uid)
                    for uid, new in to_change.items()
                ],
            )
            updated = [MessageState(uid, new, modseq) for uid, new in to_change.items()]
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
        (gone,) = self.expunge_many(mailbox_id, [uids])
        return gone

    def expunge_many(
        self, mailbox_id: int, requests: Sequence[Sequence[int] | None]
    ) -> list[tuple[int, ...]]:
        """Several EXPUNGEs (``None``: every ``\\Deleted`` message; else
        UID EXPUNGE of those UIDs, RFC 4315 section 2.1) on one folder as
        one removal: one pass of unlinks and its directory fsync, one
        transaction, one sequence rewrite (group commit,
        :mod:`asimap.store.mh.grouping`).  Each gets the UIDs it removed,
        as if they had run one after another: a UID two of them name goes
        to the first."""
        folder = self.folder_of(mailbox_id)
        with seqfile.locked(folder, self.locking):
            self._ensure_current(mailbox_id, folder)
            deleted = [
                uid for uid, flags, _ in self._all(mailbox_id) if "\\Deleted" in flags
            ]
            taken: set[int] = set()
            chosen: list[list[int]] = []
            for uids in requests:
                among = None if uids is None else set(uids)
                mine = [
                    uid
                    for uid in deleted
                    if uid not in taken and (among is None or uid in among)
                ]
                taken.update(mine)
                chosen.append(mine)
            gone = set(self._remove(mailbox_id, folder, taken))
        return [tuple(uid for uid in mine if uid in gone) for mine in chosen]

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
            # Never unlink a file a tool put under this number meanwhile;
            # and it must not inherit the flags of the message it replaced.
            if FileIdentity.of(stat) == identity:
                numbers.append(num)
            else:
                self._not_ours.setdefault(folder, set()).add(num)
        files.remove_messages(folder, numbers)
        for num in numbers:
            # Its descriptor would keep the inode, and its room on the disk,
            # alive: an EXPUNGE on a full disk must free space at once.
            self.fresh.forget(mailbox_id, num)
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
            self._ensure_current(source_id, source)
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
            self._ensure_current(target_id, target)
            # All or nothing, across a crash too (RFC 3501 section 6.4.7):
            # each file is recorded before its link, the links are made
            # outside the transaction, and the rows commit with the end of
            # the record (pending.py).  Any failure -- an unreadable
            # message, a full disk, the COMMIT refused -- removes the files.
            start = self._max_num(target_id) + 1
            with pending.creating(self.conn, target_id, target, self.creating) as batch:
                # Hard links of the sources, as expected: one COMMIT.
                batch.expect((start + i, row[6]) for i, row in enumerate(rows))
                placed: list[tuple[int, str, int, int, int, os.stat_result]] = []
                for uid, num, flags, seconds, tz_minutes, size, ino, mtime in rows:
                    where = self._place(
                        source_id,
                        source,
                        uid,
                        (num, FileIdentity(ino, size, mtime)),
                        target,
                        start,
                        seconds,
                        batch,
                    )
                    if where is None:
                        continue  # removed by a tool: nothing to copy
                    new_num, stat = where
                    self._note_created(target, new_num, stat)
                    start = new_num + 1
                    placed.append((uid, flags, seconds, tz_minutes, new_num, stat))
                with transaction(self.conn):
                    modseq = self._bump(target_id)
                    for uid, flags, seconds, tz_minutes, new_num, stat in placed:
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
                    batch.settle()
        if move and pairs:
            with seqfile.locked(source, self.locking):
                self._remove(source_id, source, [s for s, _ in pairs])
        return tuple(pairs)

    def _place(
        self,
        source_id: int,
        source: Path,
        uid: int,
        where: tuple[int, FileIdentity],
        target: Path,
        start: int,
        seconds: int,
        batch: pending.Creating,
    ) -> tuple[int, os.stat_result] | None:
        """Copy message ``uid`` (file number and identity ``where`` in
        ``source``) into ``target`` as the first free number >= ``start``;
        its number and stat, or None when a tool removed it.  A file under
        that number that is no longer this message makes us look again (a
        tool renumbered it, or inc overwrote it and the rescan puts ours
        back)."""
        try:
            return self._copy_file(source, where, target, start, seconds, uid, batch)
        except FileNotFoundError:
            pass
        with seqfile.locked(source, self.locking):
            self._rescan(source_id, source, waited=True)
        row = self.conn.execute(
            "SELECT num, ino, size, mtime_ns FROM messages "
            "WHERE mailbox_id=? AND uid=?",
            (source_id, uid),
        ).fetchone()
        if row is None:
            return None
        where = (row[0], FileIdentity(row[1], row[2], row[3]))
        try:
            return self._copy_file(source, where, target, start, seconds, uid, batch)
        except FileNotFoundError:
            return None

    def _copy_file(
        self,
        source: Path,
        where: tuple[int, FileIdentity],
        target: Path,
        start: int,
        seconds: int,
        uid: int,
        batch: pending.Creating,
    ) -> tuple[int, os.stat_result]:
        """Copy message file ``where`` (number, identity) of ``source``
        into ``target``; FileNotFoundError when the file under that number
        is not the message we know.  A source file we may not read raises
        :class:`MessageUnreadable` (the batch removes what was made)."""
        num, known = where
        path = source / str(num)
        try:
            new_num, stat = self._copy_one(path, known, target, start, seconds, batch)
        except FileNotFoundError:
            raise  # the caller looks again
        except PermissionError as exc:
            if not os.access(path, os.R_OK, effective_ids=True):
                raise unreadable(uid, path, exc) from None
            raise
        batch.made(new_num, stat)
        return new_num, stat

    def _copy_one(
        self,
        path: Path,
        known: FileIdentity,
        target: Path,
        start: int,
        seconds: int,
        batch: pending.Creating,
    ) -> tuple[int, os.stat_result]:
        if path.parent != target:
            return files.link_or_copy(
                path, target, start, known, self.message_mode, claim=batch.claim
            )
        with files.folder_fd(target) as fd:
            data = files.read_message(fd, path.name, known)
        return files.store_new(
            target,
            data,
            start,
            seconds * 1_000_000_000,
            self.message_mode,
            claim=batch.claim,
        )

    def _copy_summary(self, source_id: int, uid: int, target_id: int, new: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO summaries (mailbox_id, uid, envelope, "
            "bodystructure, body, headers, emailid, threadid) "
            "SELECT ?, ?, envelope, bodystructure, body, headers, emailid, "
            "threadid FROM summaries WHERE mailbox_id=? AND uid=?",
            (target_id, new, source_id, uid),
        )
