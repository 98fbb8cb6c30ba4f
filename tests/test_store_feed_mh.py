"""The MH store's change feed learns of nmh tools' changes from its watcher.

The conformance suite (``store_feed_conformance.py``) checks what changes
made *through* the store publish; here real nmh programs change the MH
root behind the store's back, and the events must follow -- for folders no
session has opened, and for folders nmh creates and removes.  Our own
CREATE must be published once, not a second time when the watcher sees
its ``mkdir``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asimap.store.feed import ORIGIN, FeedEvent, FeedKind
from asimap.store.mh import MHStore
from asimap.store.mh.profile import Profile
from test_idle_latency import Tools, make_tools
from test_mh_live_imap import mbox_of, message

#: Only a guard against hanging, not a timing assertion.
PROMPT = 5.0


@pytest.fixture
async def mh(tmp_path: Path) -> AsyncIterator[tuple[MHStore, Tools]]:
    root = tmp_path / "Mail"
    store = await MHStore.open(root, profile=Profile(path=None, unseen=("unseen",)))
    try:
        yield store, make_tools(tmp_path, store.root, None)
    finally:
        await store.close()


class Events:
    def __init__(self, store: MHStore) -> None:
        self.seen: list[FeedEvent] = []
        self.arrived = asyncio.Event()
        self.stop = store.feed.subscribe(self._add)

    def _add(self, event: FeedEvent) -> None:
        self.seen.append(event)
        self.arrived.set()

    async def until(self, kind: FeedKind, mailbox: str) -> FeedEvent:
        async with asyncio.timeout(PROMPT):
            while True:
                for event in self.seen:
                    if (event.kind, event.mailbox) == (kind, mailbox):
                        return event
                self.arrived.clear()
                await self.arrived.wait()


async def _run(tools: Tools, *args: str) -> None:
    await asyncio.to_thread(tools.nmh, *args)


async def test_inc_and_rmm_in_an_unopened_folder(
    mh: tuple[MHStore, Tools], tmp_path: Path
) -> None:
    store, tools = mh
    await store.create("lists")  # never opened as a mailbox
    await store.prepare_feed()
    events = Events(store)
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(mbox_of([message("one"), message("two")]))
    await _run(tools, "inc", "+lists", "-file", str(mbox), "-notruncate", "-silent")
    event = await events.until(FeedKind.MESSAGES, "lists")
    assert event.origin is None
    assert (await (await store.mailbox("lists")).status()).messages == 2
    events.seen.clear()
    await _run(tools, "rmm", "+lists", "1")
    await events.until(FeedKind.MESSAGES, "lists")
    assert (await (await store.mailbox("lists")).status()).messages == 1


async def test_folders_made_and_removed_by_nmh(mh: tuple[MHStore, Tools]) -> None:
    store, tools = mh
    await store.prepare_feed()
    events = Events(store)
    await _run(tools, "folder", "-create", "+by-nmh")
    await events.until(FeedKind.CREATED, "by-nmh")
    await _run(tools, "rmf", "-nointeractive", "+by-nmh")
    await events.until(FeedKind.DELETED, "by-nmh")


async def test_own_create_is_published_once(mh: tuple[MHStore, Tools]) -> None:
    store, tools = mh
    await store.prepare_feed()
    events = Events(store)
    me = object()
    token = ORIGIN.set(me)
    try:
        await store.create("mine/child")
    finally:
        ORIGIN.reset(token)
    # A later nmh change proves the watcher has processed our mkdir by now.
    await _run(tools, "folder", "-create", "+later")
    await events.until(FeedKind.CREATED, "later")
    created = [e for e in events.seen if e.kind is FeedKind.CREATED]
    assert [(e.mailbox, e.origin) for e in created] == [
        ("mine/child", me),
        ("later", None),
    ]
