"""LIST-STATUS (RFC 5819): ``RETURN (STATUS (...))`` on LIST.

A ``* STATUS`` follows the ``* LIST`` of every selectable mailbox
(section 2), never one that is ``\\Noselect`` or ``\\NonExistent``; the
items are those of the STATUS command, and an item we do not answer is
refused with BAD before anything is listed.
"""

from __future__ import annotations

from asimap.store.memory import MemoryStore
from transcript import World, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""


async def _fill(world: World) -> None:
    """RFC 5819 section 3's account: INBOX, foo, and a \\Noselect bar."""
    store = world.stores["alice"] = MemoryStore()
    inbox = await store.mailbox("INBOX")
    for n in range(3):
        await inbox.append(message(f"in {n}"), ["\\Seen"] if n == 0 else [])
    await store.create("foo")
    foo = await store.mailbox("foo")
    await foo.append(message("foo"))
    await store.create("bar/baz")
    await store.delete("bar")  # bar stays as \Noselect (RFC 3501 6.3.4)
    await store.subscribe("gone")


async def test_rfc5819_example() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * STATUS "INBOX" (MESSAGES 3 UNSEEN 2)
        S1 * LIST (\\Noselect \\HasChildren) "/" "bar"
        S1 * LIST (\\HasNoChildren) "/" "foo"
        S1 * STATUS "foo" (MESSAGES 1 UNSEEN 1)
        S1 A01 OK List completed
        """,
        before=_fill,
    )


async def test_status_with_other_options() -> None:
    size = len(message("foo"))
    await run_transcript(
        LOGIN
        + f"""
        # STATUS before or after the other return options; SIZE and
        # DELETED too; items in the order asked, each once.
        C1 b LIST () "" "f*" RETURN (STATUS (SIZE MESSAGES SIZE) CHILDREN)
        S1 * LIST (\\HasNoChildren) "/" "foo"
        S1 * STATUS "foo" (SIZE {size} MESSAGES 1)
        S1 b OK List completed
        C1 c LIST "" ("foo" "bar/*") RETURN (CHILDREN STATUS (DELETED UIDNEXT))
        S1 * LIST (\\HasNoChildren) "/" "bar/baz"
        S1 * STATUS "bar/baz" (DELETED 0 UIDNEXT 1)
        S1 * LIST (\\HasNoChildren) "/" "foo"
        S1 * STATUS "foo" (DELETED 0 UIDNEXT 2)
        S1 c OK List completed
        # No STATUS for a \\NonExistent (subscribed, deleted) name.
        C1 d LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES))
        S1 * LIST (\\NonExistent \\Subscribed) "/" "gone"
        S1 d OK List completed
        C1 f LIST "" "foo" RETURN (STATUS (RECENT UIDVALIDITY))
        S1 * LIST (\\HasNoChildren) "/" "foo"
        S1 * STATUS "foo" (RECENT 1 UIDVALIDITY %?)
        S1 f OK List completed
        """,
        before=_fill,
    )


async def test_errors() -> None:
    await run_transcript(
        LOGIN
        + """
        # Items we do not know: BAD, and nothing is listed.
        C1 c LIST "" % RETURN (STATUS (BOGUS))
        S1 c BAD Unknown STATUS item BOGUS
        C1 d LIST "" % RETURN (STATUS ())
        S1 d BAD %*
        C1 e LIST "" % RETURN (STATUS)
        S1 e BAD %*
        C1 f LIST "" % RETURN (STATUS (MESSAGES) STATUS (UNSEEN))
        S1 f BAD %*
        C1 g LIST "" "foo" RETURN (STATUS (MESSAGES))
        S1 * LIST (\\HasNoChildren) "/" "foo"
        S1 * STATUS "foo" (MESSAGES 1)
        S1 g OK List completed
        """,
        before=_fill,
    )
