"""Transcripts: OBJECTID (RFC 8474).

RFC 8474 is not in the shared RFC folder; the rules pinned here, with the
RFC's own examples where it has them (ids differ: ours are random or
derived from content, the RFC's are samples):

* section 4.1: CREATE answers ``OK [MAILBOXID (id)]``;
* section 4.2: RENAME keeps the MAILBOXID; RENAME INBOX gives the new
  mailbox INBOX's id and INBOX a new one (:mod:`asimap.store.objectid`);
* section 4.3: SELECT and EXAMINE send ``* OK [MAILBOXID (id)]``;
* section 4.4: STATUS item MAILBOXID (and so LIST-STATUS, RFC 5819);
* section 5: FETCH EMAILID / THREADID, the same after COPY and MOVE;
* section 6: SEARCH EMAILID / THREADID;
* section 3: ``objectid = 1*255(ALPHA / DIGIT / "_" / "-")``, so a
  malformed id in SEARCH is a syntax error (BAD).
"""

from __future__ import annotations

from asimap.store.objectid import emailid_of, is_objectid
from store_conformance_objectid import OTHER, REPLY, ROOT
from transcript import World, add_messages, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""


async def three(world: World) -> None:
    await add_messages(world, "alice", "INBOX", ROOT, REPLY, OTHER)


def select(
    tag: str, name: str, exists: int, *, examine: bool = False, closed: bool = False
) -> str:
    """The lines of a SELECT/EXAMINE of a mailbox whose messages are all
    recent and unseen (``%{<tag>id}`` captures its MAILBOXID); ``closed``
    when another mailbox was selected (RFC 7162 section 3.2.11)."""
    command = "EXAMINE" if examine else "SELECT"
    was = "S1 * OK [CLOSED] %*\n" if closed else ""
    unseen = "S1 * OK [UNSEEN 1] %*\n" if exists else ""
    mode = "READ-ONLY" if examine else "READ-WRITE"
    return f"""
C1 {tag} {command} {name}
{was}S1 * FLAGS %*
S1 * OK [PERMANENTFLAGS %*
S1 * {exists} EXISTS
S1 * %? RECENT
{unseen}S1 * OK [UIDVALIDITY %?] %*
S1 * OK [UIDNEXT %?] %*
S1 * OK [MAILBOXID (%{{{tag}id}})] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 {tag} OK [{mode}] %*
"""


