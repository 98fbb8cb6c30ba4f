"""A COPY cut short by a crash must add nothing (RFC 3501 section 6.4.7:
"If the COPY command is unsuccessful for any reason, server
implementations MUST restore the destination mailbox to its state before
the COPY attempt").

Deterministic form of what ``tests/test_crash_safety.py`` meets at random
(counted there as "MULTIAPPEND/COPY cut in part"): a child process COPYs
three messages and dies (``os._exit``, as under SIGKILL: nothing runs
after it) right after linking the second file, inside the transaction
that would record them.  The rows roll back, but the linked files stay
in the destination folder; before the fix the next open imported them as
new mail that an MH tool added -- two of the three messages, and read,
since they are in no unseen sequence.

The fix (``asimap.store.mh.pending``): the numbers a COPY is about to
create are committed first, and the next open of the store removes the
files of a record the crash left, before any folder is scanned."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from asimap.store.mh import MHStore, pending
from asimap.store.mh.db import DB_NAME, transaction
from asimap.store.mh.profile import Profile

NO_PROFILE = Profile(path=None, unseen=("unseen",))
REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import asyncio, os, sys
from pathlib import Path
from asimap.store.mh import MHStore
from asimap.store.mh import writes
from asimap.store.mh.profile import Profile

made = 0
real = writes.Writer._copy_file

def dying(self, *args, **kwargs):
    global made
    result = real(self, *args, **kwargs)
    made += 1
    if made == 2:
        os._exit(9)  # as SIGKILL: no cleanup, no rollback code runs
    return result

writes.Writer._copy_file = dying

async def main():
    profile = Profile(path=None, unseen=("unseen",))
    store = await MHStore.open(Path(sys.argv[1]), profile=profile, watch=False)
    inbox = await store.mailbox("INBOX")
    target = await store.mailbox("Target")
    await inbox.copy_to([1, 2, 3], target)

asyncio.run(main())
"""


async def _prepare(root: Path) -> None:
    store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
    try:
        inbox = await store.mailbox("INBOX")
        for n in range(3):
            await inbox.append(f"Subject: m{n}\r\n\r\nbody {n}\r\n".encode(), ())
        await store.create("Target")
    finally:
        await store.close()


async def _messages_in_target(root: Path) -> int:
    store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
    try:
        return (await (await store.mailbox("Target")).status()).messages
    finally:
        await store.close()


def test_a_copy_cut_by_a_crash_adds_nothing(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    asyncio.run(_prepare(root))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(root)],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 9, done.stderr.decode()
    # The child's record of the numbers it was making survived it.
    assert _pending_rows(root) == 3
    # The next open removes the files and imports nothing.
    messages = asyncio.run(_messages_in_target(root))
    files = sorted(p.name for p in (root / "Target").iterdir() if p.name.isdigit())
    # Before the fix: (["1", "2"], 2).
    assert (files, messages, _pending_rows(root)) == ([], 0, 0)


def _pending_rows(root: Path) -> int:
    conn = sqlite3.connect(root / DB_NAME)
    try:
        (count,) = conn.execute("SELECT count(*) FROM pending_files").fetchone()
        return int(count)
    finally:
        conn.close()


async def _rescan_while_pending(root: Path) -> tuple[int, int]:
    """A file under a number a COPY has reserved, seen by a rescan before
    that COPY's COMMIT: not imported; once the record is gone (as the
    COMMIT that inserts the rows would do), a file there is mail."""
    store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
    try:
        target = await store.mailbox("Target")
        conn = store.core.conn
        await store.call(lambda: pending.reserve(conn, target.mailbox_id, [1]))
        (root / "Target" / "1").write_bytes(b"Subject: half\r\n\r\nx\r\n")
        # A new directory mtime makes the next job rescan the folder.
        os.utime(root / "Target", ns=(1, 1))
        during = (await target.status()).messages

        def clear() -> None:
            with transaction(conn):
                pending.clear(conn, target.mailbox_id)

        await store.call(clear)
        os.utime(root / "Target", ns=(2, 2))
        after = (await target.status()).messages
        return during, after
    finally:
        await store.close()


def test_a_rescan_skips_numbers_a_copy_is_making(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    asyncio.run(_prepare(root))
    assert asyncio.run(_rescan_while_pending(root)) == (0, 1)
