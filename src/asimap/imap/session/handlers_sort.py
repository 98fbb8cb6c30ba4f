"""SORT and UID SORT (RFC 5256 section 3, RFC 5957 DISPLAYFROM/DISPLAYTO).

SORT is SEARCH followed by ordering: :func:`handlers_search.find` picks
the messages, their cached summaries supply the header fields, and
:mod:`asimap.imap.sorting` orders them -- no message file is read unless
the search key itself needs one.  ``SORT RETURN (...)`` answers with
ESEARCH in sort order (RFC 5267 section 3.1 semantics) and honours SAVE
(RFC 5182 section 2.4), although ESORT itself is not advertised.
"""

from __future__ import annotations

from collections.abc import Sequence

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Status, Tagged, Untagged, Value
from asimap.imap.session import esearch
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
from asimap.imap.session.selected import SelectedMailbox
from asimap.imap.sorting import SortItem, sort_items
from asimap.store.base import StoreError


def check_sort_charset(charset: str) -> None:
    """RFC 5256 section 3: NO [BADCHARSET] for a charset we cannot use."""
    if charset.upper() not in CHARSETS:
        raise bad_charset()


async def load_items(
    view: SelectedMailbox, found: Sequence[esearch.Found]
) -> list[SortItem]:
    """A :class:`SortItem` per message found, from the store's summaries
    in bounded batches; messages expunged meanwhile are left out."""
    items: list[SortItem] = []
    for start in range(0, len(found), SEARCH_BATCH):
        batch = found[start : start + SEARCH_BATCH]
        try:
            summaries = await view.mailbox.summaries([f.uid for f in batch])
        except StoreError as exc:
            raise store_error_response(exc) from exc
        by_uid = {s.uid: s for s in summaries}
        for f in batch:
            summary = by_uid.get(f.uid)
            if summary is not None:
                items.append(
                    SortItem(
                        f.seq,
                        f.uid,
                        f.modseq,
                        summary.size,
                        summary.internaldate,
                        summary.headers,
                    )
                )
    return items


async def handle_sort(ctx: Context, cmd: c.Sort) -> Tagged:
    view = ctx.require_selected()
    options = cmd.return_options
    form = ResultForm(None if options is None else esearch.normalize(options))
    try:
        check_sort_charset(cmd.charset)
        found = await find(ctx, view, cmd.key)
        items = sort_items(await load_items(view, found), cmd.criteria)
    except CommandFailed as failure:
        if form.save and failure.status is Status.NO:
            view.saved = frozenset()  # RFC 9051 6.4.4.1
        raise
    ordered = [esearch.Found(i.seq, i.uid, i.modseq) for i in items]
    save_result(view, ordered, form, ordered=True, uid=cmd.uid)
    if form.options is None:
        numbers: list[Value] = [f.uid if cmd.uid else f.seq for f in ordered]
        await ctx.io.send(Untagged((Atom("SORT"), *numbers)))
    elif esearch.wanted(form.options):
        await ctx.io.send(
            esearch.response(cmd.tag, ordered, form.options, uid=cmd.uid, ordered=True)
        )
    return Tagged(cmd.tag, Status.OK, "Sort completed")
