"""STOREs on one MH folder that wait for the store's worker together are
written together: one ``.mh_sequences`` rewrite and one SQLite commit for
the group (:mod:`asimap.store.mh.grouping`), each caller answered only
after that write, each with its own result.

The worker is held busy by a job of the test while the STOREs arrive, as
it is under load by other connections' commands; the rewrites are
counted by wrapping the sequence file's writers (temp file + rename, or
the in-place rewrite under nmh's lock).
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from asimap.store.base import StoreMode, StoreResult
from asimap.store.mh import MHStore, files, seqfile, sequences
from asimap.store.mh.corebase import KeywordRefused
from asimap.store.mh.profile import Profile
from asimap.store.mh.space import DiskFull

NO_PROFILE = Profile(path=None, unseen=("unseen",))

#: Concurrent STOREs per test.
N = 8


def message(n: int) -> bytes:
    return f"Subject: m{n}\r\nFrom: a@example.org\r\n\r\nbody {n}\r\n".encode()


@contextmanager
def counted_rewrites(
    monkeypatch: pytest.MonkeyPatch, fail: bool = False
) -> Iterator[list[str]]:
    """Every rewrite of a ``.mh_sequences`` (a fallback from the in-place
    writer to the rename counts once); with ``fail``, each fails as on a
    full disk."""
    rewrites: list[str] = []
    inside = threading.local()

    def wrap(name: str) -> None:
        original: Callable[..., Any] = getattr(seqfile, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if getattr(inside, "depth", 0) == 0:
                rewrites.append(name)
                if fail:
                    raise OSError(errno.ENOSPC, "No space left on device")
            inside.depth = getattr(inside, "depth", 0) + 1
            try:
                return original(*args, **kwargs)
            finally:
                inside.depth -= 1

        monkeypatch.setattr(seqfile, name, wrapper)

    for name in ("write_atomically", "write_temp", "write_locked"):
        wrap(name)
    yield rewrites
    monkeypatch.undo()


@asynccontextmanager
async def worker_held(store: MHStore) -> AsyncIterator[None]:
    """The store's worker busy with a job of ours until the block ends."""
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(10)

    holder = asyncio.create_task(store.call(hold))
    await asyncio.to_thread(started.wait, 10)
    try:
        yield
    finally:
        release.set()
        await holder


@pytest.fixture(params=[False, True], ids=["nolock", "lockf"])
async def filled(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[MHStore, list[int]]]:
    """A store (both locking modes) whose INBOX holds N messages."""
    store = await MHStore.open(
        tmp_path / "Mail", profile=NO_PROFILE, locking=request.param
    )
    try:
        inbox = await store.mailbox("INBOX")
        uids = [await inbox.append(message(n)) for n in range(N)]
        await inbox.claim_recent()
        yield store, uids
    finally:
        await store.close()


