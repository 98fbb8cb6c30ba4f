"""The conformance suite every :class:`asimap.store.base.Store` must pass.

Usage, for a store under test::

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store_factory(self, tmp_path: Path) -> StoreFactory:
            async def make() -> Store:
                return await MyStore.for_new_account(tmp_path / "mail")
            return make

``store_factory`` returns a fresh store of a *new account* (INBOX plus the
special-use folders of design.md section 2).  The memory store is the reference
(``tests/test_store_memory.py``); every rule here is one the session relies
on, with the RFC section it follows.
"""

from __future__ import annotations

import asyncio
import gzip
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import pytest

from asimap.store.base import (
    METADATA_MAX_ENTRIES,
    METADATA_MAX_VALUE,
    InvalidMailboxName,
    Mailbox,
    MailboxEntry,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotFound,
    MessageGone,
    MetadataTooLarge,
    MetadataTooMany,
    OperationNotPermitted,
    Store,
    StoreError,
    StoreMode,
)
from store_conformance_objectid import ObjectIdConformance
from store_conformance_quota import QuotaConformance
from store_feed_conformance import FeedConformance

StoreFactory = Callable[[], Awaitable[Store]]

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "usrp-users.mbox.gz"

#: Upper bound for anything that should happen "at once" (not a timing
#: assertion: only a guard so a broken store fails instead of hanging).
PROMPT = 5.0


@cache
def corpus_messages(count: int = 12) -> tuple[bytes, ...]:
    """The first ``count`` messages of the real corpus, as raw bytes.

    Read by streaming, so only the beginning of the archive is decompressed.
    The mbox ``From `` separator line is dropped; the rest is kept as is.
    """
    messages: list[bytes] = []
    current: list[bytes] = []
    with gzip.open(CORPUS, "rb") as mbox:
        for line in mbox:
            if line.startswith(b"From "):
                if current:
                    messages.append(b"".join(current))
                    if len(messages) == count:
                        break
                current = []
            else:
                current.append(line)
    return tuple(messages)


#: Byte sequences a store must keep exactly (CRLF, bare LF and CR, NUL,
#: 8-bit, no final newline, a line that looks like an mbox separator).
ODD_MESSAGES = (
    b"Subject: crlf\r\n\r\nbody\r\n",
    b"Subject: lf\n\nbody\n",
    b"Subject: mixed\r\n\nbare\rcr\r\n",
    b"Subject: nul\r\n\r\na\x00b\r\n",
    b"Subject: 8bit \xe9\xff\r\n\r\n\x80\x81\xfe\r\n",
    b"Subject: no final newline\r\n\r\nend",
    b"Subject: from\r\n\r\nFrom me\r\n>From you\r\n.\r\n",
)


async def highest(mailbox: Mailbox) -> int:
    return (await mailbox.status()).highestmodseq


async def entries_by_name(store: Store) -> dict[str, MailboxEntry]:
    return {entry.name: entry for entry in await store.list_mailboxes()}


async def flags_of(mailbox: Mailbox) -> dict[int, frozenset[str]]:
    return {state.uid: state.flags for state in await mailbox.states()}


async def settle() -> None:
    """Let other tasks run a few times (a waiter reaching its wait)."""
    for _ in range(5):
        await asyncio.sleep(0)


