"""Delivery and change notification: IDLE-style waiters see new mail from
our own delivery and from nmh tools, with the watcher and without it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from asimap.store.base import OverQuota, QuotaLimits, QuotaUsage
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


async def test_delivery_over_quota_is_refused_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    # RFC 9208: delivery counts against the account like APPEND does.
    root = tmp_path / "Mail"
    store = await MHStore.open(root, profile=NO_PROFILE)
    try:
        store.set_quota_limits(QuotaLimits(storage=60, messages=5))
        await deliver(store, "INBOX", b"Subject: a\r\n\r\n" + b"x" * 30 + b"\r\n")
        with pytest.raises(OverQuota):
            await deliver(store, "Junk", b"Subject: b\r\n\r\n" + b"y" * 30 + b"\r\n")
        assert not any(p.name.isdigit() for p in (root / "Junk").iterdir())
        assert (await store.quota_usage()).messages == 1
    finally:
        await store.close()


async def test_usage_follows_files_added_and_removed_by_tools(
    tmp_path: Path,
) -> None:
    # The totals are kept by database triggers, so a rescan that finds an
    # nmh tool's work (inc adding, rmm removing) updates them too.
    root = tmp_path / "Mail"
    store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
    try:
        inbox = await store.mailbox("INBOX")
        ours, theirs = b"Subject: ours\r\n\r\n", b"Subject: inc\r\n\r\n12345\r\n"
        await inbox.append(ours)
        (root / "inbox" / "7").write_bytes(theirs)
        await inbox.poll()
        both = len(ours) + len(theirs)
        assert await store.quota_usage() == QuotaUsage(storage=both, messages=2)
        (root / "inbox" / "1").rename(root / "inbox" / ",1")  # rmm
        await inbox.poll()
        assert await store.quota_usage() == QuotaUsage(storage=len(theirs), messages=1)
        # The totals survive a restart (they live in the database).
        await store.close()
        store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
        assert await store.quota_usage() == QuotaUsage(storage=len(theirs), messages=1)
    finally:
        await store.close()
