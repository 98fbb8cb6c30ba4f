"""STATUS=SIZE (RFC 8438) and STATUS DELETED (RFC 9051 section 6.3.11).

SIZE is the total of the messages' RFC822.SIZE (RFC 8438 section 2:
"the total size of the mailbox in octets"), DELETED the number of
messages flagged ``\\Deleted``.  Checked on the memory store and on an MH
root, where the size must be that of the message files nmh sees.
"""

from __future__ import annotations

from pathlib import Path

from asimap.auth.account import Account
from asimap.store.base import Store, StoreMode
from test_ext_special_use import MHWorld
from transcript import World, add_messages, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

MESSAGES = (message("one"), message("two", "x" * 1000), message("three"))
TOTAL = sum(len(m) for m in MESSAGES)


#: Run after the first two messages got \\Deleted and the first was
#: expunged (through the store, so that no SELECT output is involved).
AFTER_EXPUNGE = f"""
C1 g STATUS INBOX (DELETED SIZE MESSAGES)
S1 * STATUS "INBOX" (DELETED 1 SIZE {TOTAL - len(MESSAGES[0])} MESSAGES 2)
S1 g OK Status completed
"""


async def _mark_two_deleted(store: Store) -> None:
    inbox = await store.mailbox("INBOX")
    await inbox.store([1, 2], StoreMode.ADD, ["\\Deleted"])


async def _expunge_first(store: Store) -> None:
    inbox = await store.mailbox("INBOX")
    await inbox.expunge([1])


def _script() -> str:
    return (
        LOGIN
        + f"""
        # RFC 8438 section 3's example.
        C1 A042 STATUS INBOX (SIZE)
        S1 * STATUS "INBOX" (SIZE {TOTAL})
        S1 A042 OK Status completed
        C1 b STATUS Junk (SIZE DELETED MESSAGES)
        S1 * STATUS "Junk" (SIZE 0 DELETED 0 MESSAGES 0)
        S1 b OK Status completed
        C1 e STATUS INBOX (DELETED SIZE)
        S1 * STATUS "INBOX" (DELETED 2 SIZE {TOTAL})
        S1 e OK Status completed
        # Errors: unknown mailbox, empty list, items we do not answer.
        C1 h STATUS nosuch (SIZE)
        S1 h NO [NONEXISTENT] %*
        C1 i STATUS INBOX ()
        S1 i BAD %*
        C1 j STATUS INBOX (SIZE APPENDLIMIT)
        S1 * STATUS "INBOX" (SIZE %? APPENDLIMIT 67108864)
        S1 j OK Status completed
        C1 k STATUS INBOX (SIZES)
        S1 k BAD %*
        """
    )


async def test_status_size_and_deleted_memory() -> None:
    async def fill(world: World) -> None:
        await add_messages(world, "alice", "INBOX", *MESSAGES)
        await _mark_two_deleted(world.stores["alice"])

    world = await run_transcript(_script(), before=fill)
    await _expunge_first(world.stores["alice"])
    await run_transcript(LOGIN + AFTER_EXPUNGE, world)


async def test_status_size_and_deleted_mh(tmp_path: Path) -> None:
    world = MHWorld(tmp_path / "mail")
    try:
        store = await world.open_store(Account("alice", tmp_path / "mail"))
        inbox = await store.mailbox("INBOX")
        for data in MESSAGES:
            await inbox.append(data)
        await _mark_two_deleted(store)
        await run_transcript(_script(), world)
        await _expunge_first(store)
        await run_transcript(LOGIN + AFTER_EXPUNGE, world)
    finally:
        await world.close()
    # The size is what the message files on disk hold.
    files = [p for p in (tmp_path / "mail" / "inbox").iterdir() if p.name.isdigit()]
    assert sum(p.stat().st_size for p in files) == TOTAL - len(MESSAGES[0])
