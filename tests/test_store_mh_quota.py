"""MH quota totals: the schema 3 migration and the triggers behind them.

The per-folder totals of :mod:`asimap.store.mh.quota` live in the
``mailboxes`` table; an account whose database predates them (schema 2)
must get them computed from its messages when it is first opened again,
or its usage would start at zero and the quota would never bite.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from asimap.store.base import QuotaUsage
from asimap.store.mh import MHStore
from asimap.store.mh.db import DB_NAME, SCHEMA_VERSION
from asimap.store.mh.profile import Profile

NO_PROFILE = Profile(path=None, unseen=("unseen",))


def _back_to_schema_2(root: Path) -> None:
    """Make the database look like one written before schema 3."""
    conn = sqlite3.connect(root / DB_NAME, isolation_level=None)
    try:
        conn.executescript(
            # Schema 7 and 5 (pending files), 6 (index by number), 4
            # (OBJECTID/SAVEDATE), then 3.
            "DROP INDEX messages_by_num;"
            "DROP TABLE pending_files;"
            "ALTER TABLE mailboxes DROP COLUMN objectid;"
            "ALTER TABLE messages DROP COLUMN savedate;"
            "ALTER TABLE summaries DROP COLUMN emailid;"
            "ALTER TABLE summaries DROP COLUMN threadid;"
            "DROP TRIGGER messages_usage_insert;"
            "DROP TRIGGER messages_usage_delete;"
            "DROP TRIGGER messages_usage_update;"
            "ALTER TABLE mailboxes DROP COLUMN total_messages;"
            "ALTER TABLE mailboxes DROP COLUMN total_octets;"
            "UPDATE schema_version SET version = 2;"
        )
    finally:
        conn.close()


async def test_migration_counts_existing_messages(tmp_path: Path) -> None:
    assert SCHEMA_VERSION >= 3
    root = tmp_path / "Mail"
    store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
    try:
        inbox = await store.mailbox("INBOX")
        archive = await store.mailbox("Archive")
        for data in (b"a\r\n", b"bb\r\n"):
            await inbox.append(data)
        await archive.append(b"cccc\r\n")
    finally:
        await store.close()
    _back_to_schema_2(root)
    store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
    try:
        assert await store.quota_usage() == QuotaUsage(storage=13, messages=3)
        # And the triggers are back: new writes keep counting.
        inbox = await store.mailbox("INBOX")
        await inbox.append(b"d\r\n")
        assert await store.quota_usage() == QuotaUsage(storage=16, messages=4)
    finally:
        await store.close()


async def test_totals_match_the_messages_after_mixed_work(tmp_path: Path) -> None:
    """Whatever path changed the rows, the totals equal a full count."""
    root = tmp_path / "Mail"
    store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
    try:
        inbox = await store.mailbox("INBOX")
        junk = await store.mailbox("Junk")
        for n in range(6):
            await inbox.append(b"x" * (10 + n))
        await inbox.copy_to([1, 2], junk)
        await inbox.move_to([3], junk)
        await store.rename("Junk", "Spam")
        (root / "inbox" / "40").write_bytes(b"from a tool\n")
        await inbox.poll()
        await store.create("gone")
        gone = await store.mailbox("gone")
        await gone.append(b"bye\r\n")
        await store.delete("gone")
        conn = store.core.conn

        def full_count() -> tuple[int, int]:
            row = conn.execute("SELECT count(*), sum(size) FROM messages").fetchone()
            return int(row[0]), int(row[1])

        messages, octets = await store.call(full_count)
        assert await store.quota_usage() == QuotaUsage(octets, messages)
        assert messages == 6 + 2 + 1  # appended, copied, the tool's file
    finally:
        await store.close()
