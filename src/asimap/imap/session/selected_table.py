"""The message table of a selected view, shared between views that agree.

Every connection that selects a mailbox keeps its own picture of it (see
:mod:`selected`): each message's UID, flags and MODSEQ.  Most of the time
the connections of one user on one mailbox hold *the same* picture -- a
mail client's IDLE connections all selected INBOX and heard of the same
deliveries -- and a table per connection made an idle connection cost
memory in proportion to the mailbox (1 MB each on a 10,000-message INBOX).

So the table is copy-on-write: a view reads a :class:`ViewTable` that other
views may read too, and copies it (:meth:`ViewTable.copy`) before the first
change of its own.  A :class:`Shelf` per mailbox object finds the tables to
share, in two ways:

* ``selected[n]``: what a SELECT read when the mailbox's HIGHESTMODSEQ was
  ``n``.  A SELECT that reads an *equal* table shares the first one (the
  comparison is needed: a change racing with a SELECT may be in its table
  before its HIGHESTMODSEQ says so);
* ``exact[n]``: the mailbox's state at HIGHESTMODSEQ ``n``, registered by a
  view that has just caught up with every change up to ``n`` and has no
  expunge left to announce (only then is its table the store's state, not
  the client's picture of it).  The state at one HIGHESTMODSEQ is unique,
  so another view catching up to ``n`` takes that table instead of copying
  and changing its own: a delivery to a thousand IDLE connections builds
  one new table, not a thousand.

Both maps hold their tables weakly: a table lives as long as a view uses it.

The shelf also lets views that wait in IDLE ask the store *together*
(:class:`Flight`): a delivery wakes every IDLE connection of the user at
once, and each asked the store "what changed since n" and then "which of
the new ones are \\Recent for me" -- two jobs on the store's one thread
per connection, so with 900 IDLE connections the last heard of the new
message seconds after the first.  Views at the same MODSEQ that wake
together share one ``changes_since`` and only the first claims \\Recent
(RFC 3501 section 2.3.2: the first session to be told gets it; the others
would get nothing from the store anyway).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterable

from asimap.store.base import Changes, MessageState

#: Distinct flag sets, shared by every view of the process: a mailbox has
#: few (\Seen, \Seen \Answered, ...), but each message's state comes with
#: its own frozenset, and each table would keep one per message.
_FLAG_SETS: dict[frozenset[str], frozenset[str]] = {}
#: Bound on the table: keywords can make many distinct sets.
_FLAG_SETS_MAX = 4096


def shared_flags(flags: frozenset[str]) -> frozenset[str]:
    """The process-wide instance equal to ``flags`` (memory, not meaning)."""
    shared = _FLAG_SETS.get(flags)
    if shared is None:
        if len(_FLAG_SETS) >= _FLAG_SETS_MAX:
            _FLAG_SETS.clear()
        shared = _FLAG_SETS[flags] = flags
    return shared


class ViewTable:
    """UIDs in sequence order, and the flags and MODSEQ of each.

    A table that may be shared is never changed: its owner copies it first.
    """

    __slots__ = ("__weakref__", "flags", "modseqs", "uids")

    def __init__(
        self, uids: list[int], flags: dict[int, frozenset[str]], modseqs: dict[int, int]
    ) -> None:
        self.uids = uids
        self.flags = flags
        self.modseqs = modseqs

    @classmethod
    def of(cls, states: Iterable[MessageState]) -> ViewTable:
        uids: list[int] = []
        flags: dict[int, frozenset[str]] = {}
        modseqs: dict[int, int] = {}
        for state in states:
            uids.append(state.uid)
            flags[state.uid] = shared_flags(state.flags)
            modseqs[state.uid] = state.modseq
        return cls(uids, flags, modseqs)

    def copy(self) -> ViewTable:
        return ViewTable(list(self.uids), dict(self.flags), dict(self.modseqs))

    def same_as(self, other: ViewTable) -> bool:
        return (
            self.uids == other.uids
            and self.flags == other.flags
            and self.modseqs == other.modseqs
        )


class Flight:
    """One ``changes_since`` shared by the IDLE views that asked for the
    same MODSEQ while it ran (see the module docstring)."""

    __slots__ = ("changes", "recent_claimed")

    def __init__(self, changes: asyncio.Future[Changes]) -> None:
        self.changes = changes
        #: Set by the first view of the flight that claims \Recent.
        self.recent_claimed = False


class Shelf:
    """The shareable tables of one mailbox (see the module docstring)."""

    __slots__ = ("exact", "flights", "selected")

    def __init__(self) -> None:
        #: MODSEQ -> the ``changes_since`` of it still running.
        self.flights: dict[int, Flight] = {}
        self.selected: weakref.WeakValueDictionary[int, ViewTable] = (
            weakref.WeakValueDictionary()
        )
        self.exact: weakref.WeakValueDictionary[int, ViewTable] = (
            weakref.WeakValueDictionary()
        )

    def intern_selected(self, modseq: int, table: ViewTable) -> ViewTable:
        """The table an earlier SELECT read at ``modseq`` if equal to
        ``table``; otherwise ``table``, kept for the next SELECT."""
        known = self.selected.get(modseq)
        if known is None:
            self.selected[modseq] = table
            return table
        return known if known.same_as(table) else table

    def join(self, modseq: int, ask: Callable[[int], Awaitable[Changes]]) -> Flight:
        """The running ``changes_since(modseq)``, or a new one by ``ask``.

        A flight is joined only while it runs: whoever asks after it ended
        asks the store again, so no view takes an answer older than its
        own wake-up.
        """
        flight = self.flights.get(modseq)
        if flight is None:
            future = asyncio.ensure_future(ask(modseq))
            flight = self.flights[modseq] = Flight(future)

            def landed(_: object) -> None:
                if self.flights.get(modseq) is flight:
                    del self.flights[modseq]

            future.add_done_callback(landed)
        return flight


#: Mailbox object -> its shelf.  Keyed weakly: a mailbox the store dropped
#: takes its shelf along.
_SHELVES: weakref.WeakKeyDictionary[object, Shelf] = weakref.WeakKeyDictionary()


def shelf_for(mailbox: object) -> Shelf | None:
    """The shelf of ``mailbox`` (None for an object that cannot key one)."""
    try:
        shelf = _SHELVES.get(mailbox)
        if shelf is None:
            shelf = _SHELVES[mailbox] = Shelf()
    except TypeError:  # unhashable or not weakly referenceable
        return None
    return shelf
