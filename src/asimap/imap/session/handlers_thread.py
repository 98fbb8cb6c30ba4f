"""THREAD and UID THREAD (RFC 5256 section 3): ORDEREDSUBJECT, REFERENCES.

Like SORT, THREAD searches first (:func:`handlers_search.find`), reads
header fields from cached summaries and leaves the algorithms to the pure
:mod:`asimap.imap.threading`.  An algorithm we do not implement is BAD
(RFC 5256 section 3: the argument is invalid); only implemented ones are
advertised as ``THREAD=...``.
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Raw, Status, Tagged, Untagged
from asimap.imap.session.context import Context
from asimap.imap.session.errors import bad
from asimap.imap.session.handlers_search import find
from asimap.imap.session.handlers_sort import (
    check_sort_charset,
    gc_paused,
    load_items,
)
from asimap.imap.sorting import SortItem
from asimap.imap.threading import THREADERS, format_threads, release


async def handle_thread(ctx: Context, cmd: c.Thread) -> Tagged:
    view = ctx.require_selected()
    threader = THREADERS.get(cmd.algorithm.upper())
    if threader is None:
        raise bad(f"Unsupported threading algorithm {cmd.algorithm[:40]}")
    check_sort_charset(cmd.charset)
    items = await load_items(view, await find(ctx, view, cmd.key))

    def number(item: SortItem) -> int:
        return item.uid if cmd.uid else item.seq

    with gc_paused():
        roots = threader(items)
        text = format_threads(roots, number)
        release(roots)
    values = (Atom("THREAD"), Raw(text)) if text else (Atom("THREAD"),)
    await ctx.io.send(Untagged(values))
    return Tagged(cmd.tag, Status.OK, "Thread completed")
