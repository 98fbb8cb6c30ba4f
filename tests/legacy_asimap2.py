"""Build an ``asimap.db`` the way asimap 2.x leaves it, for import tests.

The schema is asimap 2.x's (its migrations create these tables and add the
later columns; the end result is what is written here).  Range strings are
compressed as 2.x compresses them: consecutive runs as ``a-b``, single
numbers as ``n``, joined by ``,``; the order of the list is kept.

Each mailbox is a dict with ``name`` and ``uid_vv`` and optionally
``next_uid``, ``uids``, ``msg_keys``, ``attributes``, ``subscribed``,
``sequences``, ``mtime``, ``num_msgs``, ``num_recent``, ``last_resync``.
A list of ints (or, for ``attributes``, of strings) is encoded as 2.x
would; any other value (str, bytes, None, a float...) is stored as given, so
tests can write the corrupt rows a crash or a bug could leave behind.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: asimap 2.x's tables, as its migrations leave them.
SCHEMA = (
    "CREATE TABLE versions (version INTEGER)",
    "CREATE TABLE user_server (id INTEGER PRIMARY KEY, uid_vv INTEGER)",
    "CREATE TABLE mailboxes (id INTEGER PRIMARY KEY, name TEXT, uid_vv INTEGER, "
    "attributes TEXT, mtime INTEGER, next_uid INTEGER, num_msgs INTEGER, "
    "num_recent INTEGER, uids TEXT, last_resync INTEGER, msg_keys TEXT, "
    "subscribed INTEGER)",
    "CREATE TABLE sequences (id INTEGER PRIMARY KEY, name TEXT, "
    "mailbox_id INTEGER, sequence TEXT)",
)

#: One ``versions`` row per 2.x migration applied.
MIGRATIONS = 5


def compress_ranges(numbers: Iterable[int]) -> str:
    """``[1, 2, 3, 6, 7, 9]`` -> ``"1-3,6-7,9"``, keeping the list's order."""
    parts: list[str] = []
    start: int | None = None
    previous = 0
    for number in numbers:
        if start is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            parts.append(_run(start, previous))
        start = previous = number
    if start is not None:
        parts.append(_run(start, previous))
    return ",".join(parts)


def _run(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def _ranges(value: Any) -> Any:
    """Encode a list of ints as 2.x does; pass anything else through."""
    if isinstance(value, list | tuple | range):
        return compress_ranges(value)
    return value


def build_legacy_db(
    path: Path, *, uid_vv: int, mailboxes: Sequence[dict[str, Any]]
) -> None:
    """Write a fresh asimap 2.x database at ``path`` (which must not exist)."""
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        for statement in SCHEMA:
            connection.execute(statement)
        connection.executemany(
            "INSERT INTO versions (version) VALUES (?)",
            [(number,) for number in range(MIGRATIONS)],
        )
        connection.execute(
            "INSERT INTO user_server (id, uid_vv) VALUES (1, ?)", (uid_vv,)
        )
        for mailbox in mailboxes:
            _insert_mailbox(connection, mailbox)


def _insert_mailbox(connection: sqlite3.Connection, mailbox: Mapping[str, Any]) -> None:
    uids = mailbox.get("uids", [])
    keys = mailbox.get(
        "msg_keys", list(range(1, len(uids) + 1)) if isinstance(uids, list) else []
    )
    default_next = max(uids) + 1 if isinstance(uids, list) and uids else 1
    attributes = mailbox.get("attributes", ["\\HasNoChildren"])
    if isinstance(attributes, list | tuple | set | frozenset):
        attributes = ",".join(attributes)
    count = len(keys) if isinstance(keys, list) else 0
    cursor = connection.execute(
        "INSERT INTO mailboxes (name, uid_vv, attributes, mtime, next_uid, num_msgs, "
        "num_recent, uids, last_resync, msg_keys, subscribed) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            mailbox["name"],
            mailbox["uid_vv"],
            attributes,
            mailbox.get("mtime", 1_700_000_000),
            mailbox.get("next_uid", default_next),
            mailbox.get("num_msgs", count),
            mailbox.get("num_recent", 0),
            _ranges(uids),
            mailbox.get("last_resync", 1_700_000_000),
            _ranges(keys),
            mailbox.get("subscribed", 0),
        ),
    )
    for name, members in mailbox.get("sequences", {}).items():
        connection.execute(
            "INSERT INTO sequences (name, mailbox_id, sequence) VALUES (?, ?, ?)",
            (name, cursor.lastrowid, _ranges(members)),
        )
