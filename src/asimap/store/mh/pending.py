"""Message files a multi-message write is making: recorded before each
exists, mail only when the rows that name them commit.

Why: a COPY (and MOVE's copy, and a MULTIAPPEND) links several files into
the target folder and then records their rows in one transaction.  Killed
in between (SIGKILL, power loss), the rows never commit but the files
stay, and the next rescan would import them as mail an MH tool added:
half a COPY, against RFC 3501 section 6.4.7 ("If the COPY command is
unsuccessful for any reason, server implementations MUST restore the
destination mailbox to its state before the COPY attempt"), and half a
MULTIAPPEND, against RFC 3502 section 2 ("If the server fails to store
any message, it MUST NOT store any of the messages").

So every file such a write links is first committed in the
``pending_files`` table as (folder, number, inode, owner process), the
links are made *outside* any transaction, and the transaction that
inserts the rows also deletes the records (:meth:`Creating.settle`).  A
rescan, in any process, imports no recorded file (:func:`hidden`).
Opening the store (:func:`recover`, before any folder is scanned)
removes the file of each record whose owner process is gone -- only if
it is still that inode and has no row, so an ``inc`` that took the
number meanwhile keeps its message.  The owner matters because the
worker is not the only process that opens a store: a delivery agent
(:mod:`asimap.store.mh.delivery`) may open it while the worker COPYs,
and must neither remove nor import that COPY's files.

What nmh sees: the files exist, under their numbers, from their link to
the COMMIT (as with any write); after a crash in between, until the next
open of the account removes them.  A ``scan`` in that window lists them;
they never become IMAP messages.

Use (the whole API; one batch at a time per folder, on the worker
thread, with no transaction open)::

    with pending.creating(conn, mailbox_id, folder, core.creating) as batch:
        batch.expect([(start, source_ino), ...])   # optional, one COMMIT
        num, stat = files.link_or_copy(..., claim=batch.claim)
        batch.made(num)
        ...
        with transaction(conn):
            ...insert the rows...
            batch.settle()
    # an exception anywhere in the block: the files go, the records too

:meth:`Creating.claim` commits one record per number it meets that
:meth:`Creating.expect` did not announce, so a write that knows its
inodes ahead (COPY: the source files it hard-links) pays one COMMIT in
all; one that does not (a message written to a temporary file first)
pays one per file unless it writes all the temporaries first and
announces them together.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from asimap.store.base import InvalidMailboxName
from asimap.store.mh.db import transaction
from asimap.store.mh.files import fsync_dir, unlink_in
from asimap.store.mh.paths import folder_path

log = logging.getLogger(__name__)


class _Owner:
    """This process's token, ``pid:start time`` (a pid alone may be reused
    by a new process after a crash); made again after a fork."""

    def __init__(self) -> None:
        self._pid = 0
        self._token = ""

    def token(self) -> str:
        pid = os.getpid()
        if pid != self._pid:
            self._pid, self._token = pid, f"{pid}:{_start_time(pid)}"
        return self._token


OWNER = _Owner()


def _start_time(pid: int) -> str:
    """Field 22 of ``/proc/PID/stat`` (clock ticks after boot), or "" where
    there is no ``/proc`` (then a live pid counts as the owner)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces: count after its ")".
    return stat[stat.rindex(b")") + 2 :].split()[19].decode()


def alive(owner: str) -> bool:
    """Whether the process a record names still runs (the same one)."""
    pid_text, _, start = owner.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return owner == OWNER.token()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another uid's
    return _start_time(pid) == start


def hidden(conn: sqlite3.Connection, mailbox_id: int) -> dict[int, int]:
    """Number -> inode of the files recorded as pending in a mailbox: a
    rescan imports none of them (a write in flight, here or in another
    process, or the leftovers of one a crash cut, which the next open
    removes).  One indexed look at a table that is nearly always empty."""
    return dict(
        conn.execute(
            "SELECT num, ino FROM pending_files WHERE mailbox_id=?", (mailbox_id,)
        ).fetchall()
    )


