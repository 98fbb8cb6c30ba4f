"""MAILBOXIDs (RFC 8474 section 4) kept in the MH store's database.

The id lives on the mailbox's ``mailboxes`` row (``objectid`` column,
schema version 3): RENAME updates the row's name and so keeps the id
(section 4.2), DELETE and ``rmf`` drop the row so a re-created mailbox gets
a new one (section 4.1), and the database makes it survive restarts.  A row
without an id (created before version 3, or by the asimap 2.x importer) is
given one the first time it is asked for, so no code path that inserts
mailbox rows has to know about ids.

Runs on the store's worker thread, like everything that touches the
connection.
"""

from __future__ import annotations

import sqlite3

from asimap.store.base import MailboxNotFound
from asimap.store.mh.db import transaction
from asimap.store.objectid import new_mailboxid


def mailboxid(conn: sqlite3.Connection, mailbox_id: int) -> str:
    """The MAILBOXID of the row ``mailbox_id``, assigned on first use."""
    row = conn.execute(
        "SELECT objectid FROM mailboxes WHERE id=?", (mailbox_id,)
    ).fetchone()
    if row is None:
        raise MailboxNotFound("Mailbox no longer exists")
    if row[0]:
        return str(row[0])
    return renew(conn, mailbox_id)


def renew(conn: sqlite3.Connection, mailbox_id: int) -> str:
    """Give the row ``mailbox_id`` a fresh MAILBOXID and return it."""
    value = new_mailboxid()
    with transaction(conn):
        conn.execute("UPDATE mailboxes SET objectid=? WHERE id=?", (value, mailbox_id))
    return value


def hand_over(conn: sqlite3.Connection, source_id: int, target_id: int) -> None:
    """RENAME INBOX (RFC 3501 section 6.3.5 moves its messages to a new
    mailbox): the new mailbox takes over INBOX's MAILBOXID and the INBOX
    left behind, now empty, gets a new one (RFC 8474 section 4.2)."""
    old = mailboxid(conn, source_id)
    with transaction(conn):
        conn.execute("UPDATE mailboxes SET objectid=? WHERE id=?", (old, target_id))
        renew(conn, source_id)
