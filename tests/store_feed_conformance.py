"""Conformance of the account-wide change feed (:mod:`asimap.store.feed`).

Mixed into :class:`store_conformance.StoreConformance`, so every store runs
it.  NOTIFY (RFC 5465) depends on these rules: every change to messages,
mailbox names, subscriptions and METADATA is published once it is done,
with the name it concerns and the origin of the task that caused it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asimap.store.base import Store, StoreMode
from asimap.store.feed import ORIGIN, FeedEvent, FeedKind

StoreFactory = Callable[[], Awaitable[Store]]


class _Recorder:
    """Collects the events of one store's feed."""

    def __init__(self, store: Store) -> None:
        self.events: list[FeedEvent] = []
        self.stop = store.feed.subscribe(self.events.append)

    def kinds(self) -> list[tuple[FeedKind, str]]:
        return [(event.kind, event.mailbox) for event in self.events]

    def take(self) -> list[tuple[FeedKind, str]]:
        kinds = self.kinds()
        self.events.clear()
        return kinds


class FeedConformance:
    """Tests of :attr:`Store.feed`; subclasses provide ``store_factory``."""

    async def test_feed_reports_message_changes(
        self, store_factory: StoreFactory
    ) -> None:
        store: Store = await store_factory()
        inbox = await store.mailbox("INBOX")
        archive = await store.mailbox("Archive")
        seen = _Recorder(store)
        uid = await inbox.append(b"Subject: one\r\n\r\nbody\r\n")
        assert (FeedKind.MESSAGES, "INBOX") in seen.take()
        await inbox.store([uid], StoreMode.ADD, ["\\Flagged"])
        assert (FeedKind.MESSAGES, "INBOX") in seen.take()
        # A STORE that changes nothing is no change (MODSEQ does not move).
        await inbox.store([uid], StoreMode.ADD, ["\\Flagged"])
        assert (FeedKind.MESSAGES, "INBOX") not in seen.take()
        await inbox.copy_to([uid], archive)
        assert (FeedKind.MESSAGES, "Archive") in seen.take()
        await inbox.store([uid], StoreMode.ADD, ["\\Deleted"])
        seen.take()
        await inbox.expunge()
        assert (FeedKind.MESSAGES, "INBOX") in seen.take()
        await archive.move_to([s.uid for s in await archive.states()], inbox)
        assert {(FeedKind.MESSAGES, "INBOX"), (FeedKind.MESSAGES, "Archive")} <= set(
            seen.take()
        )
        seen.stop()
        await inbox.append(b"Subject: unseen\r\n\r\nbody\r\n")
        assert seen.events == []

    async def test_feed_reports_mailbox_names(
        self, store_factory: StoreFactory
    ) -> None:
        store: Store = await store_factory()
        seen = _Recorder(store)
        await store.create("Lists/ietf")
        assert (FeedKind.CREATED, "Lists/ietf") in seen.take()
        await store.rename("Lists", "Groups")
        [renamed] = [e for e in seen.events if e.kind is FeedKind.RENAMED]
        assert (renamed.mailbox, renamed.old_name) == ("Groups", "Lists")
        seen.take()
        await store.delete("Groups/ietf")
        assert (FeedKind.DELETED, "Groups/ietf") in seen.take()
        # RFC 5465 section 5.4: a renamed INBOX is a new mailbox, not a rename.
        await store.rename("INBOX", "Old mail")
        events = seen.take()
        assert (FeedKind.CREATED, "Old mail") in events
        assert not [kind for kind, _ in events if kind is FeedKind.RENAMED]

    async def test_feed_reports_subscriptions(
        self, store_factory: StoreFactory
    ) -> None:
        store: Store = await store_factory()
        seen = _Recorder(store)
        await store.subscribe("Archive")
        assert seen.take() == [(FeedKind.SUBSCRIPTION, "Archive")]
        await store.unsubscribe("Archive")
        assert seen.take() == [(FeedKind.SUBSCRIPTION, "Archive")]

    async def test_feed_reports_metadata(self, store_factory: StoreFactory) -> None:
        store: Store = await store_factory()
        seen = _Recorder(store)
        await store.set_metadata("INBOX", {"/private/comment": b"hi"})
        await store.set_metadata("", {"/shared/admin": b"x", "/shared/y": None})
        assert [(e.kind, e.mailbox, set(e.entries)) for e in seen.events] == [
            (FeedKind.METADATA, "INBOX", {"/private/comment"}),
            (FeedKind.METADATA, "", {"/shared/admin", "/shared/y"}),
        ]

    async def test_feed_events_carry_their_origin(
        self, store_factory: StoreFactory
    ) -> None:
        store: Store = await store_factory()
        inbox = await store.mailbox("INBOX")
        seen = _Recorder(store)
        me = object()
        token = ORIGIN.set(me)
        try:
            await inbox.append(b"Subject: mine\r\n\r\nbody\r\n")
            await store.create("Mine")
        finally:
            ORIGIN.reset(token)
        await store.create("Theirs")
        origins = {(e.kind, e.mailbox): e.origin for e in seen.events}
        assert origins[(FeedKind.MESSAGES, "INBOX")] is me
        assert origins[(FeedKind.CREATED, "Mine")] is me
        assert origins[(FeedKind.CREATED, "Theirs")] is None
