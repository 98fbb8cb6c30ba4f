"""RFC 5267 section 4 update contexts: CONTEXT=SEARCH and CONTEXT=SORT.

``SEARCH``/``SORT`` with ``RETURN (UPDATE)`` leave a *context* behind: the
server keeps telling the client how the result of that very command would
change, with ``* ESEARCH (TAG "t") [UID] ADDTO (...) REMOVEFROM (...)``,
until the mailbox is closed or the client sends CANCELUPDATE.

Design (RFC 5267 appendix B): a context keeps the search program and the
result as UIDs -- ascending for SEARCH, in sort order for SORT, in a
compact ``array`` (4 bytes per message found) -- and is told by the
selected view's refresh (:class:`~asimap.imap.session.selected.ResultWatcher`)
what the change feed brought: the UIDs expunged, and the UIDs new or
changed.  Only those messages are judged again against the search
program; nothing polls and no search runs again over the whole mailbox.
Each context is bounded by the mailbox's size and a connection keeps at
most :data:`MAX_CONTEXTS` of them (beyond that ``NO [NOUPDATE "t"]``,
section 4.3.1).

Rules followed:

* Section 4.3: sequence numbers in the program are "evaluated at the time
  the command is received", so a program's sequence sets (and ``$``, the
  saved result, which names messages the same way) are frozen into UID
  sets when the context is made.  UID sets stay as written.
* Section 4.3.2: numbers are UIDs for UID SEARCH/UID SORT, sequence
  numbers otherwise.  Within one response REMOVEFROM comes before ADDTO.
* Section 4.3.3: for SEARCH the context position is 0 and the set in
  mailbox order; for SORT it is where the first message of the set goes
  (1 = first), consecutive insertions sharing one pair.  ADDTO follows the
  EXISTS that announced a new message.
* Section 4.3.4: REMOVEFROM of an expunged message comes before its
  EXPUNGE -- as soon as the view learns of the expunge, even while the
  EXPUNGE itself must wait (during FETCH by sequence number, appendix A.3).
  For SORT the position is the message's position before removal.
"""

from __future__ import annotations

import bisect
import logging
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Raw, Response, Untagged, Value

# Module imports, not names: SEARCH and SORT call into this package, and
# it calls back into them (judging messages, loading sort items).
from asimap.imap.session import esearch, handlers_search, handlers_sort
from asimap.imap.session.selected import SelectedMailbox
from asimap.imap.session.uidset import format_uid_list
from asimap.imap.sorting import SortItem, sort_items
from asimap.store.base import StoreError

log = logging.getLogger(__name__)

#: Above this many messages at once, removals and insertions rebuild the
#: result in one pass instead of moving it once per message.
BULK = 32

#: Update contexts one connection may hold at a time (RFC 5267 section
#: 4.3.1: at least one; section 6: a limit keeps them from being a
#: denial-of-service tool).
MAX_CONTEXTS = 10


@dataclass(eq=False, slots=True)
class UpdateContext:
    """One searching command's live result (see the module docstring)."""

    tag: str
    #: The search program, sequence numbers frozen into UIDs.
    key: c.SearchKey
    uid: bool
    #: SORT criteria, or None for SEARCH (mailbox order).
    criteria: tuple[str, ...] | None
    #: The result as UIDs: ascending for SEARCH, in sort order for SORT.
    members: array[int]

    def among(self, uids: Sequence[int]) -> set[int]:
        """Which of ``uids`` are members: a bisection each for SEARCH
        (ascending); for SORT a scan per UID when they are few, else one
        pass over the members."""
        members = self.members
        if self.criteria is None:
            found = set()
            for uid in uids:
                index = bisect.bisect_left(members, uid)
                if index < len(members) and members[index] == uid:
                    found.add(uid)
            return found
        if len(uids) <= BULK:
            return {uid for uid in uids if uid in members}
        wanted = set(uids)
        return {uid for uid in members if uid in wanted}


