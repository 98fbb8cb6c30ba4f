"""Races between the MH store and nmh tools, made deterministic.

Each test puts a real tool action (or nmh's exact syscall, where the
window is microseconds wide) at the one instant the race needs, by
wrapping the store's own file helpers, and checks that nothing is lost
and no UID names two messages.  The 60-second free-running version is
``tests/test_mh_concurrency.py``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from asimap.store.base import StoreMode
from asimap.store.mh import MHStore, corebase, files, seqfile, sequences
from test_store_mh_nmh import Nmh, message, sequence, uid_flags

pytest_plugins = ["test_store_mh_nmh"]


def inc_overwrite(path: Path, subject: str) -> None:
    """What nmh ``inc`` does to a number it believes free (strace, nmh
    1.8): ``open(O_WRONLY|O_CREAT|O_TRUNC)`` -- no ``O_EXCL`` -- and write."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        os.write(fd, message(subject).replace(b"\r\n", b"\n") + b"extra\n")
    finally:
        os.close(fd)


async def test_append_overwritten_by_inc_right_after_the_link(
    nmh: Nmh, store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inc overwrites the number between our link and anything we do next:
    our UID must keep naming our message (stored again elsewhere), and
    inc's message gets a UID of its own."""
    inbox = await store.mailbox("INBOX")
    await inbox.append(message("first"))
    claim = files.claim_number

    def claim_then_clobber(folder: Path, source: Path, start: int) -> int:
        number = claim(folder, source, start)
        inc_overwrite(folder / str(number), "incd")
        return number

    monkeypatch.setattr(files, "claim_number", claim_then_clobber)
    uid = await inbox.append(message("ours"), ["\\Flagged"])
    monkeypatch.setattr(files, "claim_number", claim)

    states = await uid_flags(inbox)
    assert states[uid] == {"\\Flagged"}
    assert b"Subject: ours" in (await inbox.message(uid)).raw
    newest = max(states)
    assert newest > uid and states[newest] == frozenset()
    assert b"Subject: incd" in (await inbox.message(newest)).raw
    # nmh agrees: both messages are there, ours still flagged.
    scanned = nmh("scan", "+inbox", "-format", "%(msg) %{subject}").split("\n")
    by_subject = {line.split()[1]: int(line.split()[0]) for line in scanned if line}
    assert set(by_subject) == {"first", "ours", "incd"}
    assert sequence(nmh, "inbox", "flagged") == {by_subject["ours"]}


async def test_append_overwritten_by_inc_later_is_put_back(
    nmh: Nmh, store: MHStore
) -> None:
    """inc overwrites an APPEND's number after we recorded it: the next
    look puts ours back under a fresh number with its UID and flags."""
    inbox = await store.mailbox("INBOX")
    uid = await inbox.append(message("ours"), ["\\Answered", "\\Seen"])
    inc_overwrite(nmh.root / "inbox" / "1", "incd")
    # inc's last step: its new number joins the unseen sequence.
    nmh("mark", "+inbox", "1", "-sequence", "unseen", "-add")
    states = await uid_flags(inbox)
    assert states[uid] == {"\\Answered", "\\Seen"}
    assert b"Subject: ours" in (await inbox.message(uid)).raw
    [other] = [u for u in states if u != uid]
    assert b"Subject: incd" in (await inbox.message(other)).raw
    assert states[other] == frozenset()
    # An expunge of ours removes ours, not inc's.
    await inbox.store([uid], StoreMode.ADD, ["\\Deleted"])
    assert await inbox.expunge([uid]) == (uid,)
    assert list(await uid_flags(inbox)) == [other]


async def test_copy_of_a_young_file_is_not_a_hard_link(
    nmh: Nmh, store: MHStore
) -> None:
    """A file inc may still overwrite in place must not share its inode
    with the copy (the overwrite would change the copy too)."""
    inbox = await store.mailbox("INBOX")
    await store.create("Other")
    other = await store.mailbox("Other")
    uid = await inbox.append(message("young"))
    [(_, copied)] = await inbox.copy_to([uid], other)
    source = os.stat(nmh.root / "inbox" / "1")
    target = os.stat(nmh.root / "Other" / "1")
    assert source.st_ino != target.st_ino
    inc_overwrite(nmh.root / "inbox" / "1", "incd")
    assert b"Subject: young" in (await other.message(copied)).raw


async def test_tool_change_met_by_an_import_rescan_is_not_dropped(
    nmh: Nmh, store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write merges a tool's change and imports it with a rescan; that
    rescan's own write meets a *second* tool change.  The second must be
    imported too, or the next write (base: the file, ours: a database
    without it) drops it."""
    monkeypatch.setattr(corebase, "RACY_NS", 0)  # no racy-stamp safety net
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(message(f"m{n}")) for n in range(3)]
    await inbox.states()
    read = seqfile.read_unlocked
    calls = 0
    actions: dict[int, Callable[[], object]] = {
        1: lambda: nmh("mark", "+inbox", "1", "-sequence", "kwa", "-add"),
        3: lambda: nmh("mark", "+inbox", "2", "-sequence", "kwb", "-add"),
    }

    def read_after_tool(folder: Path, limit_s: float = 2.0) -> object:
        nonlocal calls
        calls += 1
        action = actions.get(calls)
        if action is not None:
            action()
        return read(folder, limit_s)

    monkeypatch.setattr(seqfile, "read_unlocked", read_after_tool)
    await inbox.store([uids[2]], StoreMode.ADD, ["\\Flagged"])
    monkeypatch.setattr(seqfile, "read_unlocked", read)
    assert calls >= 3
    await inbox.store([uids[2]], StoreMode.REMOVE, ["\\Flagged"])
    flags = await uid_flags(inbox)
    assert "kwa" in flags[uids[0]]
    assert "kwb" in flags[uids[1]]
    assert sequence(nmh, "inbox", "kwa") == {1}
    assert sequence(nmh, "inbox", "kwb") == {2}


def test_put_back_ignores_numbers_the_tools_added() -> None:
    """A stale ``mark`` dropped 96-102 (never listed), then ``inc`` added
    103: the drop is still recognised (the 60 s test's losing case)."""
    base = sequences.parse(
        "Seen: 90 100\nflagged: 84 96 101\nunseen: 84 95-99 101-102\n"
    )
    theirs = sequences.parse("Seen: 90\nflagged: 84\nunseen: 84 95 103\n")
    restored = sequences.restore_unseen_by_tool(base, theirs, range(96, 104))
    assert restored.sequences["Seen"] == {90, 100}
    assert restored.sequences["flagged"] == {84, 96, 101}
    assert restored.sequences["unseen"] == {84, 95, 96, 97, 98, 99, 101, 102, 103}
    # A tool that kept a higher number of base saw the folder: its
    # removal of a lower one stands.
    kept = sequences.parse("Seen: 90\nflagged: 84\nunseen: 84 95 102-103\n")
    assert sequences.restore_unseen_by_tool(base, kept, range(96, 104)) == kept


async def test_drop_by_a_stale_tool_then_inc_keeps_our_flags(
    nmh: Nmh, store: MHStore
) -> None:
    """The file as nmh leaves it after a ``mark`` whose folder listing
    predates our two newest messages, followed by an ``inc``: our
    messages keep their flags, in the database and in the file."""
    inbox = await store.mailbox("INBOX")
    old = await inbox.append(message("old"), ["\\Seen"])
    ours = [await inbox.append(message(f"new{n}"), ["\\Flagged"]) for n in range(2)]
    await inbox.states()
    folder = nmh.root / "inbox"
    inc_overwrite(folder / "4", "incd")
    text = "Seen: 1\nunseen: 4\n"  # what mark (saw 1) and then inc wrote
    fd = os.open(folder / ".mh_sequences", os.O_RDWR)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    finally:
        os.close(fd)
    flags = await uid_flags(inbox)
    assert flags[old] == {"\\Seen"}
    assert [flags[uid] for uid in ours] == [{"\\Flagged"}] * 2
    assert sequence(nmh, "inbox", "flagged") == {2, 3}
    assert sequence(nmh, "inbox", "unseen") == {2, 3, 4}


async def test_nmh_write_into_a_replaced_inode_wakes_a_waiter(
    nmh: Nmh, store: MHStore
) -> None:
    """A tool that opened ``.mh_sequences`` just before our rename writes
    into the old inode, which has no name: no watcher event.  A waiting
    (IDLE) mailbox must still see the change within about a second."""
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(message(f"m{n}")) for n in range(2)]
    path = nmh.root / "inbox" / ".mh_sequences"
    fd = os.open(path, os.O_RDWR)  # the tool opens the file ...
    try:
        await inbox.store([uids[1]], StoreMode.ADD, ["\\Flagged"])  # we rename
        await asyncio.sleep(0.3)  # the watcher's events for our rename pass
        assert os.fstat(fd).st_ino != os.stat(path).st_ino
        highest = (await inbox.status()).highestmodseq
        waiter = asyncio.create_task(inbox.wait_for_change(highest))
        await asyncio.sleep(0.2)  # the waiter polled and now waits (IDLE)
        # ... then locks, reads and rewrites it in place, as nmh mark does.
        fcntl.lockf(fd, fcntl.LOCK_EX)
        old = os.pread(fd, 65536, 0).decode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, (old + "kw: 1\n").encode(), 0)
    finally:
        os.close(fd)
    async with asyncio.timeout(1.5):
        await waiter
    assert "kw" in (await uid_flags(inbox))[uids[0]]
    assert sequence(nmh, "inbox", "kw") == {1}
