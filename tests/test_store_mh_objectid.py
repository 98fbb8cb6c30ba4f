"""RFC 8474 object ids and RFC 8514 save dates in the MH store: kept across
restarts, answered from the summary cache, and a version 2 database (before
these columns existed) upgraded in place."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from asimap.auth.account import Account
from asimap.store.base import Store
from asimap.store.mh import MHStore
from asimap.store.mh.db import _MIGRATIONS, DB_NAME, SCHEMA_VERSION
from asimap.store.mh.profile import Profile
from asimap.store.objectid import emailid_of, is_objectid
from store_conformance_objectid import OTHER, REPLY, ROOT
from transcript import FakeClient, World

NO_PROFILE = Profile(path=None, unseen=("unseen",))


async def open_mh(root: Path) -> MHStore:
    return await MHStore.open(root, profile=NO_PROFILE, watch=False)


Row = tuple[int, str, str, datetime | None]
Snapshot = dict[str, tuple[str, int, list[Row], list[datetime | None]]]


async def snapshot(store: MHStore) -> Snapshot:
    """Everything RFC 8474/8514 promise to keep, per mailbox and UID."""
    result: Snapshot = {}
    for name in ("INBOX", "Work"):
        mailbox = await store.mailbox(name)
        uids = [s.uid for s in await mailbox.states()]
        result[name] = (
            (await mailbox.status()).mailboxid,
            mailbox.uidvalidity,
            [
                (s.uid, s.emailid, s.threadid, s.savedate)
                for s in await mailbox.summaries(uids)
            ],
            [(await mailbox.info(uid)).savedate for uid in uids],
        )
    return result


async def test_ids_and_save_dates_survive_restart_and_rename(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    store = await open_mh(root)
    await store.create("Project")
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(raw) for raw in (ROOT, REPLY, OTHER)]
    project = await store.mailbox("Project")
    await inbox.copy_to(uids[:2], project)
    await store.rename("Project", "Work")
    before = await snapshot(store)
    await store.close()

    store = await open_mh(root)
    try:
        assert await snapshot(store) == before
    finally:
        await store.close()
    inbox_id, _, inbox_rows, savedates = before["INBOX"]
    work_id, _, work_rows, _ = before["Work"]
    assert is_objectid(inbox_id) and is_objectid(work_id) and inbox_id != work_id
    assert all(saved is not None for saved in savedates)
    # The copies in Work carry the EMAILIDs and THREADIDs of the originals.
    assert [row[1:3] for row in work_rows] == [row[1:3] for row in inbox_rows[:2]]


async def test_fetch_of_ids_reads_no_message_file_on_a_warm_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_mh(tmp_path / "Mail")
    try:
        inbox = await store.mailbox("INBOX")
        for raw in (ROOT, REPLY, OTHER):
            await inbox.append(raw)
        await inbox.summaries([s.uid for s in await inbox.states()])  # warm

        def no_reading(*_args: object) -> bytes:
            raise AssertionError("a message file was read for FETCH EMAILID")

        monkeypatch.setattr(store.core, "read", no_reading)
        lines = await one_session(
            store, ["UID FETCH 1:* (EMAILID THREADID SAVEDATE)", "SEARCH EMAILID x"]
        )
    finally:
        await store.close()
    fetched = [line for line in lines if b" FETCH (" in line]
    assert len(fetched) == 3
    assert f"EMAILID ({emailid_of(ROOT)})".encode() in fetched[0]
    assert all(b'SAVEDATE "' in line for line in fetched)


class _StoreWorld(World):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    async def open_store(self, account: Account) -> Store:
        return self.store


async def one_session(store: Store, commands: list[str]) -> list[bytes]:
    """Log in, SELECT INBOX, run ``commands``; every line received."""
    client = FakeClient(_StoreWorld(store))
    client.start()
    lines = [await client.next_line()]
    try:
        for index, line in enumerate(
            ["LOGIN alice secret-a", "SELECT INBOX", *commands]
        ):
            tag = f"t{index}"
            client.write(f"{tag} {line}\r\n".encode())
            while True:
                got = await client.next_line(timeout=30)
                lines.append(got)
                if got.startswith(tag.encode() + b" "):
                    assert got.startswith(tag.encode() + b" OK"), (line, got)
                    break
    finally:
        await client.stop()
    return lines


# -- upgrading a version 2 database ------------------------------------------


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return sorted(
        conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name != 'schema_version'"
        ).fetchall()
    )


#: What each schema version added, undone (newest first).
_UNDO = {
    7: "ALTER TABLE pending_files DROP COLUMN owner;",
    6: "DROP INDEX messages_by_num;",
    5: "DROP TABLE pending_files;",
    4: "ALTER TABLE mailboxes DROP COLUMN objectid;"
    "ALTER TABLE messages DROP COLUMN savedate;"
    "ALTER TABLE summaries DROP COLUMN emailid;"
    "ALTER TABLE summaries DROP COLUMN threadid;",
    3: "DROP TRIGGER messages_usage_insert;"
    "DROP TRIGGER messages_usage_delete;"
    "DROP TRIGGER messages_usage_update;"
    "ALTER TABLE mailboxes DROP COLUMN total_messages;"
    "ALTER TABLE mailboxes DROP COLUMN total_octets;",
}


def downgrade(root: Path, version: int) -> None:
    """Turn a current database into exactly what asimap wrote at schema
    ``version`` (before OBJECTID/SAVEDATE), checked against a database
    built by the scripts up to that version alone."""
    assert SCHEMA_VERSION == 7
    conn = sqlite3.connect(root / DB_NAME, isolation_level=None)
    for undone in range(SCHEMA_VERSION, version, -1):
        conn.executescript(_UNDO[undone])
    conn.execute("UPDATE schema_version SET version = ?", (version,))
    reference = sqlite3.connect(":memory:")
    reference.executescript("".join(_MIGRATIONS[v] for v in range(1, version + 1)))

    def normal(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(name, " ".join(sql.split())) for name, sql in rows]

    assert normal(_schema(conn)) == normal(_schema(reference))
    conn.close()


@pytest.mark.parametrize("version", [2, 3])
async def test_older_database_upgrades_in_place(tmp_path: Path, version: int) -> None:
    root = tmp_path / "Mail"
    store = await open_mh(root)
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(raw) for raw in (ROOT, REPLY)]
    await inbox.summaries(uids)  # cached at version 2, without ids
    uidvalidity = inbox.uidvalidity
    await store.close()
    downgrade(root, version)

    store = await open_mh(root)
    try:
        inbox = await store.mailbox("INBOX")
        # Nothing lost: same UIDVALIDITY, same UIDs.
        assert inbox.uidvalidity == uidvalidity
        assert [s.uid for s in await inbox.states()] == uids
        # Rows from before the upgrade have no known save date (RFC 8514:
        # NIL), new ones do.
        assert [(await inbox.info(uid)).savedate for uid in uids] == [None, None]
        new_uid = await inbox.append(OTHER)
        assert (await inbox.info(new_uid)).savedate is not None
        # Old cached summaries are rebuilt with their ids.
        found = await inbox.summaries(uids)
        assert [s.emailid for s in found] == [emailid_of(ROOT), emailid_of(REPLY)]
        assert found[0].threadid == found[1].threadid
        mailboxid = (await inbox.status()).mailboxid
        assert is_objectid(mailboxid)
        lines = await one_session(
            store, ["FETCH 1:* SAVEDATE", "SEARCH SAVEDSINCE 1-Jan-2000"]
        )
    finally:
        await store.close()
    assert b"* 1 FETCH (SAVEDATE NIL)" in lines
    assert b'* 3 FETCH (SAVEDATE "' in b"\n".join(lines)
    # Unknown save dates match no SAVED* key (module doc of imap.search).
    assert b"* SEARCH 3" in lines

    conn = sqlite3.connect(root / DB_NAME)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (
            SCHEMA_VERSION,
        )
    finally:
        conn.close()
    # The id given to the old row is kept from then on.
    store = await open_mh(root)
    try:
        inbox = await store.mailbox("INBOX")
        assert (await inbox.status()).mailboxid == mailboxid
    finally:
        await store.close()


async def test_failed_migration_leaves_version_3_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "Mail"
    store = await open_mh(root)
    await (await store.mailbox("INBOX")).append(ROOT)
    await store.close()
    downgrade(root, 3)
    broken = _MIGRATIONS[4] + "ALTER TABLE nosuch ADD COLUMN x;"
    monkeypatch.setitem(_MIGRATIONS, 4, broken)
    with pytest.raises(sqlite3.OperationalError):
        await open_mh(root)
    conn = sqlite3.connect(root / DB_NAME)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (3,)
        columns = [row[1] for row in conn.execute("PRAGMA table_info(messages)")]
        assert "savedate" not in columns
    finally:
        conn.close()