class Contexts:
    """The update contexts of one selected view (its ``watcher``)."""

    def __init__(self) -> None:
        self._by_tag: dict[str, UpdateContext] = {}

    def __contains__(self, tag: object) -> bool:
        return tag in self._by_tag

    def __len__(self) -> int:
        return len(self._by_tag)

    def add(self, context: UpdateContext) -> bool:
        """Keep ``context``; False when the connection has too many."""
        if len(self._by_tag) >= MAX_CONTEXTS:
            return False
        self._by_tag[context.tag] = context
        return True

    def cancel(self, tags: Sequence[str]) -> None:
        for tag in tags:
            self._by_tag.pop(tag, None)

    # -- ResultWatcher -------------------------------------------------------

    async def removed(self, view: SelectedMailbox) -> list[Response]:
        """REMOVEFROM for members expunged (``view.gone``), numbered while
        their sequence numbers are still valid."""
        gone = sorted(view.gone)
        responses: list[Response] = []
        for context in self._by_tag.values():
            present = context.among(gone)
            hits = [uid for uid in gone if uid in present]
            if not hits:
                continue
            if context.criteria is None:
                pairs = [(0, _remove_ascending(context, hits, view))]
            else:
                pairs = _remove_sorted(context, hits, view)
            responses.append(_response(context, [("REMOVEFROM", pairs)]))
        return responses

    async def changed(
        self, view: SelectedMailbox, uids: Sequence[int]
    ) -> list[Response]:
        """Judge ``uids`` again for every context: REMOVEFROM for members
        that no longer match, ADDTO for non-members that now do."""
        contexts = list(self._by_tag.values())
        if not contexts:
            return []  # all cancelled: judge nothing
        pairs = [(view.seq_of(uid) or 0, uid) for uid in uids]
        try:
            # One load of the changed messages serves every context.
            verdicts = await handlers_search.judge(
                view, [context.key for context in contexts], pairs
            )
        except StoreError as exc:
            # The next change re-judges the messages concerned; the client
            # can always search again (appendix A.5).
            log.warning("update contexts not updated: %r", exc)
            return []
        except Exception:
            # Never lose the EXISTS/FETCH/EXPUNGE this refresh already
            # computed (the view has moved on) because of a context.
            log.exception("update contexts not updated")
            return []
        responses: list[Response] = []
        for context, verdict in zip(contexts, verdicts, strict=True):
            try:
                items = await _changes(view, context, verdict)
            except StoreError as exc:
                log.warning("update context %s not updated: %r", context.tag, exc)
                continue
            except Exception:
                log.exception("update context %s not updated", context.tag)
                continue
            if items:
                responses.append(_response(context, items))
        return responses


# -- building a context --------------------------------------------------------


def freeze(key: c.SearchKey, view: SelectedMailbox) -> c.SearchKey:
    """``key`` with every sequence-number set and ``$`` replaced by the
    UIDs it names now (RFC 5267 section 4.3, see the module docstring)."""
    if isinstance(key, c.SearchSequence) and (key.sequence.saved or not key.uid):
        if key.sequence.saved:
            uids = sorted(u for u in view.saved if view.seq_of(u) is not None)
        else:
            seqs = key.sequence.select(range(1, view.exists + 1))
            uids = [view.uids[seq - 1] for seq in seqs]
        return c.SearchSequence(c.SequenceSet(_ranges(uids)), uid=True)
    if isinstance(key, c.SearchNot):
        return c.SearchNot(freeze(key.key, view))
    if isinstance(key, c.SearchOr):
        return c.SearchOr(freeze(key.left, view), freeze(key.right, view))
    if isinstance(key, c.SearchAnd):
        return c.SearchAnd(tuple(freeze(k, view) for k in key.keys))
    return key


