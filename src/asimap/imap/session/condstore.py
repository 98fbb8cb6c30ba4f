"""CONDSTORE/QRESYNC pieces shared by FETCH and SEARCH (RFC 7162).

Kept apart from the handlers so that the FETCH/SEARCH code paths, which
are tuned for speed, only gain a call or two.
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import (
    Atom,
    Code,
    Raw,
    Response,
    Status,
    Untagged,
    UntaggedStatus,
    Value,
)
from asimap.imap.session import extensions, qresync
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


def announce_if_enabled(
    ctx: Context, was_enabled: bool, command: c.Command
) -> list[Response]:
    """``* OK [HIGHESTMODSEQ n]`` when ``command`` just enabled CONDSTORE
    with a mailbox selected (RFC 7162 section 3.1: the client has not
    seen the mailbox's HIGHESTMODSEQ yet, since SELECT did not report it).

    Sent before the tagged response, after the command's own responses and
    pending updates, so ``n`` covers everything the client was told.
    SELECT/EXAMINE (CONDSTORE) report it themselves (section 3.1.8).
    Dovecot 2.3 sends the same line for ``FETCH 1 (MODSEQ)`` (it puts it
    before the FETCH responses; either order is allowed).
    """
    view = ctx.selected
    if (
        was_enabled
        or view is None
        or isinstance(command, c.Select)
        or not extensions.condstore(ctx.enabled)
    ):
        return []
    code = Code("HIGHESTMODSEQ", (view.modseq,))
    return [UntaggedStatus(Status.OK, "Highest", code)]


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
