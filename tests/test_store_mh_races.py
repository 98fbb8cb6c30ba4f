"""Races between the MH store and nmh tools, made deterministic.

Each test puts a real tool action (or nmh's exact syscall, where the
window is microseconds wide) at the one instant the race needs, by
wrapping the store's own file helpers, and checks that nothing is lost
and no UID names two messages.  The 60-second free-running version is
``tests/test_mh_concurrency.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from asimap.store.base import StoreMode
from asimap.store.mh import MHStore, corebase, files, freshness, seqfile, sequences
from asimap.store.mh.profile import Profile
from caps import without_file_override
from test_store_mh_nmh import NMH_BIN, Nmh, mbox_of, message, sequence, uid_flags

pytest_plugins = ["test_store_mh_nmh"]


def inc_overwrite(path: Path, subject: str) -> None:
    """What nmh ``inc`` does to a number it believes free (strace, nmh
    1.8): ``open(O_WRONLY|O_CREAT|O_TRUNC)`` -- no ``O_EXCL`` -- and write."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        os.write(fd, message(subject).replace(b"\r\n", b"\n") + b"extra\n")
    finally:
        os.close(fd)


def tool_before_reads(
    monkeypatch: pytest.MonkeyPatch, actions: dict[int, Callable[[], object]]
) -> Callable[[], int]:
    """Run ``actions[n]`` just before the store's n-th read of
    ``.mh_sequences`` (a rescan's, or a write's before it merges), as a
    tool that wrote between two of our steps.  Returns a function that
    stops it and tells how many reads there were."""
    calls = 0
    read = seqfile.read_unlocked

    def read_after_tool(folder: Path, limit_s: float = 2.0) -> object:
        nonlocal calls
        calls += 1
        action = actions.get(calls)
        if action is not None:
            action()
        return read(folder, limit_s)

    monkeypatch.setattr(seqfile, "read_unlocked", read_after_tool)

    def stop() -> int:
        monkeypatch.setattr(seqfile, "read_unlocked", read)
        return calls

    return stop


