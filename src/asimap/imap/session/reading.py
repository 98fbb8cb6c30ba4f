"""Reading a message's content for FETCH and SEARCH without mistaking a
moved file for an expunged message.

``Mailbox.message(uid)`` raises :class:`MessageGone` when the store cannot
find the message's content.  The MH store raises it after looking twice:
it opens the file its database names, and when that file is gone or is
another one, it rescans the folder once and tries again.  nmh's
``sortm`` and ``folder -pack`` rename message files one after another,
so a rename that lands between that rescan and the second try makes a
message that is still there look expunged.  SEARCH then silently left a
match out of its result and FETCH answered ``NO [EXPUNGEISSUED]`` for a
message no one had expunged (seen with ``sortm`` running during SEARCH
TEXT: tests/test_search_races.py).

So the session asks the store whether the UID still exists before it
believes the message gone -- ``info(uid)`` answers from the store's own
record of the mailbox, and raises :class:`MessageGone` only for a UID
that was expunged -- and while it does, reads it again, a bounded number
of times.  A message that still cannot be read after that is
:class:`MessageUnreadable` (``NO [UNAVAILABLE]``, RFC 5530 section 3: a
temporary failure the client may retry): a command that cannot answer
says so rather than answering wrongly.
"""

from __future__ import annotations

from asimap.message.model import Message
from asimap.store.base import Mailbox, MessageGone, MessageSummary, MessageUnreadable

#: Reads of one message before the session gives up on it (each one of an
#: MH store rescans the folder when the file moved).
READ_ATTEMPTS = 4


async def read_message(mailbox: Mailbox, uid: int) -> Message:
    """``mailbox.message(uid)``, read again while the store still lists
    the UID (see module).  Raises :class:`MessageGone` for an expunged
    message and :class:`MessageUnreadable` when it keeps moving."""
    for _ in range(READ_ATTEMPTS):
        try:
            return await mailbox.message(uid)
        except MessageGone:
            await mailbox.info(uid)  # MessageGone: it really was expunged
    raise MessageUnreadable(uid, "its file kept moving while it was read")


async def read_summary(
    mailbox: Mailbox, uid: int, *, structure: bool
) -> MessageSummary:
    """The summary of a message that ``mailbox.summaries`` left out of a
    batch, asked for again while the store still lists the UID (a summary
    not cached yet is built from the file, which may have moved).  Raises
    like :func:`read_message`."""
    for _ in range(READ_ATTEMPTS):
        await mailbox.info(uid)  # MessageGone: it really was expunged
        found = await mailbox.summaries([uid], structure=structure)
        if found:
            return found[0]
    raise MessageUnreadable(uid, "its file kept moving while it was read")
