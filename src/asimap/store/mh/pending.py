"""Message files a multi-message write is about to create, recorded first.

Why: a COPY links its files into the target folder inside the transaction
that records their rows.  Killed before the COMMIT (SIGKILL, power loss),
the rows roll back but the files stay, and the next rescan would import
them as mail an MH tool added: half a COPY, against RFC 3501 section
6.4.7 ("If the COPY command is unsuccessful for any reason, server
implementations MUST restore the destination mailbox to its state before
the COPY attempt").

So the numbers a COPY is about to use are committed first in the
``pending_files`` table (:func:`reserve`), the files are made, and the
same transaction that inserts the rows deletes that record
(:func:`clear`).  A rescan never imports a number still listed
(:func:`numbers`), and opening the store removes the files of any record
a crash left behind (:func:`recover`), before any folder is scanned.  An
nmh tool may see such files for the moment the COPY runs, as it always
could; it never sees them become mail.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from asimap.store.base import InvalidMailboxName
from asimap.store.mh.db import transaction
from asimap.store.mh.files import fsync_dir
from asimap.store.mh.paths import folder_path


def reserve(conn: sqlite3.Connection, mailbox_id: int, nums: Iterable[int]) -> None:
    """Commit ``nums`` as about to be created in the mailbox (own
    transaction: it must be durable before the first file exists)."""
    with transaction(conn):
        conn.executemany(
            "INSERT OR IGNORE INTO pending_files (mailbox_id, num) VALUES (?, ?)",
            [(mailbox_id, num) for num in nums],
        )


def clear(conn: sqlite3.Connection, mailbox_id: int) -> None:
    """Forget the mailbox's record (inside the caller's transaction: with
    the rows that make its files mail, or after their removal)."""
    conn.execute("DELETE FROM pending_files WHERE mailbox_id=?", (mailbox_id,))


def numbers(conn: sqlite3.Connection, mailbox_id: int) -> set[int]:
    """The numbers a write in progress (or cut by a crash) is creating."""
    return {
        num
        for (num,) in conn.execute(
            "SELECT num FROM pending_files WHERE mailbox_id=?", (mailbox_id,)
        )
    }


def recover(conn: sqlite3.Connection, root: Path) -> int:
    """Remove the files of writes a crash cut short; how many went.

    A listed number that has a row is mail (cannot happen: the record goes
    in the rows' own transaction, but a row is never touched here)."""
    rows = conn.execute(
        "SELECT p.mailbox_id, p.num, b.name FROM pending_files p "
        "LEFT JOIN mailboxes b ON b.id = p.mailbox_id "
        "WHERE NOT EXISTS (SELECT 1 FROM messages m "
        "WHERE m.mailbox_id = p.mailbox_id AND m.num = p.num)"
    ).fetchall()
    removed = 0
    folders: set[Path] = set()
    for _mailbox_id, num, name in rows:
        if name is None:
            continue
        try:
            folder = folder_path(root, name)
        except InvalidMailboxName:
            continue
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            (folder / str(num)).unlink()
            removed += 1
            folders.add(folder)
    for folder in folders:
        with contextlib.suppress(OSError):
            fsync_dir(folder)
    with transaction(conn):
        conn.execute("DELETE FROM pending_files")
    return removed
