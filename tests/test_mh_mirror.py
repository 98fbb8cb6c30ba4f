"""The event loop's mirror of a folder's changes (store/mh/mirror.py).

Sessions ask ``changes_since`` after every command and ``claim_recent``
when new mail came; the mirror answers both from memory while the store's
thread has reported everything that happened to the folder.  These tests
hold the two halves of that: the answers are the database's (compared
with the store thread's own answer after every kind of change), they cost
no job of the store's thread, and an nmh tool's change made just before
is never missed -- the mirror steps aside until a job has looked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from asimap.store.base import Changes, StoreMode
from asimap.store.mh import MHMailbox, MHStore
from asimap.store.mh.mirror import MAX_ENTRIES, ChangeLog
from test_store_mh_nmh import Nmh, message, nmh, store

__all__ = ["nmh", "store"]  # fixtures, imported for pytest


class Jobs:
    """Counts the jobs run on the store's thread."""

    def __init__(self, opened: MHStore) -> None:
        self.count = 0
        worker = opened._worker
        original = worker.run

        async def run(fn: Callable[[], Any]) -> Any:
            self.count += 1
            return await original(fn)

        worker.run = run  # type: ignore[method-assign]


async def truth(opened: MHStore, mailbox: MHMailbox, modseq: int) -> Changes:
    """What the store's thread answers (the database)."""
    return await opened.call(
        lambda: opened.core.changes_since(mailbox.mailbox_id, modseq)
    )


async def settled(mailbox: MHMailbox) -> int:
    """Follow the folder (first changes_since is a job) and return the
    HIGHESTMODSEQ."""
    return (await mailbox.changes_since(0)).highestmodseq


async def test_changes_come_from_memory_and_are_the_databases(
    store: MHStore,
) -> None:
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(message(f"m{i}")) for i in range(6)]
    start = await settled(inbox)
    jobs = Jobs(store)
    steps: list[Callable[[], Awaitable[Any]]] = [
        lambda: inbox.store(uids[:2], StoreMode.ADD, ["\\Seen"]),
        lambda: inbox.append(message("new")),
        lambda: inbox.store([uids[3]], StoreMode.ADD, ["\\Deleted", "kw"]),
        lambda: inbox.expunge([uids[3]]),
        lambda: inbox.store(uids[:1], StoreMode.REPLACE, ["\\Flagged"]),
        lambda: inbox.expunge(None),
    ]
    marks = [start]
    for step in steps:
        await step()
        marks.append(inbox.highest_noted)
        for modseq in marks:
            before = jobs.count
            mirrored = await inbox.changes_since(modseq)
            assert jobs.count == before, "answered by a job, not from memory"
            assert mirrored == await truth(store, inbox, modseq)


async def test_an_nmh_change_just_before_is_never_missed(
    store: MHStore, nmh: Nmh
) -> None:
    inbox = await store.mailbox("INBOX")
    uid = await inbox.append(message("one"))
    await inbox.store([uid], StoreMode.ADD, ["\\Seen"])
    modseq = await settled(inbox)
    assert (await inbox.changes_since(modseq)).changed == ()
    # No wait for the watcher: the mark has returned, so the very next
    # question must see it (the mirror cannot know of it yet).
    nmh("mark", "+inbox", "all", "-sequence", "flagged", "-add")
    changes = await inbox.changes_since(modseq)
    assert [(s.uid, "\\Flagged" in s.flags) for s in changes.changed] == [(uid, True)]
    assert changes == await truth(store, inbox, modseq)


async def test_recent_is_claimed_once_and_then_costs_nothing(store: MHStore) -> None:
    inbox = await store.mailbox("INBOX")
    await settled(inbox)
    uid = await inbox.append(message("new"))
    sequences = (store.root / "inbox" / ".mh_sequences").read_text()
    assert await inbox.claim_recent() == frozenset({uid})
    # The claim is the database's alone: the file is left for the next write.
    assert (store.root / "inbox" / ".mh_sequences").read_text() == sequences
    jobs = Jobs(store)
    assert await inbox.claim_recent() == frozenset()
    assert await inbox.peek_recent() == frozenset()
    assert jobs.count == 0
    # And it stays claimed for a new store on the same root.
    reopened = await MHStore.open(store.root, watch=False)
    try:
        again = await reopened.mailbox("INBOX")
        assert await again.peek_recent() == frozenset()
    finally:
        await reopened.close()


async def test_a_long_log_keeps_answering_recent_questions(store: MHStore) -> None:
    inbox = await store.mailbox("INBOX")
    uid = await inbox.append(message("flip"))
    await settled(inbox)
    log: ChangeLog = inbox.log
    # Shrink the bound for the test: every STORE adds an entry.
    import asimap.store.mh.mirror as mirror

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mirror, "MAX_ENTRIES", 8)
        for turn in range(20):
            mode = StoreMode.ADD if turn % 2 else StoreMode.REMOVE
            await inbox.store([uid], mode, ["\\Flagged"])
    assert len(log._uids) <= 8 < MAX_ENTRIES
    latest = inbox.highest_noted
    assert log.answers(latest - 1)
    assert not log.answers(0)  # older than the log: a job answers
    assert await inbox.changes_since(0) == await truth(store, inbox, 0)
    assert await inbox.changes_since(latest - 1) == await truth(
        store, inbox, latest - 1
    )


async def test_select_asks_the_store_thread_once(store: MHStore) -> None:
    """SELECT's status, states, keywords and \\Recent come in one job, and
    say what the four separate questions say."""
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(message(f"s{i}"), ["kw"]) for i in range(3)]
    await inbox.store(uids[:1], StoreMode.ADD, ["\\Seen"])
    jobs = Jobs(store)
    peeked = await inbox.opening(claim=False)
    assert jobs.count == 1
    assert peeked.recent == frozenset(uids)
    assert peeked.status == await inbox.status()
    assert peeked.states == await inbox.states()
    assert peeked.keywords == await inbox.keywords() == frozenset({"kw"})
    before = jobs.count
    claimed = await inbox.opening(claim=True)
    assert jobs.count == before + 1
    assert claimed.recent == frozenset(uids)
    assert (await inbox.opening(claim=True)).recent == frozenset()


async def test_status_asks_the_store_thread_once(store: MHStore) -> None:
    """STATUS opens the mailbox and counts it in one job."""
    inbox = await store.mailbox("INBOX")
    await inbox.append(message("counted"))
    jobs = Jobs(store)
    opened, status = await store.mailbox_status("INBOX")
    assert jobs.count == 1
    assert opened is inbox
    assert status == await inbox.status()
    assert status.messages == 1
