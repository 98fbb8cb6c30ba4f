"""The sequences the database wants, kept between APPENDs.

Why: every write rewrites ``.mh_sequences`` from the database's flags,
and rebuilding them from every row made the cost of one APPEND grow with
the folder (a migration APPENDs thousands of messages one after another).

What is kept: per mailbox, the message numbers of each ``(flags,
recent)`` group, with the connection's change counter at the moment they
were read.  SQLite's ``total_changes`` counts every row any statement of
this connection inserted, updated or deleted, and ``PRAGMA data_version``
moves when another connection commits; while both are where they were, no
row changed and the groups are exact.  An APPEND adds its one row to the
groups itself (:meth:`OurSequences.added`), and a few statements known
not to touch ``messages`` (stamps, keyword spellings) are let through
(:meth:`OurSequences.rows_untouched`); anything else -- a STORE, an
EXPUNGE, a rescan -- moves the counter or drops the entry, and the next
write reads the rows again.  A rollback does not move ``total_changes``
back, so the count of rollbacks is part of the token too
(:func:`asimap.store.mh.db.rollbacks`).
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from asimap.store.mh.db import decode_flags, rollbacks

#: A group: the flags and \\Recent of its messages.
Key = tuple[frozenset[str], bool]

#: Mailboxes kept (most recently written first out last).
LIMIT = 8


class OurSequences:
    """Per mailbox, message numbers grouped by ``(flags, recent)``
    (worker thread only)."""

    def __init__(self, conn: sqlite3.Connection, limit: int = LIMIT) -> None:
        self._conn = conn
        self._limit = limit
        self._entries: OrderedDict[
            int, tuple[tuple[int, int, int], dict[Key, set[int]]]
        ]
        self._entries = OrderedDict()

    def _token(self) -> tuple[int, int, int]:
        (version,) = self._conn.execute("PRAGMA data_version").fetchone()
        # A rollback does not move total_changes back (db.rollbacks).
        return self._conn.total_changes, int(version), rollbacks()

    def groups(self, mailbox_id: int) -> dict[Key, set[int]]:
        """The groups as the rows are now (read again when they may have
        changed).  The caller must not modify them."""
        token = self._token()
        entry = self._entries.get(mailbox_id)
        if entry is not None and entry[0] == token:
            self._entries.move_to_end(mailbox_id)
            return entry[1]
        groups = {
            (decode_flags(flags), bool(recent)): set(map(int, numbers.split()))
            for flags, recent, numbers in self._conn.execute(
                "SELECT flags, recent, group_concat(num, ' ') FROM messages "
                "WHERE mailbox_id=? GROUP BY flags, recent",
                (mailbox_id,),
            )
        }
        self._entries[mailbox_id] = (token, groups)
        self._entries.move_to_end(mailbox_id)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)
        return groups

    def token(self) -> tuple[int, int, int]:
        """Where the change counter is now (pass to :meth:`added`)."""
        return self._token()

    def added(
        self,
        mailbox_id: int,
        before: tuple[int, int, int],
        num: int,
        flags: frozenset[str],
        recent: bool,
    ) -> None:
        """The statements since ``before`` inserted exactly one row of
        ``mailbox_id`` (and touched no other row of it): number ``num``
        with ``flags`` and ``recent``."""
        entry = self._entries.get(mailbox_id)
        if entry is None or entry[0] != before:
            self._entries.pop(mailbox_id, None)
            return
        entry[1].setdefault((flags, recent), set()).add(num)
        self._entries[mailbox_id] = (self._token(), entry[1])

    @contextmanager
    def rows_untouched(self, mailbox_id: int) -> Iterator[None]:
        """Statements in the block change no ``messages`` row: an entry
        exact before it stays exact."""
        before = self._token()
        yield
        entry = self._entries.get(mailbox_id)
        if entry is not None and entry[0] == before:
            self._entries[mailbox_id] = (self._token(), entry[1])

    def drop(self, mailbox_id: int) -> None:
        """Forget ``mailbox_id`` (its rows may differ: a rollback)."""
        self._entries.pop(mailbox_id, None)
