"""Building the summaries of messages the MH store has not summarised yet.

The first header SEARCH, SORT or THREAD of a folder summarises every
message in it (100,000 for a big migrated folder), so the per-message
overhead around :func:`asimap.store.base.summarize` matters: this reads the
rows of a whole batch in one query instead of two queries per message
(``info`` and ``read``), and reads each file directly.  A file that is not
the one the row describes (an MH tool renumbered or rewrote it since the
last scan) goes through :meth:`Core.read`, which rescans and retries, so the
result is the same as summarising message by message.

Runs on the store's worker thread, inside one job, like everything that
touches the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from asimap.message.model import Message
from asimap.store.base import MessageGone, MessageInfo, MessageSummary, summarize
from asimap.store.mh.corebase import _savedate, to_datetime
from asimap.store.mh.files import FileIdentity

#: Rows fetched per query (SQLite's default limit on host parameters is
#: 999 before 3.32; stay well below it).
_BATCH = 500


def _read_if_same(path: str, identity: FileIdentity) -> bytes | None:
    """The file's bytes if it is still the file the row describes."""
    try:
        with open(path, "rb") as handle:
            if FileIdentity.of(os.fstat(handle.fileno())) == identity:
                return handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        pass
    except OSError:
        pass  # unreadable: the careful read raises MessageUnreadable
    return None


def build_summaries(
    rows: Callable[[Sequence[int]], list[tuple[int, ...]]],
    folder: Path,
    read: Callable[[int], bytes],
    uids: Sequence[int],
) -> list[MessageSummary]:
    """Summaries of ``uids`` (skipping expunged ones), in the order given.

    ``rows(batch)`` returns ``(uid, num, ino, size, mtime_ns, internaldate,
    tz_minutes, savedate)`` for the UIDs of ``batch`` that still exist;
    ``read(uid)`` is the careful one-message read (rescan on mismatch,
    :class:`MessageGone` when the message is gone).
    """
    out: list[MessageSummary] = []
    prefix = str(folder) + os.sep
    for start in range(0, len(uids), _BATCH):
        batch = uids[start : start + _BATCH]
        known = {row[0]: row for row in rows(batch)}
        for uid in batch:
            row = known.get(uid)
            if row is None:
                continue  # expunged
            _, num, ino, size, mtime_ns, seconds, tz, saved = row
            raw = _read_if_same(prefix + str(num), FileIdentity(ino, size, mtime_ns))
            if raw is None:
                try:
                    raw = read(uid)
                except MessageGone:
                    continue
            info = MessageInfo(
                uid=uid,
                internaldate=to_datetime(seconds, tz),
                size=size,
                savedate=_savedate(saved),
            )
            out.append(summarize(info, Message(raw)))
    return out
