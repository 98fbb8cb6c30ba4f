"""RFC 5464 METADATA entries in the MH store's database (worker thread only).

Three queries over the two tables of schema version 2
(:mod:`asimap.store.mh.db`): read a mailbox's entries, replace them, and
the same for the server's entries (mailbox ``""``).  Limits are checked by
:func:`asimap.store.base.apply_metadata_changes` inside the transaction,
so two connections cannot together exceed them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from asimap.store.base import apply_metadata_changes
from asimap.store.mh.db import transaction


def read(conn: sqlite3.Connection, mailbox_id: int | None) -> dict[str, bytes]:
    """Entries of a mailbox row, or of the server when ``mailbox_id`` is None."""
    if mailbox_id is None:
        rows = conn.execute("SELECT entry, value FROM server_metadata")
    else:
        rows = conn.execute(
            "SELECT entry, value FROM mailbox_metadata WHERE mailbox_id=?",
            (mailbox_id,),
        )
    return {str(entry): bytes(value) for entry, value in rows}


def write(
    conn: sqlite3.Connection,
    mailbox_id: int | None,
    changes: Mapping[str, bytes | None],
) -> None:
    """Apply ``changes`` (None removes) atomically, within the limits."""
    with transaction(conn):
        apply_metadata_changes(read(conn, mailbox_id), changes)  # raises first
        for entry, value in changes.items():
            if mailbox_id is None:
                if value is None:
                    conn.execute("DELETE FROM server_metadata WHERE entry=?", (entry,))
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO server_metadata VALUES (?, ?)",
                        (entry, value),
                    )
            elif value is None:
                conn.execute(
                    "DELETE FROM mailbox_metadata WHERE mailbox_id=? AND entry=?",
                    (mailbox_id, entry),
                )
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO mailbox_metadata VALUES (?, ?, ?)",
                    (mailbox_id, entry, value),
                )
