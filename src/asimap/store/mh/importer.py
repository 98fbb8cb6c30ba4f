"""Adopt asimap 2.x's UIDVALIDITYs and UIDs on an account's first start.

An account that asimap 2.x served must keep its UIDVALIDITY and UIDs when it
moves to us, or every client downloads everything again (design.md section 2).
:mod:`asimap.store.mh.legacy` reads ``asimap.db``; here each folder that
still exists gets a mailbox row with 2.x's UIDVALIDITY and next UID, and
each message file 2.x knew (by MH number) keeps its UID.  Files 2.x did
not know are left to the first rescan, which gives them UIDs from
``next_uid`` up.  Flags come from ``.mh_sequences`` as always.
"""

from __future__ import annotations

import logging

from asimap.store.base import InvalidMailboxName
from asimap.store.memory import SPECIAL_USE
from asimap.store.mh import files, seqfile, sequences
from asimap.store.mh.core import Core
from asimap.store.mh.db import encode_flags, transaction
from asimap.store.mh.legacy import LegacyAccount, LegacyMailbox
from asimap.store.mh.paths import check_mh_name, folder_path

log = logging.getLogger(__name__)


def import_legacy(core: Core, legacy: LegacyAccount) -> None:
    """Seed the (new, empty) database from 2.x's state, in one transaction."""
    with transaction(core.conn):
        highest_vv = legacy.uid_vv
        for mailbox in legacy.mailboxes.values():
            highest_vv = max(highest_vv, mailbox.uid_vv)
            try:
                _import_mailbox(core, mailbox)
            except InvalidMailboxName:
                log.warning("asimap 2.x mailbox %r skipped: invalid name", mailbox.name)
        # New mailboxes must never repeat a 2.x UIDVALIDITY.
        core.conn.execute(
            "INSERT INTO account (key, value) VALUES ('uidvalidity', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=max(value, excluded.value)",
            (highest_vv,),
        )


def _import_mailbox(core: Core, mailbox: LegacyMailbox) -> None:
    name = check_mh_name(mailbox.name)
    if mailbox.subscribed:
        core.conn.execute(
            "INSERT OR IGNORE INTO subscriptions (name) VALUES (?)", (name,)
        )
    uses = sorted(
        SPECIAL_USE[a.lower()] for a in mailbox.attributes if a.lower() in SPECIAL_USE
    )
    if uses:
        core.conn.execute(
            "INSERT OR REPLACE INTO special_use (name, attributes) VALUES (?, ?)",
            (name, " ".join(uses)),
        )
    folder = folder_path(core.root, name)
    if not folder.is_dir() or folder.is_symlink():
        return
    on_disk = files.message_numbers(folder)
    known = {num: uid for num, uid in mailbox.uid_by_key.items() if num in on_disk}
    uidnext = max([mailbox.next_uid, *(uid + 1 for uid in known.values())])
    cursor = core.conn.execute(
        "INSERT INTO mailboxes (name, uidvalidity, uidnext, highestmodseq) "
        "VALUES (?, ?, ?, 1)",
        (name, mailbox.uid_vv, uidnext),
    )
    mailbox_id = cursor.lastrowid
    parsed = sequences.parse(seqfile.read_text(folder))
    by_number = sequences.flags_by_number(parsed, core.unseen)
    recent = parsed.sequences.get(sequences.RECENT_SEQUENCE, set())
    rows = []
    for num, uid in sorted(known.items()):
        stat = on_disk[num]
        found = by_number.get(num)
        flags = set(found.flags if found else ())
        if sequences.settle_seen(found):
            flags.add("\\Seen")
        rows.append(
            (
                mailbox_id,
                uid,
                num,
                stat.st_ino,
                stat.st_size,
                stat.st_mtime_ns,
                encode_flags(flags),
                1,
                stat.st_mtime_ns // 1_000_000_000,
                0,
                int(num in recent),
            )
        )
    core.conn.executemany(
        "INSERT INTO messages (mailbox_id, uid, num, ino, size, mtime_ns, flags, "
        "modseq, internaldate, tz_minutes, recent) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
