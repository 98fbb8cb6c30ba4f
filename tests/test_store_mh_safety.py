"""MH store safety: no path leaves the root, .mh_sequences is never torn,
and the sequence file format is read and written as nmh does."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asimap.store.base import InvalidMailboxName, MailboxNotFound, StoreError, StoreMode
from asimap.store.mh import MHStore
from asimap.store.mh import sequences as seq
from asimap.store.mh.profile import Profile, parse_profile, unseen_sequences_for

NO_PROFILE = Profile(path=None, unseen=("unseen",))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MHStore]:
    opened = await MHStore.open(tmp_path / "root", profile=NO_PROFILE)
    yield opened
    await opened.close()


def outside_entries(tmp_path: Path) -> set[str]:
    return {p.name for p in tmp_path.iterdir()}


ESCAPES = ["../x", "/etc", "a/../../b", "~root", "..", "./x", "a/./b", "x\x00y"]


@pytest.mark.parametrize("name", ESCAPES)
async def test_escaping_names_are_refused(
    store: MHStore, tmp_path: Path, name: str
) -> None:
    before = outside_entries(tmp_path)
    with pytest.raises(InvalidMailboxName):
        await store.create(name)
    with pytest.raises(InvalidMailboxName):
        await store.rename("Junk", name)
    with pytest.raises(InvalidMailboxName):
        await store.mailbox(name)
    with pytest.raises(InvalidMailboxName):
        await store.delete(name)
    assert outside_entries(tmp_path) == before
    assert (store.root / "Junk").is_dir()


async def test_hidden_levels_are_refused(store: MHStore) -> None:
    for name in (".hidden", "a/.b", ".asimap-store.sqlite3"):
        with pytest.raises(InvalidMailboxName):
            await store.create(name)


async def test_symlink_pointing_out_is_never_followed(
    store: MHStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "1").write_bytes(b"Subject: secret\r\n\r\n")
    (store.root / "link").symlink_to(outside)
    names = {entry.name for entry in await store.list_mailboxes()}
    assert "link" not in names
    for action in (
        store.create("link/sub"),
        store.mailbox("link"),
        store.rename("link", "other"),
        store.delete("link"),
        store.rename("Junk", "link/inside"),
    ):
        with pytest.raises((InvalidMailboxName, MailboxNotFound)):
            await action
    assert sorted(p.name for p in outside.iterdir()) == ["1"]
    assert (outside / "1").read_bytes() == b"Subject: secret\r\n\r\n"


async def test_symlink_inside_the_root_is_not_a_mailbox(store: MHStore) -> None:
    (store.root / "alias").symlink_to(store.root / "Archive")
    names = {entry.name for entry in await store.list_mailboxes()}
    assert "alias" not in names
    with pytest.raises(MailboxNotFound):
        await store.mailbox("alias")


async def test_sequences_never_torn(store: MHStore) -> None:
    """A reader parsing .mh_sequences in a loop while the store changes
    flags 500 times only ever sees complete files."""
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(b"Subject: %d\r\n\r\n" % n) for n in range(40)]
    path = store.root / "inbox" / seq.SEQUENCES_FILE
    stop = threading.Event()
    problems: list[str] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                text = path.read_text()
            except FileNotFoundError:
                problems.append("file missing")
                continue
            reads += 1
            parsed = seq.parse(text)
            # Never claimed, so every complete file lists all 40 as Recent.
            if not text.endswith("\n") or "Recent: 1-40\n" not in text:
                problems.append(repr(text))
                continue
            # Seen and unseen always partition the 40 messages.
            seen = parsed.sequences.get("Seen", set())
            unseen = parsed.sequences.get("unseen", set())
            if seen & unseen or seen | unseen != set(range(1, 41)):
                problems.append(repr(text))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for step in range(500):
            uid = uids[step % len(uids)]
            mode = StoreMode.ADD if (step // len(uids)) % 2 == 0 else StoreMode.REMOVE
            await inbox.store([uid], mode, ["\\Seen", "\\Flagged"])
    finally:
        stop.set()
        thread.join()
    assert reads > 0
    assert problems == []
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".asimap")]
    assert leftovers == []


async def test_unknown_sequences_are_preserved(store: MHStore) -> None:
    inbox = await store.mailbox("INBOX")
    for n in range(3):
        await inbox.append(b"Subject: %d\r\n\r\n" % n)
    path = store.root / "inbox" / seq.SEQUENCES_FILE
    path.write_text(path.read_text() + "cur: 2\nodd*name: 1 3\n")
    (uid, *_) = [s.uid for s in await inbox.states()]
    await inbox.store([uid], StoreMode.ADD, ["\\Seen"])
    text = path.read_text()
    assert "cur: 2\n" in text
    assert "odd*name: 1 3\n" in text
    assert "Seen: 1\n" in text


async def test_keywords_that_clash_with_sequences_are_refused(store: MHStore) -> None:
    inbox = await store.mailbox("INBOX")
    uid = await inbox.append(b"Subject: x\r\n\r\n")
    for keyword in ("flagged", "Unseen", "cur", "recent"):
        with pytest.raises(StoreError):
            await inbox.store([uid], StoreMode.ADD, [keyword])
    assert (await inbox.states())[0].flags == frozenset()


def test_parse_continuation_lines_and_ranges() -> None:
    parsed = seq.parse("unseen: 1-3 7\n  9-10\ncur: 4\nbroken line\nflagged: x 5\n")
    assert parsed.sequences["unseen"] == {1, 2, 3, 7, 9, 10}
    assert parsed.sequences["cur"] == {4}
    assert parsed.sequences["flagged"] == {5}
    assert parsed.raw_lines["unseen"] == "unseen: 1-3 7\n  9-10"
    assert seq.format_ranges({1, 2, 3, 5, 7, 8}) == "1-3 5 7-8"


def test_settle_seen_reads_the_unseen_sequence_as_nmh_does() -> None:
    """Seen exactly when not in unseen, whatever ``Seen`` says: nmh and
    asimap 2.x agree (new mail is in unseen, put there by inc; ``show``
    takes a message out of unseen and never writes ``Seen``)."""
    both = seq.FileFlags(frozenset(), in_seen=True, in_unseen=True)
    neither = seq.FileFlags(frozenset(), in_seen=False, in_unseen=False)
    unseen_only = seq.FileFlags(frozenset(), in_seen=False, in_unseen=True)
    seen_only = seq.FileFlags(frozenset(), in_seen=True, in_unseen=False)
    assert seq.settle_seen(neither)  # nmh show, mark -sequence unseen -delete
    assert seq.settle_seen(seen_only)
    assert seq.settle_seen(None)  # in no sequence at all
    assert not seq.settle_seen(unseen_only)
    assert not seq.settle_seen(both)
    # Without an unseen sequence, Seen decides.
    parsed = seq.parse("Seen: 1\nflagged: 1-2\n")
    by_number = seq.flags_by_number(parsed, ())
    assert seq.settle_seen(by_number.get(1))
    assert not seq.settle_seen(by_number.get(2))


def test_profile_unseen_sequences_apply_to_their_root(tmp_path: Path) -> None:
    profile = parse_profile("Path: Mail\nUnseen-Sequence: unseen new\n", tmp_path)
    assert profile.path == tmp_path / "Mail"
    (tmp_path / "Mail").mkdir()
    assert unseen_sequences_for(tmp_path / "Mail", profile) == ("unseen", "new")
    assert unseen_sequences_for(tmp_path / "Other", profile) == ("unseen",)


async def test_every_unseen_sequence_is_kept_complementary(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    store = await MHStore.open(
        root, profile=Profile(path=root, unseen=("unseen", "new"))
    )
    try:
        inbox = await store.mailbox("INBOX")
        one = await inbox.append(b"Subject: 1\r\n\r\n")
        await inbox.append(b"Subject: 2\r\n\r\n")
        await inbox.store([one], StoreMode.ADD, ["\\Seen"])
        parsed = seq.parse((root / "inbox" / seq.SEQUENCES_FILE).read_text())
        assert parsed.sequences["unseen"] == parsed.sequences["new"] == {2}
        assert parsed.sequences["Seen"] == {1}
    finally:
        await store.close()


async def test_locking_mode_works_and_leaves_no_lock(tmp_path: Path) -> None:
    import fcntl

    root = tmp_path / "Mail"
    store = await MHStore.open(root, locking=True, profile=NO_PROFILE)
    try:
        inbox = await store.mailbox("INBOX")
        uid = await inbox.append(b"Subject: 1\r\n\r\n")
        await inbox.store([uid], StoreMode.ADD, ["\\Flagged"])
        path = root / "inbox" / seq.SEQUENCES_FILE
        # Nobody holds the lock afterwards (a non-blocking lock succeeds
        # from another process would be the real test; here a fresh fd).
        pid = os.fork()
        if pid == 0:  # child: try to take the lock without waiting
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os._exit(0)
            except OSError:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert "flagged: 1" in path.read_text()
    finally:
        await store.close()
