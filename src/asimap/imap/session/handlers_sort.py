"""SORT and UID SORT (RFC 5256 section 3, RFC 5957 DISPLAYFROM/DISPLAYTO).

SORT is SEARCH followed by ordering: :func:`handlers_search.find` picks
the messages, their cached summaries supply the header fields, and
:mod:`asimap.imap.sorting` orders them -- no message file is read unless
the search key itself needs one.  ``SORT RETURN (...)`` answers with
ESEARCH in sort order (RFC 5267 section 3, ESORT) and honours SAVE (RFC
5182 section 2.4); with UPDATE it leaves an RFC 5267 section 4 context
(:mod:`handlers_context`).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Status, Tagged, Untagged, Value
from asimap.imap.session import condstore, esearch, handlers_context
from asimap.imap.session.context import Context
from asimap.imap.session.errors import CommandFailed, store_error_response
from asimap.imap.session.handlers_search import (
    CHARSETS,
    SEARCH_BATCH,
    ResultForm,
    bad_charset,
    find,
    save_result,
)
from asimap.imap.session.reading import read_summary
from asimap.imap.session.selected import SelectedMailbox
from asimap.imap.sorting import SortItem, sort_items
from asimap.store import gcpause
from asimap.store.base import MessageGone, MessageSummary, StoreError


def check_sort_charset(charset: str) -> None:
    """RFC 5256 section 3: NO [BADCHARSET] for a charset we cannot use."""
    if charset.upper() not in CHARSETS:
        raise bad_charset()


#: The summary fields SORT and THREAD read (RFC 5256); the address keys
#: (FROM, TO, CC, DISPLAYFROM, DISPLAYTO) read the envelope instead.
SORT_FIELDS = (
    "date",
    "in-reply-to",
    "message-id",
    "references",
    "subject",
)


@dataclass(slots=True)
class _Facts:
    """What never changes about a message (its UID names immutable
    bytes): the sort fields of its summary and the keys derived so far,
    plus the last item built from them (reused while its sequence number
    and MODSEQ stay the same, which is almost always)."""

    size: int
    internaldate: datetime
    headers: Mapping[str, tuple[str, ...]]
    envelope: bytes
    memo: dict[str, object] = field(default_factory=dict)
    item: SortItem | None = None


#: Per selected view, the facts of every message SORT or THREAD has seen.
#: A repeated SORT/THREAD reads no summary and derives no key again; the
#: cache dies with the view (CLOSE, UNSELECT, another SELECT, logout) and
#: holds at most one entry per message of the mailbox, the fields above
#: only.  Expunged UIDs are never asked for again, and UIDs are not reused.
_FACTS: weakref.WeakKeyDictionary[SelectedMailbox, dict[int, _Facts]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while SORT or THREAD orders a big
    mailbox (:mod:`asimap.store.gcpause`).

    Ordering 100,000 messages allocates a few hundred thousand objects
    (keys, tree nodes), which triggers full collections that walk every
    object the worker holds -- a third of THREAD's time on a 100,000-message
    folder (bench/sort_thread.py).  The code inside never awaits, so no
    other session runs meanwhile; nothing it allocates is cyclic garbage
    (thread trees are unlinked by :func:`~asimap.imap.threading.release`).
    """
    with gcpause.paused():
        yield


async def _left_out(
    view: SelectedMailbox, batch: Sequence[int], got: set[int]
) -> list[MessageSummary]:
    """The summaries a batch left out that are not expunged: asked for one
    by one (an MH tool renaming a file makes a batch miss it, see
    :mod:`reading`); the expunged ones stay out."""
    out: list[MessageSummary] = []
    for uid in batch:
        if uid in got:
            continue
        try:
            out.append(await read_summary(view.mailbox, uid, structure=False))
        except MessageGone:
            continue
        except StoreError as exc:
            raise store_error_response(exc) from exc
    return out


async def load_items(
    view: SelectedMailbox, found: Sequence[esearch.Found]
) -> list[SortItem]:
    """A :class:`SortItem` per message found; what is not cached yet comes
    from the store's summaries in bounded batches, and messages expunged
    meanwhile (and only those) are left out."""
    facts = _FACTS.setdefault(view, {})
    missing = [f.uid for f in found if f.uid not in facts]
    for start in range(0, len(missing), SEARCH_BATCH):
        try:
            summaries = await view.mailbox.summaries(
                missing[start : start + SEARCH_BATCH], structure=False
            )
        except StoreError as exc:
            raise store_error_response(exc) from exc
        batch = missing[start : start + SEARCH_BATCH]
        summaries += await _left_out(view, batch, {s.uid for s in summaries})
        with gc_paused():
            for s in summaries:
                headers = {k: s.headers[k] for k in SORT_FIELDS if k in s.headers}
                facts[s.uid] = _Facts(s.size, s.internaldate, headers, s.envelope.data)
    with gc_paused():
        return _items(facts, found)


def _items(facts: dict[int, _Facts], found: Sequence[esearch.Found]) -> list[SortItem]:
    items: list[SortItem] = []
    for f in found:
        known = facts.get(f.uid)
        if known is None:
            continue  # expunged meanwhile
        item = known.item
        if item is None or item.seq != f.seq or item.modseq != f.modseq:
            item = known.item = SortItem(
                f.seq,
                f.uid,
                f.modseq,
                known.size,
                known.internaldate,
                known.headers,
                known.envelope,
                known.memo,
            )
        items.append(item)
    return items


async def handle_sort(ctx: Context, cmd: c.Sort) -> Tagged:
    view = ctx.require_selected()
    options = cmd.return_options
    form = ResultForm(
        None if options is None else esearch.normalize(options), cmd.partial
    )
    handlers_context.check_update_tag(view, cmd)  # RFC 5267 section 4.3
    try:
        check_sort_charset(cmd.charset)
        found = await find(ctx, view, cmd.key)
        loaded = await load_items(view, found)
        with gc_paused():
            items = sort_items(loaded, cmd.criteria)
            ordered = [esearch.Found(i.seq, i.uid, i.modseq) for i in items]
    except CommandFailed as failure:
        if form.save and failure.status is Status.NO:
            view.saved = frozenset()  # RFC 9051 6.4.4.1
        raise
    save_result(view, ordered, form, ordered=True, uid=cmd.uid)
    if form.options is None:
        numbers: list[Value] = [f.uid if cmd.uid else f.seq for f in ordered]
        # RFC 7162 section 3.1.5 (sort-data in its section 7): the highest
        # MODSEQ found ends the response when the key used MODSEQ.
        highest = max((f.modseq for f in ordered), default=0)
        suffix = condstore.search_suffix(cmd.key, len(ordered), highest)
        await ctx.io.send(Untagged((Atom("SORT"), *numbers, *suffix)))
    elif esearch.wanted(form.options):
        await ctx.io.send(
            esearch.response(
                cmd.tag,
                ordered,
                form.options,
                uid=cmd.uid,
                ordered=True,
                # RFC 5267 section 3: otherwise identical to ESEARCH, so
                # MODSEQ too (RFC 4731 section 3.2).
                modseq=condstore.uses_modseq(cmd.key),
                partial=cmd.partial,
            )
        )
    await handlers_context.start_updates(ctx, view, cmd, ordered)
    return Tagged(cmd.tag, Status.OK, "Sort completed")
