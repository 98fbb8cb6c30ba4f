"""The MH store's summary cache: building, storing and reading summaries.

A summary (:class:`asimap.store.base.MessageSummary`) comes in two depths:

* a *header summary*: the fields of :data:`SUMMARY_HEADERS` and the
  ENVELOPE.  That is all header SEARCH, SORT, THREAD and FETCH ENVELOPE
  read, and all of it comes from the message's header block: it is built
  from the first :data:`HEAD_BYTES` of the file (more only when the header
  is longer), without parsing the MIME tree.  The first SORT of a folder
  nmh filled with 100,000 messages summarises every message, so this is
  the cost that decides how long that SORT takes;
* a *full summary* adds BODYSTRUCTURE, BODY and the RFC 8474 ids (EMAILID
  hashes the whole message), built on demand (FETCH BODYSTRUCTURE, SEARCH
  EMAILID) from the whole file, as :func:`asimap.store.base.summarize` does.

Both are rows of the ``summaries`` table; a header summary leaves
``bodystructure`` and ``body`` empty and the ids NULL (no full
BODYSTRUCTURE is ever empty: it is a parenthesised list), so a full read
treats it as missing and replaces it.  A header summary is exactly the
full one minus those parts (tests/test_mh_header_summaries.py holds this
for the corpus): the header block is split by the same function, and the
same :class:`Headers` parse yields the same fields and ENVELOPE.

The rows of a whole batch are read in one query, and each file directly;
a file that is not the one the row describes (an MH tool renumbered or
rewrote it since the last scan) goes through the careful one-message read
(``Core.read``), which rescans and retries.  Runs on the store's worker
thread, inside one job, like everything that touches the database.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path

from asimap.imap.responses import Encoded
from asimap.message.envelope import envelope
from asimap.message.headers import Headers, split_header
from asimap.message.model import Message
from asimap.message.wire import encode_summary_value
from asimap.store import gcpause
from asimap.store.base import (
    SUMMARY_HEADERS,
    MessageGone,
    MessageInfo,
    MessageSummary,
    summarize,
)
from asimap.store.mh.corebase import _savedate, to_datetime
from asimap.store.mh.db import transaction
from asimap.store.mh.files import FileIdentity

#: Rows fetched per query (SQLite's default limit on host parameters is
#: 999 before 3.32; stay well below it).
_BATCH = 500

#: What is read of a file for its header summary at first: the header of
#: nearly every message fits (a longer one is read on to its end).
HEAD_BYTES = 8192

_EMPTY = Encoded(b"")


def _open_if_same(path: str, identity: FileIdentity, whole: bool) -> bytes | None:
    """The file's bytes (all of them, or enough for its header) if it is
    still the file the row describes; None otherwise.

    Plain ``os`` calls: ``open()`` adds a buffered reader and three
    system calls (fstat, ioctl, lseek) per file, a tenth of a header
    summary's cost.
    """
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        # Gone, or unreadable: the careful read raises MessageGone or
        # MessageUnreadable.
        return None
    try:
        if FileIdentity.of(os.fstat(fd)) != identity:
            return None
        if whole or identity.size <= HEAD_BYTES:
            return _read_rest(fd, b"", identity.size)
        head = os.read(fd, HEAD_BYTES)
        if header_complete(head):
            return head
        return _read_rest(fd, head, identity.size)
    except OSError:
        return None  # a directory, EIO...: the careful read decides
    finally:
        os.close(fd)


_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _read_rest(fd: int, head: bytes, size: int) -> bytes:
    """``head`` and everything after it to the end of the file, whose
    size was ``size``: one read, unless the file has grown since."""
    want = max(size - len(head), 0) + 1
    first = os.read(fd, want)
    if len(first) < want:  # the end of the file
        return head + first if head else first
    chunks = [head, first]
    while chunk := os.read(fd, _CHUNK):
        chunks.append(chunk)
    return b"".join(chunks)


#: Read size once a file turned out longer than its size said.
_CHUNK = 1024 * 1024


def header_complete(head: bytes) -> bool:
    """Whether the first bytes of a message hold its whole header block.

    :func:`split_header` finds the first empty line; one found well inside
    ``head`` is the first of the whole message too, so the header it
    delimits is the message's.  A split at the very end (no empty line
    seen, or one that more bytes could still change) is not trusted.
    """
    _header_end, body_start = split_header(head, 0, len(head))
    return body_start <= len(head) - 3


def header_summary(info: MessageInfo, raw: bytes) -> MessageSummary:
    """The header summary of a message from ``raw``, its first bytes
    (including the whole header block) or all of them.

    The same fields and ENVELOPE as :func:`summarize`: both read the root
    entity's :class:`Headers`, split off by :func:`split_header`.
    """
    header_end, _ = split_header(raw, 0, len(raw))
    headers = Headers(raw, 0, header_end)
    values: dict[str, tuple[str, ...]] = {}
    for name in SUMMARY_HEADERS:
        fields = headers.all(name)
        if fields:
            values[name] = tuple(field.text() for field in fields)
    return MessageSummary(
        uid=info.uid,
        size=info.size,
        internaldate=info.internaldate,
        envelope=Encoded(encode_summary_value(envelope(headers))),
        bodystructure=_EMPTY,
        body=_EMPTY,
        headers=values,
        savedate=info.savedate,
    )


def build_summaries(
    rows: Callable[[Sequence[int]], list[tuple[int, ...]]],
    folder: Path,
    read: Callable[[int], bytes],
    uids: Sequence[int],
    structure: bool = True,
) -> list[MessageSummary]:
    """Summaries of ``uids`` (skipping expunged ones), in the order given:
    full ones when ``structure``, else header summaries.

    ``rows(batch)`` returns ``(uid, num, ino, size, mtime_ns, internaldate,
    tz_minutes, savedate)`` for the UIDs of ``batch`` that still exist;
    ``read(uid)`` is the careful one-message read (rescan on mismatch,
    :class:`MessageGone` when the message is gone).
    """
    with gcpause.paused():  # parsed headers in bulk, no cycles
        return _build(rows, folder, read, uids, structure)


def _build(
    rows: Callable[[Sequence[int]], list[tuple[int, ...]]],
    folder: Path,
    read: Callable[[int], bytes],
    uids: Sequence[int],
    structure: bool,
) -> list[MessageSummary]:
    out: list[MessageSummary] = []
    prefix = str(folder) + os.sep
    for start in range(0, len(uids), _BATCH):
        batch = uids[start : start + _BATCH]
        known = {row[0]: row for row in rows(batch)}
        for uid in batch:
            row = known.get(uid)
            if row is None:
                continue  # expunged
            raw = _raw_of(prefix, row, read, structure)
            if raw is None:
                continue  # expunged meanwhile
            info = _info_of(row)
            if structure:
                out.append(summarize(info, Message(raw)))
            else:
                out.append(header_summary(info, raw))
    return out


def _raw_of(
    prefix: str,
    row: tuple[int, ...],
    read: Callable[[int], bytes],
    whole: bool,
) -> bytes | None:
    """A row's message bytes (all, or enough for its header): straight from
    the file when it is still the one the row describes, else through the
    careful ``read``; None when the message is gone."""
    uid, num, ino, size, mtime_ns = row[:5]
    raw = _open_if_same(prefix + str(num), FileIdentity(ino, size, mtime_ns), whole)
    if raw is not None:
        return raw
    try:
        return read(uid)
    except MessageGone:
        return None


def _info_of(row: tuple[int, ...]) -> MessageInfo:
    """The :class:`MessageInfo` of a ``rows`` tuple."""
    uid, _num, _ino, size, _mtime_ns, seconds, tz, saved = row
    return MessageInfo(
        uid=uid,
        internaldate=to_datetime(seconds, tz),
        size=size,
        savedate=_savedate(saved),
    )


def load_batch(
    rows: Callable[[Sequence[int]], list[tuple[int, ...]]],
    folder: Path,
    read: Callable[[int], bytes],
    uids: Sequence[int],
    content: bool,
    budget: int,
) -> tuple[list[tuple[MessageInfo, bytes | None]], int]:
    """``(info, raw bytes when content)`` of the first of ``uids``, in
    order, skipping expunged ones, and how many of ``uids`` that covers:
    files are read until ``budget`` octets (at least one message), so a
    batch of big messages stays bounded in memory.

    What SEARCH on the message text (or on size and dates) reads: one job
    for a batch instead of two per message.
    """
    out: list[tuple[MessageInfo, bytes | None]] = []
    prefix = str(folder) + os.sep
    used = 0
    batch = uids[:_BATCH]
    known = {row[0]: row for row in rows(batch)}
    for index, uid in enumerate(batch):
        if content and used >= budget:
            return out, index
        row = known.get(uid)
        if row is None:
            continue  # expunged
        raw: bytes | None = None
        if content:
            raw = _raw_of(prefix, row, read, True)
            if raw is None:
                continue  # expunged meanwhile
            used += len(raw)
        out.append((_info_of(row), raw))
    return out, len(batch)


def cached(
    conn: sqlite3.Connection,
    mailbox_id: int,
    uids: Sequence[int],
    structure: bool,
) -> dict[int, MessageSummary]:
    """The cached summaries of ``uids`` that serve: full ones when
    ``structure``, else the header part of any row (a full one holds it)."""
    with gcpause.paused():  # thousands of containers, no cycles
        return _cached(conn, mailbox_id, uids, structure)


def _cached(
    conn: sqlite3.Connection,
    mailbox_id: int,
    uids: Sequence[int],
    structure: bool,
) -> dict[int, MessageSummary]:
    found: dict[int, MessageSummary] = {}
    # Full rows only: header rows, and rows cached before schema 3 (no
    # object ids), are rebuilt by the caller.
    full_only = "AND s.emailid IS NOT NULL" if structure else ""
    columns = (
        "s.bodystructure, s.body, s.emailid, s.threadid"
        if structure
        else "x'', x'', '', ''"
    )
    # The messages of a folder nmh filled share their save date (when we
    # first saw them): each distinct one is converted once.
    saves: dict[int | None, datetime | None] = {None: None}
    empty = _EMPTY
    for start in range(0, len(uids), _BATCH):
        chunk = uids[start : start + _BATCH]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT m.uid, m.size, m.internaldate, m.tz_minutes, s.envelope, "
            f"{columns}, s.headers, "
            "m.savedate FROM messages m "
            "JOIN summaries s ON s.mailbox_id=m.mailbox_id AND s.uid=m.uid "
            f"WHERE m.mailbox_id=? AND m.uid IN ({marks}) {full_only}",
            (mailbox_id, *chunk),
        ).fetchall()
        # One JSON document for the batch: a loads() per row cost more
        # in calls than in parsing.
        decoded = json.loads("[" + ",".join([row[9] for row in rows]) + "]")
        for row, fields in zip(rows, decoded, strict=True):
            uid, size, seconds, tz, env, bodystructure, body = row[:7]
            emailid, threadid, _headers, saved = row[7:]
            if saved in saves:
                savedate = saves[saved]
            else:
                savedate = saves[saved] = _savedate(saved)
            found[uid] = MessageSummary(
                uid,
                size,
                to_datetime(seconds, tz),
                Encoded(env),
                Encoded(bodystructure) if bodystructure else empty,
                Encoded(body) if body else empty,
                {k: tuple(v) for k, v in fields.items()},
                emailid,
                threadid,
                savedate,
            )
    return found


def remember(
    conn: sqlite3.Connection,
    mailbox_id: int,
    fresh: Iterable[MessageSummary],
    structure: bool,
) -> None:
    """Cache ``fresh`` summaries (full ones when ``structure``)."""
    with transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO summaries (mailbox_id, uid, envelope, "
            "bodystructure, body, headers, emailid, threadid) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    mailbox_id,
                    summary.uid,
                    summary.envelope.data,
                    summary.bodystructure.data,
                    summary.body.data,
                    json.dumps({k: list(v) for k, v in summary.headers.items()}),
                    summary.emailid if structure else None,
                    summary.threadid if structure else None,
                )
                for summary in fresh
            ],
        )


def unsummarised(conn: sqlite3.Connection, mailbox_id: int) -> list[int]:
    """UIDs with no cached summary at all, newest first: what a background
    fill builds header summaries of."""
    return [
        uid
        for (uid,) in conn.execute(
            "SELECT m.uid FROM messages m LEFT JOIN summaries s "
            "ON s.mailbox_id=m.mailbox_id AND s.uid=m.uid "
            "WHERE m.mailbox_id=? AND s.uid IS NULL ORDER BY m.uid DESC",
            (mailbox_id,),
        )
    ]
