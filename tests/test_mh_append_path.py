"""The cost of an APPEND to an MH folder: what one APPEND (and one
MULTIAPPEND) writes, and that it never rescans the folder.

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
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from asimap.store.mh import MHStore
from asimap.store.mh.profile import Profile
from asimap.store.mh.reconcile import Reconciler

NO_PROFILE = Profile(path=None, unseen=("unseen",))


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
