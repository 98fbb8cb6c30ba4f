"""Reconciling a folder with MH tools: rescans and ``.mh_sequences`` sync.

See :mod:`asimap.store.mh.core` for the rules (stamps, matching files to
rows, flags from sequences) and :mod:`asimap.store.mh.seqfile` for how
the sequence file is read and written next to running nmh tools.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from stat import S_ISREG

from asimap.store.mh import files, freshness, repair, seqfile, sequences
from asimap.store.mh import pending as pending_files
from asimap.store.mh.corebase import (
    _INSERT_MESSAGE,
    CREATED_LIMIT,
    NMH_WAIT_LIMIT_S,
    QUIET_LIMIT_S,
    WRITE_RETRIES,
    YOUNG_NS,
    CoreBase,
    _is_quiet,
    _Row,
    _stamp,
)
from asimap.store.mh.db import encode_flags, transaction
from asimap.store.mh.files import FileIdentity

log = logging.getLogger(__name__)

#: Most extra listings of a folder one rescan makes when its listing
#: missed a file a tool was renaming (:meth:`Reconciler._missed_by_listing`).
RELIST_LIMIT = 5


def _replaced_since(folder: Path, num: int, listed: os.stat_result) -> bool:
    """True when message file ``num`` is no longer the file the folder
    listing found (another identity, or gone).

    A rescan lists the folder before it reads ``.mh_sequences``; a tool
    that works in between changes both: ``inc`` overwrites the number of
    an APPEND of ours and then clears every sequence of it (nmh
    ``clear_msg_flags``).  Read against the listing, that clearing was
    the client's acknowledged flags removed (issue 10 point 12, the
    unlocked mode's loss of a ``\\Flagged``).  Only rows whose flags would
    change are checked: a ``stat`` each.
    """
    try:
        now = os.stat(folder / str(num), follow_symlinks=False)
    except FileNotFoundError:
        return True
    return FileIdentity.of(now) != FileIdentity.of(listed)


def _flags_of(
    found: sequences.FileFlags | None, spelling: dict[str, str]
) -> frozenset[str]:
    """The IMAP flags of what the file says of a message: keywords in the
    mailbox's spelling (the first one seen wins), ``\\Seen`` as nmh
    decides it (:func:`sequences.settle_seen`)."""
    result: set[str] = set()
    for flag in found.flags if found else ():
        if not flag.startswith("\\"):
            flag = spelling.setdefault(flag.casefold(), flag)
        result.add(flag)
    if sequences.settle_seen(found):
        result.add("\\Seen")
    return frozenset(result)


def _imported_meanwhile(
    conn: sqlite3.Connection,
    mailbox_id: int,
    new: dict[int, os.stat_result],
    rows: Sequence[_Row],
) -> list[int]:
    """The numbers of ``new`` (files none of ``rows`` named) that a row
    added since ``rows`` were read names now, for that very file: another
    store on this root (a delivery agent's process) imported them
    meanwhile.  Called inside the rescan's write transaction, where
    nobody else can add a row; importing them again would give one file
    a second UID, and the next rescan would keep the higher and expunge
    the other from under the clients that saw it.  Rows added later have
    higher UIDs (UIDs only grow): one look at the primary key, which
    nearly always finds nothing."""
    if not new:
        return []
    seen = rows[-1].uid if rows else 0  # rows come in UID order
    return [
        num
        for num, ino, size, mtime in conn.execute(
            "SELECT num, ino, size, mtime_ns FROM messages "
            "WHERE mailbox_id=? AND uid>?",
            (mailbox_id, seen),
        )
        if num in new and FileIdentity(ino, size, mtime) == FileIdentity.of(new[num])
    ]


def _below_sortm_temporary(
    row: _Row, matched: dict[int, tuple[_Row, int, os.stat_result]]
) -> bool:
    """True when ``row``'s number can have been sortm's temporary one:
    sortm (and folder -pack) move the files it listed among numbers below
    that one, or onto it, so every message older than ``row`` is now at
    its number or below.  An older one above it means the file was taken
    away otherwise (``rmm -unlink`` of it while ``folder -pack`` or another
    tool renamed others): not put back."""
    return all(
        num <= row.num for other, num, _ in matched.values() if other.uid < row.uid
    )


class Reconciler(CoreBase):
    """Rescans a folder into the database and writes the database back to
    ``.mh_sequences``, merging what tools changed meanwhile."""

    # -- reconciling -------------------------------------------------------

    def refresh(self, mailbox_id: int) -> int:
        """Rescan the folder if it changed; return HIGHESTMODSEQ (what a
        waiter compares against)."""
        folder = self.folder_of(mailbox_id)
        self._ensure_current(mailbox_id, folder)
        return self.highest(mailbox_id)

    def _ensure_current(self, mailbox_id: int, folder: Path) -> None:
        """Bring the database in line with the folder when it may differ.

        With a trusted watcher (:mod:`~asimap.store.mh.freshness`) a folder
        with no event since it was last current costs nothing here, and one
        whose events all match the database costs a ``stat`` per event.
        Otherwise: the stamp check, and a rescan when it fails.
        """
        fresh = self.freshness
        rescan = False
        if fresh.trusted:
            fresh.update()
            names = fresh.pending(folder)
            if names is not None:
                if not names or self._names_match(mailbox_id, folder, names):
                    fresh.mark_current(folder, mailbox_id)
                    return
                fresh.forget(folder)
                rescan = True  # the events name a change the stamps may miss
        rescan = rescan or fresh.is_stale(folder)
        with seqfile.locked(folder, self.locking):
            if rescan or not self._unchanged(mailbox_id, folder):
                fresh.rescanned(folder)
                self._rescan(mailbox_id, folder)
        if mailbox_id not in self._foreign:
            fresh.mark_current(folder, mailbox_id)

    def _names_match(
        self, mailbox_id: int, folder: Path, names: dict[str, int]
    ) -> bool:
        return mailbox_id not in self._foreign and freshness.names_match(
            self.conn,
            mailbox_id,
            folder,
            names,
            self._synced.get(folder),
            self._written.get(folder),
        )

    def end_job(self) -> dict[int, int]:
        """What the worker calls after every job: :meth:`settle`, then the
        mailboxes the job changed (:meth:`take_touched`)."""
        try:
            self.settle()
        except Exception:
            log.exception("checking watcher events failed; rechecking folders")
            self.freshness.forget_all()
        return self.take_touched()

    def settle(self) -> None:
        """At the end of every job: check the events on current folders
        (our own writes' among them) while they are few, so that the next
        command on the folder finds nothing to check."""
        fresh = self.freshness
        if not fresh.trusted:
            return
        fresh.update()
        for folder, mailbox_id, names in fresh.to_check():
            if self._names_match(mailbox_id, folder, names):
                fresh.mark_current(folder, mailbox_id)
            else:
                fresh.forget(folder)

    def _unchanged(self, mailbox_id: int, folder: Path) -> bool:
        row = self.conn.execute(
            "SELECT dir_mtime_ns, seq_stamp FROM mailboxes WHERE id=?", (mailbox_id,)
        ).fetchone()
        if row is None or row[0] == -1 or row[1] in ("", "racy"):
            return False
        if not self.locking and self.orphans.pending(folder):
            return False  # a tool wrote into a file we had replaced
        if self.fresh.suspect(mailbox_id):
            return False  # inc rewrote an APPEND of ours in place: repair it
        stat = os.stat(folder)
        seq = _stamp(folder / seqfile.SEQUENCES_FILE)
        return bool(stat.st_mtime_ns == row[0] and seq == row[1])

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

    def _rescan(
        self, mailbox_id: int, folder: Path, waited: bool = False, relists: int = 0
    ) -> None:
        """Bring the database in line with the folder (see module doc)."""
        on_disk = files.message_numbers(folder)
        # Files a COPY or MULTIAPPEND is linking now (in this process or
        # another) are not mail until its COMMIT; those a crash left are
        # removed at the next open (pending.py).  A single APPEND's file
        # that another store rescans meanwhile: see _imported_meanwhile.
        for num, ino in pending_files.hidden(self.conn, mailbox_id).items():
            stat = on_disk.get(num)
            if stat is not None and stat.st_ino == ino:
                del on_disk[num]
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
        if relists < RELIST_LIMIT and self._missed_by_listing(folder, rows, matched):
            # A file renamed while we listed (sortm, folder -pack) was
            # missed: removing its row, then importing it again under a
            # new UID, would break RFC 3501 section 2.3.1.1.  List again,
            # before anything is repaired or written.
            self._wait_quiet(folder)
            self._rescan(mailbox_id, folder, waited=True, relists=relists + 1)
            return
        repaired = self._repair_overwritten(
            mailbox_id, folder, rows, matched, on_disk, renumbered
        )
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
        file_flags = sequences.flags_by_number(parsed, self.unseen).of_numbers(on_disk)
        spelling = self._spelling(mailbox_id)
        worked_out: dict[sequences.FileFlags | None, frozenset[str]] = {}

        def flags_for(num: int) -> frozenset[str]:
            # Numbers alike share one FileFlags (of_numbers): each distinct
            # one is worked out once per scan.
            found = file_flags.get(num)
            result = worked_out.get(found)
            if result is None:
                result = worked_out[found] = _flags_of(found, spelling)
            return result

        def newcomer_flags(num: int) -> frozenset[str]:
            """Flags of a new file.  One that replaced a message we knew
            under the same number (nmh ``inc`` opens ``O_CREAT|O_TRUNC``
            without ``O_EXCL``, so it can overwrite a number we had just
            claimed) does not inherit that message's sequences: only what
            differs from them is the tool's doing."""
            flags = flags_for(num)
            old = by_num.get(num)
            if old is None or old.uid in matched:
                return flags
            return frozenset(f for f in flags if f == "\\Seen" or f not in old.flags)

        with transaction(self.conn):
            for num in _imported_meanwhile(self.conn, mailbox_id, pending, rows):
                del pending[num]
            modseq: int | None = None

            def bump() -> int:
                nonlocal modseq
                if modseq is None:
                    modseq = self._bump(mailbox_id)
                return modseq

            for row, num, stat in matched.values():
                flags = flags_for(num)
                if flags != row.flags and _replaced_since(folder, num, stat):
                    # The file under this number changed since our listing
                    # (inc wrote over our APPEND, rmm removed it): what
                    # the sequences now say of the number is about that
                    # file, not this row's message.  Keep the row's flags
                    # and look again at once (the import after the write
                    # below), which puts back an overwritten APPEND.
                    flags = row.flags
                    self._foreign.add(mailbox_id)
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
                if not initial:
                    self._note_unlisted(folder, numbers, file_flags)
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
            if initial:
                # The first scan imports the file as it is and adds nothing
                # of ours to it: a first login leaves .mh_sequences byte
                # for byte as nmh left it (issue 10 point 11: no Seen
                # sequence written for every message nmh users read).
                self._synced[folder] = text
            else:
                self._write_sequences(mailbox_id, folder, text)
            self._record_stamps(mailbox_id, folder)

    def _missed_by_listing(
        self,
        folder: Path,
        rows: Sequence[_Row],
        matched: dict[int, tuple[_Row, int, os.stat_result]],
    ) -> bool:
        """True when a file of a row our listing did not find is in the
        folder after all.  A directory read while a tool renames files can
        miss one (its entry moved behind the read's position, or renamed
        between the read and its stat).  Costs a second listing only when
        rows seem gone."""
        if len(matched) == len(rows):
            return False
        missing = {r.identity for r in rows if r.uid not in matched}
        # A file two rows share (hard links) is no missed one.
        missing -= {row.identity for row, _, _ in matched.values()}
        again = files.message_numbers(folder)
        return any(FileIdentity.of(stat) in missing for stat in again.values())

    def _repair_overwritten(
        self,
        mailbox_id: int,
        folder: Path,
        rows: Sequence[_Row],
        matched: dict[int, tuple[_Row, int, os.stat_result]],
        on_disk: dict[int, os.stat_result],
        renumbered: bool = False,
    ) -> dict[int, tuple[int, os.stat_result]]:
        """Store again, under fresh numbers, our recent APPENDs whose file
        nmh ``inc`` overwrote in place, or ``sortm`` renamed another file
        over while ``renumbered`` (:mod:`asimap.store.mh.repair`);
        UID -> (new number, stat).  The overwriting file stays where it is
        and becomes a new message."""
        repaired: dict[int, tuple[int, os.stat_result]] = {}
        present = (
            {FileIdentity.of(stat) for stat in on_disk.values()}
            if renumbered
            else set()
        )
        start = max(max(on_disk, default=0), self._max_num(mailbox_id)) + 1
        for row in rows:
            if row.uid in matched:
                continue
            fresh = self.fresh.overwritten(
                mailbox_id,
                row.num,
                row.uid,
                on_disk.get(row.num),
                renumbered
                and row.identity not in present
                and _below_sortm_temporary(row, matched),
            )
            if fresh is None:
                continue
            num, stat = files.store_new(
                folder, fresh.data, start, fresh.mtime_ns, self.message_mode
            )
            self._note_created(folder, num, stat)
            start = num + 1
            self.fresh.forget(mailbox_id, row.num)
            identity = FileIdentity.of(stat)
            self.fresh.remember(
                mailbox_id,
                num,
                row.uid,
                fresh.data,
                fresh.mtime_ns,
                identity,
                repair.hold(folder / str(num), identity),
            )
            repaired[row.uid] = (num, stat)
        # Entries of rows that are gone now (expunged) have nothing left
        # to put back.
        self.fresh.forget_missing(mailbox_id, {*matched, *repaired})
        return repaired

    def _keep_orphan(self, folder: Path, snapshot: seqfile.Snapshot) -> None:
        """Watch the inode we just replaced (:class:`seqfile.OrphanWatch`),
        and have the watcher report a tool's write into it: it has no name
        in the folder, so no directory event would tell.  A write that came
        before the watch shows as changed text."""
        fd, before = snapshot.fd, snapshot.text
        self.orphans.add(folder, snapshot)
        if not self.freshness.watch_inode(folder, fd):
            self.freshness.forget(folder)
            return
        if freshness.read_fd(fd) != before:
            self.freshness.forget(folder)

    def _restore_unknown(
        self,
        folder: Path,
        base: sequences.SequenceFile,
        theirs: sequences.SequenceFile,
    ) -> sequences.SequenceFile:
        """``theirs`` (a tool's rewrite of ``base``) without the drops of
        messages the tool never saw (:func:`sequences.restore_unseen_by_tool`).

        Only messages *we* created shortly before (APPEND, COPY, a
        put-back: :meth:`_young_created`) can be such drops: a tool's
        scan-to-write takes milliseconds (seconds when it waits for our
        lock), and the rescan that meets its write follows it closely,
        because every job of ours checks the folder first.  A message an
        nmh tool created (``inc``) is never restored: its number leaving
        every sequence is nmh's own doing -- ``mark -sequence unseen
        -delete`` of the newest inc'ed message looked exactly like a drop
        and was undone (issue 10 point 12).
        """
        young = self._young_created(folder)
        if young:
            theirs = sequences.restore_unseen_by_tool(base, theirs, young)
        unlisted = self._unlisted_newcomers(folder)
        if unlisted:
            theirs = sequences.restore_cleared_by_inc(
                base, theirs, unlisted, self.unseen
            )
        return theirs

    def _note_unlisted(
        self,
        folder: Path,
        numbers: Sequence[int],
        found: Mapping[int, sequences.FileFlags],
    ) -> None:
        """Remember the new files a tool made that we import while they
        are in no unseen sequence: ``inc`` may not have listed them yet
        (:func:`sequences.restore_cleared_by_inc`)."""
        now = time.monotonic_ns()
        kept = self._unlisted.setdefault(folder, {})
        for num in numbers:
            flags = found.get(num)
            if flags is None or not flags.in_unseen:
                kept[num] = now
        for num in [n for n, when in kept.items() if when < now - YOUNG_NS]:
            del kept[num]
        while len(kept) > CREATED_LIMIT:
            del kept[next(iter(kept))]

    def _unlisted_newcomers(self, folder: Path) -> set[int]:
        kept = self._unlisted.get(folder)
        if not kept:
            return set()
        since = time.monotonic_ns() - YOUNG_NS
        return {num for num, when in kept.items() if when >= since}

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
                self.unseen,
            )
        merged = sequences.SequenceFile(
            sequences={**current, **{n: parsed.sequences[n] for n in kept}},
            raw_lines=dict(kept),
        )
        return merged

    # -- writing sequences ---------------------------------------------------

    def _our_sequences(self, mailbox_id: int) -> dict[str, set[int]]:
        """The sequences the database wants (:func:`sequences.build_sequences`).

        From the numbers grouped by flag set (a folder has a handful of
        distinct (flags, recent) pairs), kept between APPENDs
        (:mod:`~asimap.store.mh.seqcache`): set unions, not a Python pass
        with a flag decode per message.
        """
        groups = self.our_sequences.groups(mailbox_id)
        return sequences.build_grouped(groups, self.unseen)

    def _replace(
        self,
        folder: Path,
        snapshot: seqfile.Snapshot | None,
        wanted: str,
        attempt: int,
    ) -> bool:
        """Without locking: replace the file ``snapshot`` read by ``wanted``
        under nmh's lock (:func:`seqfile.swap_locked`); False when a tool
        changed the file or holds its lock (merge again).  The last
        attempt writes anyway: our change must reach the file, and the
        orphan watch keeps the tool's."""
        last = attempt == WRITE_RETRIES - 1
        if snapshot is None or not wanted:
            if not last and _stamp(folder / seqfile.SEQUENCES_FILE) != (
                "missing" if snapshot is None else snapshot.stamp
            ):
                return False
            seqfile.write_atomically(folder, wanted)
            if snapshot is not None:
                self._keep_orphan(folder, snapshot)
            return True
        temp = seqfile.write_temp(folder, wanted)
        read = seqfile.Snapshot(snapshot.text, -1, snapshot.stamp)
        # Closing any descriptor of a file drops this process's lock on
        # it: the read's own goes before the lock is taken.
        snapshot.close()
        # A tool holding the lock is between its read and its write:
        # merge again after it rather than wait here.
        outcome, fd = seqfile.swap_locked(folder, temp, read.stamp, limit_s=0.05)
        if outcome == seqfile.REPLACED:
            read.fd = fd
            self._keep_orphan(folder, read)
            files.fsync_dir(folder)  # the rename durable before any answer
            return True
        if not last:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            return False
        kept = seqfile.read_unlocked(folder, limit_s=0)
        files.replace_in(folder, temp.name, seqfile.SEQUENCES_FILE)
        if kept is not None:
            if kept.stamp.rpartition(":")[2] == read.stamp.rpartition(":")[2]:
                # The file we merged from (same inode): what a tool wrote
                # into it since our read -- before this rename or after --
                # is its change to fold in.  Watched from the text just
                # read instead, a change made between our read and now
                # was taken for the base, and lost.
                kept.text = read.text
            self._keep_orphan(folder, kept)
        files.fsync_dir(folder)
        return True

    def _merged_text(
        self,
        mailbox_id: int,
        folder: Path,
        base: str | None,
        current: str,
        ours: dict[str, set[int]],
    ) -> str:
        """The file to write: ``ours`` (the database), with every change a
        tool made since ``base`` merged in, and the memberships of numbers
        we have no row for yet kept; marks the mailbox for an import when
        the result holds something the database lacks."""
        current_parsed = sequences.parse(current)
        merged = ours
        if base is not None and current != base:
            base_parsed = sequences.parse(base)
            theirs = self._restore_unknown(folder, base_parsed, current_parsed)
            merged = sequences.merge_sequences(
                sequences.interpreted(base_parsed, self.unseen),
                sequences.interpreted(theirs, self.unseen),
                ours,
                self.unseen,
            )
            self._foreign.add(mailbox_id)
        rewritten = self.fresh.rewritten_numbers(mailbox_id)
        if rewritten:
            # inc wrote over APPENDs of ours since our last look: those
            # numbers are its messages now, and what the file says of them
            # (inc's unseen, nmh's "mark as read" right after) is theirs.
            # Written from our rows, nmh's change was undone (issue 10
            # point 12, unlocked mode).  The next rescan puts ours back.
            merged = sequences.keep_strangers(
                merged, sequences.interpreted(current_parsed, self.unseen), rewritten
            )
        # Every message of the database is in Seen or in unseen.
        known: set[int] = set().union(*ours.values())
        strangers = self._strangers(folder, current_parsed, known)
        if strangers:
            merged = sequences.keep_strangers(
                merged,
                sequences.interpreted(current_parsed, self.unseen),
                strangers,
            )
            self._foreign.add(mailbox_id)  # import them right away
            replaced = self._not_ours.get(folder, set()) & strangers
            if replaced:
                # A tool's file under the number of a message we expunged:
                # new mail, not heir to that message's flags.
                merged = {name: nums - replaced for name, nums in merged.items()}
                for name in self.unseen:
                    merged.setdefault(name, set()).update(replaced)
        return sequences.format_file(
            merged, sequences.preserved_lines(current_parsed, self.unseen)
        )

    @staticmethod
    def _strangers(
        folder: Path,
        parsed: sequences.SequenceFile,
        known: set[int],
    ) -> set[int]:
        """Numbers in the file's sequences that have a message file but no
        row (:func:`sequences.keep_strangers`)."""
        listed: set[int] = set().union(*parsed.sequences.values())
        if not listed:
            return set()
        listed -= known
        found: set[int] = set()
        for num in listed:
            try:
                mode = os.stat(folder / str(num), follow_symlinks=False).st_mode
            except OSError:
                continue
            if S_ISREG(mode):
                found.add(num)
        return found

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
        ours = self._our_sequences(mailbox_id)
        for attempt in range(WRITE_RETRIES):
            snapshot: seqfile.Snapshot | None = None
            if self.locking:
                current = seqfile.read_text(folder)
            else:
                self._wait_for_nmh(folder)
                snapshot = seqfile.read_unlocked(folder)
                current = "" if snapshot is None else snapshot.text
            try:
                wanted = self._merged_text(mailbox_id, folder, base, current, ours)
                if wanted != current:
                    if self.locking:
                        seqfile.write_locked(folder, wanted)
                    elif not self._replace(folder, snapshot, wanted, attempt):
                        continue  # a tool is writing or wrote: merge again
                    self._written[folder] = _stamp(path)
            finally:
                if snapshot is not None:
                    snapshot.close()
            self._synced[folder] = wanted
            self._not_ours.pop(folder, None)
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
