"""Transcripts: SAVEDATE (RFC 8514).

RFC 8514 is not in the shared RFC folder; the rules pinned here:

* section 3: the save date is when the message was put into *this* mailbox
  (APPEND, COPY, MOVE, delivery) -- unlike INTERNALDATE, which APPEND may
  set and COPY keeps;
* section 4.1: ``FETCH SAVEDATE`` answers a ``date-time``, or NIL when the
  save date is not known (MH rows older than the column, see
  ``tests/test_store_mh_objectid.py``);
* section 4.3: SEARCH SAVEDBEFORE / SAVEDON / SAVEDSINCE compare the date
  of the save date, disregarding time and timezone; SAVEDATESUPPORTED
  matches every message of a mailbox that keeps save dates (all of ours).

Our choice where the save date is unknown: such a message matches none of
SAVEDBEFORE/SAVEDON/SAVEDSINCE (as a message without Date: matches no
SENT* key), and still matches SAVEDATESUPPORTED, since its mailbox keeps
save dates.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from asimap.store.memory import MemoryMailbox
from transcript import World, add_messages, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

SELECT2 = """
C1 s SELECT INBOX
S1 * FLAGS %*
S1 * OK [PERMANENTFLAGS %*
S1 * 2 EXISTS
S1 * 2 RECENT
S1 * OK [UNSEEN 1] %*
S1 * OK [UIDVALIDITY %?] %*
S1 * OK [UIDNEXT 3] %*
S1 * OK [MAILBOXID (%?)] %*
S1 * OK [HIGHESTMODSEQ %?] Highest
S1 s OK [READ-WRITE] %*
"""

_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()  # noqa: SIM905


def imap_date(day: datetime) -> str:
    """RFC 3501 ``date`` (``d-Mon-yyyy``)."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


def dates() -> tuple[str, str, str]:
    """Yesterday, today and tomorrow (UTC, the zone of our save dates)."""
    now = datetime.now(UTC)
    one = timedelta(days=1)
    return imap_date(now - one), imap_date(now), imap_date(now + one)


#: An INTERNALDATE far from any save date.
OLD = "07-Feb-1994 21:52:25 -0800"


async def two(world: World) -> None:
    await add_messages(world, "alice", "INBOX", message("one"), message("two"))


async def two_one_unknown(world: World) -> None:
    """Two messages, the second with an unknown save date -- what an MH
    row from before schema 3 looks like to the session."""
    await two(world)
    inbox = await world.stores["alice"].mailbox("INBOX")
    assert isinstance(inbox, MemoryMailbox)
    entry = inbox._entries[2]
    entry.info = replace(entry.info, savedate=None)


async def test_capability_is_advertised() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 c CAPABILITY
        S1 * CAPABILITY %* SAVEDATE%*
        S1 c OK %*
        """
    )


async def test_fetch_savedate_is_when_saved_not_internaldate() -> None:
    today = dates()[1]
    day = today.rjust(11, "0")  # date-time has a two-digit day
    append = message("old news")
    await run_transcript(
        LOGIN
        + f"""
        C1 b APPEND INBOX "{OLD}" {{{len(append)}+}}
        """
        + "\n".join(f"C1 {line}" for line in append.decode()[:-2].split("\r\n"))
        + f"""
        C1
        S1 b OK [APPENDUID %? 1] %*
        C1 c SELECT INBOX
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS %*
        S1 * 1 EXISTS
        S1 * 1 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] %*
        S1 * OK [UIDNEXT 2] %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 c OK [READ-WRITE] %*
        C1 d FETCH 1 (INTERNALDATE SAVEDATE)
        S1 * 1 FETCH (INTERNALDATE "{OLD}" SAVEDATE "{day} %? +0000")
        S1 d OK %*
        C1 e COPY 1 Archive
        S1 e OK %*
        C1 f EXAMINE Archive
        S1 * OK [CLOSED] %*
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS %*
        S1 * 1 EXISTS
        S1 * %? RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY %?] %*
        S1 * OK [UIDNEXT 2] %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 f OK [READ-ONLY] %*
        C1 g UID FETCH 1 SAVEDATE
        S1 * 1 FETCH (UID 1 SAVEDATE "{day} %? +0000")
        S1 g OK %*
        C1 h SEARCH SAVEDON {today} BEFORE 8-Feb-1994
        S1 * SEARCH 1
        S1 h OK %*
        """
    )


async def test_fetch_savedate_nil_when_unknown() -> None:
    await run_transcript(
        LOGIN
        + SELECT2
        + """
        C1 b FETCH 1:2 SAVEDATE
        S1 * 1 FETCH (SAVEDATE "%? %? +0000")
        S1 * 2 FETCH (SAVEDATE NIL)
        S1 b OK %*
        """,
        before=two_one_unknown,
    )


async def test_search_saved_keys() -> None:
    yesterday, today, tomorrow = dates()
    await run_transcript(
        LOGIN
        + SELECT2
        + f"""
        C1 b SEARCH SAVEDON {today}
        S1 * SEARCH 1 2
        S1 b OK %*
        C1 c SEARCH SAVEDSINCE {today}
        S1 * SEARCH 1 2
        S1 c OK %*
        C1 d SEARCH SAVEDSINCE {tomorrow}
        S1 * SEARCH
        S1 d OK %*
        C1 e SEARCH SAVEDBEFORE {today}
        S1 * SEARCH
        S1 e OK %*
        C1 f SEARCH SAVEDBEFORE {tomorrow}
        S1 * SEARCH 1 2
        S1 f OK %*
        C1 g SEARCH OR SAVEDON {yesterday} SAVEDON {tomorrow}
        S1 * SEARCH
        S1 g OK %*
        C1 h SEARCH SAVEDATESUPPORTED
        S1 * SEARCH 1 2
        S1 h OK %*
        C1 i UID SEARCH NOT SAVEDATESUPPORTED
        S1 * SEARCH
        S1 i OK %*
        C1 j SEARCH RETURN (COUNT) SAVEDSINCE {yesterday} SUBJECT two
        S1 * ESEARCH (TAG "j") COUNT 1
        S1 j OK %*
        """,
        before=two,
    )


async def test_search_with_unknown_save_date() -> None:
    _, today, tomorrow = dates()
    await run_transcript(
        LOGIN
        + SELECT2
        + f"""
        C1 b SEARCH SAVEDON {today}
        S1 * SEARCH 1
        S1 b OK %*
        C1 c SEARCH SAVEDBEFORE {tomorrow}
        S1 * SEARCH 1
        S1 c OK %*
        C1 d SEARCH NOT SAVEDSINCE 1-Jan-1970
        S1 * SEARCH 2
        S1 d OK %*
        C1 e SEARCH SAVEDATESUPPORTED
        S1 * SEARCH 1 2
        S1 e OK %*
        """,
        before=two_one_unknown,
    )


async def test_errors() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 b FETCH 1 SAVEDATE
        S1 b BAD %*
        """
        + SELECT2
        + """
        C1 c SEARCH SAVEDBEFORE
        S1 c BAD %*
        C1 d SEARCH SAVEDON 32-Jan-2020
        S1 d BAD %*
        C1 e SEARCH SAVEDSINCE 1-Foo-2020
        S1 e BAD %*
        C1 f SEARCH SAVEDON "1-Jan-2020 00:00:00 +0000"
        S1 f BAD %*
        C1 g FETCH 1 SAVEDATE[]
        S1 g BAD %*
        C1 h SEARCH SAVEDATESUPPORTED 1:*
        S1 * SEARCH 1 2
        S1 h OK %*
        C1 i FETCH 3 SAVEDATE
        S1 i BAD %*
        """,
        before=two,
    )
