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
With the inotify watcher running, a folder is checked only when the
watcher reported an event in it, and rescanned only when a file the event
names is not what the database says (:mod:`.freshness`).  Without it (or
when it cannot vouch: queue overflow, polling fallback) a folder is
rescanned when its directory mtime or its ``.mh_sequences`` (mtime, size,
inode) differ from what the last scan recorded.  File timestamps are
coarse (a kernel tick), so a stamp taken less than
:data:`~asimap.store.mh.corebase.RACY_NS` after the file changed is not
trusted: the next check rescans (the "racy timestamp" rule git uses for
its index).  The code is split by concern: :mod:`.corebase` (state,
rows), :mod:`.reconcile` (rescans, sequence sync), :mod:`.writes` (jobs
that change a folder) and this module (reading jobs).

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

import os
from collections.abc import Sequence

from asimap.store.base import (
    Changes,
    MailboxStatus,
    MessageGone,
    MessageInfo,
    MessageState,
    MessageSummary,
)
from asimap.store.mh import objectids, seqfile, summarizing
from asimap.store.mh.corebase import (
    KeywordRefused,
    _savedate,
    from_datetime,
    to_datetime,
)
from asimap.store.mh.db import decode_flags, transaction
from asimap.store.mh.files import FileIdentity
from asimap.store.mh.summarizing import build_summaries
from asimap.store.mh.unreadable import unreadable
from asimap.store.mh.writes import Writer

__all__ = ["Core", "KeywordRefused", "from_datetime", "to_datetime"]


class Core(Writer):
    """Folder-level operations on one account (worker thread only): the
    reading jobs here, the rest inherited (:mod:`~asimap.store.mh.writes`,
    :mod:`~asimap.store.mh.reconcile`, :mod:`~asimap.store.mh.corebase`)."""

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
        # From now on the event loop mirrors this folder's changes, and
        # answers the next ones itself while it may (mirror.py).
        self.publisher.follow(mailbox_id)
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
        """Take \\Recent from every message that has it, for one session.

        Only the database changes: ``.mh_sequences`` keeps its ``Recent``
        line until the next write rewrites the file from the rows.  No tool
        reads that line back (a rescan takes \\Recent from the file only
        when it first imports a folder), and rewriting and syncing the file
        here cost every APPEND a second sequence-file write as soon as
        another session saw the message.  Losing a claim (a power failure
        before SQLite's log reached the disk) shows the message as recent
        again, which RFC 3501 section 2.3.2 prefers to losing \\Recent.
        """
        folder = self.folder_of(mailbox_id)
        self._ensure_current(mailbox_id, folder)
        claimed = self._recent(mailbox_id)
        if claimed:
            with transaction(self.conn):
                self.conn.execute(
                    "UPDATE messages SET recent=0 WHERE mailbox_id=? AND recent=1",
                    (mailbox_id,),
                )
        # No message is recent now: the mirror learns it (mirror.py).
        self.publisher.claimed(mailbox_id)
        return claimed

    def _recent(self, mailbox_id: int) -> frozenset[int]:
        return frozenset(
            uid
            for (uid,) in self.conn.execute(
                "SELECT uid FROM messages WHERE mailbox_id=? AND recent=1",
                (mailbox_id,),
            )
        )

    def peek_recent(self, mailbox_id: int) -> frozenset[int]:
        """The unclaimed recent UIDs, left unclaimed (EXAMINE)."""
        self.refresh(mailbox_id)
        return self._recent(mailbox_id)

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
            except OSError as exc:  # EACCES, EIO: not gone, not readable
                raise unreadable(uid, folder / str(row[0]), exc) from None
            if attempt == 0:
                # Renumbered or removed by a tool since the last scan.
                with seqfile.locked(folder, self.locking):
                    self._rescan(mailbox_id, folder)
        raise MessageGone(f"Message UID {uid} no longer exists")

    def _file_rows(self, mailbox_id: int, uids: Sequence[int]) -> list[tuple[int, ...]]:
        """What :func:`build_summaries` needs of each existing UID."""
        marks = ",".join("?" * len(uids))
        return self.conn.execute(
            "SELECT uid, num, ino, size, mtime_ns, internaldate, tz_minutes, "
            f"savedate FROM messages WHERE mailbox_id=? AND uid IN ({marks})",
            (mailbox_id, *uids),
        ).fetchall()

    def load(
        self, mailbox_id: int, uids: Sequence[int], content: bool, budget: int
    ) -> tuple[list[tuple[MessageInfo, bytes | None]], int]:
        """Facts (and raw bytes when ``content``) of a batch of messages
        (:func:`summarizing.load_batch`)."""
        return summarizing.load_batch(
            lambda batch: self._file_rows(mailbox_id, batch),
            self.folder_of(mailbox_id),
            lambda uid: self.read(mailbox_id, uid),
            uids,
            content,
            budget,
        )

    def unsummarised(self, mailbox_id: int) -> list[int]:
        """UIDs with no cached summary, newest first: what a background
        fill builds (:meth:`MHMailbox.states`)."""
        return summarizing.unsummarised(self.conn, mailbox_id)

    def summaries(
        self, mailbox_id: int, uids: Sequence[int], structure: bool = True
    ) -> list[MessageSummary]:
        """Summaries from the cache; messages not cached yet are parsed once
        here (on the worker thread) and cached for good -- only their
        header block unless ``structure`` (:mod:`.summarizing`)."""
        wanted = list(dict.fromkeys(uids))
        found = summarizing.cached(self.conn, mailbox_id, wanted, structure)
        missing = [uid for uid in wanted if uid not in found]
        fresh = build_summaries(
            lambda batch: self._file_rows(mailbox_id, batch),
            self.folder_of(mailbox_id),
            lambda uid: self.read(mailbox_id, uid),
            missing,
            structure,
        )
        if fresh:
            found.update((summary.uid, summary) for summary in fresh)
            summarizing.remember(self.conn, mailbox_id, fresh, structure)
        return [found[uid] for uid in wanted if uid in found]
