"""NOTIFY (RFC 5465): the RFC's examples and error cases, as transcripts.

Client 1 asks for notifications; client 2 (the same user, sharing the
store) changes things.  Client 1's notifications arrive *between*
commands, with no command of its own in progress -- the transcript harness
writes them as the connection driver does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asimap.auth.account import Account
from asimap.imap.session import notifier
from asimap.store.base import Store
from test_ext_special_use import MHWorld
from transcript import World, append_lines, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
C2 a LOGIN alice secret-a
S2 a OK %*
"""


@pytest.fixture(params=["memory", "mh"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """Every transcript runs on the memory store and on an MH root."""
    if request.param == "memory":
        yield World()
        return
    mh = MHWorld(tmp_path / "Mail")
    try:
        yield mh
    finally:
        await mh.close()


async def _alice(world: World) -> Store:
    return await world.open_store(Account("alice", Path("/nonexistent/alice")))


async def _lists_account(world: World) -> None:
    """Section 3.1's account: INBOX, Lists/Lemonade (500 messages in the
    RFC; 3 here), Lists/Im2000 (empty) and misc."""
    store = await _alice(world)
    await store.create("Lists/Lemonade")
    await store.create("Lists/Im2000")
    await store.create("misc")
    lemonade = await store.mailbox("Lists/Lemonade")
    for i in range(3):
        await lemonade.append(message(f"m{i}"))
    await (await store.mailbox("INBOX")).append(message("first"))


async def _add(world: World, mailbox: str, *datas: bytes) -> None:
    box = await (await _alice(world)).mailbox(mailbox)
    for data in datas:
        await box.append(data)


def _open(client: int, tag: str, command: str, untagged: int) -> str:
    """Transcript lines of a SELECT/EXAMINE whose ``untagged`` responses
    are not what the test is about (their shape is tested elsewhere)."""
    lines = [f"C{client} {tag} {command}"]
    lines += [f"S{client} *%*"] * (untagged + 1)  # + HIGHESTMODSEQ
    lines.append(f"S{client} {tag} OK %*")
    return "\n".join(lines)


async def _uidvalidity(world: World, name: str) -> int:
    return (await (await _alice(world)).mailbox(name)).uidvalidity


async def test_section_3_1_example(world: World) -> None:
    """Section 3.1's example, with the event lists in parentheses and
    MessageExpunge next to MessageNew as sections 5 and 8 require (the
    example as printed is refused, see the next test)."""
    await _lists_account(world)
    lem = await _uidvalidity(world, "Lists/Lemonade")
    im = await _uidvalidity(world, "Lists/Im2000")
    new_mail = message("Re: good morning", sender="alice@example.org")
    script = (
        LOGIN
        + f"""
        C1 b notify set status (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew MessageExpunge))
        S1 * STATUS "Lists" (UIDVALIDITY %? UIDNEXT 1 MESSAGES 0)
        S1 * STATUS "Lists/Im2000" (UIDVALIDITY {im} UIDNEXT 1 MESSAGES 0)
        S1 * STATUS "Lists/Lemonade" (UIDVALIDITY {lem} UIDNEXT 4 MESSAGES 3)
        S1 b OK NOTIFY completed
        {_open(1, "c", "select inbox", 8)}
        # A new message is delivered to Lists/Lemonade.
        {append_lines(2, "x1", "Lists/Lemonade", message("m3"))}
        S2 x1 OK [APPENDUID {lem} 4] %*
        S1 * STATUS "Lists/Lemonade" (UIDNEXT 5 MESSAGES 4)
        # A new message is delivered to inbox.
        {append_lines(2, "x2", "INBOX", new_mail)}
        S2 x2 OK %*
        S1 * 2 EXISTS
        S1 * 2 RECENT
        S1 * 2 FETCH (UID 2 BODY[HEADER.FIELDS (FROM TO SUBJECT)] {{%?}}
        S1 From: alice@example.org
        S1 To: b@example.org
        S1 Subject: Re: good morning
        S1
        S1 )
        # The client adds misc, asking STATUS itself and NOTIFY without it.
        C1 d STATUS misc (UIDVALIDITY UIDNEXT MESSAGES)
        S1 * STATUS "misc" (UIDVALIDITY %? UIDNEXT 1 MESSAGES 0)
        S1 d OK %*
        C1 e notify set (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew MessageExpunge)) (mailboxes misc (MessageNew MessageExpunge))
        S1 e OK NOTIFY completed
        {append_lines(2, "x3", "misc", message("misc"))}
        S2 x3 OK %*
        S1 * STATUS "misc" (UIDNEXT 2 MESSAGES 1)
        """  # noqa: E501
    )
    await run_transcript(script, world)


async def test_section_3_1_example_as_printed_is_bad(world: World) -> None:
    """As printed, the example's events lack their parentheses (section 8:
    ``events = ( "(" event *(SP event) ")" ) / "NONE"``) and MessageNew
    lacks MessageExpunge (section 5: "Otherwise, the server MUST respond
    with the tagged BAD response")."""
    await run_transcript(
        LOGIN
        + """
        C1 b notify set status (selected MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge) (subtree Lists MessageNew)
        S1 b BAD %*
        C1 c notify set (subtree Lists (MessageNew))
        S1 c BAD MessageNew and MessageExpunge must be given together
        """  # noqa: E501
    )


async def test_section_6_examples(world: World) -> None:
    """Section 6: several groups apply to one mailbox (INBOX gets message
    events from the first, SubscriptionChange from the second)."""
    await _lists_account(world)
    script = (
        LOGIN
        + f"""
        C1 a notify set (mailboxes INBOX (Messagenew messageExpunge)) (personal (SubscriptionChange))
        S1 a OK NOTIFY completed
        C2 s SUBSCRIBE INBOX
        S2 s OK %*
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"
        {append_lines(2, "x", "INBOX", message("hello"))}
        S2 x OK %*
        S1 * STATUS "INBOX" (UIDNEXT 3 MESSAGES 2)
        C2 u UNSUBSCRIBE INBOX
        S2 u OK %*
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        # The second example: FlagChange everywhere but the selected mailbox.
        C1 b notify set (selected (Messagenew (uid flags) messageExpunge)) (personal (MessageNew FlagChange MessageExpunge))
        S1 b OK NOTIFY completed
        {_open(1, "c", "EXAMINE misc", 7)}
        C2 f STORE 1 +FLAGS (\\Seen)
        S2 f BAD %*
        {_open(2, "g", "SELECT INBOX", 8)}
        C2 h STORE 1 +FLAGS (\\Seen)
        S2 * 1 FETCH (FLAGS (\\Seen \\Recent))
        S2 h OK %*
        S1 * STATUS "INBOX" (UNSEEN 1)
        {append_lines(2, "i", "misc", message("to misc"))}
        S2 i OK %*
        S1 * 1 EXISTS
        S1 * 1 RECENT
        S1 * 1 FETCH (UID 1 FLAGS (\\Recent))
        """  # noqa: E501
    )
    await run_transcript(script, world)


async def test_flag_change_with_condstore(world: World) -> None:
    """Section 5.1: another mailbox's flags, with CONDSTORE enabled:
    ``STATUS (HIGHESTMODSEQ n UIDVALIDITY v)``."""
    await _lists_account(world)
    lem = await _uidvalidity(world, "Lists/Lemonade")
    await run_transcript(
        LOGIN
        + f"""
        C1 e ENABLE CONDSTORE
        S1 * ENABLED CONDSTORE
        S1 e OK %*
        C1 b notify set status (subtree Lists (MessageNew MessageExpunge FlagChange))
        S1 * STATUS "Lists" (UIDVALIDITY %? UIDNEXT 1 MESSAGES 0 HIGHESTMODSEQ 1)
        S1 * STATUS "Lists/Im2000" (UIDVALIDITY %? UIDNEXT 1 MESSAGES 0 HIGHESTMODSEQ 1)
        S1 * STATUS "Lists/Lemonade" (UIDVALIDITY {lem} UIDNEXT 4 MESSAGES 3 HIGHESTMODSEQ 4)
        S1 b OK NOTIFY completed
        {_open(2, "s", "SELECT Lists/Lemonade", 8)}
        C2 t STORE 2 +FLAGS ($Junk)
        S2 * FLAGS %*
        S2 * OK [PERMANENTFLAGS %*] %*
        S2 * 2 FETCH (FLAGS ($Junk \\Recent))
        S2 t OK %*
        S1 * STATUS "Lists/Lemonade" (HIGHESTMODSEQ 5 UIDVALIDITY {lem})
        # Section 5.3: an expunge elsewhere, HIGHESTMODSEQ included.
        C2 u STORE 1 +FLAGS (\\Deleted)
        S2 * 1 FETCH (FLAGS (\\Deleted \\Recent))
        S2 u OK %*
        S1 * STATUS "Lists/Lemonade" (HIGHESTMODSEQ 6 UIDVALIDITY {lem})
        C2 v EXPUNGE
        S2 * 1 EXPUNGE
        S2 v OK %*
        S1 * STATUS "Lists/Lemonade" (UIDNEXT 4 MESSAGES 2 HIGHESTMODSEQ 7 UIDVALIDITY {lem} UNSEEN 2)
        """,  # noqa: E501
        world,
    )


async def test_selected_expunge_immediate_and_delayed(world: World) -> None:
    """Section 5.3 and 6.1: EXPUNGE at once with SELECTED; with
    SELECTED-DELAYED only when a command allows it (a NOOP here); with
    QRESYNC as VANISHED."""
    await _lists_account(world)
    await _add(world, "INBOX", message("second"), message("third"))
    await run_transcript(
        LOGIN
        + f"""
        {_open(1, "s", "SELECT INBOX", 8)}
        C1 n notify set (selected (MessageNew MessageExpunge FlagChange))
        S1 n OK NOTIFY completed
        {_open(2, "s", "SELECT INBOX", 8)}
        C2 t STORE 3 +FLAGS (\\Deleted)
        S2 * 3 FETCH (FLAGS (\\Deleted))
        S2 t OK %*
        S1 * 3 FETCH (FLAGS (\\Deleted \\Recent))
        C2 u EXPUNGE
        S2 * 3 EXPUNGE
        S2 u OK %*
        S1 * 3 EXPUNGE
        C1 d notify set (selected-delayed (MessageNew MessageExpunge))
        S1 d OK NOTIFY completed
        C2 v STORE 2 +FLAGS (\\Deleted)
        S2 * 2 FETCH (FLAGS (\\Deleted))
        S2 v OK %*
        C2 w EXPUNGE
        S2 * 2 EXPUNGE
        S2 w OK %*
        C1 z NOOP
        S1 * 2 EXPUNGE
        S1 z OK %*
        # Section 6.1.2: IDLE, like NOOP, lets held-back expunges out.
        C2 x STORE 1 +FLAGS.SILENT (\\Deleted)
        S2 x OK %*
        C2 y EXPUNGE
        S2 * 1 EXPUNGE
        S2 y OK %*
        C1 i IDLE
        S1 + idling
        S1 * 1 EXPUNGE
        C1 DONE
        S1 i OK %*
        """,
        world,
    )


async def test_selected_expunge_as_vanished_with_qresync(world: World) -> None:
    await _lists_account(world)
    await run_transcript(
        LOGIN
        + f"""
        C1 e ENABLE QRESYNC
        S1 * ENABLED QRESYNC
        S1 e OK %*
        {_open(1, "s", "SELECT INBOX", 8)}
        C1 n notify set (selected (MessageNew MessageExpunge))
        S1 n OK NOTIFY completed
        {_open(2, "s", "SELECT INBOX", 8)}
        C2 t STORE 1 +FLAGS.SILENT (\\Deleted)
        S2 t OK %*
        C2 u EXPUNGE
        S2 * 1 EXPUNGE
        S2 u OK %*
        S1 * VANISHED 1
        """,
        world,
    )


async def test_mailbox_name_events(world: World) -> None:
    """Section 5.4: LIST for a created mailbox and its parent, \\NonExistent
    for a deleted one, OLDNAME for a rename; nothing for our own CREATE."""
    await _lists_account(world)
    await run_transcript(
        LOGIN
        + """
        C1 n notify set (personal (MailboxName))
        S1 n OK NOTIFY completed
        C2 c CREATE Lists/NewMailbox
        S2 c OK %*
        S1 * LIST (\\HasNoChildren) "/" "Lists/NewMailbox"
        S1 * LIST (\\HasChildren) "/" "Lists"
        C2 r RENAME Lists/NewMailbox Lists/Renamed
        S2 r OK %*
        S1 * LIST (\\HasNoChildren) "/" "Lists/Renamed" ("OLDNAME" ("Lists/NewMailbox"))
        C2 d DELETE Lists/Renamed
        S2 d OK %*
        S1 * LIST (\\NonExistent) "/" "Lists/Renamed"
        S1 * LIST (\\HasChildren) "/" "Lists"
        C1 o CREATE Mine
        S1 o OK %*
        C2 i RENAME INBOX "Old Mail"
        S2 i OK %*
        S1 * LIST (\\HasNoChildren) "/" "Old Mail"
        """,
        world,
    )


async def test_metadata_events(world: World) -> None:
    """Sections 5.6 and 5.7: ``* METADATA mailbox entry`` with the names of
    the changed entries, for a mailbox and for the server."""
    await _lists_account(world)
    await run_transcript(
        LOGIN
        + """
        C1 n notify set (mailboxes INBOX (MailboxMetadataChange)) (personal (ServerMetadataChange))
        S1 n OK NOTIFY completed
        C2 s SETMETADATA INBOX (/shared/comment "hello")
        S2 s OK %*
        S1 * METADATA "INBOX" "/shared/comment"
        C2 t SETMETADATA "" (/shared/comment "server")
        S2 t OK %*
        S1 * METADATA "" "/shared/comment"
        C2 u SETMETADATA misc (/shared/comment "not watched")
        S2 u OK %*
        C2 v SETMETADATA INBOX (/shared/comment NIL)
        S2 v OK %*
        S1 * METADATA "INBOX" "/shared/comment"
        """,  # noqa: E501
        world,
    )


async def test_subscribed_inboxes_and_mailbox_lists(world: World) -> None:
    """Sections 6.3-6.6: SUBSCRIBED follows the subscription list as it
    changes; INBOXES is PERSONAL here (6.3: "If the IMAP server cannot
    easily compute this set, it MUST treat inboxes as equivalent to
    personal"); MAILBOXES takes names literally, no wildcards (6.6)."""
    await _lists_account(world)
    await run_transcript(
        LOGIN
        + f"""
        C1 n notify set (subscribed (MessageNew MessageExpunge))
        S1 n OK NOTIFY completed
        {append_lines(2, "a", "misc", message("unwatched"))}
        S2 a OK %*
        C2 b SUBSCRIBE misc
        S2 b OK %*
        {append_lines(2, "c", "misc", message("watched"))}
        S2 c OK %*
        S1 * STATUS "misc" (UIDNEXT 3 MESSAGES 2)
        C1 o notify set (inboxes (MessageNew MessageExpunge))
        S1 o OK NOTIFY completed
        {append_lines(2, "d", "Drafts", message("draft"))}
        S2 d OK %*
        S1 * STATUS "Drafts" (UIDNEXT 2 MESSAGES 1)
        C1 p notify set (mailboxes ("Lists/*" misc) (MessageNew MessageExpunge))
        S1 p OK NOTIFY completed
        {append_lines(2, "e", "Lists/Lemonade", message("not a wildcard"))}
        S2 e OK %*
        {append_lines(2, "f", "misc", message("named"))}
        S2 f OK %*
        S1 * STATUS "misc" (UIDNEXT 4 MESSAGES 3)
        C1 q notify set (subtree (misc Lists/Im2000) (MessageNew MessageExpunge))
        S1 q OK NOTIFY completed
        {append_lines(2, "g", "Lists/Im2000", message("in the subtree"))}
        S2 g OK %*
        S1 * STATUS "Lists/Im2000" (UIDNEXT 2 MESSAGES 1)
        {append_lines(2, "h", "Lists/Lemonade", message("outside"))}
        S2 h OK %*
        """,
        world,
    )


async def test_errors(world: World) -> None:
    """Sections 3.1, 5, 6.1 and 8."""
    await run_transcript(
        """
        C1 a NOTIFY NONE
        S1 a BAD %*
        C1 b LOGIN alice secret-a
        S1 b OK %*
        C1 c NOTIFY SET (personal (AnnotationChange MessageNew MessageExpunge))
        S1 c NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange)] Unsupported NOTIFY event
        C1 d NOTIFY SET (personal (MailboxName Foo))
        S1 d NO [BADEVENT (%*)] %*
        C1 e NOTIFY SET (personal (FlagChange))
        S1 e BAD %*
        C1 f NOTIFY SET (personal (MessageExpunge))
        S1 f BAD %*
        C1 g NOTIFY SET (selected (MailboxName))
        S1 g BAD Only message events apply to SELECTED
        C1 h NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew MessageExpunge))
        S1 h BAD %*
        C1 i NOTIFY SET (personal (MessageNew (uid) MessageExpunge))
        S1 i BAD MessageNew attributes are only allowed for SELECTED
        C1 j NOTIFY SET (elsewhere (MessageNew MessageExpunge))
        S1 j BAD %*
        C1 k NOTIFY SET
        S1 k BAD %*
        C1 l NOTIFY SET STATUS
        S1 l BAD %*
        C1 m NOTIFY FOO
        S1 m BAD %*
        C1 n NOTIFY SET (selected (MessageNew (BODY[1.MIME]) MessageExpunge))
        S1 n OK %*
        C1 o NOTIFY SET (mailboxes (nosuch "also missing") (MessageNew MessageExpunge)) (subtree nowhere NONE)
        S1 o OK NOTIFY completed
        C1 p NOTIFY SET STATUS (selected NONE)
        S1 p OK NOTIFY completed
        """  # noqa: E501
    )


async def test_notify_none_and_own_changes_are_silent(world: World) -> None:
    await _lists_account(world)
    await run_transcript(
        LOGIN
        + f"""
        C1 n notify set (personal (MessageNew MessageExpunge MailboxName))
        S1 n OK NOTIFY completed
        {append_lines(1, "o", "misc", message("mine"))}
        S1 o OK %*
        C1 p CREATE Mine
        S1 p OK %*
        C1 q NOTIFY NONE
        S1 q OK %*
        {append_lines(2, "x", "misc", message("theirs"))}
        S2 x OK %*
        C2 y CREATE Theirs
        S2 y OK %*
        C1 z NOOP
        S1 z OK %*
        """,
        world,
    )


async def test_idle_sends_the_notify_events(world: World) -> None:
    """Section 4: during IDLE, exactly the NOTIFY events."""
    await _lists_account(world)
    await run_transcript(
        LOGIN
        + f"""
        C1 n notify set (mailboxes misc (MessageNew MessageExpunge))
        S1 n OK NOTIFY completed
        C1 i IDLE
        S1 + idling
        {append_lines(2, "x", "misc", message("theirs"))}
        S2 x OK %*
        S1 * STATUS "misc" (UIDNEXT 2 MESSAGES 1)
        C1 DONE
        S1 i OK Idle completed
        """,
        world,
    )


async def test_overflow_turns_notifications_off(
    monkeypatch: pytest.MonkeyPatch, world: World
) -> None:
    """Section 5.8: ``* OK [NOTIFICATIONOVERFLOW]``, then as NOTIFY NONE.

    One MOVE changes two mailboxes at once: with room for one pending item
    the notifier gives up (the bound is what keeps a connection's memory
    finite when its client stops reading)."""
    monkeypatch.setattr(notifier, "MAX_PENDING", 1)
    await _lists_account(world)
    await run_transcript(
        LOGIN
        + f"""
        C1 n notify set (personal (MessageNew MessageExpunge MailboxName))
        S1 n OK NOTIFY completed
        C1 i IDLE
        S1 + idling
        {_open(2, "s", "SELECT Lists/Lemonade", 8)}
        C2 m MOVE 1 misc
        S2 * OK [COPYUID %*] %*
        S2 * 1 EXPUNGE
        S2 m OK %*
        S1 * OK [NOTIFICATIONOVERFLOW] %*
        C2 f CREATE d
        S2 f OK %*
        {append_lines(2, "g", "misc", message("more"))}
        S2 g OK %*
        C1 DONE
        S1 i OK Idle completed
        C1 j NOTIFY SET (personal (MailboxName))
        S1 j OK NOTIFY completed
        C2 h CREATE e
        S2 h OK %*
        S1 * LIST (\\HasNoChildren) "/" "e"
        """,
        world,
    )