class StoreConformance(FeedConformance, QuotaConformance, ObjectIdConformance):
    """Tests shared by every store; subclasses provide ``store_factory``.

    The change-feed rules live in :mod:`store_feed_conformance`, the quota
    rules in :mod:`store_conformance_quota`, the RFC 8474/8514 ones in
    :mod:`store_conformance_objectid`."""

    # -- a new account --------------------------------------------------------

    async def test_new_account_has_inbox_and_special_use_folders(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        entries = await entries_by_name(store)
        expected_uses = {
            "Junk": "\\Junk",
            "Archive": "\\Archive",
            "Sent Messages": "\\Sent",
            "Drafts": "\\Drafts",
            "Deleted Messages": "\\Trash",
        }
        assert set(entries) == {"INBOX", *expected_uses}
        for name, use in expected_uses.items():
            assert use in entries[name].attributes, name
        for entry in entries.values():
            assert "\\Noselect" not in entry.attributes
            assert "\\HasNoChildren" in entry.attributes
        assert "\\Trash" not in entries["INBOX"].attributes
        assert store.delimiter == "/"

    async def test_new_mailboxes_are_empty(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        status = await inbox.status()
        assert (status.messages, status.recent, status.unseen) == (0, 0, 0)
        assert (status.size, status.deleted) == (0, 0)
        assert status.uidnext >= 1
        assert status.highestmodseq >= 1
        assert await inbox.states() == ()
        assert await inbox.keywords() == frozenset()

    async def test_list_is_sorted(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        for name in ("zeta", "alpha/beta", "Mid", "alpha/Aa"):
            await store.create(name)
        names = [entry.name for entry in await store.list_mailboxes()]
        assert names == sorted(names)

    # -- append, UIDs, raw bytes ------------------------------------------------

    async def test_append_gives_strictly_increasing_uids(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        before = (await inbox.status()).uidnext
        uids = [await inbox.append(raw) for raw in corpus_messages()[:5]]
        assert uids == sorted(set(uids))
        assert uids[0] >= before
        assert [s.uid for s in await inbox.states()] == uids
        status = await inbox.status()
        assert status.messages == 5
        assert status.uidnext > uids[-1]

    async def test_uids_never_reused_after_expunging_the_last(
        self, store_factory: StoreFactory
    ) -> None:
        # RFC 3501 section 2.3.1.1: UIDs are strictly ascending, never reused.
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        first = await inbox.append(b"Subject: 1\r\n\r\n1\r\n")
        last = await inbox.append(b"Subject: 2\r\n\r\n2\r\n", ["\\Deleted"])
        assert await inbox.expunge() == (last,)
        uidnext = (await inbox.status()).uidnext
        assert uidnext > last
        again = await inbox.append(b"Subject: 3\r\n\r\n3\r\n")
        assert again > last > first
        assert again >= uidnext

    async def test_recreated_mailbox_never_repeats_uids(
        self, store_factory: StoreFactory
    ) -> None:
        # RFC 3501 section 6.3.3: a new incarnation has greater UIDs or a
        # different UIDVALIDITY.
        store = await store_factory()
        await store.create("again")
        old = await store.mailbox("again")
        old_uid = await old.append(b"Subject: old\r\n\r\n")
        old_validity = old.uidvalidity
        await store.delete("again")
        await store.create("again")
        new = await store.mailbox("again")
        new_uid = await new.append(b"Subject: new\r\n\r\n")
        assert new.uidvalidity != old_validity or new_uid > old_uid
        assert [s.uid for s in await new.states()] == [new_uid]

    async def test_uidvalidity_is_stable(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        validity = (await inbox.status()).uidvalidity
        assert validity == inbox.uidvalidity
        assert 0 < validity < 2**32  # nz-number, RFC 3501 section 9
        uid = await inbox.append(b"Subject: x\r\n\r\n", ["\\Deleted"])
        await inbox.store([uid], StoreMode.ADD, ["\\Seen"])
        await inbox.expunge()
        assert (await inbox.status()).uidvalidity == validity
        reopened = await store.mailbox("INBOX")
        assert reopened.uidvalidity == validity
        assert (await reopened.status()).uidvalidity == validity

    async def test_append_is_byte_faithful(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        samples = corpus_messages() + ODD_MESSAGES
        uids = [await inbox.append(raw) for raw in samples]
        for uid, raw in zip(uids, samples, strict=True):
            message = await inbox.message(uid)
            assert message.raw == raw
            assert (await inbox.info(uid)).size == len(raw)
            assert (await inbox.info(uid)).uid == uid
        assert (await inbox.status()).size == sum(len(raw) for raw in samples)

    async def test_message_is_cached(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        uid = await inbox.append(corpus_messages()[0])
        assert await inbox.message(uid) is await inbox.message(uid)

    async def test_internaldate_default_and_given(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        before = datetime.now(UTC).replace(microsecond=0)
        uid = await inbox.append(b"Subject: now\r\n\r\n")
        after = datetime.now(UTC)
        date = (await inbox.info(uid)).internaldate
        assert date.tzinfo is not None
        assert date.microsecond == 0
        assert before <= date <= after
        given = datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-7)))
        uid = await inbox.append(b"Subject: then\r\n\r\n", internaldate=given)
        kept = (await inbox.info(uid)).internaldate
        assert kept == given  # the same instant
        assert kept.tzinfo is not None

    async def test_append_normalises_flags(self, store_factory: StoreFactory) -> None:
        # RFC 3501 section 2.3.2: system flags are case-insensitive;
        # \Recent cannot be stored.
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        uid = await inbox.append(
            b"Subject: f\r\n\r\n",
            ["\\seen", "\\RECENT", "$Forwarded", "\\flagged", "\\Seen"],
        )
        assert (await flags_of(inbox))[uid] == {"\\Seen", "\\Flagged", "$Forwarded"}
        assert await inbox.keywords() == {"$Forwarded"}

    async def test_status_counts(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        await inbox.append(b"a\r\n", ["\\Seen"])
        await inbox.append(b"bb\r\n", ["\\Deleted"])
        await inbox.append(b"ccc\r\n", ["\\Seen", "\\Deleted"])
        await inbox.append(b"dddd\r\n")
        status = await inbox.status()
        assert status.messages == 4
        assert status.unseen == 2
        assert status.deleted == 2
        assert status.size == 3 + 4 + 5 + 6

    async def test_keywords_are_those_in_use(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        one = await inbox.append(b"1\r\n", ["Work", "\\Answered"])
        await inbox.append(b"2\r\n", ["$Junk"])
        assert await inbox.keywords() == {"Work", "$Junk"}
        await inbox.store([one], StoreMode.REMOVE, ["Work"])
        assert "Work" not in await inbox.keywords()

    async def test_concurrent_appends_get_distinct_uids(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        other = await store.mailbox("INBOX")
        bodies = [f"Subject: {n}\r\n\r\n{n}\r\n".encode() for n in range(50)]
        uids = await asyncio.gather(
            *((inbox if n % 2 else other).append(body) for n, body in enumerate(bodies))
        )
        assert len(set(uids)) == 50
        assert sorted(s.uid for s in await inbox.states()) == sorted(uids)
        for uid, body in zip(uids, bodies, strict=True):
            assert (await inbox.message(uid)).raw == body

    # -- MODSEQ and the change feed ---------------------------------------------

    async def test_modseq_grows_with_every_change(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        seen = [await highest(inbox)]
        uid = await inbox.append(b"x\r\n")
        seen.append(await highest(inbox))
        state = (await inbox.states())[0]
        assert state.modseq == seen[-1]  # a message's modseq: its last change
        await inbox.store([uid], StoreMode.ADD, ["\\Deleted"])
        seen.append(await highest(inbox))
        assert (await inbox.states())[0].modseq == seen[-1]
        await inbox.expunge()
        seen.append(await highest(inbox))
        assert seen == sorted(set(seen)), seen

    async def test_noop_store_does_not_bump_modseq(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        uid = await inbox.append(b"x\r\n", ["\\Seen", "Work"])
        before = await highest(inbox)
        for mode, flags in [
            (StoreMode.ADD, ["\\Seen"]),
            (StoreMode.ADD, ["\\seen", "work"]),
            (StoreMode.REMOVE, ["\\Draft"]),
            (StoreMode.REPLACE, ["Work", "\\Seen", "\\Recent"]),
        ]:
            result = await inbox.store([uid], mode, flags)
            assert result.updated == (), (mode, flags)
            assert result.conflicts == ()
        assert await highest(inbox) == before
        changes = await inbox.changes_since(before)
        assert changes.changed == ()
        assert changes.expunged == ()
        assert await inbox.expunge() == ()
        assert await highest(inbox) == before

    async def test_changes_since_is_exact(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        one = await inbox.append(b"1\r\n")
        two = await inbox.append(b"2\r\n", ["\\Deleted"])
        three = await inbox.append(b"3\r\n")
        baseline = await highest(inbox)
        assert (await inbox.changes_since(baseline)).changed == ()

        four = await inbox.append(b"4\r\n")
        await inbox.store([one], StoreMode.ADD, ["\\Flagged"])
        middle = await highest(inbox)
        assert await inbox.expunge() == (two,)

        changes = await inbox.changes_since(baseline)
        assert changes.highestmodseq == await highest(inbox)
        assert [s.uid for s in changes.changed] == [one, four]
        assert changes.changed[0].flags == {"\\Flagged"}
        current = {s.uid: s for s in await inbox.states()}
        assert list(changes.changed) == [current[one], current[four]]
        assert changes.expunged == (two,)
        assert changes.expunged_complete

        later = await inbox.changes_since(middle)
        assert later.changed == ()
        assert later.expunged == (two,)

        everything = await inbox.changes_since(0)
        assert [s.uid for s in everything.changed] == [one, three, four]

        nothing = await inbox.changes_since(await highest(inbox))
        assert (nothing.changed, nothing.expunged) == ((), ())

    async def test_changes_since_reports_expunges_ascending(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        uids = [await inbox.append(b"%d\r\n" % n, ["\\Deleted"]) for n in range(4)]
        baseline = await highest(inbox)
        assert await inbox.expunge([uids[3]]) == (uids[3],)
        assert await inbox.expunge() == (uids[0], uids[1], uids[2])
        changes = await inbox.changes_since(baseline)
        assert changes.expunged == tuple(uids)
        assert changes.changed == ()

    # -- STORE ---------------------------------------------------------------

    async def test_store_modes(self, store_factory: StoreFactory) -> None:
        # RFC 3501 section 6.4.6.
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        uid = await inbox.append(b"x\r\n", ["\\Seen"])
        result = await inbox.store([uid], StoreMode.ADD, ["\\Flagged", "Work"])
        assert [s.flags for s in result.updated] == [{"\\Seen", "\\Flagged", "Work"}]
        result = await inbox.store([uid], StoreMode.REMOVE, ["\\seen", "WORK"])
        assert [s.flags for s in result.updated] == [{"\\Flagged"}]
        result = await inbox.store([uid], StoreMode.REPLACE, ["\\Answered", "\\draft"])
        assert [s.flags for s in result.updated] == [{"\\Answered", "\\Draft"}]
        assert result.updated[0].modseq == await highest(inbox)
        assert (await flags_of(inbox))[uid] == {"\\Answered", "\\Draft"}
        result = await inbox.store([uid], StoreMode.REPLACE, [])
        assert [s.flags for s in result.updated] == [frozenset()]

    async def test_keywords_compare_case_insensitively(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        uid = await inbox.append(b"x\r\n", ["Project"])
        assert (await inbox.store([uid], StoreMode.ADD, ["PROJECT"])).updated == ()
        assert (await flags_of(inbox))[uid] == {"Project"}
        await inbox.store([uid], StoreMode.REMOVE, ["project"])
        assert (await flags_of(inbox))[uid] == frozenset()

    async def test_store_several_and_skip_expunged(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        uids = [await inbox.append(b"%d\r\n" % n) for n in range(3)]
        await inbox.store([uids[1]], StoreMode.ADD, ["\\Deleted"])
        await inbox.expunge()
        result = await inbox.store(
            [uids[2], uids[1], uids[0], 9999], StoreMode.ADD, ["\\Seen"]
        )
        assert [s.uid for s in result.updated] == [uids[0], uids[2]]
        assert result.conflicts == ()
        assert all(s.flags == {"\\Seen"} for s in result.updated)

    async def test_unchanged_since_conflicts(self, store_factory: StoreFactory) -> None:
        # RFC 7162 section 3.1.3: messages changed after UNCHANGEDSINCE are
        # not touched and are reported (MODIFIED response code).
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        old = await inbox.append(b"old\r\n")
        fresh = await inbox.append(b"fresh\r\n")
        since = await highest(inbox)
        await inbox.store([fresh], StoreMode.ADD, ["Touched"])
        result = await inbox.store(
            [old, fresh], StoreMode.ADD, ["\\Seen"], unchanged_since=since
        )
        assert [s.uid for s in result.updated] == [old]
        assert result.conflicts == (fresh,)
        assert (await flags_of(inbox)) == {old: {"\\Seen"}, fresh: {"Touched"}}
        # A message whose modseq equals UNCHANGEDSINCE may still change.
        current = (await inbox.states())[1].modseq
        result = await inbox.store(
            [fresh], StoreMode.ADD, ["\\Seen"], unchanged_since=current
        )
        assert [s.uid for s in result.updated] == [fresh]
        assert result.conflicts == ()

    # -- EXPUNGE and MessageGone -------------------------------------------------

    async def test_expunge_removes_only_deleted(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        flags = [["\\Deleted"], [], ["\\Deleted", "\\Seen"], ["\\Seen"], ["\\Deleted"]]
        uids = [await inbox.append(b"%d\r\n" % n, f) for n, f in enumerate(flags)]
        assert await inbox.expunge([uids[4], uids[3], 12345]) == (uids[4],)
        assert await inbox.expunge() == (uids[0], uids[2])
        assert [s.uid for s in await inbox.states()] == [uids[1], uids[3]]
        status = await inbox.status()
        assert (status.messages, status.deleted) == (2, 0)

    async def test_message_gone_after_expunge(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        uid = await inbox.append(b"x\r\n", ["\\Deleted"])
        await inbox.message(uid)
        await inbox.expunge()
        with pytest.raises(MessageGone):
            await inbox.message(uid)
        with pytest.raises(MessageGone):
            await inbox.info(uid)
        with pytest.raises(MessageGone):
            await inbox.info(uid + 100)
        assert issubclass(MessageGone, StoreError)

    # -- waiting for changes --------------------------------------------------------

    async def test_wait_returns_at_once_if_already_changed(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        before = await highest(inbox)
        await inbox.append(b"x\r\n")
        async with asyncio.timeout(PROMPT):
            await inbox.wait_for_change(before)

    @pytest.mark.parametrize("change", ["append", "store", "expunge"])
    async def test_wait_wakes_on_change_through_another_object(
        self, store_factory: StoreFactory, change: str
    ) -> None:
        store = await store_factory()
        watcher = await store.mailbox("INBOX")
        actor = await store.mailbox("INBOX")
        uid = await actor.append(b"x\r\n", ["\\Deleted"])
        before = await highest(watcher)
        waiters = [
            asyncio.create_task(watcher.wait_for_change(before)) for _ in range(3)
        ]
        await settle()
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waiters), "returned without a change"
        if change == "append":
            await actor.append(b"y\r\n")
        elif change == "store":
            await actor.store([uid], StoreMode.ADD, ["\\Seen"])
        else:
            await actor.expunge()
        async with asyncio.timeout(PROMPT):
            await asyncio.gather(*waiters)
        assert await highest(watcher) > before

    async def test_wait_ignores_noop_changes(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        uid = await inbox.append(b"x\r\n", ["\\Seen"])
        waiter = asyncio.create_task(inbox.wait_for_change(await highest(inbox)))
        try:
            await settle()
            await inbox.store([uid], StoreMode.ADD, ["\\Seen"])
            await inbox.expunge()
            await asyncio.sleep(0.05)
            assert not waiter.done()
            await inbox.store([uid], StoreMode.REMOVE, ["\\Seen"])
            async with asyncio.timeout(PROMPT):
                await waiter
        finally:
            waiter.cancel()

    async def test_wait_is_cancellation_safe(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        before = await highest(inbox)
        # Through asyncio.timeout, as the session bounds IDLE.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await inbox.wait_for_change(before)
        cancelled = asyncio.create_task(inbox.wait_for_change(before))
        survivor = asyncio.create_task(inbox.wait_for_change(before))
        await settle()
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        # The mailbox still works, and the other waiter is still woken.
        await inbox.append(b"x\r\n")
        async with asyncio.timeout(PROMPT):
            await survivor
            await inbox.wait_for_change(before)

    # -- \Recent ------------------------------------------------------------------

    async def test_claim_recent_goes_to_the_first_claimer(
        self, store_factory: StoreFactory
    ) -> None:
        # RFC 3501 section 2.3.2: \Recent for one session only.
        store = await store_factory()
        first = await store.mailbox("INBOX")
        second = await store.mailbox("INBOX")
        a = await first.append(b"a\r\n")
        b = await second.append(b"b\r\n")
        assert (await first.status()).recent == 2
        assert await first.claim_recent() == {a, b}
        assert await second.claim_recent() == frozenset()
        assert await first.claim_recent() == frozenset()
        c = await first.append(b"c\r\n")
        assert await second.claim_recent() == {c}
        assert await first.claim_recent() == frozenset()

    async def test_peek_recent_leaves_the_claim(
        self, store_factory: StoreFactory
    ) -> None:
        # RFC 3501 section 6.3.2: EXAMINE sees \Recent without clearing it.
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        a = await inbox.append(b"a\r\n")
        assert await inbox.peek_recent() == {a}
        assert await inbox.peek_recent() == {a}
        assert (await inbox.status()).recent == 1
        assert await inbox.claim_recent() == {a}
        assert await inbox.peek_recent() == frozenset()

    async def test_expunged_messages_are_not_claimed(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        gone = await inbox.append(b"a\r\n", ["\\Deleted"])
        kept = await inbox.append(b"b\r\n")
        await inbox.expunge()
        assert (await inbox.status()).recent == 1
        assert await inbox.claim_recent() == {kept}
        assert gone != kept

    # -- COPY and MOVE ------------------------------------------------------------

    async def test_copy_keeps_bytes_flags_and_internaldate(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        archive = await store.mailbox("Archive")
        when = datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)
        one = await inbox.append(corpus_messages()[0], ["\\Seen", "Work"], when)
        two = await inbox.append(corpus_messages()[1], ["\\Deleted"])
        gone = await inbox.append(b"gone\r\n", ["\\Deleted"])
        await inbox.expunge([gone])
        pairs = await inbox.copy_to([two, gone, one], archive)
        assert [source for source, _ in pairs] == [one, two]
        targets = [target for _, target in pairs]
        assert targets == sorted(set(targets))
        copied = await flags_of(archive)
        assert copied[targets[0]] == {"\\Seen", "Work"}
        assert copied[targets[1]] == {"\\Deleted"}
        assert (await archive.info(targets[0])).internaldate == when
        for source, target in pairs:
            assert (await archive.message(target)).raw == (
                await inbox.message(source)
            ).raw
        # The sources stay.
        assert [s.uid for s in await inbox.states()] == [one, two]

    async def test_copy_into_the_same_mailbox(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        one = await inbox.append(b"one\r\n", ["\\Flagged"])
        pairs = await inbox.copy_to([one], inbox)
        assert len(pairs) == 1
        (source, target) = pairs[0]
        assert source == one and target > one
        assert await flags_of(inbox) == {one: {"\\Flagged"}, target: {"\\Flagged"}}

    async def test_move_expunges_exactly_the_sources(
        self, store_factory: StoreFactory
    ) -> None:
        # RFC 6851 section 3.3: the sources go whatever their flags; other
        # \Deleted messages stay.
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        junk = await store.mailbox("Junk")
        stay = await inbox.append(b"stay\r\n", ["\\Deleted"])
        move = await inbox.append(b"move\r\n", ["\\Seen"])
        also = await inbox.append(b"also\r\n")
        before = await highest(inbox)
        pairs = await inbox.move_to([also, move], junk)
        assert [source for source, _ in pairs] == [move, also]
        assert [s.uid for s in await inbox.states()] == [stay]
        changes = await inbox.changes_since(before)
        assert changes.expunged == (move, also)
        moved = await flags_of(junk)
        assert moved == {pairs[0][1]: {"\\Seen"}, pairs[1][1]: frozenset()}
        assert (await junk.message(pairs[0][1])).raw == b"move\r\n"

    # -- CREATE / DELETE / RENAME --------------------------------------------------

    async def test_create_makes_missing_parents(
        self, store_factory: StoreFactory
    ) -> None:
        # RFC 3501 section 6.3.3.
        store = await store_factory()
        await store.create("a/b/c")
        entries = await entries_by_name(store)
        assert "\\HasChildren" in entries["a"].attributes
        assert "\\HasChildren" in entries["a/b"].attributes
        assert "\\HasNoChildren" in entries["a/b/c"].attributes
        for name in ("a", "a/b", "a/b/c"):
            mailbox = await store.mailbox(name)
            assert mailbox.name == name
            await mailbox.append(b"x\r\n")

    async def test_create_existing_is_refused(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        await store.create("x")
        with pytest.raises(MailboxExists):
            await store.create("x")
        for inbox in ("INBOX", "inbox", "InBox"):
            with pytest.raises(MailboxExists):
                await store.create(inbox)

    async def test_inbox_is_case_insensitive(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        upper = await store.mailbox("INBOX")
        lower = await store.mailbox("inbox")
        uid = await lower.append(b"x\r\n")
        assert [s.uid for s in await upper.states()] == [uid]
        assert lower.name == "INBOX"

    @pytest.mark.parametrize("name", ["a*", "x%y", "100% done/sub*"])
    async def test_names_with_list_wildcards_are_valid(
        self, store_factory: StoreFactory, name: str
    ) -> None:
        """RFC 9051 section 5.1 item 3: "%" and "*" are valid in a name."""
        store = await store_factory()
        await store.create(name)
        box = await store.mailbox(name)
        uid = await box.append(b"x\r\n")
        assert [s.uid for s in await box.states()] == [uid]
        assert name in {entry.name for entry in await store.list_mailboxes()}
        await store.rename(name, name + "2")
        await store.delete(name + "2")

    @pytest.mark.parametrize("name", ["", "../x", "a//b", "/abs", "~home", "c\x01"])
    async def test_invalid_names_are_refused(
        self, store_factory: StoreFactory, name: str
    ) -> None:
        store = await store_factory()
        with pytest.raises(InvalidMailboxName):
            await store.create(name)
        with pytest.raises(InvalidMailboxName):
            await store.rename("Junk", name)
        with pytest.raises(InvalidMailboxName):
            await store.mailbox(name)

    async def test_all_digit_levels_are_mailboxes(
        self, store_factory: StoreFactory
    ) -> None:
        # Thunderbird's yearly archives and mbsync users bring these; the
        # MH store keeps them in escaped directories (an all-digit entry is
        # a message number to nmh), which no client may notice.
        store = await store_factory()
        names = ("2024", "Archive/2024", "Archive/2024/12", "#2024", "Archive/#7")
        for name in names:
            await store.create(name)
        entries = await entries_by_name(store)
        assert set(names) <= set(entries)
        assert "\\HasChildren" in entries["Archive/2024"].attributes
        uids = {}
        for name in names:
            mailbox = await store.mailbox(name)
            assert mailbox.name == name
            uids[name] = await mailbox.append(name.encode() + b"\r\n")
        for name in names:
            mailbox = await store.mailbox(name)
            assert (await mailbox.message(uids[name])).raw == name.encode() + b"\r\n"
        await store.rename("Archive/2024", "Archive/2025")
        await store.rename("2024", "Old/1999")
        entries = await entries_by_name(store)
        assert {"Archive/2025", "Archive/2025/12", "Old/1999"} <= set(entries)
        assert not {"2024", "Archive/2024", "Archive/2024/12"} & set(entries)
        moved = await store.mailbox("Archive/2025/12")
        assert (await moved.message(uids["Archive/2024/12"])).raw.startswith(
            b"Archive/2024/12"
        )
        for name in ("Archive/2025/12", "Old/1999", "#2024", "Archive/#7"):
            await store.delete(name)
        entries = await entries_by_name(store)
        assert not {"Archive/2025/12", "Old/1999", "#2024", "Archive/#7"} & set(entries)
        assert "Archive/2025" in entries

    async def test_open_missing_mailbox(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        with pytest.raises(MailboxNotFound):
            await store.mailbox("nowhere")
        with pytest.raises(MailboxNotFound):
            await store.mailbox("junk")  # only INBOX ignores case

    async def test_delete_leaf(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        await store.create("leaf")
        opened = await store.mailbox("leaf")
        await opened.append(b"x\r\n")
        await store.delete("leaf")
        assert "leaf" not in await entries_by_name(store)
        with pytest.raises(MailboxNotFound):
            await store.mailbox("leaf")
        with pytest.raises(MailboxNotFound):
            await store.delete("leaf")
        # A session that still holds the object cannot add to it.
        with pytest.raises(MailboxNotFound):
            await opened.append(b"y\r\n")

    async def test_delete_inbox_is_refused(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        for name in ("INBOX", "inbox"):
            with pytest.raises(OperationNotPermitted):
                await store.delete(name)
        await store.mailbox("INBOX")

    async def test_delete_with_children_keeps_a_noselect_parent(
        self, store_factory: StoreFactory
    ) -> None:
        # RFC 3501 section 6.3.4, both examples.
        store = await store_factory()
        await store.create("foo/bar")
        foo = await store.mailbox("foo")
        await foo.append(b"x\r\n")
        await store.delete("foo")
        entries = await entries_by_name(store)
        assert {"\\Noselect", "\\HasChildren"} <= entries["foo"].attributes
        assert "\\Noselect" not in entries["foo/bar"].attributes
        with pytest.raises(MailboxNotFound):
            await store.mailbox("foo")
        with pytest.raises(MailboxHasChildren):
            await store.delete("foo")
        await store.delete("foo/bar")
        entries = await entries_by_name(store)
        assert "foo/bar" not in entries
        assert {"\\Noselect", "\\HasNoChildren"} <= entries["foo"].attributes
        await store.delete("foo")
        assert "foo" not in await entries_by_name(store)

    async def test_create_over_a_noselect_placeholder(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        await store.create("p/c")
        await store.delete("p")
        await store.create("p")
        entries = await entries_by_name(store)
        assert "\\Noselect" not in entries["p"].attributes
        p = await store.mailbox("p")
        assert (await p.status()).messages == 0

    async def test_rename_moves_inferiors(self, store_factory: StoreFactory) -> None:
        # RFC 3501 section 6.3.5.
        store = await store_factory()
        await store.create("a/b/c")
        await store.create("ab")  # not an inferior of "a"
        b = await store.mailbox("a/b")
        uid = await b.append(b"kept\r\n", ["\\Flagged"])
        await store.rename("a", "x/y")
        entries = await entries_by_name(store)
        assert {"x", "x/y", "x/y/b", "x/y/b/c", "ab"} <= set(entries)
        assert not {"a", "a/b", "a/b/c"} & set(entries)
        assert "\\Noselect" not in entries["x"].attributes  # created parent
        moved = await store.mailbox("x/y/b")
        assert (await moved.message(uid)).raw == b"kept\r\n"
        assert await flags_of(moved) == {uid: {"\\Flagged"}}
        with pytest.raises(MailboxNotFound):
            await store.mailbox("a/b")

    async def test_rename_a_noselect_parent(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        await store.create("old/kid")
        await store.delete("old")
        await store.rename("old", "new")
        entries = await entries_by_name(store)
        assert "old" not in entries and "old/kid" not in entries
        assert {"\\Noselect", "\\HasChildren"} <= entries["new"].attributes
        assert "\\Noselect" not in entries["new/kid"].attributes
        await store.mailbox("new/kid")

    async def test_rename_errors(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        await store.create("src/kid")
        with pytest.raises(MailboxNotFound):
            await store.rename("missing", "other")
        with pytest.raises(MailboxExists):
            await store.rename("src", "Junk")
        with pytest.raises(MailboxExists):
            await store.rename("src", "inbox")
        with pytest.raises(OperationNotPermitted):
            await store.rename("src", "src/kid/deeper")
        assert {"src", "src/kid"} <= set(await entries_by_name(store))

    async def test_rename_inbox_moves_its_messages(
        self, store_factory: StoreFactory
    ) -> None:
        # RFC 3501 section 6.3.5: INBOX is left empty, its inferiors stay.
        store = await store_factory()
        await store.create("INBOX/child")
        inbox = await store.mailbox("INBOX")
        when = datetime(2019, 1, 2, 3, 4, 5, tzinfo=UTC)
        await inbox.append(b"first\r\n", ["\\Seen"], when)
        await inbox.append(b"second\r\n")
        before = await highest(inbox)
        await store.rename("inbox", "old-mail")
        entries = await entries_by_name(store)
        assert {"INBOX", "INBOX/child", "old-mail"} <= set(entries)
        assert (await (await store.mailbox("INBOX")).status()).messages == 0
        # A session with INBOX selected learns of the expunges.
        changes = await inbox.changes_since(before)
        assert len(changes.expunged) == 2
        old = await store.mailbox("old-mail")
        assert old.uidvalidity != inbox.uidvalidity
        states = await old.states()
        assert [(await old.message(s.uid)).raw for s in states] == [
            b"first\r\n",
            b"second\r\n",
        ]
        assert states[0].flags == {"\\Seen"}
        assert (await old.info(states[0].uid)).internaldate == when
        # INBOX keeps working.
        assert await inbox.append(b"third\r\n") > 0

    async def test_special_use_at_create(self, store_factory: StoreFactory) -> None:
        # RFC 6154 section 3 (CREATE-SPECIAL-USE).
        store = await store_factory()
        await store.create("Everything", ["\\All"])
        await store.create("Important", ["\\flagged"])
        entries = await entries_by_name(store)
        assert "\\All" in entries["Everything"].attributes
        assert "\\Flagged" in entries["Important"].attributes
        with pytest.raises(StoreError):
            await store.create("Weird", ["\\NotAUse"])
        assert "Weird" not in await entries_by_name(store)

    # -- subscriptions ---------------------------------------------------------------

    async def test_subscriptions(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        await store.subscribe("Drafts")
        await store.subscribe("inbox")
        entries = await entries_by_name(store)
        assert entries["Drafts"].subscribed
        assert entries["INBOX"].subscribed
        assert not entries["Junk"].subscribed
        await store.unsubscribe("Drafts")
        assert not (await entries_by_name(store))["Drafts"].subscribed
        with pytest.raises(MailboxNotFound):
            await store.unsubscribe("Drafts")

    async def test_subscriptions_outlive_mailboxes(
        self, store_factory: StoreFactory
    ) -> None:
        # RFC 3501 section 6.3.6: a subscription is not removed because the
        # mailbox goes; subscribing a missing name is allowed (as Dovecot).
        store = await store_factory()
        await store.subscribe("later")
        await store.create("brief")
        await store.subscribe("brief")
        await store.delete("brief")
        entries = await entries_by_name(store)
        for name in ("later", "brief"):
            assert entries[name].subscribed
            assert "\\NonExistent" in entries[name].attributes
            assert "\\Noselect" in entries[name].attributes
        with pytest.raises(MailboxNotFound):
            await store.mailbox("later")
        await store.create("later")
        entries = await entries_by_name(store)
        assert entries["later"].subscribed
        assert "\\NonExistent" not in entries["later"].attributes

    # -- the change feed under random operations ------------------------------

    @pytest.mark.parametrize("seed", range(6))
    async def test_change_feed_explains_every_difference(
        self, store_factory: StoreFactory, seed: int
    ) -> None:
        """Whatever happened, ``changes_since(m)`` turns the state seen at
        ``m`` into the current one (what QRESYNC and IDLE rely on).

        A seeded random sequence of appends, stores (all modes, with and
        without UNCHANGEDSINCE), expunges, copies and moves runs on two
        mailboxes; after each step the feed is checked against *every*
        earlier snapshot.
        """
        rng = random.Random(seed)
        store = await store_factory()
        inbox = await store.mailbox("INBOX")
        other = await store.mailbox("Archive")
        flag_pool = ["\\Seen", "\\Deleted", "\\Flagged", "Work", "$Label1"]
        snapshots: list[tuple[int, dict[int, frozenset[str]]]] = []
        last_uid = 0
        for step in range(60):
            uids = [s.uid for s in await inbox.states()]
            picked = rng.sample(uids, k=min(len(uids), rng.randint(1, 3)))
            action = rng.choice(["append", "append", "store", "store", "expunge"])
            action = action if uids else "append"
            if rng.random() < 0.15 and uids:
                action = rng.choice(["copy", "move"])
            flags = rng.sample(flag_pool, k=rng.randint(0, 3))
            if action == "append":
                uid = await inbox.append(b"Subject: %d\r\n\r\n" % step, flags)
                assert uid > last_uid
                last_uid = uid
            elif action == "store":
                since = rng.choice([None, None, await highest(inbox) - 1])
                mode = rng.choice(list(StoreMode))
                await inbox.store(picked, mode, flags, unchanged_since=since)
            elif action == "expunge":
                await inbox.expunge(picked if rng.random() < 0.5 else None)
            elif action == "copy":
                await inbox.copy_to(picked, other)
            else:
                source = rng.choice([inbox, other])
                target = other if source is inbox else inbox
                moved = await source.move_to(
                    [s.uid for s in await source.states()][:2], target
                )
                last_uid = max(
                    [last_uid, *(new for _, new in moved if target is inbox)]
                )
            current = await flags_of(inbox)
            now = await highest(inbox)
            for modseq, seen in snapshots:
                changes = await inbox.changes_since(modseq)
                assert changes.highestmodseq == now
                changed = {s.uid: s.flags for s in changes.changed}
                assert list(changed) == sorted(changed)
                assert list(changes.expunged) == sorted(set(changes.expunged))
                for uid, uid_flags in current.items():
                    if seen.get(uid) != uid_flags:
                        assert changed.get(uid) == uid_flags, (step, action, uid)
                assert set(changed) <= set(current)
                assert not set(changes.expunged) & set(current)
                if changes.expunged_complete:
                    assert set(seen) - set(current) <= set(changes.expunged)
                if now == modseq:
                    assert (changes.changed, changes.expunged) == ((), ())
            snapshots.append((now, current))

    # -- METADATA (RFC 5464) -----------------------------------------------------

    async def test_metadata_set_get_and_remove(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        assert await store.get_metadata("INBOX") == {}
        assert await store.get_metadata("") == {}
        await store.set_metadata(
            "INBOX", {"/private/comment": b"mine", "/shared/comment": b"a\x00b"}
        )
        await store.set_metadata("", {"/shared/admin": b"mailto:x@example.org"})
        assert await store.get_metadata("INBOX") == {
            "/private/comment": b"mine",
            "/shared/comment": b"a\x00b",
        }
        assert await store.get_metadata("") == {
            "/shared/admin": b"mailto:x@example.org"
        }
        assert await store.get_metadata("Junk") == {}
        await store.set_metadata(
            "INBOX", {"/private/comment": None, "/private/nothing": None}
        )
        assert await store.get_metadata("INBOX") == {"/shared/comment": b"a\x00b"}
        # Limits: refused as a whole, nothing changed.
        with pytest.raises(MetadataTooLarge):
            await store.set_metadata(
                "INBOX",
                {"/private/ok": b"x", "/private/big": b"y" * (METADATA_MAX_VALUE + 1)},
            )
        many = {f"/shared/n{i}": b"v" for i in range(METADATA_MAX_ENTRIES)}
        with pytest.raises(MetadataTooMany):
            await store.set_metadata("INBOX", many)
        assert await store.get_metadata("INBOX") == {"/shared/comment": b"a\x00b"}
        many.pop("/shared/n0")
        await store.set_metadata("INBOX", many)
        assert len(await store.get_metadata("INBOX")) == METADATA_MAX_ENTRIES
        with pytest.raises(MailboxNotFound):
            await store.get_metadata("nosuch")
        with pytest.raises(MailboxNotFound):
            await store.set_metadata("nosuch", {"/shared/comment": b"x"})

    async def test_metadata_follows_rename_and_dies_with_delete(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory()
        await store.create("a/b")
        await store.set_metadata("a/b", {"/private/comment": b"b"})
        await store.set_metadata("a", {"/private/comment": b"a"})
        await store.rename("a", "c")
        assert await store.get_metadata("c/b") == {"/private/comment": b"b"}
        assert await store.get_metadata("c") == {"/private/comment": b"a"}
        await store.delete("c/b")
        await store.create("c/b")
        assert await store.get_metadata("c/b") == {}
        # c keeps inferiors and becomes \Noselect: its entries go.
        await store.create("c/b/d")
        await store.delete("c")
        with pytest.raises(MailboxNotFound):
            await store.get_metadata("c")
        await store.create("c")
        assert await store.get_metadata("c") == {}
