"""FETCH and SEARCH: the read side of the selected state.

FETCH (RFC 3501 6.4.5, 6.4.8; RFC 3516 BINARY).  Items that imply \\Seen
set it first, in one store call for all messages, so the FETCH responses
carry the new FLAGS (6.4.5) and the change feed does not repeat them.  In a
read-only (EXAMINE) session nothing is ever set (6.3.2).

Messages expunged by another connection but not yet announced (see
:mod:`selected`) are skipped, and the command then ends with ``NO
[EXPUNGEISSUED]`` (RFC 5530; the "NO" choice of RFC 2180 4.1.2) after
returning everything that still exists.

SEARCH (RFC 3501 6.4.4) evaluates keys with :mod:`asimap.imap.search`,
loading a message only when a key needs its contents.
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Code, Status, Tagged, Untagged, Value
from asimap.imap.search import SearchCandidate, matches, needs_message
from asimap.imap.session import fetch
from asimap.imap.session.context import Context
from asimap.imap.session.errors import CommandFailed, bad, no, store_error_response
from asimap.imap.session.handlers_selected import EXPUNGE_ISSUED, resolve
from asimap.store.base import MessageGone, MessageSummary, StoreError, StoreMode

#: SEARCH charsets we understand (RFC 3501 6.4.4 requires US-ASCII; all
#: our text is Unicode internally, so UTF-8 costs nothing).
CHARSETS = ("US-ASCII", "UTF-8")

#: Messages whose summaries FETCH loads in one store call.
SUMMARY_BATCH = 256


async def handle_fetch(ctx: Context, cmd: c.Fetch) -> Tagged:
    view = ctx.require_selected()
    if cmd.changed_since is not None or cmd.vanished:
        raise bad("CHANGEDSINCE/VANISHED require CONDSTORE/QRESYNC")
    fetch.validate(cmd.items)
    pairs = resolve(view, cmd.sequence, cmd.uid)

    seen_now: set[int] = set()
    if not view.readonly and any(fetch.sets_seen(att) for att in cmd.items):
        unseen = [
            uid
            for _, uid in pairs
            if uid not in view.gone and "\\Seen" not in view.flags.get(uid, ())
        ]
        if unseen:
            try:
                result = await view.mailbox.store(unseen, StoreMode.ADD, ["\\Seen"])
            except StoreError as exc:
                raise store_error_response(exc) from exc
            # \Seen is a system flag: no FLAGS re-announcement can follow.
            view.note_states(result.updated)
            seen_now = {state.uid for state in result.updated}

    missing = False
    use_summaries = any(att.kind in fetch.SUMMARY_KINDS for att in cmd.items)
    summaries: dict[int, MessageSummary] = {}
    for index, (seq, uid) in enumerate(pairs):
        if use_summaries and index % SUMMARY_BATCH == 0:
            # One store call per batch (a cache lookup for the MH store)
            # instead of one per message; batches keep memory bounded.
            batch = [
                u for _, u in pairs[index : index + SUMMARY_BATCH] if u not in view.gone
            ]
            try:
                found = await view.mailbox.summaries(batch)
            except StoreError as exc:
                raise store_error_response(exc) from exc
            summaries = {summary.uid: summary for summary in found}
        if uid in view.gone:
            missing = True
            continue
        summary = summaries.get(uid)
        if use_summaries and summary is None:
            missing = True  # expunged meanwhile
            continue
        try:
            items = await fetch.fetch_message(
                view,
                uid,
                cmd.items,
                with_uid=cmd.uid,
                with_flags=uid in seen_now,
                summary=summary,
            )
        except MessageGone:
            missing = True
            continue
        await ctx.io.send(Untagged((seq, Atom("FETCH"), items)))
    if missing:
        raise no(EXPUNGE_ISSUED, "EXPUNGEISSUED")
    return Tagged(cmd.tag, Status.OK, "Fetch completed")


async def handle_search(ctx: Context, cmd: c.Search) -> Tagged:
    view = ctx.require_selected()
    if cmd.return_options is not None:
        raise bad("SEARCH RETURN requires ESEARCH")
    if cmd.charset is not None and cmd.charset.upper() not in CHARSETS:
        # RFC 3501 6.4.4: NO [BADCHARSET (supported charsets)].
        raise _bad_charset()
    load = needs_message(cmd.key)
    max_seq = view.exists
    max_uid = view.uids[-1] if view.uids else 0
    found: list[Value] = []
    for index, uid in enumerate(list(view.uids)):
        if uid in view.gone:
            continue
        try:
            info = await view.mailbox.info(uid)
            message = await view.mailbox.message(uid) if load else None
        except MessageGone:
            continue
        flags = view.flags[uid] | ({"\\Recent"} if uid in view.recent else set())
        candidate = SearchCandidate(
            seq=index + 1,
            uid=uid,
            flags=frozenset(flags),
            modseq=view.modseqs.get(uid, 0),
            internaldate=info.internaldate,
            size=info.size,
            message=message,
        )
        if matches(cmd.key, candidate, max_seq=max_seq, max_uid=max_uid):
            found.append(uid if cmd.uid else index + 1)
    await ctx.io.send(Untagged((Atom("SEARCH"), *found)))
    return Tagged(cmd.tag, Status.OK, "Search completed")


def _bad_charset() -> CommandFailed:
    """``NO [BADCHARSET (US-ASCII UTF-8)]`` (RFC 3501 6.4.4, 7.1)."""
    names: list[Value] = [Atom(name) for name in CHARSETS]
    return CommandFailed(Status.NO, "Unsupported charset", Code("BADCHARSET", (names,)))
