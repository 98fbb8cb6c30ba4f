"""ESEARCH responses and the SEARCHRES saved result, as pure functions.

RFC 4731 (ESEARCH) lets a client ask SEARCH for a digest of its result
instead of every number: ``RETURN (MIN MAX ALL COUNT)``, answered by one
``* ESEARCH (TAG "t") [UID] MIN m MAX n ALL set COUNT c``.  ``RETURN ()``
means ALL (RFC 4731 section 3.1); MIN, MAX and ALL are left out when
nothing matched, COUNT never is.  RFC 5182 (SEARCHRES, folded into RFC 9051
section 6.4.4.1) adds SAVE, which remembers the result for ``$``.  The same
options serve SORT (RFC 5267 section 3.1 semantics: "lowest" and "highest"
follow the sort order, ALL lists in sort order: ESORT).

Which messages SAVE remembers and which messages the CONDSTORE ``MODSEQ``
return item covers follow the same rule (RFC 9051 section 6.4.4.1 table 4,
RFC 4731 section 3.2): only MIN and/or MAX asked -> those messages; ALL or
COUNT asked -> every message found.

RFC 9394 (PARTIAL) asks for a window of the result instead of all of it:
``PARTIAL 1:500`` the first 500, ``PARTIAL -1:-100`` the last 100, answered
as ``PARTIAL (range set-or-NIL)``.  Its table 1 extends the rule above:
with PARTIAL and no COUNT, SAVE keeps the window plus the MIN/MAX messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from asimap.imap.commands import PartialRange
from asimap.imap.responses import Atom, Raw, Untagged, Value
from asimap.imap.session.uidset import format_uid_list

MIN, MAX, ALL, COUNT, SAVE = "MIN", "MAX", "ALL", "COUNT", "SAVE"
PARTIAL = "PARTIAL"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Found:
    """One message a SEARCH/SORT found, in result order."""

    seq: int
    uid: int
    modseq: int


def normalize(options: tuple[str, ...]) -> frozenset[str]:
    """``RETURN ()`` is ``RETURN (ALL)`` (RFC 4731 section 3.1)."""
    return frozenset(options) if options else frozenset({ALL})


def _number(item: Found, uid: bool) -> int:
    return item.uid if uid else item.seq


def _ends(found: Sequence[Found], ordered: bool, uid: bool) -> tuple[Found, Found]:
    """The MIN and MAX messages: first and last in sort order for SORT,
    lowest and highest number for SEARCH."""
    if ordered:
        return found[0], found[-1]
    low = min(found, key=lambda f: _number(f, uid))
    high = max(found, key=lambda f: _number(f, uid))
    return low, high


def window(found: Sequence[Found], partial: PartialRange) -> list[Found]:
    """The results a PARTIAL range names (see :func:`partial_window`)."""
    return partial_window(found, partial)


def partial_window(found: Sequence[_T], partial: PartialRange) -> list[_T]:
    """The results a PARTIAL range names (RFC 9394 sections 3.1, 3.3).

    Positions count from 1 at the first result (mailbox order for SEARCH,
    sort order for SORT) or from -1 at the last; ``500:400`` is
    ``400:500``.  Positions past either end are simply not there.
    """
    low, high = sorted((abs(partial.first), abs(partial.last)))
    if partial.first > 0:
        return list(found[low - 1 : high])
    end = len(found) - low + 1
    if end <= 0:
        return []
    return list(found[max(len(found) - high, 0) : end])


def selected(
    found: Sequence[Found],
    options: frozenset[str],
    *,
    ordered: bool,
    uid: bool,
    partial: PartialRange | None = None,
) -> list[Found]:
    """The messages SAVE keeps and MODSEQ covers (see module docstring)."""
    if not found:
        return []
    if ALL in options or COUNT in options:
        return list(found)
    if partial is None and not options & {MIN, MAX}:
        return list(found)
    picked = window(found, partial) if partial is not None else []
    if options & {MIN, MAX}:
        low, high = _ends(found, ordered, uid)
        for wanted, item in ((MIN, low), (MAX, high)):
            if wanted in options and all(p is not item for p in picked):
                picked.append(item)
    return picked


def wanted(options: frozenset[str]) -> bool:
    """SAVE alone suppresses the ESEARCH response (RFC 9051 6.4.4)."""
    return bool(options - {SAVE})


def response(
    tag: str,
    found: Sequence[Found],
    options: frozenset[str],
    *,
    uid: bool,
    ordered: bool = False,
    modseq: bool = False,
    partial: PartialRange | None = None,
) -> Untagged:
    """``* ESEARCH (TAG "t") [UID] MIN.. MAX.. ALL.. PARTIAL.. COUNT..
    [MODSEQ..]``.

    ``found`` is in result order (ascending for SEARCH); ``modseq`` adds
    the CONDSTORE item when the key used MODSEQ and something was found
    (RFC 4731 section 3.2).  PARTIAL is answered even when nothing matched,
    with NIL (RFC 9394 section 3.1).
    """
    items: list[Value] = [Atom("ESEARCH"), [Atom("TAG"), tag]]
    if uid:
        items.append(Atom("UID"))
    if found:
        low, high = _ends(found, ordered, uid)
        if MIN in options:
            items += [Atom("MIN"), _number(low, uid)]
        if MAX in options:
            items += [Atom("MAX"), _number(high, uid)]
        if ALL in options:
            numbers = [_number(f, uid) for f in found]
            items += [Atom("ALL"), Raw(format_uid_list(numbers))]
    if partial is not None:
        part = [_number(f, uid) for f in window(found, partial)]
        requested = Raw(f"{partial.first}:{partial.last}")
        results: Value = Raw(format_uid_list(part)) if part else None
        items += [Atom("PARTIAL"), [requested, results]]
    if COUNT in options:
        items += [Atom("COUNT"), len(found)]
    covered = selected(found, options, ordered=ordered, uid=uid, partial=partial)
    if modseq and covered:
        items += [Atom("MODSEQ"), max(f.modseq for f in covered)]
    return Untagged(tuple(items))