class Creating:
    """The files one write is adding to one folder (module doc)."""

    def __init__(self, conn: sqlite3.Connection, mailbox_id: int, folder: Path):
        self.conn = conn
        self.mailbox_id = mailbox_id
        self.folder = folder
        #: number -> inode, as committed.
        self.recorded: dict[int, int] = {}
        #: number -> inode of the files linked so far (rescans skip them).
        self.linked: dict[int, int] = {}
        self.settled = False

    def expect(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Commit (number, inode) pairs the write is about to link."""
        fresh = [(n, i) for n, i in pairs if self.recorded.get(n) != i]
        if not fresh:
            return
        if self.conn.in_transaction:
            # Nested, it would not commit before the link: a programming
            # error, not something to run with.
            raise RuntimeError("pending files must be recorded outside a transaction")
        with transaction(self.conn):
            self.conn.executemany(
                "INSERT OR REPLACE INTO pending_files (mailbox_id, num, ino, owner) "
                "VALUES (?, ?, ?, ?)",
                [(self.mailbox_id, n, i, OWNER.token()) for n, i in fresh],
            )
        self.recorded.update(fresh)

    def claim(self, num: int, ino: int) -> None:
        """About to link inode ``ino`` as ``num`` (the hook of
        :func:`asimap.store.mh.files.claim_number`): durable first."""
        self.expect([(num, ino)])

    def made(self, num: int, stat: os.stat_result) -> None:
        """``num`` was linked (to the inode of ``stat``)."""
        self.linked[num] = stat.st_ino

    def settle(self) -> None:
        """Inside the transaction that inserts the rows: from its COMMIT
        the files are mail, and nothing is pending any more."""
        self.conn.execute(
            "DELETE FROM pending_files WHERE mailbox_id=? AND owner=?",
            (self.mailbox_id, OWNER.token()),
        )
        self.settled = True

    def abandon(self) -> None:
        """The write failed: remove its files (each only while it is
        still ours) and their records.  On a full disk the records may
        stay; the next open removes what they name, which is nothing."""
        removed = False
        for num, ino in self.linked.items():
            with contextlib.suppress(OSError):
                removed = unlink_in(self.folder, str(num), ino) or removed
        if removed:
            with contextlib.suppress(OSError):
                fsync_dir(self.folder)
        self.linked.clear()
        if self.recorded:
            try:
                with transaction(self.conn):
                    self.conn.execute(
                        "DELETE FROM pending_files WHERE mailbox_id=? AND owner=?",
                        (self.mailbox_id, OWNER.token()),
                    )
            except sqlite3.Error:
                log.warning("%s: pending records left for the next open", self.folder)
            self.recorded.clear()


@contextlib.contextmanager
def creating(
    conn: sqlite3.Connection,
    mailbox_id: int,
    folder: Path,
    hidden: dict[int, dict[int, int]],
) -> Iterator[Creating]:
    """A :class:`Creating` for the block; its files are listed in
    ``hidden`` (the core's, read by rescans) while it runs.  Left by an
    exception, or without :meth:`Creating.settle`, its files go."""
    batch = Creating(conn, mailbox_id, folder)
    if mailbox_id in hidden:
        raise RuntimeError("one multi-message write at a time per folder")
    hidden[mailbox_id] = batch.linked
    try:
        yield batch
        if not batch.settled:
            batch.abandon()
    except BaseException:
        batch.abandon()
        raise
    finally:
        hidden.pop(mailbox_id, None)


def recover(conn: sqlite3.Connection, root: Path) -> int:
    """At open, before any folder is scanned: remove the files of writes
    a crash cut short; how many went.

    Only the records of processes that are gone (:func:`alive`): a
    write in flight elsewhere keeps its files.  A listed file goes only
    if it is still the recorded inode and no row names that number (a
    row would make it mail: cannot happen, since the records go in the
    rows' own transaction, but a row is never undone here).
    """
    if conn.execute("SELECT 1 FROM pending_files LIMIT 1").fetchone() is None:
        return 0  # the common case: one look, no write
    rows = conn.execute(
        "SELECT p.num, p.ino, b.name, p.owner FROM pending_files p "
        "LEFT JOIN mailboxes b ON b.id = p.mailbox_id "
        "WHERE NOT EXISTS (SELECT 1 FROM messages m "
        "WHERE m.mailbox_id = p.mailbox_id AND m.num = p.num)"
    ).fetchall()
    removed = 0
    folders: set[Path] = set()
    dead: set[str | None] = set()
    for num, ino, name, owner in rows:
        if owner is not None and alive(owner):
            continue  # a write in flight in another process (a delivery)
        dead.add(owner)
        if name is None:
            continue
        try:
            folder = folder_path(root, name)
        except InvalidMailboxName:
            continue
        with contextlib.suppress(OSError):
            if unlink_in(folder, str(num), ino):
                removed += 1
                folders.add(folder)
    for folder in folders:
        with contextlib.suppress(OSError):
            fsync_dir(folder)
    with transaction(conn):
        # The records of every process that is gone (the files of those
        # that had a row are mail, and stay).
        for (owner,) in conn.execute(
            "SELECT DISTINCT owner FROM pending_files"
        ).fetchall():
            if owner is None or not alive(owner):
                conn.execute("DELETE FROM pending_files WHERE owner IS ?", (owner,))
    if removed:
        log.warning("%s: removed %d file(s) of a write cut short", root, removed)
    return removed
