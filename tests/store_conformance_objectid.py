"""Conformance rules for RFC 8474 object ids and RFC 8514 save dates.

Mixed into :class:`store_conformance.StoreConformance`, so every store
(memory, MH, ...) is held to them.  Kept apart only to keep each file
readable in one sitting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from asimap.store.base import Mailbox, MessageSummary, Store
from asimap.store.objectid import emailid_of, is_objectid

StoreFactory = Callable[[], Awaitable[Store]]

ROOT = (
    b"Message-ID: <root@example.org>\r\nSubject: root\r\n"
    b"From: a@example.org\r\n\r\nfirst\r\n"
)
REPLY = (
    b"Message-ID: <reply@example.org>\r\nIn-Reply-To: <root@example.org>\r\n"
    b"References: <root@example.org>\r\nSubject: Re: root\r\n\r\nsecond\r\n"
)
OTHER = b"Message-ID: <other@example.org>\r\nSubject: other\r\n\r\nthird\r\n"


async def mailboxid(store: Store, name: str) -> str:
    return (await (await store.mailbox(name)).status()).mailboxid


async def summary(mailbox: Mailbox, uid: int) -> MessageSummary:
    (found,) = await mailbox.summaries([uid])
    return found


class ObjectIdConformance:
    """RFC 8474 sections 4-5 and RFC 8514 section 3, store side."""

    # -- MAILBOXID (RFC 8474 section 4) ----------------------------------------

    async def test_mailboxid_is_an_objectid_unique_per_mailbox(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        await store.create("a/b")
        names = [e.name for e in await store.list_mailboxes()]
        ids = [await mailboxid(store, name) for name in names]
        assert all(is_objectid(i) for i in ids), ids
        assert len(set(ids)) == len(ids)
        # Asking again (another object or the same) gives the same id.
        assert [await mailboxid(store, name) for name in names] == ids

    async def test_mailboxid_survives_rename_with_inferiors(
        self, store_factory: StoreFactory
    ) -> None:
        # Section 4.2: RENAME keeps the MAILBOXID (of inferiors too).
        store = await store_factory()
        await store.create("old/child")
        parent, child = (
            await mailboxid(store, "old"),
            await mailboxid(store, "old/child"),
        )
        await store.rename("old", "new")
        assert await mailboxid(store, "new") == parent
        assert await mailboxid(store, "new/child") == child

    async def test_mailboxid_is_new_after_delete_and_create(
        self, store_factory: StoreFactory
    ) -> None:
        # Section 4.1: a mailbox created again is a new mailbox.
        store = await store_factory()
        await store.create("again")
        first = await mailboxid(store, "again")
        await store.delete("again")
        await store.create("again")
        assert await mailboxid(store, "again") != first

    async def test_rename_inbox_hands_its_mailboxid_to_the_new_mailbox(
        self, store_factory: StoreFactory
    ) -> None:
        # Section 4.2 with RFC 3501 6.3.5: the messages' new home keeps the
        # id, the INBOX left behind (empty) is a new mailbox.
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        await inbox.append(ROOT)
        before = await mailboxid(store, "INBOX")
        await store.rename("INBOX", "Old Inbox")
        assert await mailboxid(store, "Old Inbox") == before
        after = await mailboxid(store, "INBOX")
        assert after != before and is_objectid(after)

    # -- EMAILID / THREADID (RFC 8474 section 5) -------------------------------

    async def test_emailid_and_threadid_in_summaries(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        uids = [await inbox.append(raw) for raw in (ROOT, REPLY, OTHER)]
        found = await inbox.summaries(uids)
        emailids = [s.emailid for s in found]
        threadids = [s.threadid for s in found]
        assert all(is_objectid(i) for i in emailids + threadids)
        assert len(set(emailids)) == 3
        # The reply is in the root's thread; the other message is not.
        assert threadids[0] == threadids[1] != threadids[2]
        assert emailids[0] == emailid_of(ROOT)

    async def test_emailid_stays_with_copy_and_move(
        self, store_factory: StoreFactory
    ) -> None:
        # Section 5.1: COPY and MOVE keep the EMAILID (and the THREADID).
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        archive = await store.mailbox("Archive")
        first, second = await inbox.append(ROOT), await inbox.append(REPLY)
        original = [await summary(inbox, uid) for uid in (first, second)]
        ((_, copied),) = await inbox.copy_to([first], archive)
        ((_, moved),) = await inbox.move_to([second], archive)
        again = [await summary(archive, uid) for uid in (copied, moved)]
        assert [s.emailid for s in again] == [s.emailid for s in original]
        assert [s.threadid for s in again] == [s.threadid for s in original]
        # Within the same mailbox too.
        ((_, twin),) = await archive.copy_to([copied], archive)
        assert (await summary(archive, twin)).emailid == original[0].emailid

    # -- SAVEDATE (RFC 8514 section 3) -----------------------------------------

    async def test_savedate_is_when_the_message_arrived(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        long_ago = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
        start = datetime.now(UTC) - timedelta(seconds=2)
        uid = await inbox.append(ROOT, internaldate=long_ago)
        info = await inbox.info(uid)
        # INTERNALDATE is what APPEND said; the save date is now.
        assert info.internaldate == long_ago
        assert info.savedate is not None and info.savedate.tzinfo is not None
        assert start <= info.savedate <= datetime.now(UTC) + timedelta(seconds=2)
        assert (await summary(inbox, uid)).savedate == info.savedate

    async def test_copy_and_move_get_a_new_savedate(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        archive = await store.mailbox("Archive")
        uid = await inbox.append(ROOT)
        original = (await inbox.info(uid)).savedate
        assert original is not None
        # Save dates have one-second resolution (IMAP date-time).
        await asyncio.sleep(1.1)
        ((_, copied),) = await inbox.copy_to([uid], archive)
        ((_, moved),) = await inbox.move_to([uid], archive)
        for new in (copied, moved):
            saved = (await archive.info(new)).savedate
            assert saved is not None and saved > original
            # INTERNALDATE travels with the message (RFC 3501 6.4.7).
            assert (await archive.info(new)).internaldate == (
                await archive.info(copied)
            ).internaldate
