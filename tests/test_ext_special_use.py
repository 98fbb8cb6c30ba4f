"""SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154), CHILDREN (RFC 3348).

Transcripts of RFC 6154 section 5's examples and error cases, on the
memory store and on a real MH root (where the attributes live in the
store's database and must survive reopening it).
"""

from __future__ import annotations

from pathlib import Path

from asimap.auth.account import Account
from asimap.store.base import Store
from asimap.store.memory import MemoryStore
from asimap.store.mh import MHStore
from asimap.store.mh.profile import Profile
from transcript import World, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""


class MHWorld(World):
    """Alice's mail is an MH root under ``root`` (opened once per run)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.mh: MHStore | None = None

    async def open_store(self, account: Account) -> Store:
        if self.mh is None:
            self.mh = await MHStore.open(
                self.root, profile=Profile(path=None, unseen=("unseen",)), watch=False
            )
        return self.mh

    async def close(self) -> None:
        if self.mh is not None:
            await self.mh.close()
            self.mh = None


async def _rfc_account(world: World) -> None:
    """RFC 6154 section 5.1's top level: ToDo, Projects/..., SentMail,
    MyDrafts, Trash."""
    store = world.stores["alice"] = MemoryStore()
    await store.create("ToDo")
    await store.create("Projects/Work")
    await store.create("SentMail", ["\\Sent"])
    await store.create("MyDrafts", ["\\Drafts"])
    await store.create("Trash", ["\\Trash"])


async def test_rfc6154_list_examples() -> None:
    await run_transcript(
        LOGIN
        + """
        # 5.1: special uses in a plain LIST, with CHILDREN attributes.
        C1 t1 LIST "" "%"
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * LIST (\\HasNoChildren \\Drafts) "/" "MyDrafts"
        S1 * LIST (\\HasChildren) "/" "Projects"
        S1 * LIST (\\HasNoChildren \\Sent) "/" "SentMail"
        S1 * LIST (\\HasNoChildren) "/" "ToDo"
        S1 * LIST (\\HasNoChildren \\Trash) "/" "Trash"
        S1 t1 OK List completed
        # 5.2: the SPECIAL-USE return option (we return them anyway).
        C1 t2 LIST "" "%" RETURN (SPECIAL-USE)
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * LIST (\\HasNoChildren \\Drafts) "/" "MyDrafts"
        S1 * LIST (\\HasChildren) "/" "Projects"
        S1 * LIST (\\HasNoChildren \\Sent) "/" "SentMail"
        S1 * LIST (\\HasNoChildren) "/" "ToDo"
        S1 * LIST (\\HasNoChildren \\Trash) "/" "Trash"
        S1 t2 OK List completed
        # 5.2: the selection option lists only special-use mailboxes.
        C1 t3 LIST (SPECIAL-USE) "" "*"
        S1 * LIST (\\HasNoChildren \\Drafts) "/" "MyDrafts"
        S1 * LIST (\\HasNoChildren \\Sent) "/" "SentMail"
        S1 * LIST (\\HasNoChildren \\Trash) "/" "Trash"
        S1 t3 OK List completed
        C1 t4 LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE CHILDREN)
        S1 * LIST (\\HasNoChildren \\Drafts) "/" "MyDrafts"
        S1 * LIST (\\HasNoChildren \\Sent) "/" "SentMail"
        S1 * LIST (\\HasNoChildren \\Trash) "/" "Trash"
        S1 t4 OK List completed
        # Selection options combine: special use AND subscribed.
        C1 s SUBSCRIBE Trash
        S1 s OK %*
        C1 t5 LIST (SPECIAL-USE SUBSCRIBED) "" "*"
        S1 * LIST (\\HasNoChildren \\Subscribed \\Trash) "/" "Trash"
        S1 t5 OK List completed
        # RFC 3348 via RFC 5258 RETURN (CHILDREN).
        C1 t6 LIST () "" "P*" RETURN (CHILDREN)
        S1 * LIST (\\HasChildren) "/" "Projects"
        S1 * LIST (\\HasNoChildren) "/" "Projects/Work"
        S1 t6 OK List completed
        """,
        before=_rfc_account,
    )


CREATE_SCRIPT = """
# 5.3: several uses at once; \\All (a virtual mailbox) refused.
C1 t2 CREATE MySpecial (USE (\\Drafts \\Sent))
S1 t2 OK [MAILBOXID (%?)] Create completed
C1 t3 CREATE Everything (USE (\\All))
S1 t3 NO [USEATTR] \\All not supported
C1 t4 CREATE Important (USE (\\Flagged))
S1 t4 NO [USEATTR] \\Flagged not supported
C1 t5 CREATE Odd (USE (\\Bogus))
S1 t5 NO [USEATTR] \\Bogus is not a special use
# Refused mailboxes were not created (RFC 6154 section 3).
C1 l1 LIST "" ("Everything" "Important" "Odd")
S1 l1 OK List completed
# Attributes are case-insensitive; an empty USE list is allowed.
C1 t6 CREATE Spam/Old (USE (\\junk))
S1 t6 OK [MAILBOXID (%?)] Create completed
C1 t7 CREATE Plain (USE ())
S1 t7 OK [MAILBOXID (%?)] Create completed
C1 l2 LIST (SPECIAL-USE) "" "*"
S1 * LIST (\\HasNoChildren \\Archive) "/" "Archive"
S1 * LIST (\\HasNoChildren \\Trash) "/" "Deleted Messages"
S1 * LIST (\\HasNoChildren \\Drafts) "/" "Drafts"
S1 * LIST (\\HasNoChildren \\Junk) "/" "Junk"
S1 * LIST (\\HasNoChildren \\Drafts \\Sent) "/" "MySpecial"
S1 * LIST (\\HasNoChildren \\Sent) "/" "Sent Messages"
S1 * LIST (\\HasNoChildren \\Junk) "/" "Spam/Old"
S1 l2 OK List completed
C1 l3 LIST "" "Plain"
S1 * LIST (\\HasNoChildren) "/" "Plain"
S1 l3 OK List completed
# Syntax errors are BAD (RFC 4466 create-param).
C1 b1 CREATE x (USE (Sent))
S1 b1 BAD %*
C1 b2 CREATE x (FOO (\\Sent))
S1 b2 BAD %*
C1 b3 CREATE x (USE \\Sent)
S1 b3 BAD %*
# A special use on an existing name is still ALREADYEXISTS.
C1 e1 CREATE Junk (USE (\\Junk))
S1 e1 NO [ALREADYEXISTS] %*
"""


async def test_create_special_use_memory() -> None:
    await run_transcript(LOGIN + CREATE_SCRIPT)


async def test_create_special_use_mh_survives_reopen(tmp_path: Path) -> None:
    world = MHWorld(tmp_path / "mail")
    try:
        await run_transcript(LOGIN + CREATE_SCRIPT, world)
    finally:
        await world.close()
    # A new store object over the same root: the uses came from SQLite.
    again = MHWorld(tmp_path / "mail")
    try:
        await run_transcript(
            LOGIN
            + """
            C1 l LIST (SPECIAL-USE) "" "M*"
            S1 * LIST (\\HasNoChildren \\Drafts \\Sent) "/" "MySpecial"
            S1 l OK List completed
            C1 r RENAME MySpecial Moved
            S1 r OK %*
            C1 m LIST "" "M*"
            S1 * LIST (\\HasNoChildren \\Drafts \\Sent) "/" "Moved"
            S1 m OK List completed
            """,
            again,
        )
    finally:
        await again.close()
