"""Quota rules of the store conformance suite (RFC 9208, issue 6).

Mixed into :class:`store_conformance.StoreConformance`, so every store is
held to them.  The store counts the whole account (one quota root, like
Dovecot's per-user quota), refuses with :class:`OverQuota` *before*
anything is stored when the result would exceed a limit (RFC 9051 section
7.1, OVERQUOTA), checks a COPY as a whole, and never refuses a MOVE within
the account (RFC 6851 section 4.1: usage does not change).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from asimap.store.base import (
    NewMessage,
    OverQuota,
    QuotaLimits,
    QuotaUsage,
    Store,
    StoreMode,
)

StoreFactory = Callable[[], Awaitable[Store]]


class QuotaConformance:
    """Quota tests shared by every store."""

    async def test_usage_counts_every_mailbox(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        assert await store.quota_usage() == QuotaUsage(storage=0, messages=0)
        inbox = await store.mailbox("INBOX")
        drafts = await store.mailbox("Drafts")
        await inbox.append(b"a\r\n")
        await drafts.append(b"bbbb\r\n", ["\\Deleted"])
        await store.create("x/y")
        deep = await store.mailbox("x/y")
        await deep.append(b"cc\r\n")
        assert await store.quota_usage() == QuotaUsage(storage=13, messages=3)
        await drafts.expunge()
        assert await store.quota_usage() == QuotaUsage(storage=7, messages=2)
        await store.delete("x/y")
        assert await store.quota_usage() == QuotaUsage(storage=3, messages=1)

    async def test_status_reports_deleted_storage(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        await inbox.append(b"a\r\n", ["\\Deleted"])
        await inbox.append(b"bb\r\n")
        three = await inbox.append(b"ccc\r\n")
        await inbox.store([three], StoreMode.ADD, ["\\Deleted"])
        status = await inbox.status()
        assert (status.deleted, status.deleted_storage) == (2, 3 + 5)

    async def test_append_beyond_message_limit_is_refused(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        store.set_quota_limits(QuotaLimits(messages=2))
        inbox = await store.mailbox("INBOX")
        sent = await store.mailbox("Sent Messages")
        await inbox.append(b"1\r\n")
        await sent.append(b"2\r\n")
        with pytest.raises(OverQuota):
            await inbox.append(b"3\r\n")
        assert (await inbox.status()).messages == 1
        assert await store.quota_usage() == QuotaUsage(storage=6, messages=2)
        # Expunging makes room again.
        await sent.store([1], StoreMode.ADD, ["\\Deleted"])
        await sent.expunge()
        await inbox.append(b"3\r\n")

    async def test_append_beyond_storage_limit_is_refused(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        store.set_quota_limits(QuotaLimits(storage=10))
        inbox = await store.mailbox("INBOX")
        await inbox.append(b"12345678\r\n")  # exactly the limit
        with pytest.raises(OverQuota):
            await inbox.append(b"x")
        assert (await inbox.status()).messages == 1
        # Limits lowered below the usage: still readable and expungeable.
        store.set_quota_limits(QuotaLimits(storage=5))
        await inbox.store([1], StoreMode.ADD, ["\\Deleted"])
        assert await inbox.expunge() == (1,)

    async def test_copy_is_checked_whole(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        archive = await store.mailbox("Archive")
        for data in (b"one\r\n", b"two\r\n"):
            await inbox.append(data)
        store.set_quota_limits(QuotaLimits(messages=3))
        with pytest.raises(OverQuota):
            await inbox.copy_to([1, 2], archive)
        assert (await archive.status()).messages == 0
        assert (await store.quota_usage()).messages == 2
        pairs = await inbox.copy_to([2], archive)
        assert [source for source, _ in pairs] == [2]
        store.set_quota_limits(QuotaLimits(storage=16))
        with pytest.raises(OverQuota):
            await inbox.copy_to([1], inbox)  # into itself counts too

    async def test_append_all_is_all_or_nothing(
        self, store_factory: StoreFactory
    ) -> None:
        """MULTIAPPEND (RFC 3502 section 6.3.11): each message fits the
        quota alone, the three together do not, so none is stored; three
        that fit are stored in order, with ascending UIDs."""
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        await inbox.append(b"0\r\n")
        store.set_quota_limits(QuotaLimits(messages=3))
        three = [NewMessage(b"%d\r\n" % n, frozenset({"\\Seen"})) for n in (1, 2, 3)]
        with pytest.raises(OverQuota):
            await inbox.append_all(three)
        assert (await inbox.status()).messages == 1
        assert await store.quota_usage() == QuotaUsage(storage=3, messages=1)
        store.set_quota_limits(QuotaLimits(messages=4))
        uids = await inbox.append_all(three)
        assert uids == sorted(uids) and len(set(uids)) == 3
        for uid, message in zip(uids, three, strict=True):
            assert (await inbox.message(uid)).raw == message.data
        states = {state.uid: state.flags for state in await inbox.states()}
        assert all(states[uid] == frozenset({"\\Seen"}) for uid in uids)

    async def test_move_within_the_account_is_never_refused(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        junk = await store.mailbox("Junk")
        await inbox.append(b"one\r\n")
        await inbox.append(b"two\r\n")
        store.set_quota_limits(QuotaLimits(storage=10, messages=2))
        pairs = await inbox.move_to([1, 2], junk)
        assert len(pairs) == 2
        assert await store.quota_usage() == QuotaUsage(storage=10, messages=2)
        assert (await junk.status()).messages == 2

    async def test_rename_inbox_at_the_limit_keeps_every_message(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        await inbox.append(b"one\r\n")
        await inbox.append(b"two\r\n")
        store.set_quota_limits(QuotaLimits(messages=1))  # already over
        await store.rename("INBOX", "Old")
        assert (await (await store.mailbox("Old")).status()).messages == 2
        assert (await store.quota_usage()).messages == 2