async def test_capability_is_advertised() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 c CAPABILITY
        S1 * CAPABILITY %* OBJECTID %*
        S1 c OK %*
        """
    )


async def test_rfc8474_section_4_create_rename_status_examples() -> None:
    world = await run_transcript(
        LOGIN
        + """
        # 4.1: CREATE returns the new mailbox's id.
        C1 3 create foo
        S1 3 OK [MAILBOXID (%{foo})] %*
        C1 4 create bar
        S1 4 OK [MAILBOXID (%{bar})] %*
        C1 5 create foo
        S1 5 NO [ALREADYEXISTS] %*
        # 4.2: RENAME keeps it.
        C1 5 rename foo renamed
        S1 5 OK %*
        C1 6 status renamed (mailboxid)
        S1 * STATUS "renamed" (MAILBOXID (%{foo}))
        S1 6 OK %*
        C1 7 status bar (mailboxid)
        S1 * STATUS "bar" (MAILBOXID (%{bar}))
        S1 7 OK %*
        # 4.4: STATUS with other items.
        C1 8 status bar (messages mailboxid uidnext)
        S1 * STATUS "bar" (MESSAGES 0 MAILBOXID (%{bar}) UIDNEXT 1)
        S1 8 OK %*
        # Deleted and created again: a new mailbox, a new id.
        C1 9 delete bar
        S1 9 OK %*
        C1 10 create bar
        S1 10 OK [MAILBOXID (%{bar2})] %*
        """
    )
    ids = world.captured
    assert all(is_objectid(ids[k].decode()) for k in ("foo", "bar", "bar2"))
    assert len({ids["foo"], ids["bar"], ids["bar2"]}) == 3


async def test_rfc8474_section_4_3_select_and_examine() -> None:
    world = await run_transcript(
        LOGIN
        + """
        C1 3 create foo
        S1 3 OK [MAILBOXID (%{foo})] %*
        """
        + select("s", "foo", 0)
        + select("e", "foo", 0, examine=True, closed=True)
    )
    assert world.captured["sid"] == world.captured["eid"] == world.captured["foo"]


async def test_list_status_returns_mailboxid() -> None:
    # RFC 5819 with RFC 8474 section 4.4.
    await run_transcript(
        LOGIN
        + """
        C1 b create foo
        S1 b OK [MAILBOXID (%{foo})] %*
        C1 c LIST "" foo RETURN (STATUS (MAILBOXID))
        S1 * LIST (\\HasNoChildren) "/" "foo"
        S1 * STATUS "foo" (MAILBOXID (%{foo}))
        S1 c OK %*
        """
    )


async def test_rename_inbox_hands_over_its_id() -> None:
    world = await run_transcript(
        LOGIN
        + """
        C1 b STATUS INBOX (MAILBOXID MESSAGES)
        S1 * STATUS "INBOX" (MAILBOXID (%{inbox}) MESSAGES 3)
        S1 b OK %*
        C1 c RENAME INBOX "Old mail"
        S1 c OK %*
        C1 d STATUS "Old mail" (MAILBOXID MESSAGES)
        S1 * STATUS "Old mail" (MAILBOXID (%{inbox}) MESSAGES 3)
        S1 d OK %*
        C1 e STATUS INBOX (MAILBOXID MESSAGES)
        S1 * STATUS "INBOX" (MAILBOXID (%{fresh}) MESSAGES 0)
        S1 e OK %*
        """,
        before=three,
    )
    assert world.captured["fresh"] != world.captured["inbox"]


async def test_rfc8474_section_5_emailid_survives_copy_and_move() -> None:
    root = emailid_of(ROOT)
    world = await run_transcript(
        LOGIN
        + select("s", "INBOX", 3)
        + f"""
        C1 11 fetch 1 (emailid)
        S1 * 1 FETCH (EMAILID ({root}))
        S1 11 OK %*
        C1 12 copy 1 Archive
        S1 12 OK [COPYUID %? 1 1] %*
        C1 13 move 1 foo
        S1 13 NO [TRYCREATE] %*
        C1 14 create foo
        S1 14 OK %*
        C1 15 move 1 foo
        S1 * OK [COPYUID %? 1 1] %*
        S1 * 1 EXPUNGE
        S1 15 OK %*
        """
        + select("t", "foo", 1, closed=True)
        + f"""
        C1 16 fetch 1 (emailid threadid)
        S1 * 1 FETCH (EMAILID ({root}) THREADID (%{{thread}}))
        S1 16 OK %*
        """
        + select("u", "Archive", 1, closed=True)
        + f"""
        C1 17 uid fetch 1 (emailid threadid)
        S1 * 1 FETCH (UID 1 EMAILID ({root}) THREADID (%{{thread}}))
        S1 17 OK %*
        """,
        before=three,
    )
    assert world.captured["thread"].startswith(b"T")


async def test_rfc8474_section_5_2_threadid_groups_a_thread() -> None:
    root, reply, other = (emailid_of(m) for m in (ROOT, REPLY, OTHER))
    await run_transcript(
        LOGIN
        + select("s", "INBOX", 3)
        + f"""
        C1 11 fetch 1:3 (emailid threadid)
        S1 * 1 FETCH (EMAILID ({root}) THREADID (%{{t1}}))
        S1 * 2 FETCH (EMAILID ({reply}) THREADID (%{{t1}}))
        S1 * 3 FETCH (EMAILID ({other}) THREADID (%{{t3}}))
        S1 11 OK %*
        """,
        before=three,
    )


async def test_rfc8474_section_6_search() -> None:
    root = emailid_of(ROOT)
    world = await run_transcript(
        LOGIN
        + select("s", "INBOX", 3)
        + f"""
        C1 10 fetch 1,3 (threadid)
        S1 * 1 FETCH (THREADID (%{{thread}}))
        S1 * 3 FETCH (THREADID (%{{other}}))
        S1 10 OK %*
        C1 27 search emailid {root}
        S1 * SEARCH 1
        S1 27 OK %*
        C1 28 search threadid %{{thread}}
        S1 * SEARCH 1 2
        S1 28 OK %*
        C1 29 uid search not threadid %{{thread}}
        S1 * SEARCH 3
        S1 29 OK %*
        C1 30 search or emailid M0 threadid %{{other}}
        S1 * SEARCH 3
        S1 30 OK %*
        C1 31 search emailid {root}x
        S1 * SEARCH
        S1 31 OK %*
        C1 32 search return (count) threadid %{{thread}}
        S1 * ESEARCH (TAG "32") COUNT 2
        S1 32 OK %*
        """,
        before=three,
    )
    assert world.captured["thread"] != world.captured["other"]


async def test_errors() -> None:
    long_id = "M" + "a" * 255
    await run_transcript(
        LOGIN
        + """
        C1 b STATUS nosuch (MAILBOXID)
        S1 b NO [NONEXISTENT] %*
        C1 c STATUS INBOX (MAILBOXID
        S1 c BAD %*
        C1 d FETCH 1 EMAILID
        S1 d BAD %*
        """
        + select("s", "INBOX", 3)
        + f"""
        C1 e SEARCH EMAILID
        S1 e BAD %*
        C1 f SEARCH EMAILID M.x
        S1 f BAD %*
        C1 g SEARCH THREADID "T1"
        S1 g BAD %*
        C1 h SEARCH EMAILID {long_id}
        S1 h BAD %*
        C1 i SEARCH THREADID (T1)
        S1 i BAD %*
        C1 j FETCH 1 (EMAILID[])
        S1 j BAD %*
        C1 k FETCH 9 EMAILID
        S1 k BAD %*
        """,
        before=three,
    )
