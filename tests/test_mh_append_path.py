"""The cost of an APPEND to an MH folder: what one APPEND (and one
MULTIAPPEND) writes, and that it never rescans the folder.

A MULTIAPPEND (RFC 3502) is one job of the store: its messages are
written and fsynced, recorded as pending, linked, and recorded in one
SQLite transaction with one ``.mh_sequences`` rewrite and one directory
fsync -- and if any of them cannot be stored, none is (RFC 3502 section
6.3.11), with no file left behind for a rescan or an nmh tool to find,
even when the worker is killed part-way.  Rewrites, directory syncs and
COMMITs are counted by wrapping the functions that do them.

A migration APPENDs thousands of messages one after another; if any of
them rescans the folder (a listing and a row comparison of every
message), the cost of one APPEND grows with the folder.  Each APPEND
replaces ``.mh_sequences`` and keeps the replaced inode open for a while
(:class:`asimap.store.mh.seqfile.OrphanWatch`), and the oldest of those
are closed as new ones come: that close must not read as a change made
by an MH tool.  The store runs in this process with its inotify watcher,
and rescans are counted by wrapping the reconciler's rescan.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from asimap.store.base import NewMessage, OverQuota, QuotaLimits, StoreMode
from asimap.store.mh import MHStore, files, seqfile
from asimap.store.mh.corebase import KeywordRefused
from asimap.store.mh.db import DB_NAME
from asimap.store.mh.profile import Profile
from asimap.store.mh.reconcile import Reconciler
from asimap.store.mh.space import DiskFull
from conftest import require_tool

NO_PROFILE = Profile(path=None, unseen=("unseen",))

#: Messages per MULTIAPPEND in these tests.
N = 12


def message(n: int) -> bytes:
    return f"Subject: m{n}\r\nFrom: a@example.org\r\n\r\nbody {n}\r\n".encode()


@contextmanager
def counted_rescans(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The mailbox ids rescanned while the block runs (any thread)."""
    rescans: list[int] = []
    lock = threading.Lock()
    original = Reconciler._rescan

    def wrapper(self: Reconciler, mailbox_id: int, *args: Any, **kwargs: Any) -> Any:
        with lock:
            rescans.append(mailbox_id)
        return original(self, mailbox_id, *args, **kwargs)

    monkeypatch.setattr(Reconciler, "_rescan", wrapper)
    yield rescans
    monkeypatch.undo()


@pytest.fixture(params=[False, True], ids=["nolock", "lockf"])
async def watched(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MHStore]:
    """A store with its inotify watcher, in both locking modes."""
    store = await MHStore.open(
        tmp_path / "Mail", profile=NO_PROFILE, locking=request.param
    )
    try:
        for _ in range(100):  # the watcher starts on the event loop
            if store.core.freshness.trusted:
                break
            await asyncio.sleep(0.02)
        assert store.core.freshness.trusted
        yield store
    finally:
        await store.close()


async def test_appends_past_the_orphan_limit_never_rescan(
    watched: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More APPENDs than replaced sequence inodes are kept, and some after
    the kept ones expired: not one rescan once the folder is current."""
    store = watched
    store.core.orphans.limit = 3
    inbox = await store.mailbox("INBOX")
    await inbox.append(message(0))  # the folder is current from here on
    with counted_rescans(monkeypatch) as rescans:
        for n in range(1, 10):
            await inbox.append(message(n))
        store.core.orphans.lifetime_s = 0.0
        await asyncio.sleep(0.05)
        for n in range(10, 14):
            await inbox.append(message(n))
    assert rescans == []
    assert (await inbox.status()).messages == 14
    # The replaced inodes let go are closed (off the store's thread), not
    # leaked: at most the kept ones stay open.
    for _ in range(100):
        if replaced_sequence_files_open() <= store.core.orphans.limit:
            break
        await asyncio.sleep(0.02)
    assert replaced_sequence_files_open() <= store.core.orphans.limit


def replaced_sequence_files_open() -> int:
    """This process's descriptors on ``.mh_sequences`` inodes that a
    rename replaced."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.endswith(".mh_sequences (deleted)")
    return count


@contextmanager
def counted_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, list[str]]]:
    """Rewrites of ``.mh_sequences`` (however written: rename or in
    place), directory fsyncs, and SQLite COMMITs, from any thread."""
    seen: dict[str, list[str]] = {"rewrites": [], "dir_syncs": []}
    lock = threading.Lock()

    def wrap(module: Any, name: str, bucket: str) -> None:
        original: Callable[..., Any] = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                seen[bucket].append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for name in ("write_atomically", "write_temp", "write_locked"):
        wrap(seqfile, name, "rewrites")
    wrap(files, "fsync_dir", "dir_syncs")
    yield seen
    monkeypatch.undo()