async def test_append_overwritten_by_inc_right_after_the_link(
    nmh: Nmh, store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inc overwrites the number between our link and anything we do next:
    our UID must keep naming our message (stored again elsewhere), and
    inc's message gets a UID of its own."""
    inbox = await store.mailbox("INBOX")
    await inbox.append(message("first"))
    claim = files.claim_number

    def claim_then_clobber(
        folder: Path, source: Path, start: int, hook: files.Claim | None = None
    ) -> int:
        number = claim(folder, source, start, hook)
        inc_overwrite(folder / str(number), "incd")
        # inc's sequence write that follows: its message in unseen.
        nmh("mark", "+inbox", str(number), "-sequence", "unseen", "-add")
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
    stop = tool_before_reads(
        monkeypatch,
        {
            1: lambda: nmh("mark", "+inbox", "1", "-sequence", "kwa", "-add"),
            3: lambda: nmh("mark", "+inbox", "2", "-sequence", "kwb", "-add"),
        },
    )
    await inbox.store([uids[2]], StoreMode.ADD, ["\\Flagged"])
    assert stop() >= 3
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
    nmh: Nmh, store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tool that opened ``.mh_sequences`` just before our rename writes
    into the old inode, which has no name: no watcher event.  A waiting
    (IDLE) mailbox must still see the change within about a second."""
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(message(f"m{n}")) for n in range(2)]
    path = nmh.root / "inbox" / ".mh_sequences"

    def lock_unavailable(
        folder: Path, temp: Path, stamp: str, limit_s: float = 2.0
    ) -> tuple[str, int]:
        return seqfile.BUSY, -1  # nmh's lock could not be had: we rename

    monkeypatch.setattr(seqfile, "swap_locked", lock_unavailable)
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


@pytest.fixture(params=[False, True], ids=["nolock", "lockf"])
async def either_store(
    request: pytest.FixtureRequest, nmh: Nmh
) -> AsyncIterator[MHStore]:
    """The store in both modes: without locking, and with
    ``ENABLE_MH_FILE_LOCKING`` (nmh's fcntl lock)."""
    opened = await MHStore.open(
        nmh.root,
        profile=Profile(path=nmh.root, unseen=("unseen",)),
        locking=request.param,
    )
    yield opened
    await opened.close()


async def test_mark_as_read_of_the_newest_message_stands(
    nmh: Nmh, either_store: MHStore, tmp_path: Path
) -> None:
    """nmh's "mark as read" of the newest message, which is in no other
    sequence, takes it out of every sequence: that is a deliberate change,
    not the drop of a tool whose folder scan predates the message."""
    inbox = await either_store.mailbox("INBOX")
    await inbox.append(message("ours"), ["\\Seen"])
    mbox = tmp_path / "chunk.mbox"
    mbox.write_bytes(mbox_of("n1", "n2"))
    nmh("inc", "-file", str(mbox), "-notruncate", "+inbox", "-silent")
    before = await uid_flags(inbox)
    assert [before[uid] for uid in sorted(before)] == [{"\\Seen"}, set(), set()]
    await inbox.claim_recent()  # a session selected INBOX: no Recent left
    nmh("mark", "3", "-sequence", "unseen", "-delete", "+inbox")
    flags = await uid_flags(inbox)
    assert [flags[uid] for uid in sorted(flags)] == [{"\\Seen"}, set(), {"\\Seen"}]
    assert sequence(nmh, "inbox", "unseen") == {2}


async def test_mark_as_read_met_by_our_write_stands(
    nmh: Nmh, store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nmh marks a message read (``mark -sequence unseen -delete``: out of
    ``unseen``, never into ``Seen``) just before a STORE of ours reads the
    file to write it: the merge must keep the message read.  It used to
    merge the two sequences separately, leave the message in neither, and
    the import rescan, finding the file equal to that merge, kept it
    unseen -- the next write put it back into ``unseen``."""
    monkeypatch.setattr(corebase, "RACY_NS", 0)  # no racy-stamp rescan
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(message(f"m{n}")) for n in range(3)]
    await inbox.claim_recent()
    await inbox.states()
    stop = tool_before_reads(
        monkeypatch,
        {1: lambda: nmh("mark", "+inbox", "1", "-sequence", "unseen", "-delete")},
    )
    await inbox.store([uids[2]], StoreMode.ADD, ["\\Flagged"])
    assert stop() >= 1
    await inbox.store([uids[2]], StoreMode.REMOVE, ["\\Flagged"])
    flags = await uid_flags(inbox)
    assert [flags[uid] for uid in uids] == [{"\\Seen"}, set(), set()]
    assert sequence(nmh, "inbox", "unseen") == {2, 3}
    assert sequence(nmh, "inbox", "Seen") == {1}


def test_merge_treats_seen_and_unseen_as_one_flag() -> None:
    """Three-way merge of ``\\Seen``: the tool's change to either sequence
    wins over the database, and the result is complementary."""
    base = {"Seen": {1}, "unseen": {2, 3, 4}, "flagged": {4}}
    # The tool: 2 read (left unseen only), 1 unread (joined unseen only),
    # 5 inc'ed (new, unseen); the database meanwhile flagged 3.
    theirs = {"Seen": {1}, "unseen": {1, 3, 4, 5}, "flagged": {4}}
    ours = {"Seen": {1}, "unseen": {2, 3, 4}, "flagged": {3, 4}}
    merged = sequences.merge_sequences(base, theirs, ours, ("unseen",))
    assert merged == {"Seen": {2}, "unseen": {1, 3, 4, 5}, "flagged": {3, 4}}
    # A change the tool made only to Seen: the unseen sequence still
    # decides, as nmh reads it.  inc clears our Seen of a number it
    # delivers (5, which we had imported before inc listed it in unseen),
    # adds it to unseen, and a mark as read takes it out again: read.
    # 3 joined Seen alone: still in unseen, so still unread.
    base = {"Seen": {1, 5}, "unseen": {2, 3, 4}, "flagged": {4}}
    ours = {"Seen": {1, 5}, "unseen": {2, 3, 4}, "flagged": {3, 4}}
    theirs = {"Seen": {1, 3}, "unseen": {2, 3, 4}, "flagged": {4}}
    merged = sequences.merge_sequences(base, theirs, ours, ("unseen",))
    assert merged["Seen"] == {1, 5} and merged["unseen"] == {2, 3, 4}
    # Untouched by the tool: ours stands (the database read message 4).
    ours = {"Seen": {1, 4}, "unseen": {2, 3}, "flagged": {4}}
    merged = sequences.merge_sequences(base, base, ours, ("unseen",))
    assert merged == ours


async def test_append_overwritten_by_inc_then_unlinked_is_put_back(
    nmh: Nmh, either_store: MHStore
) -> None:
    """inc overwrites the number of our acknowledged APPEND, and nmh's
    ``rmm -unlink`` removes inc's message (found by its Message-ID) before
    any rescan of ours: our message must survive, same UID, same bytes."""
    inbox = await either_store.mailbox("INBOX")
    first = await inbox.append(message("first"))
    ours = message("ours")
    uid = await inbox.append(ours, ["\\Flagged"])
    inc_overwrite(nmh.root / "inbox" / "2", "incd")
    [number] = nmh("pick", "+inbox", "--subject", "incd", "-list").split()
    nmh("rmm", "-unlink", number, "+inbox")
    states = await uid_flags(inbox)
    assert sorted(states) == [first, uid]
    assert states[uid] == {"\\Flagged"}
    assert (await inbox.message(uid)).raw == ours
    scanned = nmh("scan", "+inbox", "-format", "%(msg) %{subject}").split("\n")
    assert sorted(line.split()[1] for line in scanned if line) == ["first", "ours"]
    assert sequence(nmh, "inbox", "flagged") == {3}


async def test_overwritten_append_outlives_its_time(
    nmh: Nmh, either_store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept bytes of an APPEND expire after a while; but if inc has
    overwritten the APPEND in place by then (no directory change, and no
    sequence change yet: inc may still be waiting for the lock), the
    entry must not be dropped before the rescan that puts it back."""
    monkeypatch.setattr(corebase, "RACY_NS", 0)  # no racy-stamp rescan
    either_store.core.fresh.lifetime_s = 0.2
    inbox = await either_store.mailbox("INBOX")
    ours = message("ours")
    uid = await inbox.append(ours, ["\\Seen"])
    inc_overwrite(nmh.root / "inbox" / "1", "incd")
    await asyncio.sleep(0.4)  # the entry's time is up
    await inbox.append(message("later"))  # its job forgets expired entries
    states = await uid_flags(inbox)
    assert (await inbox.message(uid)).raw == ours
    assert states[uid] == {"\\Seen"}
    subjects = []
    for other in states:
        raw = (await inbox.message(other)).raw
        subjects.append(raw.split(b"Subject: ")[1].split(b"\n")[0].strip())
    assert sorted(subjects) == [b"incd", b"later", b"ours"]


async def test_inc_between_our_listing_and_our_read_stays_unseen(
    nmh: Nmh, store: MHStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """inc writes its message file just after a rescan listed the folder
    and adds it to ``unseen`` before the rescan reads ``.mh_sequences``:
    the file names a number we have no row for.  Our write must keep it in
    ``unseen`` (it used to drop it, so nmh's "mark as read" that followed
    found nothing to remove and the message came back unread)."""
    monkeypatch.setattr(corebase, "RACY_NS", 0)  # no racy-stamp rescan
    inbox = await store.mailbox("INBOX")
    await inbox.append(message("ours"), ["\\Seen"])
    await inbox.claim_recent()
    mbox = tmp_path / "chunk.mbox"
    mbox.write_bytes(mbox_of("incd"))
    listing = files.message_numbers
    calls = 0

    def listing_then_inc(folder: Path) -> object:
        nonlocal calls
        found = listing(folder)
        calls += 1
        if calls == 1:
            nmh("inc", "-file", str(mbox), "-notruncate", "+inbox", "-silent")
        return found

    nmh("mark", "+inbox", "1", "-sequence", "kw", "-add")  # a rescan follows
    monkeypatch.setattr(files, "message_numbers", listing_then_inc)
    await inbox.states()
    monkeypatch.setattr(files, "message_numbers", listing)
    assert calls >= 1
    assert sequence(nmh, "inbox", "unseen") == {2}
    nmh("mark", "+inbox", "2", "-sequence", "unseen", "-delete")
    flags = await uid_flags(inbox)
    assert sorted(flags.values(), key=len) == [{"\\Seen"}, {"\\Seen", "kw"}]


async def test_nmh_meeting_our_rewrite_reopens_the_new_file(
    nmh: Nmh, store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An nmh ``mark`` that opens ``.mh_sequences`` while we rewrite it
    must act on the file we leave, not on the one we replace: otherwise
    its change lands in an unnamed inode and the file lacks it until our
    next look -- and any tool reading the file meanwhile acts on a stale
    view (issue 10 point 12).  We hold nmh's lock on the old file until
    our rename, so ``mark`` fails its lock, reopens the path a second
    later (nmh ``lkopen_fcntl``) and changes the new file."""
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(message(f"m{n}")) for n in range(2)]
    await inbox.claim_recent()
    await inbox.states()
    folder = nmh.root / "inbox"
    replace = os.replace
    tools: list[subprocess.Popen[bytes]] = []

    def replace_while_nmh_runs(source: Path, target: Path, **kwargs: Any) -> None:
        # (kwargs: src_dir_fd/dst_dir_fd, the folder's descriptor.)
        if Path(target).name == ".mh_sequences" and not tools:
            argv = ["+inbox", "1", "-sequence", "unseen", "-delete"]
            tools.append(subprocess.Popen([str(NMH_BIN / "mark"), *argv], env=nmh.env))
            time.sleep(0.5)  # mark opens the file and tries nmh's lock
        replace(source, target, **kwargs)

    monkeypatch.setattr(os, "replace", replace_while_nmh_runs)
    await inbox.store([uids[1]], StoreMode.ADD, ["\\Flagged"])
    monkeypatch.setattr(os, "replace", replace)
    assert tools and tools[0].wait(timeout=30) == 0
    # The file as nmh left it has both changes, before any look of ours.
    parsed = sequences.parse((folder / ".mh_sequences").read_text())
    assert parsed.sequences["unseen"] == {2}
    assert parsed.sequences["flagged"] == {2}
    flags = await uid_flags(inbox)
    assert [flags[uid] for uid in uids] == [{"\\Seen"}, {"\\Flagged"}]


async def test_mark_as_read_of_a_message_inc_wrote_over_ours_stands(
    nmh: Nmh, either_store: MHStore
) -> None:
    """inc writes its message over the number of our newest APPEND (same
    inode), and nmh marks inc's message read before our next look.  Our
    message is put back elsewhere; inc's is read: its number leaving every
    sequence is nmh's doing, not the drop of a tool that never saw our
    file (the inode is ours, the file is not)."""
    inbox = await either_store.mailbox("INBOX")
    first = await inbox.append(message("first"), ["\\Seen"])
    ours = await inbox.append(message("ours"))
    await inbox.claim_recent()
    await inbox.states()
    inc_overwrite(nmh.root / "inbox" / "2", "incd")
    nmh("mark", "+inbox", "2", "-sequence", "unseen", "-delete")
    flags = await uid_flags(inbox)
    [incd] = [uid for uid in flags if uid not in (first, ours)]
    assert b"Subject: incd" in (await inbox.message(incd)).raw
    assert b"Subject: ours" in (await inbox.message(ours)).raw
    assert (flags[first], flags[ours], flags[incd]) == ({"\\Seen"}, set(), {"\\Seen"})
    assert sequence(nmh, "inbox", "unseen") == {3}


def _locked_by_another_process(folder: Path) -> bool:
    """Whether a process other than the asking one sees a lock on the
    folder's sequence file (POSIX locks never conflict within a process)."""
    code = (
        "import sys; from pathlib import Path; "
        "from asimap.store.mh import seqfile; "
        "print(seqfile.held_by_other(Path(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip() == "True"


def test_checking_a_watcher_event_keeps_nmh_lock(tmp_path: Path) -> None:
    """With ``ENABLE_MH_FILE_LOCKING`` a job holds nmh's lock while it
    checks the watcher's events; reading ``.mh_sequences`` for that check
    through a descriptor of its own and closing it dropped the lock (POSIX
    record locks belong to the process and the file), and nmh then wrote
    under the job, which rewrote the file over it (flag changes of
    ``mark`` lost in the concurrency test)."""
    (tmp_path / ".mh_sequences").write_text("unseen: 1\n")
    with seqfile.locked(tmp_path, True):
        assert _locked_by_another_process(tmp_path)
        assert not freshness._sequences_match(tmp_path, 0x2, "flagged: 1\n", None)
        assert _locked_by_another_process(tmp_path)


async def test_file_inc_wrote_over_an_expunged_message_is_new_mail(
    nmh: Nmh, store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inc writes over our message's number just after an EXPUNGE of it
    checked the folder: the file stays (it is inc's), and it must come in
    as new mail -- not with the flags of the message we expunged, whose
    \\Deleted would let the next EXPUNGE remove inc's message."""
    inbox = await store.mailbox("INBOX")
    keep = await inbox.append(message("keep"), ["\\Seen"])
    doomed = await inbox.append(message("doomed"), ["\\Flagged", "\\Seen"])
    await inbox.claim_recent()
    await inbox.store([doomed], StoreMode.ADD, ["\\Deleted"])
    core = store.core
    ensure = core._ensure_current

    def ensure_then_inc(mailbox_id: int, folder: Path) -> None:
        ensure(mailbox_id, folder)
        inc_overwrite(folder / "2", "incd")

    monkeypatch.setattr(core, "_ensure_current", ensure_then_inc)
    assert await inbox.expunge() == (doomed,)
    monkeypatch.setattr(core, "_ensure_current", ensure)
    flags = await uid_flags(inbox)
    [incd] = [uid for uid in flags if uid != keep]
    assert b"Subject: incd" in (await inbox.message(incd)).raw
    assert flags[incd] == frozenset()
    assert sequence(nmh, "inbox", "unseen") == {2}
    assert await inbox.expunge() == ()


def test_a_sequence_file_we_may_not_write_is_still_replaced(tmp_path: Path) -> None:
    """A ``.mh_sequences`` of another owner or mode 0444 in a folder we may
    write: nmh's lock cannot be taken on it (that needs a descriptor open
    for writing), and it used to make every flag change and APPEND answer
    NO [NOPERM].  No tool of the mail's owner can write it either, so it is
    replaced by rename as before."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    target = folder / seqfile.SEQUENCES_FILE
    target.write_text("unseen: 1\n")
    target.chmod(0o444)
    stamp = seqfile.stamp_of(os.stat(target))
    temp = seqfile.write_temp(folder, "unseen: 1-2\n")
    with without_file_override():
        outcome, fd = seqfile.swap_locked(folder, temp, stamp)
    assert outcome == seqfile.REPLACED
    os.close(fd)
    assert target.read_text() == "unseen: 1-2\n"
    # A file that changed since it was read is still not replaced.
    target.chmod(0o444)
    temp = seqfile.write_temp(folder, "unseen: 3\n")
    with without_file_override():
        outcome, fd = seqfile.swap_locked(folder, temp, stamp)
    assert (outcome, fd) == (seqfile.MOVED, -1)
    assert target.read_text() == "unseen: 1-2\n"


#: Holds a shared fcntl lock on a sequence file until told to let go (a
#: reader such as ``scan``; a lock of another process: POSIX locks never
#: conflict within one).
_READ_LOCK_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.lockf(fd, fcntl.LOCK_SH)
print("locked", flush=True)
sys.stdin.readline()
"""


def _sleeping(pid: int) -> bool:
    """True while process ``pid`` is in ``nanosleep`` / ``clock_nanosleep``
    (x86-64 and aarch64 numbers): nmh sleeps a second after a lock it
    could not get (``lkopen_fcntl``)."""
    try:
        call = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    return call in ("35", "230", "101", "115")


@contextlib.contextmanager
def inc_sleeping_at_its_lock(
    nmh: Nmh, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``inc`` of one message into ``inbox`` and hold it where it has
    written the message file but not yet its lock on ``.mh_sequences``:
    another process holds a reader's lock until inc failed its write lock
    and sleeps a second before trying again (``lkopen_fcntl``).  Yields
    inc, sleeping; the caller then has about a second."""
    folder = nmh.root / "inbox"
    mbox = tmp_path / "chunk.mbox"
    mbox.write_bytes(mbox_of("incd"))
    before = set(files.message_numbers(folder))
    holder = subprocess.Popen(
        [sys.executable, "-c", _READ_LOCK_HOLDER, str(folder / ".mh_sequences")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline() == b"locked\n"
        inc = subprocess.Popen(
            [str(NMH_BIN / "inc"), "-file", str(mbox), "-notruncate", "+inbox"],
            env=nmh.env,
            stdout=subprocess.DEVNULL,
        )
        # inc read the file (a shared lock too), wrote its message, failed
        # to take its write lock and sleeps before trying again.
        deadline = time.monotonic() + 30
        while not (_sleeping(inc.pid) and set(files.message_numbers(folder)) - before):
            assert inc.poll() is None and time.monotonic() < deadline
            time.sleep(0.001)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    try:
        yield inc
    finally:
        if inc.poll() is None:
            inc.wait(timeout=30)


async def test_mark_as_read_after_inc_cleared_our_seen_stands(
    nmh: Nmh, either_store: MHStore, tmp_path: Path
) -> None:
    """inc writes its message file, then cannot lock ``.mh_sequences``
    and sleeps a second; meanwhile we import the message -- in no unseen
    sequence yet, so read -- and write it into ``Seen``.  inc then clears
    every sequence of the number it delivered (nmh ``clear_msg_flags``),
    adds it to ``unseen``, and nmh marks it read, all before our next
    look: we found it in neither sequence where we had left it in
    ``Seen``, took that for a removal from ``Seen``, and put it back into
    ``unseen`` -- nmh's "mark as read" undone (issue 10 point 12, the
    concurrency test's loss with ENABLE_MH_FILE_LOCKING)."""
    inbox = await either_store.mailbox("INBOX")
    first = await inbox.append(message("first"), ["\\Seen"])
    await inbox.claim_recent()
    await inbox.states()
    with inc_sleeping_at_its_lock(nmh, tmp_path) as inc:
        # Our look while inc sleeps: message 2 is in no unseen sequence yet.
        flags = await uid_flags(inbox)
        assert inc.poll() is None, "inc finished before our look: no race"
        [incd] = [uid for uid in flags if uid != first]
        assert flags[incd] == {"\\Seen"}
        assert sequence(nmh, "inbox", "Seen") == {1, 2}
    assert inc.returncode == 0
    # inc cleared our Seen of 2 and put it in unseen: new mail after all.
    assert sequence(nmh, "inbox", "Seen") == {1}
    assert sequence(nmh, "inbox", "unseen") == {2}
    nmh("mark", "+inbox", "2", "-sequence", "unseen", "-delete")
    flags = await uid_flags(inbox)
    assert flags == {first: {"\\Seen"}, incd: {"\\Seen"}}
    assert sequence(nmh, "inbox", "unseen") == set()
    assert sequence(nmh, "inbox", "Seen") == {1, 2}


async def test_flag_stored_while_inc_waits_for_its_lock_stays(
    nmh: Nmh, either_store: MHStore, tmp_path: Path
) -> None:
    """An IMAP client flags a message inc delivered while inc still waits
    for its lock on ``.mh_sequences``; inc then clears every sequence of
    that number (nmh ``clear_msg_flags``) before adding it to ``unseen``.
    The acknowledged STORE must stand -- and the message is new mail,
    unseen, as inc says."""
    inbox = await either_store.mailbox("INBOX")
    first = await inbox.append(message("first"), ["\\Seen"])
    await inbox.claim_recent()
    await inbox.states()
    with inc_sleeping_at_its_lock(nmh, tmp_path) as inc:
        flags = await uid_flags(inbox)
        [incd] = [uid for uid in flags if uid != first]
        await inbox.store([incd], StoreMode.ADD, ["\\Flagged", "work"])
        assert inc.poll() is None, "inc finished before our STORE: no race"
        assert sequence(nmh, "inbox", "flagged") == {2}
    assert inc.returncode == 0
    assert sequence(nmh, "inbox", "flagged") == set()  # inc's clearing
    flags = await uid_flags(inbox)
    assert flags == {first: {"\\Seen"}, incd: {"\\Flagged", "work"}}
    assert sequence(nmh, "inbox", "flagged") == {2}
    assert sequence(nmh, "inbox", "work") == {2}
    assert sequence(nmh, "inbox", "unseen") == {2}
    # Later changes by nmh to that message are its own again.
    nmh("mark", "+inbox", "2", "-sequence", "flagged", "-delete")
    flags = await uid_flags(inbox)
    assert flags[incd] == {"work"}


async def test_last_write_attempt_keeps_a_tool_change_made_since_its_read(
    nmh: Nmh, store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without locking, a write that met a busy file at every attempt
    writes anyway the last time, and watches the file it replaces for a
    tool's write.  A tool change made between that attempt's read and the
    rename is in the replaced file already: it must be folded in, not
    taken for the state we merged from."""
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(message(f"m{n}")) for n in range(2)]
    await inbox.claim_recent()
    await inbox.states()
    swap, read = seqfile.swap_locked, seqfile.read_unlocked
    tools = 0

    def busy(*args: object, **kwargs: object) -> tuple[str, int]:
        return seqfile.BUSY, -1  # a tool held its lock at every attempt

    def tool_then_read(folder: Path, limit_s: float = 2.0) -> object:
        nonlocal tools
        if limit_s == 0:  # the last attempt's look just before it renames
            tools += 1
            nmh("mark", "+inbox", "1", "-sequence", "unseen", "-delete")
        return read(folder, limit_s)

    monkeypatch.setattr(seqfile, "swap_locked", busy)
    monkeypatch.setattr(seqfile, "read_unlocked", tool_then_read)
    await inbox.store([uids[1]], StoreMode.ADD, ["\\Flagged"])
    monkeypatch.setattr(seqfile, "swap_locked", swap)
    monkeypatch.setattr(seqfile, "read_unlocked", read)
    assert tools == 1
    flags = await uid_flags(inbox)
    assert flags == {uids[0]: {"\\Seen"}, uids[1]: {"\\Flagged"}}
    assert sequence(nmh, "inbox", "unseen") == {2}
    assert sequence(nmh, "inbox", "flagged") == {2}


async def test_inc_over_our_append_between_our_listing_and_our_read(
    nmh: Nmh, store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inc writes over our newest APPEND just after a rescan listed the
    folder, and its sequence write (every sequence of the number cleared,
    the number put in ``unseen``) lands before the rescan reads
    ``.mh_sequences``.  Read against the listing, that was the client's
    acknowledged ``\\Flagged`` removed from our message, and the put-back
    that followed stored it without (the unlocked mode's loss in the
    concurrency test).  The APPEND keeps its UID, bytes and flags; inc's
    message is new mail."""
    monkeypatch.setattr(corebase, "RACY_NS", 0)  # no racy-stamp rescan
    inbox = await store.mailbox("INBOX")
    first = await inbox.append(message("first"), ["\\Seen"])
    ours = await inbox.append(message("ours"), ["\\Flagged"])
    await inbox.claim_recent()
    await inbox.states()
    listing = files.message_numbers
    calls = 0

    def listing_then_inc(folder: Path) -> object:
        nonlocal calls
        found = listing(folder)
        calls += 1
        if calls == 1:
            inc_overwrite(folder / "2", "incd")
            # inc's sequence write: 2 cleared of every sequence, then unseen.
            nmh("mark", "+inbox", "2", "-sequence", "flagged", "-delete")
            nmh("mark", "+inbox", "2", "-sequence", "unseen", "-add")
        return found

    nmh("mark", "+inbox", "1", "-sequence", "kw", "-add")  # a rescan follows
    monkeypatch.setattr(files, "message_numbers", listing_then_inc)
    await inbox.states()
    monkeypatch.setattr(files, "message_numbers", listing)
    assert calls >= 1
    flags = await uid_flags(inbox)
    [incd] = [uid for uid in flags if uid not in (first, ours)]
    assert flags == {first: {"\\Seen", "kw"}, ours: {"\\Flagged"}, incd: set()}
    assert b"Subject: ours" in (await inbox.message(ours)).raw
    assert b"Subject: incd" in (await inbox.message(incd)).raw
    assert sequence(nmh, "inbox", "flagged") == {3}
    assert sequence(nmh, "inbox", "unseen") == {2, 3}


async def test_mark_as_read_of_inc_message_over_our_append_during_our_write(
    nmh: Nmh, store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without locking: while an APPEND of ours writes the sequences, inc
    has written over the number it just linked, listed that number in
    ``unseen``, and nmh has marked inc's message read.  The write used to
    take the number for our row's (unseen, flagged) and put it back into
    ``unseen``: nmh's "mark as read" undone.  What the file says of a
    number inc overwrote is inc's; our APPEND is put back with its flags
    by the next look."""
    inbox = await store.mailbox("INBOX")
    first = await inbox.append(message("first"), ["\\Seen"])
    await inbox.claim_recent()
    await inbox.states()
    folder = nmh.root / "inbox"
    read = seqfile.read_unlocked
    tools = 0

    def tools_then_read(at: Path, limit_s: float = 2.0) -> object:
        nonlocal tools
        if (folder / "2").exists() and not tools:
            tools += 1
            inc_overwrite(folder / "2", "incd")
            # inc's sequence write (2 cleared, in unseen), then nmh reads it.
            nmh("mark", "+inbox", "2", "-sequence", "unseen", "-add")
            nmh("mark", "+inbox", "2", "-sequence", "unseen", "-delete")
        return read(at, limit_s)

    monkeypatch.setattr(seqfile, "read_unlocked", tools_then_read)
    ours = await inbox.append(message("ours"), ["\\Flagged"])
    monkeypatch.setattr(seqfile, "read_unlocked", read)
    assert tools == 1
    assert 2 not in sequence(nmh, "inbox", "unseen")
    flags = await uid_flags(inbox)
    [incd] = [uid for uid in flags if uid not in (first, ours)]
    assert flags == {first: {"\\Seen"}, ours: {"\\Flagged"}, incd: {"\\Seen"}}
    assert b"Subject: ours" in (await inbox.message(ours)).raw
    assert b"Subject: incd" in (await inbox.message(incd)).raw
    assert sequence(nmh, "inbox", "unseen") == {3}
