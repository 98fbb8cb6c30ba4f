"""First start of an account asimap 2.x served: UIDVALIDITY and UIDs kept."""

from __future__ import annotations

from pathlib import Path

from asimap.store.mh import MHStore
from asimap.store.mh.profile import Profile
from legacy_asimap2 import build_legacy_db

NO_PROFILE = Profile(path=None, unseen=("unseen",))


def write_messages(folder: Path, numbers: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number in numbers:
        (folder / str(number)).write_bytes(b"Subject: n%d\r\n\r\nbody\r\n" % number)


async def test_legacy_uids_and_uidvalidity_are_kept(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    write_messages(root / "inbox", [1, 2, 3, 4])
    write_messages(root / "Archive", [10])
    (root / "inbox" / ".mh_sequences").write_text(
        "unseen: 2 4\nSeen: 1 3\nflagged: 3\ncur: 1\n"
    )
    build_legacy_db(
        root / "asimap.db",
        uid_vv=40,
        mailboxes=[
            # 2.x knew 1-3 (number 9 is gone since); 4 arrived after it stopped.
            {
                "name": "inbox",
                "uid_vv": 31,
                "uids": [5, 6, 7, 8],
                "msg_keys": [1, 2, 3, 9],
                "next_uid": 12,
                "subscribed": 1,
            },
            {"name": "Archive", "uid_vv": 32, "uids": [3], "msg_keys": [10]},
            {"name": "Gone", "uid_vv": 33, "uids": [], "msg_keys": []},
        ],
    )
    legacy_bytes = (root / "asimap.db").read_bytes()

    store = await MHStore.open(root, profile=NO_PROFILE)
    try:
        inbox = await store.mailbox("INBOX")
        assert inbox.uidvalidity == 31
        states = await inbox.states()
        assert [s.uid for s in states[:3]] == [5, 6, 7]
        assert states[3].uid >= 12  # unknown to 2.x: a fresh UID
        flags = {s.uid: s.flags for s in states}
        assert flags[5] == {"\\Seen"}
        assert flags[6] == frozenset()
        assert flags[7] == {"\\Seen", "\\Flagged"}
        assert (await inbox.message(7)).subject() == "n3"
        assert (await inbox.status()).uidnext > states[3].uid

        archive = await store.mailbox("Archive")
        assert archive.uidvalidity == 32
        assert [s.uid for s in await archive.states()] == [3]
        entries = {e.name: e for e in await store.list_mailboxes()}
        assert entries["INBOX"].subscribed
        assert "Gone" not in entries
        # Mailboxes made now never repeat a 2.x UIDVALIDITY.
        await store.create("Fresh")
        assert (await store.mailbox("Fresh")).uidvalidity > 40
    finally:
        await store.close()
    assert (root / "asimap.db").read_bytes() == legacy_bytes  # never written

    # The import happens once: a second start keeps everything as it is.
    again = await MHStore.open(root, profile=NO_PROFILE)
    try:
        inbox = await again.mailbox("INBOX")
        assert inbox.uidvalidity == 31
        assert [s.uid for s in await inbox.states()] == [s.uid for s in states]
    finally:
        await again.close()


async def test_new_account_without_legacy_db(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    store = await MHStore.open(root, profile=NO_PROFILE)
    try:
        names = {e.name for e in await store.list_mailboxes()}
        assert names == {
            "INBOX",
            "Junk",
            "Archive",
            "Sent Messages",
            "Drafts",
            "Deleted Messages",
        }
        assert (root / "inbox").is_dir()
        assert (root / ".asimap-store.sqlite3").is_file()
        assert not (root / "asimap.db").exists()
    finally:
        await store.close()


async def test_existing_folders_get_special_use(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    write_messages(root / "inbox", [1])
    write_messages(root / "Junk", [1])
    store = await MHStore.open(root, profile=NO_PROFILE)
    try:
        entries = {e.name: e for e in await store.list_mailboxes()}
        # The missing special-use folders are made, the existing one kept.
        assert set(entries) == {
            "INBOX",
            "Junk",
            "Archive",
            "Sent Messages",
            "Drafts",
            "Deleted Messages",
        }
        assert "\\Junk" in entries["Junk"].attributes
        junk = await store.mailbox("Junk")
        assert len(await junk.states()) == 1
    finally:
        await store.close()
