"""The in-memory store: the conformance suite plus memory-only behaviour."""

from __future__ import annotations

import pytest

from asimap.store.base import Store, StoreMode
from asimap.store.memory import MemoryMailbox, MemoryStore
from store_conformance import StoreConformance, StoreFactory


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        async def make() -> Store:
            return MemoryStore.for_new_account()

        return make


async def test_plain_store_has_only_inbox() -> None:
    store = MemoryStore()
    assert [entry.name for entry in await store.list_mailboxes()] == ["INBOX"]


async def test_same_name_opens_the_same_object() -> None:
    store = MemoryStore()
    assert await store.mailbox("INBOX") is await store.mailbox("inbox")


async def test_old_tombstones_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the last ``max_tombstones`` expunges are remembered; a client
    # asking about older history is told the list is incomplete.
    monkeypatch.setattr(MemoryMailbox, "max_tombstones", 3)
    store = MemoryStore()
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(b"%d\r\n" % n, ["\\Deleted"]) for n in range(5)]
    start = (await inbox.status()).highestmodseq
    for uid in uids[:3]:
        await inbox.expunge([uid])
    middle = (await inbox.status()).highestmodseq
    for uid in uids[3:]:
        await inbox.expunge([uid])

    old = await inbox.changes_since(start)
    assert not old.expunged_complete
    assert old.expunged == tuple(uids[2:])

    recent = await inbox.changes_since(middle)
    assert recent.expunged_complete
    assert recent.expunged == tuple(uids[3:])


async def test_uidvalidity_differs_per_creation() -> None:
    store = MemoryStore.for_new_account()
    validities = set()
    for name in ("INBOX", "Junk", "Archive", "Sent Messages", "Drafts"):
        validities.add((await store.mailbox(name)).uidvalidity)
    assert len(validities) == 5


async def test_one_modseq_per_command() -> None:
    store = MemoryStore()
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(b"%d\r\n" % n) for n in range(3)]
    before = (await inbox.status()).highestmodseq
    result = await inbox.store(uids, StoreMode.ADD, ["\\Seen"])
    assert {state.modseq for state in result.updated} == {before + 1}
