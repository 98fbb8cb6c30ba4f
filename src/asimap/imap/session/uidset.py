"""Formatting UID lists as sequence sets for response codes.

APPENDUID and COPYUID (RFC 4315 section 3) carry UID sets; a MULTIAPPEND
or COPY of thousands of consecutive messages should cost a few bytes, so
runs are written as ``low:high``.  COPYUID pairs source and destination
UIDs by position, so :func:`format_uid_list` keeps the given order and only
merges runs that ascend by one.
"""

from __future__ import annotations

from collections.abc import Sequence


def format_uid_list(uids: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1:3,7"`` (order preserved)."""
    parts: list[str] = []
    index = 0
    while index < len(uids):
        start = index
        while index + 1 < len(uids) and uids[index + 1] == uids[index] + 1:
            index += 1
        low, high = uids[start], uids[index]
        parts.append(str(low) if low == high else f"{low}:{high}")
        index += 1
    return ",".join(parts)
