"""CONDSTORE/QRESYNC pieces shared by FETCH and SEARCH (RFC 7162).

Kept apart from the handlers so that the FETCH/SEARCH code paths, which
are tuned for speed, only gain a call or two.
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Raw, Untagged, Value
from asimap.imap.session import qresync
from asimap.imap.session.context import Context
from asimap.imap.session.selected import SelectedMailbox


async def send_vanished_earlier(
    ctx: Context, view: SelectedMailbox, uid_set: c.SequenceSet, since: int
) -> None:
    """``* VANISHED (EARLIER) uids`` for UID FETCH (CHANGEDSINCE since
    VANISHED): the UIDs of the set expunged after ``since`` (RFC 7162
    section 3.2.6), sent before the FETCH responses as in its example."""
    status = await view.mailbox.status()
    ranges = await qresync.vanished_since(
        view.mailbox, since, uid_set, uidnext=status.uidnext, current=view.uids
    )
    if ranges:
        text = Raw(qresync.format_ranges(ranges))
        await ctx.io.send(Untagged((Atom("VANISHED"), [Atom("EARLIER")], text)))


def uses_modseq(key: c.SearchKey) -> bool:
    """Whether a SEARCH key contains MODSEQ (RFC 7162 section 3.1.5)."""
    if isinstance(key, c.SearchModseq):
        return True
    if isinstance(key, c.SearchNot):
        return uses_modseq(key.key)
    if isinstance(key, c.SearchOr):
        return uses_modseq(key.left) or uses_modseq(key.right)
    if isinstance(key, c.SearchAnd):
        return any(uses_modseq(k) for k in key.keys)
    return False


def search_suffix(key: c.SearchKey, found: int, highest: int) -> list[Value]:
    """``(MODSEQ n)`` ending a SEARCH response whose key used MODSEQ and
    found something: n is the highest MODSEQ of the messages found (RFC
    7162 section 3.1.5; nothing found, no suffix)."""
    if found and uses_modseq(key):
        return [[Atom("MODSEQ"), highest]]
    return []
