"""What a selected view keeps per connection (issue 11: cheap IDLE connections).

Every connection that selects a mailbox holds a view with the UID, flags
and MODSEQ of each message.  Views of one mailbox that agree share one
table (copy-on-write, :mod:`asimap.imap.session.selected_table`): a
thousand IDLE connections on one INBOX hold one table, before and after a
delivery, and a view that must see the mailbox differently for a while
(an expunge it may not announce yet, RFC 3501 section 7.4.1) gets its own
copy until it has caught up.  Within a table, one frozenset per distinct
flag set.
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import Mock

from asimap.imap.responses import Atom, Response, Untagged
from asimap.imap.session.selected import SelectedMailbox
from asimap.imap.session.selected_table import shared_flags
from asimap.store.base import Mailbox, MessageState, StoreMode
from asimap.store.memory import MemoryMailbox, MemoryStore
from transcript import FakeClient, World, add_messages, message


def _states(count: int) -> list[MessageState]:
    # A fresh frozenset per message, as a store builds them.
    return [
        MessageState(uid, frozenset(["\\Seen", "\\Flagged"][: uid % 3]), uid)
        for uid in range(1, count + 1)
    ]


def test_views_share_one_instance_per_distinct_flag_set() -> None:
    mailbox = Mock(spec=Mailbox)
    first = SelectedMailbox(mailbox, _states(300), 300, readonly=False)
    second = SelectedMailbox(mailbox, _states(300), 300, readonly=False)
    assert first.flags == second.flags
    assert {id(flags) for flags in first.flags.values()} == {
        id(flags) for flags in second.flags.values()
    }
    assert len({id(flags) for flags in first.flags.values()}) == 3
    assert first.flags[4] is second.flags[7]


def test_shared_flags_equal_and_bounded() -> None:
    made = [shared_flags(frozenset({f"kw{i}"})) for i in range(10_000)]
    assert made[-1] == frozenset({"kw9999"})
    assert shared_flags(frozenset({"kw9999"})) is made[-1]


def _is(response: Response, kind: str) -> bool:
    return isinstance(response, Untagged) and Atom(kind) in response.values


async def _inbox(count: int) -> MemoryMailbox:
    store = MemoryStore.for_new_account()
    inbox = await store.mailbox("INBOX")
    for i in range(count):
        await inbox.append(message(f"m{i}"))
    return inbox


async def _select(inbox: MemoryMailbox) -> SelectedMailbox:
    status = await inbox.status()
    return SelectedMailbox(
        inbox, await inbox.states(), status.highestmodseq, readonly=False
    )


async def test_views_of_one_mailbox_share_one_table() -> None:
    inbox = await _inbox(50)
    views = [await _select(inbox) for _ in range(20)]
    assert len({id(view.table) for view in views}) == 1
    assert views[0].uids == list(range(1, 51))


async def test_a_delivery_leaves_the_views_sharing_one_new_table() -> None:
    inbox = await _inbox(50)
    views = [await _select(inbox) for _ in range(20)]
    before = views[0].table
    await inbox.append(message("new"))
    for view in views:
        responses = await view.refresh(allow_expunge=True, with_uid=False)
        assert Untagged((51, Atom("EXISTS"))) in responses
    assert len({id(view.table) for view in views}) == 1
    assert views[0].table is not before
    assert before.uids == list(range(1, 51))  # the old one was not changed
    assert views[0].uids == list(range(1, 52))


async def test_a_view_that_must_withhold_an_expunge_copies_then_rejoins() -> None:
    inbox = await _inbox(10)
    fetching, *idling = [await _select(inbox) for _ in range(3)]
    await inbox.store([4], StoreMode.ADD, ["\\Deleted"])
    await inbox.expunge()
    # RFC 3501 7.4.1: no EXPUNGE during FETCH by sequence number.
    during_fetch = await fetching.refresh(allow_expunge=False, with_uid=False)
    assert not any(_is(r, "EXPUNGE") for r in during_fetch)
    for view in idling:
        assert Untagged((4, Atom("EXPUNGE"))) in await view.refresh(
            allow_expunge=True, with_uid=False
        )
    assert idling[0].table is idling[1].table
    assert fetching.table is not idling[0].table
    assert 4 in fetching.uids and fetching.exists == 10
    assert 4 not in idling[0].uids and idling[0].exists == 9
    later = await fetching.refresh(allow_expunge=True, with_uid=False)
    assert Untagged((4, Atom("EXPUNGE"))) in later
    assert fetching.table is idling[0].table


async def test_own_flag_change_does_not_reach_other_views() -> None:
    inbox = await _inbox(5)
    storing, other = await _select(inbox), await _select(inbox)
    result = await inbox.store([2], StoreMode.ADD, ["\\Flagged"])
    storing.note_states(result.updated)
    assert "\\Flagged" in storing.flags[2]
    assert "\\Flagged" not in other.flags[2]
    fetched = await other.refresh(allow_expunge=True, with_uid=False)
    assert [r for r in fetched if _is(r, "FETCH")]
    # The connection that stored is not told again (RFC 3501 6.4.6 told it).
    assert await storing.refresh(allow_expunge=True, with_uid=False) == []
    assert storing.table is other.table


async def test_idle_connections_of_one_user_share_one_table() -> None:
    """The same through whole sessions: LOGIN, SELECT, IDLE, a delivery."""
    world = World()
    await add_messages(world, "alice", "INBOX", *(message(f"m{i}") for i in range(30)))
    clients = [FakeClient(world) for _ in range(6)]
    try:
        for client in clients:
            client.start()
            await client.next_line()
            client.write(b"a LOGIN alice secret-a\r\nb SELECT INBOX\r\n")
            while not (await client.next_line()).startswith(b"b OK"):
                pass
        for client in clients[1:]:
            client.write(b"c IDLE\r\n")
            assert (await client.next_line()).startswith(b"+ ")
        data = message("new")
        clients[0].write(b"d APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        while not (await clients[0].next_line()).startswith(b"d OK"):
            pass
        for client in clients[1:]:
            assert await client.next_line() == b"* 31 EXISTS"
        tables = {id(client.session._ctx.selected.table) for client in clients}  # type: ignore[union-attr]
        assert len(tables) == 1
    finally:
        for client in clients:
            await client.stop()


async def test_idle_views_woken_together_ask_the_store_once() -> None:
    """A delivery wakes every IDLE view: one ``changes_since`` and one
    \\Recent claim for all of them, not one each (each is a job on the
    store's thread, and 900 of them delayed the last view by seconds)."""
    inbox = await _inbox(10)
    views = [await _select(inbox) for _ in range(20)]
    asked = {"changes_since": 0, "claim_recent": 0}

    def counting(name: str) -> Any:
        real = getattr(inbox, name)

        async def call(*args: Any) -> Any:
            asked[name] += 1
            return await real(*args)

        return call

    for name in asked:
        setattr(inbox, name, counting(name))
    await inbox.append(message("new"))
    answers = await asyncio.gather(
        *(v.refresh(allow_expunge=True, with_uid=False, shared=True) for v in views)
    )
    assert asked == {"changes_since": 1, "claim_recent": 1}
    assert all(Untagged((11, Atom("EXISTS"))) in answer for answer in answers)
    recent = [a for a in answers if any(_is(r, "RECENT") for r in a)]
    assert len(recent) == 1  # RFC 3501 2.3.2: one session is told
    assert len({id(view.table) for view in views}) == 1
    # Not woken together: each asks on its own (no stale answer reused).
    await inbox.append(message("later"))
    await views[0].refresh(allow_expunge=True, with_uid=False, shared=True)
    await views[1].refresh(allow_expunge=True, with_uid=False, shared=True)
    assert asked["changes_since"] == 3
