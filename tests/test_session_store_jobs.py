"""Jobs of the MH store's thread per command, counted through the session.

Every job is a round trip to the store's thread behind the other
connections' jobs; a command that asks twice what one job can answer
waits twice.  APPEND opens its target once (``Session.check_literal``
opens it before the literal is read, for ``NO [TRYCREATE]`` and
``NO [TOOBIG]`` before the upload, and the handler appends to what it
opened), and NOTIFY's STATUS of a mailbox is one job (open and count).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asimap.auth.account import Account
from asimap.store.mh import MHStore
from test_ext_special_use import MHWorld
from test_mh_mirror import Jobs
from transcript import FakeClient, message

NAMES = [f"box{i}" for i in range(6)]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[MHWorld]:
    mh = MHWorld(tmp_path / "Mail")
    try:
        yield mh
    finally:
        await mh.close()


async def _store(world: MHWorld) -> MHStore:
    store = await world.open_store(Account("alice", Path("/nonexistent/alice")))
    assert isinstance(store, MHStore)
    return store


async def answer(client: FakeClient, tag: bytes) -> list[bytes]:
    lines = [await client.next_line()]
    while not lines[-1].startswith(tag + b" "):
        lines.append(await client.next_line())
    return lines


async def logged_in(world: MHWorld) -> FakeClient:
    client = FakeClient(world)
    client.start()
    await client.next_line()  # greeting
    client.write(b"a LOGIN alice secret-a\r\n")
    assert (await answer(client, b"a"))[-1].startswith(b"a OK")
    return client


async def append(client: FakeClient, tag: bytes, name: bytes, data: bytes) -> bytes:
    """APPEND with a synchronizing literal; the tagged answer."""
    client.write(tag + b" APPEND " + name + b" {%d}\r\n" % len(data))
    ready = await client.next_line()
    if not ready.startswith(b"+"):
        return ready  # refused before the literal (TRYCREATE, TOOBIG)
    client.write(data + b"\r\n")
    return (await answer(client, tag))[-1]


async def test_append_opens_its_mailbox_once(world: MHWorld) -> None:
    store = await _store(world)
    await store.create("Work")
    client = await logged_in(world)
    assert (await append(client, b"w", b"Work", message("warm"))).startswith(b"w OK")
    opens = 0
    opening = store.mailbox

    async def counted(name: str) -> Any:
        nonlocal opens
        opens += 1
        return await opening(name)

    store.mailbox = counted  # type: ignore[method-assign]
    jobs = Jobs(store)
    tagged = await append(client, b"b", b"Work", message("one"))
    assert tagged.startswith(b"b OK [APPENDUID"), tagged
    assert opens == 1, "APPEND opened its mailbox more than once"
    assert jobs.count == 2, jobs.count  # open, append
    # TRYCREATE (RFC 3501 6.3.11) is still answered before the upload.
    refused = await append(client, b"c", b"Nowhere", message("two"))
    assert refused.startswith(b"c NO [TRYCREATE]"), refused
    client.close_input()


async def test_append_to_a_mailbox_deleted_during_the_upload(
    world: MHWorld,
) -> None:
    """Opened before the literal, deleted while it is read: NO [TRYCREATE]
    and nothing stored; created again meanwhile: stored in the new one."""
    store = await _store(world)
    await store.create("Gone")
    client = await logged_in(world)
    for tag, again in ((b"d", False), (b"e", True)):
        client.write(tag + b" APPEND Gone {%d}\r\n" % len(message("x")))
        assert (await client.next_line()).startswith(b"+")
        await store.delete("Gone")
        if again:
            await store.create("Gone")
        client.write(message("x") + b"\r\n")
        tagged = (await answer(client, tag))[-1]
        if again:
            assert tagged.startswith(tag + b" OK [APPENDUID"), tagged
            assert (await (await store.mailbox("Gone")).status()).messages == 1
        else:
            assert tagged.startswith(tag + b" NO [TRYCREATE]"), tagged
            await store.create("Gone")
            assert (await (await store.mailbox("Gone")).status()).messages == 0
            await store.delete("Gone")
            await store.create("Gone")
    client.close_input()


async def test_notify_status_is_one_job_per_mailbox(world: MHWorld) -> None:
    store = await _store(world)
    for name in NAMES:
        await store.create(name)
    client = await logged_in(world)
    jobs = Jobs(store)
    client.write(b"n NOTIFY SET STATUS (personal (MessageNew MessageExpunge))\r\n")
    lines = await answer(client, b"n")
    assert lines[-1].startswith(b"n OK"), lines
    statuses = [line for line in lines if line.startswith(b"* STATUS")]
    assert len(statuses) > len(NAMES)  # and INBOX, and the default folders
    # One job to list the mailboxes, then one per mailbox (open and count).
    assert jobs.count <= len(statuses) + 2, jobs.count
    client.close_input()


async def test_replace_into_a_mailbox_created_again_during_the_upload(
    world: MHWorld,
) -> None:
    """REPLACE (RFC 8508) appends like APPEND: the name is what counts."""
    store = await _store(world)
    await (await store.mailbox("INBOX")).append(message("old"))
    await store.create("Gone")
    client = await logged_in(world)
    client.write(b"s SELECT INBOX\r\n")
    assert (await answer(client, b"s"))[-1].startswith(b"s OK")
    client.write(b"r REPLACE 1 Gone {%d}\r\n" % len(message("new")))
    assert (await client.next_line()).startswith(b"+")
    await store.delete("Gone")
    await store.create("Gone")
    client.write(message("new") + b"\r\n")
    tagged = (await answer(client, b"r"))[-1]
    assert tagged.startswith(b"r OK"), tagged
    assert (await (await store.mailbox("Gone")).status()).messages == 1
    assert (await (await store.mailbox("INBOX")).status()).messages == 0
    client.close_input()
