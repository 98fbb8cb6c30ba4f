"""Sequence sets (RFC 3501 section 9 ``sequence-set``, RFC 5182 ``$``).

A set is recognised as one token with a regular expression and then split
on ``,`` and ``:`` with bytes methods.  Ranges are kept as written: nothing
is expanded, so ``1:4294967295`` costs two integers.
"""

from __future__ import annotations

import re

from asimap.imap.commands import STAR, SequenceSet
from asimap.imap.parser.tokens import MAX_NUMBER, Reader, fail

_SET_TOKEN_RE = re.compile(rb"[0-9*:,$]+")
# seq-number = nz-number / "*"; nz-number = digit-nz *DIGIT (no leading 0).
_SEQ_RANGE_RE = re.compile(rb"(?:[1-9][0-9]{0,9}|\*)(?::(?:[1-9][0-9]{0,9}|\*))?")

_SAVED = SequenceSet((), saved=True)


def _number(raw: bytes) -> int:
    if raw == b"*":
        return STAR
    value = int(raw)
    if value > MAX_NUMBER:
        fail("Invalid sequence set: number too large")
    return value


def parse_sequence_set(reader: Reader) -> SequenceSet:
    """Read a sequence set at the cursor."""
    token = reader.match(_SET_TOKEN_RE)
    if token is None:
        if reader.at_end():
            fail("Missing argument")
        fail("Invalid sequence set")
    if token == b"$":
        # RFC 5182 section 2.1: "$" stands alone for the saved result.
        return _SAVED
    parts = token.split(b",")
    if len(parts) > reader.limits.max_items:
        fail("Too many ranges in sequence set")
    ranges: list[tuple[int, int]] = []
    for part in parts:
        if _SEQ_RANGE_RE.fullmatch(part) is None:
            fail("Invalid sequence set")
        low, sep, high = part.partition(b":")
        first = _number(low)
        ranges.append((first, _number(high) if sep else first))
    return SequenceSet(tuple(ranges))