async def _stores(
    store: MHStore, requests: list[tuple[int, list[str]]]
) -> list[StoreResult | BaseException]:
    inbox = await store.mailbox("INBOX")
    async with worker_held(store):
        tasks = [
            asyncio.create_task(inbox.store([uid], StoreMode.ADD, flags))
            for uid, flags in requests
        ]
        await asyncio.sleep(0.05)  # every one of them is waiting now
        assert not any(task.done() for task in tasks)
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def test_concurrent_stores_share_one_sequence_rewrite(
    filled: tuple[MHStore, list[int]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store, uids = filled
    requests = [(uid, ["\\Seen", f"kw{i}"]) for i, uid in enumerate(uids)]
    with counted_rewrites(monkeypatch) as rewrites:
        results = await _stores(store, requests)
    assert len(rewrites) < N
    assert len(rewrites) == 1
    # Each caller has its own answer, with its own MODSEQ, in order.
    modseqs = []
    for (uid, flags), result in zip(requests, results, strict=True):
        assert isinstance(result, StoreResult)
        (state,) = result.updated
        assert (state.uid, state.flags) == (uid, frozenset(flags))
        modseqs.append(state.modseq)
    assert modseqs == sorted(set(modseqs))
    # All of it is in the file (nmh's view) and in a store opened afresh.
    text = (tmp_path / "Mail" / "inbox" / seqfile.SEQUENCES_FILE).read_text()
    parsed = sequences.parse(text).sequences
    for i in range(N):
        assert parsed[f"kw{i}"] == {i + 1}
    assert "unseen" not in parsed or not parsed["unseen"]
    await store.close()
    again = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE)
    try:
        inbox = await again.mailbox("INBOX")
        states = {s.uid: s.flags for s in await inbox.states()}
        for uid, flags in requests:
            assert states[uid] == frozenset(flags)
    finally:
        await again.close()


async def test_a_refused_keyword_fails_only_its_own_store(
    filled: tuple[MHStore, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, uids = filled
    # "unseen" names the unseen sequence: no keyword can be stored as it.
    requests = [(uid, ["unseen" if i == 2 else f"kw{i}"]) for i, uid in enumerate(uids)]
    with counted_rewrites(monkeypatch) as rewrites:
        results = await _stores(store, requests)
    assert len(rewrites) == 1
    assert isinstance(results[2], KeywordRefused)
    inbox = await store.mailbox("INBOX")
    states = {s.uid: s.flags for s in await inbox.states()}
    for i, (uid, flags) in enumerate(requests):
        if i == 2:
            assert states[uid] == frozenset()
        else:
            assert isinstance(results[i], StoreResult)
            assert states[uid] == frozenset(flags)


async def test_a_failed_group_write_answers_no_to_every_store(
    filled: tuple[MHStore, list[int]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Nobody is answered OK for a change that did not reach the disk."""
    store, uids = filled
    before = (tmp_path / "Mail" / "inbox" / seqfile.SEQUENCES_FILE).read_bytes()
    requests = [(uid, [f"kw{i}"]) for i, uid in enumerate(uids)]
    with counted_rewrites(monkeypatch, fail=True):
        results = await _stores(store, requests)
    # ENOSPC: NO [OVERQUOTA] for each of them (asimap.store.mh.space).
    assert all(isinstance(r, DiskFull) for r in results), results
    inbox = await store.mailbox("INBOX")
    assert all(not s.flags for s in await inbox.states())
    after = (tmp_path / "Mail" / "inbox" / seqfile.SEQUENCES_FILE).read_bytes()
    assert after == before
    # The next STORE works again, alone.
    result = await inbox.store([uids[0]], StoreMode.ADD, ["kw0"])
    assert [s.flags for s in result.updated] == [frozenset({"kw0"})]


async def test_a_store_in_a_group_sees_the_ones_before_it(
    filled: tuple[MHStore, list[int]],
) -> None:
    """UNCHANGEDSINCE (RFC 7162 section 3.1.3) is checked against the
    MODSEQ the STOREs before it in the group gave the message."""
    store, uids = filled
    inbox = await store.mailbox("INBOX")
    since = (await inbox.status()).highestmodseq
    async with worker_held(store):
        first = asyncio.create_task(inbox.store([uids[0]], StoreMode.ADD, ["kwa"]))
        second = asyncio.create_task(
            inbox.store([uids[0], uids[1]], StoreMode.ADD, ["kwb"], since)
        )
        await asyncio.sleep(0.05)
    one, two = await first, await second
    assert [s.uid for s in one.updated] == [uids[0]]
    assert two.conflicts == (uids[0],)
    assert [(s.uid, s.flags) for s in two.updated] == [(uids[1], frozenset({"kwb"}))]
    assert two.updated[0].modseq > one.updated[0].modseq


async def test_concurrent_expunges_share_one_removal(
    filled: tuple[MHStore, list[int]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """UID EXPUNGEs of several connections: one sequence rewrite and one
    pass of unlinks (a directory fsync for the unlinks, one for the
    rename: as many as a lone EXPUNGE makes); each caller gets the UIDs
    it removed (a UID two of them name goes to the first), and the files
    are gone."""
    store, uids = filled
    inbox = await store.mailbox("INBOX")
    await inbox.store(uids, StoreMode.ADD, ["\\Deleted", "kw"])
    syncs: list[Path] = []
    real_sync = files.fsync_dir

    def counted_sync(folder: Path) -> None:
        syncs.append(folder)
        real_sync(folder)

    monkeypatch.setattr(files, "fsync_dir", counted_sync)
    wanted = [[uid] for uid in uids[:-1]] + [[uids[0], uids[-1]]]
    with counted_rewrites(monkeypatch) as rewrites:
        async with worker_held(store):
            tasks = [asyncio.create_task(inbox.expunge(w)) for w in wanted]
            await asyncio.sleep(0.05)
            assert not any(task.done() for task in tasks)
        results = await asyncio.gather(*tasks)
    assert len(rewrites) == 1
    assert len(syncs) <= 2
    assert results == [(uid,) for uid in uids[:-1]] + [(uids[-1],)]
    assert await inbox.states() == ()
    folder = tmp_path / "Mail" / "inbox"
    assert not [p for p in folder.iterdir() if p.name.isdigit()]


async def test_a_store_is_answered_after_its_rename_is_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without nmh's locking the sequence file is replaced by rename: the
    folder is fsynced after the rename and before the STORE is answered,
    or a power failure could bring back the old file (and flags) under an
    acknowledged change."""
    store = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE)
    try:
        inbox = await store.mailbox("INBOX")
        uid = await inbox.append(message(1))
        await inbox.claim_recent()
        folder = tmp_path / "Mail" / "inbox"
        events: list[tuple[str, str]] = []
        real_replace, real_sync = os.replace, files.fsync_dir

        def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            real_replace(src, dst, *args, **kwargs)
            path = os.fsdecode(dst)
            if kwargs.get("dst_dir_fd") is not None:
                # Relative to the folder's descriptor (files.folder_fd).
                where = os.readlink(f"/proc/self/fd/{kwargs['dst_dir_fd']}")
                path = os.path.join(where, path)
            events.append(("replace", path))

        def sync(where: Path) -> None:
            real_sync(where)
            events.append(("sync", str(where)))

        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(files, "fsync_dir", sync)
        for flags in (["\\Seen"], ["kw"]):
            events.clear()
            await inbox.store([uid], StoreMode.ADD, flags)
            renames = [
                i
                for i, (kind, path) in enumerate(events)
                if kind == "replace" and path == str(folder / seqfile.SEQUENCES_FILE)
            ]
            assert renames, events
            assert ("sync", str(folder)) in events[renames[-1] :], events
    finally:
        monkeypatch.undo()
        await store.close()


async def test_concurrent_appends_share_one_commit(
    filled: tuple[MHStore, list[int]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """APPENDs of several connections: each message file written and
    fsynced, but one directory fsync for their links, one sequence
    rewrite (and its directory fsync); each caller gets its own UID, in
    order, and a keyword no sequence can hold refuses only its APPEND."""
    store, _ = filled
    inbox = await store.mailbox("INBOX")
    folder = tmp_path / "Mail" / "inbox"
    syncs: list[Path] = []
    real_sync = files.fsync_dir

    def counted_sync(where: Path) -> None:
        syncs.append(where)
        real_sync(where)

    monkeypatch.setattr(files, "fsync_dir", counted_sync)
    flags = [["unseen"] if i == 3 else [f"kw{i}"] for i in range(N)]
    with counted_rewrites(monkeypatch) as rewrites:
        async with worker_held(store):
            tasks = [
                asyncio.create_task(inbox.append(message(100 + i), flags[i]))
                for i in range(N)
            ]
            await asyncio.sleep(0.05)
            assert not any(task.done() for task in tasks)
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert len(rewrites) == 1
    assert len(syncs) <= 2
    assert isinstance(results[3], KeywordRefused)
    uids = [r for r in results if isinstance(r, int)]
    assert len(uids) == N - 1 and uids == sorted(set(uids))
    await store.close()
    again = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE)
    try:
        inbox = await again.mailbox("INBOX")
        states = {s.uid: s.flags for s in await inbox.states()}
        for i, result in enumerate(results):
            if isinstance(result, int):
                assert states[result] == frozenset(flags[i])
                body = (await inbox.message(result)).raw
                assert body == message(100 + i)
        assert len(states) == 2 * N - 1
        numbers = [p for p in folder.iterdir() if p.name.isdigit()]
        assert len(numbers) == 2 * N - 1
    finally:
        await again.close()
