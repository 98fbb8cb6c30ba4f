"""ESORT, CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267), as transcripts.

Every example of sections 3.3 and 4.2-4.4 on a five-message INBOX (UIDs
1-5, sizes growing with the UID), then the ordering rules: client 2 (the
same user) appends, changes flags and expunges, and client 1 must see
ADDTO after the EXISTS and FETCH that carry the change, and REMOVEFROM
before the EXPUNGE -- even while the EXPUNGE itself must wait.  Each
transcript runs on the memory store and on an MH root.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asimap.auth.account import Account
from asimap.imap.session import handlers_search, update_contexts
from test_ext_special_use import MHWorld
from transcript import World, append_lines, message, run_transcript


@pytest.fixture(params=["memory", "mh"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    if request.param == "memory":
        yield World()
        return
    mh = MHWorld(tmp_path / "Mail")
    try:
        yield mh
    finally:
        await mh.close()


async def _five(world: World) -> None:
    """INBOX with five messages; message n has n-1 bytes of body more than
    the first, so SIZE orders them by UID."""
    store = await world.open_store(Account("alice", Path("/nonexistent/alice")))
    box = await store.mailbox("INBOX")
    for n in range(1, 6):
        await box.append(message(f"m{n}", "x" * n))


def _select(client: int, command: str = "SELECT INBOX", closed: bool = False) -> str:
    """SELECT/EXAMINE with its untagged responses (shape tested elsewhere;
    ``closed``: one more, ``OK [CLOSED]``, when another was selected)."""
    lines = [f"C{client} s {command}"]
    lines += [f"S{client} *%*"] * (10 if closed else 9)
    lines.append(f"S{client} s OK %*")
    return "\n".join(lines) + "\n"


LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

LOGIN2 = """
C2 a LOGIN alice secret-a
S2 a OK %*
"""

BOTH = LOGIN + _select(1) + LOGIN2 + _select(2)


async def test_capabilities_after_login() -> None:
    """Offered where they work: once logged in (a selected mailbox is
    needed), not in the not-authenticated state."""
    await run_transcript(
        """
        C1 c CAPABILITY
        S1 * CAPABILITY %* SORT SORT=DISPLAY THREAD=%*
        S1 c OK %*
        C1 a LOGIN alice secret-a
        S1 a OK [CAPABILITY %* SORT SORT=DISPLAY ESORT CONTEXT=SEARCH CONTEXT=SORT %*
        """
    )


async def test_esort_section_3(world: World) -> None:
    """Section 3.3's example and section 3.1's MIN/MAX/ALL/COUNT: results
    in sort order, ranges only where ascending (section 3.2); MODSEQ as in
    ESEARCH (RFC 4731 section 3.2)."""
    await run_transcript(
        LOGIN
        + _select(1)
        + """
        C1 k STORE 2 +FLAGS.SILENT ($Junk)
        S1 * FLAGS (%*)
        S1 * OK [PERMANENTFLAGS %*
        S1 k OK %*
        C1 E01 UID SORT RETURN () (REVERSE SIZE) UTF-8 UNDELETED UNKEYWORD $Junk
        S1 * ESEARCH (TAG "E01") UID ALL 5,4,3,1
        S1 E01 OK Sort completed
        C1 E02 SORT RETURN (MIN MAX COUNT) (REVERSE SIZE) UTF-8 ALL
        S1 * ESEARCH (TAG "E02") MIN 5 MAX 1 COUNT 5
        S1 E02 OK Sort completed
        C1 E03 SORT RETURN (ALL) (SIZE) UTF-8 ALL
        S1 * ESEARCH (TAG "E03") ALL 1:5
        S1 E03 OK Sort completed
        C1 E04 SORT RETURN (MIN MAX ALL COUNT) (SIZE) UTF-8 DELETED
        S1 * ESEARCH (TAG "E04") COUNT 0
        S1 E04 OK Sort completed
        C1 E05 UID SORT RETURN (MAX) (REVERSE SIZE) UTF-8 MODSEQ 1
        S1 * ESEARCH (TAG "E05") UID MAX 1 MODSEQ %?
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 E05 OK Sort completed
        C1 E06 SORT (REVERSE SIZE) UTF-8 KEYWORD $Junk MODSEQ 1
        S1 * SORT 2 (MODSEQ %?)
        S1 E06 OK Sort completed
        """,
        world,
        before=_five,
    )


async def test_section_4_2_context_hint(world: World) -> None:
    """CONTEXT is a hint the server may ignore."""
    await run_transcript(
        LOGIN
        + _select(1)
        + """
        C1 A01 SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk
        S1 * ESEARCH (TAG "A01") COUNT 5
        S1 A01 OK Search completed
        """,
        world,
        before=_five,
    )


async def test_section_4_3_updates_and_tag_reuse(world: World) -> None:
    """Section 4.3's B01 and section 4.3.3's first example: the client
    marks messages 2 and 3 (UIDs 2, 3) \\Deleted and $Junk; their FETCH
    comes first, then one ADDTO in mailbox order.  Reusing B01 for
    another UPDATE is BAD and changes nothing."""
    await run_transcript(
        LOGIN
        + _select(1)
        + """
        C1 B01 UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk
        S1 * ESEARCH (TAG "B01") UID COUNT 0
        S1 B01 OK Search completed
        C1 B01 SORT RETURN (UPDATE) (SIZE) UTF-8 FLAGGED
        S1 B01 BAD Tag reuse
        C1 x STORE 2:3 +FLAGS (\\Deleted $Junk)
        S1 * FLAGS (%*)
        S1 * OK [PERMANENTFLAGS %*
        S1 * 2 FETCH (FLAGS (\\Deleted $Junk \\Recent))
        S1 * 3 FETCH (FLAGS (\\Deleted $Junk \\Recent))
        S1 * ESEARCH (TAG "B01") UID ADDTO (0 2:3)
        S1 x OK %*
        C1 y STORE 2 -FLAGS.SILENT ($Junk)
        S1 * ESEARCH (TAG "B01") UID REMOVEFROM (0 2)
        S1 y OK %*
        """,
        world,
        before=_five,
    )


async def test_section_4_3_1_noupdate(world: World) -> None:
    """Beyond the limit of live contexts: the other return options are
    honoured, then ``* NO [NOUPDATE "B02"]``, then OK; cancelling one makes
    room again."""
    limit = update_contexts.MAX_CONTEXTS
    fill = "".join(
        f"""
        C1 F{n} SEARCH RETURN (UPDATE) ALL
        S1 * ESEARCH (TAG "F{n}")
        S1 F{n} OK Search completed
        """
        for n in range(limit)
    )
    await run_transcript(
        LOGIN
        + _select(1)
        + fill
        + """
        C1 B02 UID SORT RETURN (UPDATE COUNT) (SIZE) UTF-8 KEYWORD $Junk
        S1 * ESEARCH (TAG "B02") UID COUNT 0
        S1 * NO [NOUPDATE "B02"] Too many contexts
        S1 B02 OK Sort completed
        C1 c CANCELUPDATE "F0"
        S1 c OK No further updates
        C1 B03 UID SORT RETURN (UPDATE COUNT) (SIZE) UTF-8 KEYWORD $Junk
        S1 * ESEARCH (TAG "B03") UID COUNT 0
        S1 B03 OK Sort completed
        """,
        world,
        before=_five,
    )


async def test_section_4_3_3_sorted_addto_positions(world: World) -> None:
    """Section 4.3.3's C01: a SORT context holding UIDs 4:5 gains 1, 2
    and 3 at its head -- one pair, ``ADDTO (1 1:3)``, the preferred form;
    then UID 3 goes and comes back between 2 and 4 (position 3)."""
    await run_transcript(
        BOTH
        + """
        C1 k STORE 4:5 +FLAGS.SILENT (\\Flagged)
        S1 k OK %*
        C1 C01 UID SORT RETURN (UPDATE ALL) (SIZE) UTF-8 FLAGGED
        S1 * ESEARCH (TAG "C01") UID ALL 4:5
        S1 C01 OK Sort completed
        C2 x STORE 1:3 +FLAGS.SILENT (\\Flagged)
        S2 * 4 FETCH (FLAGS (\\Flagged))
        S2 * 5 FETCH (FLAGS (\\Flagged))
        S2 x OK %*
        C1 n NOOP
        S1 * 1 FETCH (FLAGS (\\Flagged \\Recent))
        S1 * 2 FETCH (FLAGS (\\Flagged \\Recent))
        S1 * 3 FETCH (FLAGS (\\Flagged \\Recent))
        S1 * ESEARCH (TAG "C01") UID ADDTO (1 1:3)
        S1 n OK %*
        C2 y STORE 3 -FLAGS.SILENT (\\Flagged)
        S2 y OK %*
        C1 n NOOP
        S1 * 3 FETCH (FLAGS (\\Recent))
        S1 * ESEARCH (TAG "C01") UID REMOVEFROM (3 3)
        S1 n OK %*
        C2 z STORE 3 +FLAGS.SILENT (\\Flagged)
        S2 z OK %*
        C1 n NOOP
        S1 * 3 FETCH (FLAGS (\\Flagged \\Recent))
        S1 * ESEARCH (TAG "C01") UID ADDTO (3 3)
        S1 n OK %*
        """,
        world,
        before=_five,
    )


async def test_reverse_sort_removefrom_runs(world: World) -> None:
    """Positions and sets in the requested order: removing 3 and 2 from
    5,4,3,2,1 is one run at position 3, listed "3,2" (never "3:2")."""
    await run_transcript(
        BOTH
        + """
        C1 c SORT RETURN (UPDATE ALL) (REVERSE SIZE) UTF-8 UNDELETED
        S1 * ESEARCH (TAG "c") ALL 5,4,3,2,1
        S1 c OK Sort completed
        C2 x STORE 2:3 +FLAGS.SILENT (\\Deleted)
        S2 x OK %*
        C1 n NOOP
        S1 * 2 FETCH (FLAGS (\\Deleted \\Recent))
        S1 * 3 FETCH (FLAGS (\\Deleted \\Recent))
        S1 * ESEARCH (TAG "c") REMOVEFROM (3 3,2)
        S1 n OK %*
        C2 y STORE 1,3 -FLAGS.SILENT (\\Deleted)
        S2 y OK %*
        C2 y2 STORE 1 +FLAGS.SILENT (\\Deleted)
        S2 y2 OK %*
        C1 n NOOP
        S1 * 1 FETCH (FLAGS (\\Deleted \\Recent))
        S1 * 3 FETCH (FLAGS (\\Recent))
        S1 * ESEARCH (TAG "c") REMOVEFROM (3 1) ADDTO (3 3)
        S1 n OK %*
        """,
        world,
        before=_five,
    )


async def test_section_4_3_4_removefrom_before_expunge(world: World) -> None:
    """Section 4.3.4's example and appendix A.3: REMOVEFROM as soon as
    the expunge is known -- here during a FETCH by sequence number, when
    the EXPUNGE itself may not be sent (RFC 3501 7.4.1) -- and the EXPUNGE
    with the next NOOP.  A message-number context names the message by
    the number it still has."""
    await run_transcript(
        BOTH
        + """
        C1 B01 UID SEARCH RETURN (UPDATE COUNT) UNDELETED
        S1 * ESEARCH (TAG "B01") UID COUNT 5
        S1 B01 OK Search completed
        C1 A3 SEARCH RETURN (UPDATE) ALL
        S1 * ESEARCH (TAG "A3")
        S1 A3 OK Search completed
        C2 x STORE 2 +FLAGS.SILENT (\\Deleted)
        S2 x OK %*
        C2 e EXPUNGE
        S2 * 2 EXPUNGE
        S2 e OK %*
        C1 f FETCH 1 (UID)
        S1 * 1 FETCH (UID 1)
        S1 * ESEARCH (TAG "B01") UID REMOVEFROM (0 2)
        S1 * ESEARCH (TAG "A3") REMOVEFROM (0 2)
        S1 f OK %*
        C1 B03 NOOP
        S1 * 2 EXPUNGE
        S1 B03 OK %*
        """,
        world,
        before=_five,
    )


async def test_own_expunge_orders_removefrom_first(world: World) -> None:
    """The client's own EXPUNGE: REMOVEFROM (numbers still valid), then
    the EXPUNGE responses."""
    await run_transcript(
        LOGIN
        + _select(1)
        + """
        C1 d SEARCH RETURN (UPDATE ALL) DELETED
        S1 * ESEARCH (TAG "d")
        S1 d OK Search completed
        C1 u SEARCH RETURN (UPDATE ALL) UNDELETED
        S1 * ESEARCH (TAG "u") ALL 1:5
        S1 u OK Search completed
        C1 x STORE 2,4 +FLAGS.SILENT (\\Deleted)
        S1 * ESEARCH (TAG "d") ADDTO (0 2,4)
        S1 * ESEARCH (TAG "u") REMOVEFROM (0 2,4)
        S1 x OK %*
        C1 e EXPUNGE
        S1 * ESEARCH (TAG "d") REMOVEFROM (0 2,4)
        S1 * 4 EXPUNGE
        S1 * 2 EXPUNGE
        S1 e OK %*
        C1 f SEARCH RETURN (ALL) UNDELETED
        S1 * ESEARCH (TAG "f") ALL 1:3
        S1 f OK %*
        """,
        world,
        before=_five,
    )


async def test_addto_after_exists_for_new_mail(world: World) -> None:
    """Section 4.3.3: an ADDTO naming a new message by sequence number
    comes after the EXISTS that makes the number valid; one that does not
    match the program is not added."""
    await run_transcript(
        BOTH
        + """
        C1 n SEARCH RETURN (UPDATE) UNSEEN SUBJECT hello
        S1 * ESEARCH (TAG "n")
        S1 n OK Search completed
        C1 s SORT RETURN (UPDATE) (REVERSE SIZE) UTF-8 UNSEEN
        S1 * ESEARCH (TAG "s")
        S1 s OK Sort completed
        """
        + append_lines(2, "p", "INBOX", message("hello there", "y" * 40))
        + """
        S2 * 6 EXISTS
        S2 * %? RECENT
        S2 p OK %*
        """
        + append_lines(2, "q", "INBOX", message("other"), flags="\\Seen")
        + """
        S2 * 7 EXISTS
        S2 * %? RECENT
        S2 q OK %*
        C1 z NOOP
        S1 * 7 EXISTS
        S1 * ESEARCH (TAG "n") ADDTO (0 6)
        S1 * ESEARCH (TAG "s") ADDTO (1 6)
        S1 z OK %*
        """,
        world,
        before=_five,
    )


async def test_section_4_3_5_cancelupdate(world: World) -> None:
    """After CANCELUPDATE "B01" no update for B01; errors: an unknown tag
    is NO (nothing cancelled), an atom or no argument is BAD, and the
    command needs a selected mailbox."""
    await run_transcript(
        LOGIN
        + """
        C1 g CANCELUPDATE "B01"
        S1 g BAD %*
        """
        + _select(1)
        + """
        C1 B01 UID SEARCH RETURN (UPDATE) FLAGGED
        S1 * ESEARCH (TAG "B01") UID
        S1 B01 OK Search completed
        C1 B02 SEARCH RETURN (UPDATE) FLAGGED
        S1 * ESEARCH (TAG "B02")
        S1 B02 OK Search completed
        C1 b CANCELUPDATE B01
        S1 b BAD %*
        C1 c CANCELUPDATE
        S1 c BAD %*
        C1 d CANCELUPDATE "B01" "nope"
        S1 d NO %*
        C1 B04 CANCELUPDATE "B01"
        S1 B04 OK No further updates
        C1 x STORE 1 +FLAGS.SILENT (\\Flagged)
        S1 * ESEARCH (TAG "B02") ADDTO (0 1)
        S1 x OK %*
        C1 e CANCELUPDATE "B01"
        S1 e NO %*
        C1 B01 UID SEARCH RETURN (UPDATE ALL) FLAGGED
        S1 * ESEARCH (TAG "B01") UID ALL 1
        S1 B01 OK Search completed
        """,
        world,
        before=_five,
    )


async def test_section_4_4_partial_with_update(world: World) -> None:
    """Section 4.4: PARTIAL windows the answer, UPDATE still reports every
    matching message (no interaction); likewise MIN (section 4.3: "RETURN
    (UPDATE MIN) ... notifies instead about all changes")."""
    await run_transcript(
        BOTH
        + """
        C1 A02 UID SEARCH RETURN (PARTIAL 4:10 UPDATE) UNDELETED
        S1 * ESEARCH (TAG "A02") UID PARTIAL (4:10 4:5)
        S1 A02 OK Search completed
        C1 M01 SEARCH RETURN (UPDATE MIN) UNDELETED
        S1 * ESEARCH (TAG "M01") MIN 1
        S1 M01 OK Search completed
        C1 A04 UID SEARCH RETURN (PARTIAL 24000:24500) UNDELETED
        S1 * ESEARCH (TAG "A04") UID PARTIAL (24000:24500 NIL)
        S1 A04 OK Search completed
        C2 x STORE 1 +FLAGS.SILENT (\\Deleted)
        S2 x OK %*
        C1 n NOOP
        S1 * 1 FETCH (FLAGS (\\Deleted \\Recent))
        S1 * ESEARCH (TAG "A02") UID REMOVEFROM (0 1)
        S1 * ESEARCH (TAG "M01") REMOVEFROM (0 1)
        S1 n OK %*
        C2 y STORE 5 +FLAGS.SILENT (\\Deleted)
        S2 y OK %*
        C1 n NOOP
        S1 * 5 FETCH (FLAGS (\\Deleted \\Recent))
        S1 * ESEARCH (TAG "A02") UID REMOVEFROM (0 5)
        S1 * ESEARCH (TAG "M01") REMOVEFROM (0 5)
        S1 n OK %*
        """,
        world,
        before=_five,
    )


async def test_contexts_end_with_the_selection(world: World) -> None:
    """Section 4.3: updates cease when the mailbox is no longer selected
    (CLOSE, UNSELECT, another SELECT); the tag is free again."""
    await run_transcript(
        BOTH
        + """
        C1 t SEARCH RETURN (UPDATE) FLAGGED
        S1 * ESEARCH (TAG "t")
        S1 t OK Search completed
        C1 u UNSELECT
        S1 u OK %*
        """
        + _select(1, "EXAMINE INBOX")
        + """
        C2 x STORE 1 +FLAGS.SILENT (\\Flagged)
        S2 x OK %*
        C1 n NOOP
        S1 * 1 FETCH (FLAGS (\\Flagged))
        S1 n OK %*
        C1 t SEARCH RETURN (UPDATE ALL) FLAGGED
        S1 * ESEARCH (TAG "t") ALL 1
        S1 t OK Search completed
        """
        + _select(1, closed=True)
        + """
        C2 y STORE 2 +FLAGS.SILENT (\\Flagged)
        S2 y OK %*
        C1 n NOOP
        S1 * 2 FETCH (FLAGS (\\Flagged))
        S1 n OK %*
        C1 c CLOSE
        S1 c OK %*
        """,
        world,
        before=_five,
    )


async def test_sequence_numbers_are_frozen(world: World) -> None:
    """Section 4.3: sequence numbers in the program are evaluated when the
    command is received -- after an expunge renumbers, the message now
    numbered 2 is not part of ``2 FLAGGED``; ``$`` is frozen the same way
    (and SAVE with UPDATE saves the initial result)."""
    await run_transcript(
        BOTH
        + """
        C1 s SEARCH RETURN (SAVE UPDATE) 1:2
        S1 * ESEARCH (TAG "s")
        S1 s OK Search completed
        C1 q SEARCH RETURN (UPDATE) 2 FLAGGED
        S1 * ESEARCH (TAG "q")
        S1 q OK Search completed
        C1 r UID SEARCH RETURN (UPDATE) $ SEEN
        S1 * ESEARCH (TAG "r") UID
        S1 r OK Search completed
        C2 x STORE 1 +FLAGS.SILENT (\\Deleted)
        S2 x OK %*
        C2 e EXPUNGE
        S2 * 1 EXPUNGE
        S2 e OK %*
        C2 y STORE 2 +FLAGS.SILENT (\\Flagged \\Seen)
        S2 y OK %*
        C1 n NOOP
        S1 * ESEARCH (TAG "s") REMOVEFROM (0 1)
        S1 * 1 EXPUNGE
        S1 * 2 FETCH (FLAGS (\\Flagged \\Seen \\Recent))
        S1 n OK %*
        C1 w STORE 1 +FLAGS.SILENT (\\Flagged \\Seen)
        S1 * ESEARCH (TAG "q") ADDTO (0 1)
        S1 * ESEARCH (TAG "r") UID ADDTO (0 2)
        S1 w OK %*
        """,
        world,
        before=_five,
    )


async def test_updates_during_idle(world: World) -> None:
    """IDLE reports the context's changes with the EXISTS/EXPUNGE that
    carry them."""
    await run_transcript(
        BOTH
        + """
        C1 B01 UID SEARCH RETURN (UPDATE) ALL
        S1 * ESEARCH (TAG "B01") UID
        S1 B01 OK Search completed
        C1 i IDLE
        S1 + %*
        C2 x STORE 3 +FLAGS.SILENT (\\Deleted)
        S2 x OK %*
        S1 * 3 FETCH (FLAGS (\\Deleted \\Recent))
        C2 e EXPUNGE
        S2 * 3 EXPUNGE
        S2 e OK %*
        S1 * ESEARCH (TAG "B01") UID REMOVEFROM (0 3)
        S1 * 3 EXPUNGE
        """
        + append_lines(2, "p", "INBOX", message("new"))
        + """
        S2 * 5 EXISTS
        S2 * %? RECENT
        S2 p OK %*
        S1 * 5 EXISTS
        S1 * ESEARCH (TAG "B01") UID ADDTO (0 6)
        C1 DONE
        S1 i OK %*
        """,
        world,
        before=_five,
    )


async def test_notify_delivers_updates_between_commands(world: World) -> None:
    """With NOTIFY (RFC 5465) the updates come with no command in
    progress, REMOVEFROM still before the EXPUNGE (section 4.3.2)."""
    await run_transcript(
        BOTH
        + """
        C1 B01 UID SEARCH RETURN (UPDATE) UNDELETED
        S1 * ESEARCH (TAG "B01") UID
        S1 B01 OK Search completed
        C1 ntf NOTIFY SET (SELECTED (MessageNew (UID) MessageExpunge FlagChange))
        S1 ntf OK %*
        C2 x STORE 4 +FLAGS.SILENT (\\Deleted)
        S2 x OK %*
        S1 * 4 FETCH (FLAGS (\\Deleted \\Recent))
        S1 * ESEARCH (TAG "B01") UID REMOVEFROM (0 4)
        C2 e EXPUNGE
        S2 * 4 EXPUNGE
        S2 e OK %*
        S1 * 4 EXPUNGE
        """,
        world,
        before=_five,
    )


async def test_a_failing_context_never_hides_mailbox_updates(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong while a context is judged, the EXISTS (and the
    rest of the refresh) still reaches the client."""

    async def broken(*args: object) -> object:
        raise RuntimeError("judging failed")

    monkeypatch.setattr(handlers_search, "judge", broken)
    await run_transcript(
        BOTH
        + """
        C1 u SEARCH RETURN (UPDATE) ALL
        S1 * ESEARCH (TAG "u")
        S1 u OK Search completed
        """
        + append_lines(2, "p", "INBOX", message("new"))
        + """
        S2 * 6 EXISTS
        S2 * %? RECENT
        S2 p OK %*
        C1 n NOOP
        S1 * 6 EXISTS
        S1 n OK %*
        """,
        world,
        before=_five,
    )
