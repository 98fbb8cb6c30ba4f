"""Unit tests of session pieces not reachable through a transcript:
check_literal's own refusals, the SERVERBUG guard, UID set formatting."""

from __future__ import annotations

import pytest

from asimap.imap import commands as c
from asimap.imap.limits import Limits
from asimap.imap.parser import PendingCommand
from asimap.imap.responses import Code, Status, Tagged
from asimap.imap.session import Session, SessionState
from asimap.imap.session.uidset import format_uid_list
from transcript import FakeClient, World


async def logged_in(world: World) -> FakeClient:
    client = FakeClient(world)
    assert await client.session.handle(c.Login("a", b"alice", b"secret-a"))
    assert client.session.state is SessionState.AUTHENTICATED
    client.output.clear()
    return client


async def test_check_literal_refusals() -> None:
    world = World(limits=Limits(max_literal=100))
    anonymous = FakeClient(world)
    refusal = await anonymous.session.check_literal(
        PendingCommand("t", "APPEND", b"INBOX", 0), 10, True
    )
    assert isinstance(refusal, Tagged) and refusal.status is Status.BAD
    # LOGIN may take a literal before authentication.
    assert (
        await anonymous.session.check_literal(
            PendingCommand("t", "LOGIN", None, 0), 5, True
        )
        is None
    )

    client = await logged_in(world)
    session = client.session
    too_big = await session.check_literal(
        PendingCommand("t", "APPEND", b"INBOX", 0), 101, True
    )
    assert too_big == Tagged("t", Status.NO, "Message too large", Code("TOOBIG"))
    missing = await session.check_literal(
        PendingCommand("t", "APPEND", b"nosuch", 0), 10, False
    )
    assert missing == Tagged(
        "t", Status.NO, "Mailbox does not exist", Code("TRYCREATE")
    )
    invalid = await session.check_literal(
        PendingCommand("t", "APPEND", b"a//b", 0), 10, True
    )
    assert isinstance(invalid, Tagged) and invalid.code == Code("CANNOT")
    assert (
        await session.check_literal(
            PendingCommand("t", "APPEND", b"inbox", 0), 10, True
        )
        is None
    )
    # Only the first literal of a MULTIAPPEND names the mailbox check.
    assert (
        await session.check_literal(
            PendingCommand("t", "APPEND", b"nosuch", 1), 10, True
        )
        is None
    )


async def test_unexpected_exception_is_serverbug_and_connection_stays() -> None:
    world = World()
    client = await logged_in(world)

    async def broken_list(*args: object) -> None:
        raise RuntimeError("boom")

    store = world.stores["alice"]
    store.list_mailboxes = broken_list  # type: ignore[method-assign,assignment]
    assert await client.session.handle(c.List("b", b"", (b"*",)))
    assert bytes(client.output) == b"b NO [SERVERBUG] Internal error\r\n"
    client.output.clear()
    assert await client.session.handle(c.Noop("c"))
    assert bytes(client.output) == b"c OK NOOP completed\r\n"


async def test_close_releases_the_selected_mailbox() -> None:
    client = await logged_in(World())
    session: Session = client.session
    await session.handle(c.Select("s", b"INBOX"))
    assert session.state is SessionState.SELECTED
    await session.close()
    assert session.state is SessionState.LOGOUT


@pytest.mark.parametrize(
    ("uids", "text"),
    [
        ([1], "1"),
        ([1, 2, 3, 7], "1:3,7"),
        ([5, 6, 2, 3], "5:6,2:3"),
        ([4, 9, 10, 11, 20], "4,9:11,20"),
        ([], ""),
    ],
)
def test_format_uid_list(uids: list[int], text: str) -> None:
    assert format_uid_list(uids) == text