async def commits_during(store: MHStore, action: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``action`` (a coroutine function) and count the COMMITs the
    store's database connection made meanwhile."""
    statements: list[str] = []
    conn = store.core.conn
    await store.call(lambda: conn.set_trace_callback(statements.append))
    try:
        result = await action()
    finally:
        await store.call(lambda: conn.set_trace_callback(None))
    return result, sum(s.strip().upper().startswith("COMMIT") for s in statements)


def files_in(folder: Path) -> list[str]:
    """Message numbers and our temporary files in ``folder``."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name.isdigit() or p.name.startswith(files.TEMP_PREFIX)
    )


def batch(first: int, flags: list[frozenset[str]] | None = None) -> list[NewMessage]:
    return [
        NewMessage(message(first + i), flags[i] if flags else frozenset())
        for i in range(N)
    ]


async def test_a_multiappend_is_one_write(
    watched: MHStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One sequence rewrite, one directory fsync and two COMMITs (the
    pending record of the files, then the rows) for all N messages; every
    one durable and readable after a reopen, with its flags, as
    consecutive UIDs."""
    store = watched
    inbox = await store.mailbox("INBOX")
    await inbox.append(message(0))
    flags = [frozenset({"\\Flagged"}) if i % 3 == 0 else frozenset() for i in range(N)]
    with counted_writes(monkeypatch) as seen:
        uids, commits = await commits_during(
            store, lambda: inbox.append_all(batch(100, flags))
        )
    assert len(seen["rewrites"]) == 1, seen
    assert len(seen["dir_syncs"]) == 1, seen
    assert commits == 2
    assert uids == list(range(uids[0], uids[0] + N))
    locking = store.core.locking
    await store.close()
    again = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE, locking=locking)
    try:
        inbox = await again.mailbox("INBOX")
        states = {s.uid: s.flags for s in await inbox.states()}
        assert len(states) == N + 1
        for i, uid in enumerate(uids):
            assert states[uid] == flags[i]
            assert (await inbox.message(uid)).raw == message(100 + i)
    finally:
        await again.close()


async def test_a_refused_message_stores_none_of_the_multiappend(
    watched: MHStore, tmp_path: Path
) -> None:
    """A keyword no MH sequence can hold (the unseen sequence's name) in
    the fifth message: the whole command is refused, before any file is
    written."""
    store = watched
    inbox = await store.mailbox("INBOX")
    await inbox.append(message(0))
    folder = tmp_path / "Mail" / "inbox"
    before = (files_in(folder), (folder / ".mh_sequences").read_text())
    flags = [frozenset({"unseen"}) if i == 4 else frozenset() for i in range(N)]
    with pytest.raises(KeywordRefused):
        await inbox.append_all(batch(100, flags))
    assert (files_in(folder), (folder / ".mh_sequences").read_text()) == before
    status = await inbox.status()
    assert (status.messages, status.uidnext) == (1, 2)


async def test_a_multiappend_over_quota_stores_none(tmp_path: Path) -> None:
    """Each message fits the quota alone, all of them do not: none is
    stored (RFC 9208 with RFC 3502 section 6.3.11)."""
    store = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE)
    try:
        store.core.quota_limits = QuotaLimits(storage=None, messages=N - 1)
        inbox = await store.mailbox("INBOX")
        with pytest.raises(OverQuota):
            await inbox.append_all(batch(100))
        assert files_in(tmp_path / "Mail" / "inbox") == []
        assert (await inbox.status()).messages == 0
    finally:
        await store.close()


