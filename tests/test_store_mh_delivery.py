"""Delivery and change notification: IDLE-style waiters see new mail from
our own delivery and from nmh tools, with the watcher and without it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from asimap.store.mh import MHStore
from asimap.store.mh import sequences as seq
from asimap.store.mh.delivery import deliver
from asimap.store.mh.profile import Profile

NO_PROFILE = Profile(path=None, unseen=("unseen",))


async def test_deliver_adds_to_unseen_and_wakes_waiters(tmp_path: Path) -> None:
    store = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE)
    try:
        inbox = await store.mailbox("INBOX")
        before = (await inbox.status()).highestmodseq
        waiter = asyncio.create_task(inbox.wait_for_change(before))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        uid = await deliver(store, "INBOX", b"Subject: hi\r\n\r\nhello\r\n")
        async with asyncio.timeout(5):
            await waiter
        text = (tmp_path / "Mail" / "inbox" / seq.SEQUENCES_FILE).read_text()
        assert "unseen: 1\n" in text
        assert (await inbox.message(uid)).raw == b"Subject: hi\r\n\r\nhello\r\n"
    finally:
        await store.close()


@pytest.mark.parametrize("watch", [True, False])
async def test_files_added_by_tools_wake_waiters(tmp_path: Path, watch: bool) -> None:
    root = tmp_path / "Mail"
    store = await MHStore.open(root, profile=NO_PROFILE, watch=watch)
    try:
        assert store.watching is watch
        inbox = await store.mailbox("INBOX")
        before = (await inbox.status()).highestmodseq
        waiter = asyncio.create_task(inbox.wait_for_change(before))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        # What inc does: a new numbered file in the folder.
        (root / "inbox" / "1").write_bytes(b"Subject: from inc\r\n\r\n")
        async with asyncio.timeout(5):
            await waiter
        (state,) = await inbox.states()
        assert (await inbox.message(state.uid)).subject() == "from inc"
    finally:
        await store.close()