def _ranges(uids: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Ascending UIDs as ``(low, high)`` runs."""
    runs: list[tuple[int, int]] = []
    for uid in uids:
        if runs and runs[-1][1] == uid - 1:
            runs[-1] = (runs[-1][0], uid)
        else:
            runs.append((uid, uid))
    return tuple(runs)


def make_context(
    tag: str,
    key: c.SearchKey,
    view: SelectedMailbox,
    found: Sequence[esearch.Found],
    *,
    uid: bool,
    criteria: tuple[str, ...] | None,
) -> UpdateContext:
    """A context whose result is ``found`` (in result order)."""
    members = array("I", (f.uid for f in found))
    return UpdateContext(tag, freeze(key, view), uid, criteria, members)


# -- removals and additions ----------------------------------------------------


_Pairs = list[tuple[int, list[int]]]


def _number(context: UpdateContext, view: SelectedMailbox, uid: int) -> int:
    return uid if context.uid else view.seq_of(uid) or 0


def _remove_ascending(
    context: UpdateContext, uids: Sequence[int], view: SelectedMailbox
) -> list[int]:
    """Drop members of a SEARCH context; their numbers, ascending."""
    numbers = [_number(context, view, uid) for uid in uids]
    if len(uids) > BULK:
        leaving = set(uids)
        context.members = array("I", (u for u in context.members if u not in leaving))
    else:
        for uid in uids:
            del context.members[bisect.bisect_left(context.members, uid)]
    return numbers


def _remove_sorted(
    context: UpdateContext, uids: Sequence[int], view: SelectedMailbox
) -> _Pairs:
    """Drop members of a SORT context: ``(position, numbers)`` pairs, each
    run of neighbours one pair, positions as the client applies them in
    turn (section 4.3.4: "the first result in the set will occupy the
    given context position before removal")."""
    if len(uids) > BULK:
        leaving = set(uids)
        indexes = [i for i, u in enumerate(context.members) if u in leaving]
    else:
        indexes = sorted(context.members.index(uid) for uid in uids)
    pairs: _Pairs = []
    previous = -2
    for removed_before, index in enumerate(indexes):
        number = _number(context, view, context.members[index])
        if index == previous + 1:
            pairs[-1][1].append(number)
        else:
            pairs.append((index + 1 - removed_before, [number]))
        previous = index
    if len(indexes) > BULK:
        keep = set(range(len(context.members))) - set(indexes)
        context.members = array("I", (context.members[i] for i in sorted(keep)))
    else:
        for index in reversed(indexes):
            del context.members[index]
    return pairs


async def _changes(
    view: SelectedMailbox, context: UpdateContext, verdicts: dict[int, bool]
) -> list[tuple[str, _Pairs]]:
    """Apply the verdicts to ``context``: its REMOVEFROM and ADDTO items."""
    present = context.among(list(verdicts))
    leaving = [uid for uid, hit in verdicts.items() if not hit and uid in present]
    coming = [uid for uid, hit in verdicts.items() if hit and uid not in present]
    items: list[tuple[str, _Pairs]] = []
    if context.criteria is None:
        if leaving:
            numbers = _remove_ascending(context, leaving, view)
            items.append(("REMOVEFROM", [(0, numbers)]))
        if coming:
            coming.sort()
            if len(coming) > BULK:
                merged = sorted({*context.members, *coming})
                context.members = array("I", merged)
            else:
                for uid in coming:
                    bisect.insort(context.members, uid)
            added = [_number(context, view, uid) for uid in coming]
            items.append(("ADDTO", [(0, added)]))
        return items
    if leaving:
        items.append(("REMOVEFROM", _remove_sorted(context, sorted(leaving), view)))
    if coming:
        pairs = await _insert_sorted(view, context, sorted(coming))
        if pairs:
            items.append(("ADDTO", pairs))
    return items


async def _insert_sorted(
    view: SelectedMailbox, context: UpdateContext, uids: list[int]
) -> _Pairs:
    """Insert ``uids`` into a SORT context where the sort puts them:
    ``(position, numbers)`` pairs, consecutive insertions merged."""
    if len(uids) > BULK:
        return await _resort(view, context, uids)
    return await _insert_one_by_one(view, context, uids)


async def _insert_one_by_one(
    view: SelectedMailbox, context: UpdateContext, uids: list[int]
) -> _Pairs:
    assert context.criteria is not None
    criteria = context.criteria
    newcomers = await _items(view, uids)
    pairs: _Pairs = []
    previous = -2
    for item in sort_items(newcomers, criteria):
        index = await _position(view, context, item)
        context.members.insert(index, item.uid)
        _extend(pairs, previous, index, _number(context, view, item.uid))
        previous = index
    return pairs


def _extend(pairs: _Pairs, previous: int, index: int, number: int) -> None:
    """Add an insertion at ``index`` right after one at ``previous`` to
    the same pair, else start a pair (positions count from 1)."""
    if index == previous + 1:
        pairs[-1][1].append(number)
    else:
        pairs.append((index + 1, [number]))


async def _resort(
    view: SelectedMailbox, context: UpdateContext, uids: list[int]
) -> _Pairs:
    """Many insertions at once: sort the whole new result, then announce
    each newcomer at its final position, lowest first -- inserting them in
    that order yields exactly the new result."""
    assert context.criteria is not None
    coming = set(uids)
    everything = await _items(view, [*context.members, *uids])
    if len(everything) != len(context.members) + len(uids):
        # Some data is gone: place what can be placed one by one.
        return await _insert_one_by_one(view, context, uids)
    ordered = sort_items(everything, context.criteria)
    pairs: _Pairs = []
    previous = -2
    for index, item in enumerate(ordered):
        if item.uid in coming:
            _extend(pairs, previous, index, _number(context, view, item.uid))
            previous = index
    context.members = array("I", (item.uid for item in ordered))
    return pairs


async def _items(view: SelectedMailbox, uids: Sequence[int]) -> list[SortItem]:
    """Sort items for ``uids`` whose sequence number is their UID.

    The sort's last resort is sequence order (RFC 5256 section 3), which
    is UID order; cached items may carry sequence numbers from before an
    expunge, so comparisons use the UID, which never changes.
    """
    found = [esearch.Found(uid, uid, 0) for uid in uids]
    return await handlers_sort.load_items(view, found)


async def _position(
    view: SelectedMailbox, context: UpdateContext, item: SortItem
) -> int:
    """The index at which ``item`` belongs in the context's sort order: a
    binary search, each probe compared by :func:`sort_items` itself so the
    order is exactly SORT's."""
    assert context.criteria is not None
    criteria = context.criteria
    low, high = 0, len(context.members)
    while low < high:
        middle = (low + high) // 2
        probe = await _items(view, [context.members[middle]])
        if not probe:
            # Its data is gone (expunged meanwhile): compare by UID alone.
            before = context.members[middle] < item.uid
        else:
            before = sort_items([item, probe[0]], criteria)[0] is probe[0]
        if before:
            low = middle + 1
        else:
            high = middle
    return low


# -- responses -----------------------------------------------------------------


def _response(context: UpdateContext, items: list[tuple[str, _Pairs]]) -> Response:
    """``* ESEARCH (TAG "t") [UID] ADDTO (pos set ...) REMOVEFROM (...)``."""
    values: list[Value] = [Atom("ESEARCH"), [Atom("TAG"), context.tag]]
    if context.uid:
        values.append(Atom("UID"))
    for name, pairs in items:
        payload: list[Value] = []
        for position, numbers in pairs:
            payload += [position, Raw(format_uid_list(numbers))]
        values += [Atom(name), payload]
    return Untagged(tuple(values))