@pytest.mark.parametrize("where", ["writing", "sequences"])
async def test_a_multiappend_failing_part_way_leaves_nothing(
    watched: MHStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    """The disk fills while the fifth message is written, or when the
    sequence file is rewritten after every message was linked: the
    command fails, and neither a message file, a temporary file nor a row
    of it is left; the next MULTIAPPEND works."""
    store = watched
    inbox = await store.mailbox("INBOX")
    await inbox.append(message(0))
    folder = tmp_path / "Mail" / "inbox"
    before = files_in(folder)
    calls: list[int] = []

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "writing":
        real_write = files._write_all

        def filling(fd: int, data: bytes) -> None:
            calls.append(fd)
            if len(calls) == 5:
                full()
            real_write(fd, data)

        monkeypatch.setattr(files, "_write_all", filling)
    else:
        for name in ("write_atomically", "write_temp", "write_locked"):
            monkeypatch.setattr(seqfile, name, full)
    with pytest.raises(DiskFull):
        await inbox.append_all(batch(100))
    monkeypatch.undo()
    assert files_in(folder) == before
    assert (await inbox.status()).messages == 1
    uids = await inbox.append_all(batch(200))
    assert len(uids) == N
    assert (await inbox.status()).messages == N + 1


async def test_nmh_scan_lists_every_message_of_a_multiappend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nmh's ``scan`` lists each message, in order, and ``mark`` finds the
    ones not read in the unseen sequence."""
    root = tmp_path / "Mail"
    profile = tmp_path / "mh_profile"
    profile.write_text(f"Path: {root}\nUnseen-Sequence: unseen\n")
    path = f"/usr/bin/mh{os.pathsep}{os.environ.get('PATH', '')}"
    monkeypatch.setenv("PATH", path)
    env = {"PATH": path, "MH": str(profile), "HOME": str(tmp_path), "LC_ALL": "C"}
    scan, mark = require_tool("scan"), require_tool("mark")
    store = await MHStore.open(root, profile=Profile(path=root, unseen=("unseen",)))
    try:
        inbox = await store.mailbox("INBOX")
        uids = await inbox.append_all(batch(100))
        await inbox.store(uids[:1], StoreMode.ADD, ["\\Seen"])
    finally:
        await store.close()

    def run(*argv: str) -> str:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout

    lines = run(scan, "+inbox").splitlines()
    assert len(lines) == N
    for i, line in enumerate(lines):
        assert f"m{100 + i}" in line
    unseen = run(mark, "+inbox", "-list", "-sequence", "unseen")
    assert unseen.split(":", 1)[1].split() == [f"2-{N}"]


async def test_a_big_append_is_kept_for_repair_outside_memory(
    watched: MHStore, tmp_path: Path
) -> None:
    """A big APPEND is kept for the repair after an nmh race in an unnamed
    file, not in the worker's memory; when ``inc`` overwrites its number
    in place (``O_TRUNC``, no ``O_EXCL``), it is put back byte for byte
    from there, and nothing of the copy is left in the folder."""
    store = watched
    inbox = await store.mailbox("INBOX")
    line = b"x" * 76 + b"\r\n"
    big = b"Subject: big\r\n\r\n" + line * (2 * 1024 * 1024 // len(line))
    uid = await inbox.append(big)
    assert store.core.fresh.in_memory < 1024 * 1024
    folder = tmp_path / "Mail" / "inbox"
    fd = os.open(folder / "1", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, b"Subject: incd\n\nbody\n")
    finally:
        os.close(fd)
    assert (await inbox.message(uid)).raw == big
    assert sorted(files_in(folder)) == ["1", "2"]
    assert (folder / "1").read_bytes().startswith(b"Subject: incd")


CHILD = r"""
import asyncio, os, sys
from pathlib import Path
from asimap.store.base import NewMessage
from asimap.store.mh import MHStore, files
from asimap.store.mh.profile import Profile

linked = 0
real = files.claim_number

def dying(*args, **kwargs):
    global linked
    number = real(*args, **kwargs)
    linked += 1
    if linked == 2:
        os._exit(9)  # as SIGKILL: no clean-up, no rollback runs
    return number

files.claim_number = dying

async def main():
    profile = Profile(path=None, unseen=("unseen",))
    store = await MHStore.open(Path(sys.argv[1]), profile=profile, watch=False)
    inbox = await store.mailbox("INBOX")
    await inbox.append_all(
        [NewMessage(b"Subject: m%d\r\n\r\nbody\r\n" % n) for n in range(3)]
    )

asyncio.run(main())
"""


def test_a_multiappend_cut_by_a_crash_adds_nothing(tmp_path: Path) -> None:
    """Killed after linking two of its three files, before the rows'
    COMMIT: the next open removes both files and imports nothing (RFC
    3502 section 6.3.11), where a rescan used to import them as new mail
    an MH tool had added."""
    root = tmp_path / "Mail"

    async def prepare() -> None:
        store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
        await store.close()

    async def messages() -> int:
        store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
        try:
            return (await (await store.mailbox("INBOX")).status()).messages
        finally:
            await store.close()

    asyncio.run(prepare())
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(root)],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 9, done.stderr.decode()
    numbers = [name for name in files_in(root / "inbox") if name.isdigit()]
    assert numbers == ["1", "2"]
    assert asyncio.run(messages()) == 0
    assert files_in(root / "inbox") == []
    conn = sqlite3.connect(root / DB_NAME)
    try:
        assert conn.execute("SELECT count(*) FROM pending_files").fetchone() == (0,)
    finally:
        conn.close()


async def test_every_file_of_a_multiappend_is_fsynced_before_its_link(
    watched: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Durable before it is a message: each temporary file was fsynced
    (its own fsync, from whichever thread) before it is linked under its
    number; and an fsync that fails (EIO) fails the whole command with
    nothing left."""
    store = watched
    inbox = await store.mailbox("INBOX")
    synced: set[str] = set()
    lock = threading.Lock()
    real_fsync, real_link = os.fsync, os.link
    unsynced_links: list[str] = []

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with lock:
            synced.add(os.readlink(f"/proc/self/fd/{fd}"))

    def link(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        path = os.fsdecode(source)
        if kwargs.get("src_dir_fd") is not None:
            # Linked relative to the folder's descriptor (files.folder_fd).
            folder = os.readlink(f"/proc/self/fd/{kwargs['src_dir_fd']}")
            path = os.path.join(folder, path)
        if os.path.basename(path).startswith(files.TEMP_PREFIX):
            with lock:
                if path not in synced:
                    unsynced_links.append(os.fsdecode(target))
        real_link(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    uids = await inbox.append_all(batch(100))
    assert len(uids) == N and unsynced_links == []
    calls = 0

    def failing(fd: int) -> None:
        nonlocal calls
        with lock:
            calls += 1
            fail = calls == 3
        if fail:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError):
        await inbox.append_all(batch(200))
    monkeypatch.undo()
    assert (await inbox.status()).messages == N
    assert len(files_in(store.root / "inbox")) == N


async def test_the_database_work_of_an_append_does_not_grow_with_the_folder(
    tmp_path: Path,
) -> None:
    """SQLite's work for one APPEND (virtual machine steps, counted with a
    progress handler) into a folder of 500 messages is about that of one
    into a folder of 50: the highest number and the row of a number are
    found by index, not by a walk over every row of the folder."""
    store = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE)
    try:
        inbox = await store.mailbox("INBOX")
        conn = store.core.conn
        steps = 0

        def step() -> int:
            nonlocal steps
            steps += 1
            return 0

        async def cost_of_one_append(n: int) -> int:
            nonlocal steps
            await store.call(lambda: conn.set_progress_handler(step, 10))
            steps = 0
            await inbox.append(message(n))
            await store.call(lambda: conn.set_progress_handler(None, 0))
            return steps

        for first in range(0, 50, N):
            await inbox.append_all(batch(first))
        small = await cost_of_one_append(1000)
        for first in range(50, 500, N):
            await inbox.append_all(batch(first))
        big = await cost_of_one_append(2000)
        assert big < 2 * small, (small, big)
    finally:
        await store.close()
