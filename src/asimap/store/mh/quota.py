"""Quota usage of an MH account (RFC 9208), from the database's totals.

The ``mailboxes`` rows carry ``total_messages`` and ``total_octets``,
kept by triggers on ``messages`` (schema 3, :mod:`asimap.store.mh.db`), so
the account's usage is one aggregate over its folders -- a thousand rows,
not a hundred thousand messages -- cheap enough to run on every APPEND.

The totals follow the database, which follows the folders at each rescan:
mail an nmh tool adds to a folder no session has looked at since counts
from the next rescan of that folder.
"""

from __future__ import annotations

import sqlite3

from asimap.store.base import QuotaLimits, QuotaUsage, check_quota


def usage(conn: sqlite3.Connection) -> QuotaUsage:
    """Messages and octets of every folder of the account."""
    messages, octets = conn.execute(
        "SELECT coalesce(sum(total_messages), 0), coalesce(sum(total_octets), 0) "
        "FROM mailboxes"
    ).fetchone()
    return QuotaUsage(storage=int(octets), messages=int(messages))


def check(
    conn: sqlite3.Connection, limits: QuotaLimits, messages: int, octets: int
) -> None:
    """:class:`~asimap.store.base.OverQuota` if adding would exceed a limit.

    Runs on the store's worker thread in the same job as the write it
    guards, so two APPENDs racing for the last octets cannot both pass.
    """
    if limits.limited:
        check_quota(limits, usage(conn), messages, octets)
