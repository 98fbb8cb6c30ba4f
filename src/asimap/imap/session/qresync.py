"""VANISHED (EARLIER): which UIDs a resynchronising client must forget.

Used by SELECT/EXAMINE (QRESYNC ...) (RFC 7162 section 3.2.5) and by
``UID FETCH ... (CHANGEDSINCE n VANISHED)`` (section 3.2.6).  Both ask the
same question: of the UIDs in some set, which were expunged after MODSEQ n?

The store answers from its tombstones (``Mailbox.changes_since``).  When it
has forgotten tombstones that old (``Changes.expunged_complete`` false),
the answer is every UID of the set, up to UIDNEXT-1, that is not in the
mailbox now -- a superset the RFC allows ("the server MAY send UIDs that
the client never saw").  The client's sequence-match data (section 3.2.5.2)
narrows that fallback: a leading run of (seq, uid) pairs that still match
proves that nothing at or below the last matching UID was expunged.

Results are lists of inclusive ``(low, high)`` ranges, never lists of every
UID, so a 4,000,000,000-wide gap costs two integers.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from asimap.imap.commands import SequenceSet
from asimap.store.base import Mailbox

Ranges = list[tuple[int, int]]

#: The most (seq, uid) pairs of sequence-match data we expand; beyond that
#: the data is ignored (it only ever narrows the answer).
MAX_SEQ_MATCH = 100_000


def to_ranges(uids: Iterable[int]) -> Ranges:
    """Ascending UIDs -> merged ranges."""
    ranges: Ranges = []
    for uid in uids:
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return ranges


def format_ranges(ranges: Ranges) -> str:
    """``[(1, 3), (7, 7)]`` -> ``"1:3,7"`` (a uid-set, RFC 7162 section 7)."""
    return ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in ranges)


def set_ranges(sequence: SequenceSet, largest: int) -> Ranges:
    """The ranges a UID set names when ``*`` is ``largest``, merged."""
    merged: Ranges = []
    for lo, hi in sorted(sequence.bounds(largest)):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def intersect(left: Ranges, right: Ranges) -> Ranges:
    """Intersection of two merged, ascending range lists."""
    out: Ranges = []
    i = j = 0
    while i < len(left) and j < len(right):
        lo = max(left[i][0], right[j][0])
        hi = min(left[i][1], right[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out


def gaps(present: Sequence[int], low: int, high: int) -> Ranges:
    """Ranges of ``low..high`` not in ``present`` (ascending UIDs)."""
    out: Ranges = []
    start = low
    index = bisect.bisect_left(present, low)
    while start <= high:
        if index < len(present) and present[index] <= high:
            uid = present[index]
            if uid > start:
                out.append((start, uid - 1))
            start = uid + 1
            index += 1
        else:
            out.append((start, high))
            break
    return out


def subtract(ranges: Ranges, uids: Iterable[int]) -> Ranges:
    """``ranges`` without the (few) given UIDs."""
    out = list(ranges)
    for uid in sorted(set(uids)):
        for index, (lo, hi) in enumerate(out):
            if lo <= uid <= hi:
                pieces = [(lo, uid - 1), (uid + 1, hi)]
                out[index : index + 1] = [(a, b) for a, b in pieces if a <= b]
                break
    return out


def matched_floor(
    seq_match: tuple[SequenceSet, SequenceSet] | None, current: Sequence[int]
) -> int:
    """The highest UID below which the client's sequence-match data proves
    that nothing was expunged (RFC 7162 section 3.2.5.2), or 0.

    ``current`` is the mailbox's UIDs in sequence order.  Pairs are taken in
    order; the first pair that does not match ends the proof.
    """
    if seq_match is None:
        return 0
    seqs = _expand(seq_match[0])
    uids = _expand(seq_match[1])
    if seqs is None or uids is None or len(seqs) != len(uids):
        return 0
    floor = 0
    for seq, uid in zip(seqs, uids, strict=True):
        if seq > len(current) or current[seq - 1] != uid:
            break
        floor = uid
    return floor


def _expand(sequence: SequenceSet) -> list[int] | None:
    """Every number of a set without ``*``, in the order written; None if
    it has ``*`` or is too large to be worth it."""
    values: list[int] = []
    for low, high in sequence.ranges:
        if low == 0 or high == 0:
            return None
        lo, hi = min(low, high), max(low, high)
        if len(values) + hi - lo + 1 > MAX_SEQ_MATCH:
            return None
        values.extend(range(lo, hi + 1))
    return values


async def vanished_since(
    mailbox: Mailbox,
    modseq: int,
    uid_set: SequenceSet | None,
    *,
    uidnext: int,
    current: Sequence[int],
    seq_match: tuple[SequenceSet, SequenceSet] | None = None,
) -> Ranges:
    """UIDs of ``uid_set`` (all UIDs if None) expunged after ``modseq``.

    ``current`` is what the client's view holds, in sequence order: those
    UIDs are never reported (an expunge the view has not announced yet is
    announced by a plain VANISHED/EXPUNGE later, which also decrements
    EXISTS; VANISHED (EARLIER) does not).  ``*`` in the set means
    UIDNEXT-1 (RFC 7162 section 3.2.5: known-uids defaults to
    ``1:<maxuid>``, maxuid being UIDNEXT-1).
    """
    maxuid = uidnext - 1
    if maxuid < 1:
        return []  # never had a message
    wanted = set_ranges(uid_set, maxuid) if uid_set is not None else [(1, maxuid)]
    changes = await mailbox.changes_since(modseq)
    if changes.expunged_complete:
        present = set(current)
        gone = to_ranges(u for u in changes.expunged if u not in present)
    else:
        floor = matched_floor(seq_match, current)
        stored = {state.uid for state in await mailbox.states()}
        everything = sorted(stored.union(current))
        gone = gaps(everything, floor + 1, maxuid) if floor < maxuid else []
    return intersect(gone, wanted)
