"""The per-account SQLite database kept at the MH root.

The MH files are the truth about *which* messages exist and what flags
they carry; the database adds what MH cannot hold: UIDs, MODSEQs,
UIDVALIDITY, expunge tombstones, INTERNALDATE, subscriptions, special-use
attributes, and a cache of parsed message structure so that FETCH and
header SEARCH never parse a message file twice.

It is named ``.asimap-store.sqlite3`` (hidden, so no MH tool or folder
listing sees it) -- not ``asimap.db``, which belongs to asimap 2.x and is
only read once, for import.  WAL mode lets readers proceed while we write;
the connection is used from the store's single worker thread only.

Schema changes bump :data:`SCHEMA_VERSION`; :func:`open_database` applies
the migrations in order.

The database holds the From/To/Subject of every message, so it is as
private as the messages: it is created with the profile's ``Msg-Protect``
(nmh's default 600) before SQLite opens it, and SQLite gives the files it
makes itself (``-wal``, ``-shm``, a ``-journal``) the mode of the database
file, whenever it makes them (its unix VFS copies the mode of the main
file, ``findCreateFileMode``), so a ``-wal`` recreated after a checkpoint
or a restart is private too.  Files left world-readable by an older
version are tightened when the database is opened.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from asimap.store.base import SUMMARY_VERSION, StorageDenied

log = logging.getLogger(__name__)

DB_NAME = ".asimap-store.sqlite3"

#: Files SQLite keeps beside the database, by suffix.
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")

#: nmh's default ``Msg-Protect``, for callers that do not pass a mode.
DB_MODE = 0o600
SCHEMA_VERSION = 7

_SCHEMA_V1 = """
CREATE TABLE account (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE mailboxes (
    -- AUTOINCREMENT: an id is never reused, so a stale MHMailbox object
    -- can never address a recreated mailbox.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    highestmodseq INTEGER NOT NULL,
    forgotten_modseq INTEGER NOT NULL DEFAULT 0,
    -- What the folder looked like at the last scan (-1: rescan next time).
    dir_mtime_ns INTEGER NOT NULL DEFAULT -1,
    seq_stamp TEXT NOT NULL DEFAULT ''
);
CREATE TABLE messages (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    num INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    flags TEXT NOT NULL,
    modseq INTEGER NOT NULL,
    internaldate INTEGER NOT NULL,
    tz_minutes INTEGER NOT NULL,
    recent INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX messages_by_modseq ON messages (mailbox_id, modseq);
CREATE TABLE tombstones (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX tombstones_by_modseq ON tombstones (mailbox_id, modseq);
CREATE TABLE summaries (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    bodystructure BLOB NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE TABLE keyword_spelling (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    folded TEXT NOT NULL,
    spelling TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, folded)
) WITHOUT ROWID;
CREATE TABLE subscriptions (name TEXT PRIMARY KEY);
CREATE TABLE special_use (name TEXT PRIMARY KEY, attributes TEXT NOT NULL);
CREATE TABLE noselect (name TEXT PRIMARY KEY);
"""

#: RFC 5464 METADATA entries.  A mailbox's rows hang off its ``mailboxes``
#: row, so RENAME (which keeps the id) carries them and DELETE, ``rmf`` and
#: re-CREATE (which drop the row) remove them; the server's own entries
#: (mailbox ``""``) have a table of their own.
_SCHEMA_V2 = """
CREATE TABLE mailbox_metadata (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    entry TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, entry)
) WITHOUT ROWID;
CREATE TABLE server_metadata (entry TEXT PRIMARY KEY, value BLOB NOT NULL);
"""

#: Per-mailbox totals for quota (RFC 9208): the number and octets of the
#: mailbox's messages, kept by triggers, so that whatever changes the
#: ``messages`` rows (APPEND, COPY, expunge, a rescan after an nmh tool,
#: the importer, a cascading DELETE) keeps them right, and the account's
#: usage is a sum over the ``mailboxes`` rows (1,000, not 100,000).
_SCHEMA_V3 = """
ALTER TABLE mailboxes ADD COLUMN total_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN total_octets INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET
    total_messages = (SELECT count(*) FROM messages WHERE mailbox_id = id),
    total_octets = (
        SELECT coalesce(sum(size), 0) FROM messages WHERE mailbox_id = id
    );
CREATE TRIGGER messages_usage_insert AFTER INSERT ON messages BEGIN
    UPDATE mailboxes SET total_messages = total_messages + 1,
        total_octets = total_octets + NEW.size
    WHERE id = NEW.mailbox_id;
END;
CREATE TRIGGER messages_usage_delete AFTER DELETE ON messages BEGIN
    UPDATE mailboxes SET total_messages = total_messages - 1,
        total_octets = total_octets - OLD.size
    WHERE id = OLD.mailbox_id;
END;
CREATE TRIGGER messages_usage_update AFTER UPDATE OF size, mailbox_id
ON messages BEGIN
    UPDATE mailboxes SET total_messages = total_messages - 1,
        total_octets = total_octets - OLD.size
    WHERE id = OLD.mailbox_id;
    UPDATE mailboxes SET total_messages = total_messages + 1,
        total_octets = total_octets + NEW.size
    WHERE id = NEW.mailbox_id;
END;
"""

#: RFC 8474 OBJECTID and RFC 8514 SAVEDATE, added in place to existing
#: tables (a v2 or v3 database upgrades without losing a row):
#:
#: * ``mailboxes.objectid``: the MAILBOXID, on the row RENAME keeps and
#:   DELETE drops; rows that predate it (or that an older code path inserts)
#:   get one when first asked (:mod:`asimap.store.mh.objectids`).
#: * ``messages.savedate``: epoch seconds the message entered the mailbox;
#:   NULL for rows that predate it -- unknown, not invented (RFC 8514: FETCH
#:   SAVEDATE then answers NIL).
#: * ``summaries.emailid`` / ``threadid``: cached with the parsed structure
#:   (they are derived from the content); a summary cached before this
#:   version has NULLs and is rebuilt on first use.
_SCHEMA_V4 = """
ALTER TABLE mailboxes ADD COLUMN objectid TEXT;
ALTER TABLE messages ADD COLUMN savedate INTEGER;
ALTER TABLE summaries ADD COLUMN emailid TEXT;
ALTER TABLE summaries ADD COLUMN threadid TEXT;
"""

#: Version 5: ``pending_files``, the message files a multi-message write
#: (COPY, MOVE's copy, MULTIAPPEND) is about to link into a folder, each
#: committed before its link: number and inode.  The transaction that
#: inserts their rows deletes them; what a crash leaves listed is removed
#: at the next open (:mod:`asimap.store.mh.pending`).
_SCHEMA_V5 = """
CREATE TABLE pending_files (
    mailbox_id INTEGER NOT NULL,
    num INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, num)
) WITHOUT ROWID;
"""

#: Version 6: ``messages`` by folder and MH number.  Every APPEND asks
#: for the highest number of its folder and, for each file the watcher
#: reported, the identity of the row of that number; by primary key
#: (mailbox, UID) each was a walk over every row of the folder, so the
#: cost of one APPEND grew with the folder.  The index carries the file's
#: identity (inode, size, mtime) too: covering that lookup, it is the one
#: SQLite's planner picks (with the number alone it kept to the primary
#: key of this WITHOUT ROWID table).
_SCHEMA_V6 = """
CREATE INDEX messages_by_num ON messages (mailbox_id, num, ino, size, mtime_ns);
"""

#: Version 7: ``pending_files.owner``, the process (``pid:start time``)
#: whose write a record belongs to.  A delivery agent may open the store
#: in a process of its own while the worker writes: its open must not
#: remove the files of the worker's write in flight, only those of a
#: process that is gone (:func:`asimap.store.mh.pending.recover`).
_SCHEMA_V7 = """
ALTER TABLE pending_files ADD COLUMN owner TEXT;
"""

_MIGRATIONS: dict[int, str] = {
    1: _SCHEMA_V1,
    2: _SCHEMA_V2,
    3: _SCHEMA_V3,
    4: _SCHEMA_V4,
    5: _SCHEMA_V5,
    6: _SCHEMA_V6,
    7: _SCHEMA_V7,
}


def protect_database(path: Path, mode: int) -> bool:
    """Give the database file and its side files exactly ``mode``; create
    the database file (empty, which SQLite takes as a new database) when it
    does not exist.  True if it was created."""
    created = False
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        pass
    else:
        created = True
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    for file in (path, *(Path(f"{path}{suffix}") for suffix in SIDE_SUFFIXES)):
        _protect_file(file, mode)
    return created


def _protect_file(file: Path, mode: int) -> None:
    """Give one existing database file ``mode``, through a descriptor that
    was not opened through a symlink.

    A database file (or side file) that is a symlink was planted by
    someone who can write the mail root, and may point at a file of
    another account where every account belongs to one uid: SQLite would
    write there, and a chmod would change its mode.  The store is refused
    instead (``NO [NOPERM]`` to the login), never followed (design.md
    section 4, rule 3: no path leaves the mail root).
    """
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            log.error("%s is a symbolic link: the store is not opened", file)
            raise StorageDenied(
                f"{file.name} in the mail root is a symbolic link; not following it"
            ) from None
        raise
    try:
        if os.fstat(fd).st_mode & 0o777 != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def open_database(root: Path, mode: int = DB_MODE) -> tuple[sqlite3.Connection, bool]:
    """Open (creating or migrating) the database with file mode ``mode``
    (module docstring); True if it is new."""
    path = root / DB_NAME
    is_new = protect_database(path, mode)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    conn.execute("PRAGMA journal_mode=WAL")
    # WAL with synchronous=NORMAL is durable against application crashes
    # and keeps the database consistent on power loss; message files are
    # fsynced separately and are the truth a rescan recovers from.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    version = row[0] if row else 0
    if version > SCHEMA_VERSION:
        conn.close()
        raise RuntimeError(
            f"{path} has schema {version}, newer than this asimap ({SCHEMA_VERSION})"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        # executescript commits any open transaction first, so the script
        # carries its own: a migration applies entirely or not at all.
        script = (
            "BEGIN IMMEDIATE;"
            + _MIGRATIONS[target]
            + "DELETE FROM schema_version;"
            + f"INSERT INTO schema_version VALUES ({target});"
            + "COMMIT;"
        )
        try:
            conn.executescript(script)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise
    try:
        _drop_stale_summaries(conn)
    except BaseException:
        conn.close()
        raise
    return conn, is_new


def _drop_stale_summaries(conn: sqlite3.Connection) -> None:
    """Forget cached summaries made by another :data:`SUMMARY_VERSION`.

    They are a pure cache of the message files: dropping them costs one
    parse per message on its next header FETCH/SEARCH/SORT, while keeping
    them would serve answers the current code no longer gives.
    """
    row = conn.execute(
        "SELECT value FROM account WHERE key='summary_version'"
    ).fetchone()
    if row is not None and row[0] == SUMMARY_VERSION:
        return
    with transaction(conn):
        conn.execute("DELETE FROM summaries")
        conn.execute(
            "INSERT INTO account (key, value) VALUES ('summary_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (SUMMARY_VERSION,),
        )


class transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error), nestable.

    IMMEDIATE takes the write lock up front, so a read-modify-write never
    fails half-way with SQLITE_BUSY.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._outer = False

    def __enter__(self) -> sqlite3.Connection:
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN IMMEDIATE")
            self._outer = True
        return self._conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._outer:
            return
        if exc_type is None:
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                # A COMMIT refused (SQLITE_FULL on a full disk) leaves the
                # transaction open: end it, or the next job would run inside.
                self._rollback()
                raise
        else:
            self._rollback()

    def _rollback(self) -> None:
        global _rollbacks
        # Counted first: whatever was read inside the transaction is void
        # (see :func:`rollbacks`).
        _rollbacks += 1
        # SQLite may already have rolled back by itself (SQLITE_FULL,
        # SQLITE_IOERR...): a ROLLBACK then fails and would hide the error.
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


_rollbacks = 0


def rollbacks() -> int:
    """How many :class:`transaction` blocks rolled back so far (any
    connection of this process).

    A cache of rows keyed on ``total_changes`` needs it: SQLite counts the
    rows a statement changed, and a ROLLBACK that undoes them does not
    count them back, so rows read inside a rolled-back transaction would
    look current (a STORE refused on a full disk reappearing later).
    """
    return _rollbacks


def next_uidvalidity(conn: sqlite3.Connection) -> int:
    """A UIDVALIDITY never used before in this account (RFC 3501 2.3.1.1).

    Seeded by the clock so that a rebuilt database does not repeat the
    values of a lost one; strictly increasing after that.
    """
    row = conn.execute("SELECT value FROM account WHERE key='uidvalidity'").fetchone()
    last = row[0] if row else 0
    value = max(last + 1, int(time.time()))
    if value >= 2**32:
        value = last + 1 if last + 1 < 2**32 else 1
    conn.execute(
        "INSERT INTO account (key, value) VALUES ('uidvalidity', ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (value,),
    )
    return value


def encode_flags(flags: Iterable[str]) -> str:
    """Flags as stored: sorted, space-separated (flags never contain SP)."""
    return " ".join(sorted(flags))


def decode_flags(text: str) -> frozenset[str]:
    return frozenset(text.split())
