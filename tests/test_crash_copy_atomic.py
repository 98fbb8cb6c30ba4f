"""A COPY cut short by a crash must add nothing (RFC 3501 section 6.4.7:
"If the COPY command is unsuccessful for any reason, server
implementations MUST restore the destination mailbox to its state before
the COPY attempt").

Deterministic form of what ``tests/test_crash_safety.py`` meets at random
(counted there as "MULTIAPPEND/COPY cut in part"): a child process COPYs
(or MOVEs) three messages and dies (``os._exit``, as under SIGKILL:
nothing runs after it) right after linking the second file, before the
transaction that would record them.  The linked files stay in the
destination folder; before the fix the next open imported them as new
mail that an MH tool added -- two of the three messages, and read, since
they are in no unseen sequence.

The fix (``asimap.store.mh.pending``): each file is recorded (number,
inode) before its link, and the next open removes the files of a record
the crash left, before any folder is scanned -- but never a file a tool
put under such a number meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from asimap.store.base import MessageUnreadable
from asimap.store.mh import MHStore, files, pending
from asimap.store.mh.db import DB_NAME, transaction
from asimap.store.mh.profile import Profile

NO_PROFILE = Profile(path=None, unseen=("unseen",))
REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import asyncio, os, sys
from pathlib import Path
from asimap.store.mh import MHStore, files, pending
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
    if sys.argv[2] == "move":
        await inbox.move_to([1, 2, 3], target)
    else:
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


def _files(folder: Path) -> list[str]:
    return sorted((p.name for p in folder.iterdir() if p.name.isdigit()), key=int)


def _pending_rows(root: Path) -> int:
    conn = sqlite3.connect(root / DB_NAME)
    try:
        (count,) = conn.execute("SELECT count(*) FROM pending_files").fetchone()
        return int(count)
    finally:
        conn.close()


async def _messages(root: Path, name: str) -> int:
    store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
    try:
        return (await (await store.mailbox(name)).status()).messages
    finally:
        await store.close()


@pytest.mark.parametrize("op", ["copy", "move"])
def test_a_copy_cut_by_a_crash_adds_nothing(tmp_path: Path, op: str) -> None:
    root = tmp_path / "Mail"
    asyncio.run(_prepare(root))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), op],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 9, done.stderr.decode()
    # What the child left: two linked files, and its record of them.
    assert _files(root / "Target") == ["1", "2"]
    assert _pending_rows(root) >= 2
    # The next open removes them and imports nothing (before the fix: 2).
    assert asyncio.run(_messages(root, "Target")) == 0
    assert (_files(root / "Target"), _pending_rows(root)) == ([], 0)
    # The source is whole (a MOVE removes its sources after the COPY).
    assert asyncio.run(_messages(root, "INBOX")) == 3
    assert _files(root / "inbox") == ["1", "2", "3"]


def test_recovery_keeps_a_file_a_tool_put_under_a_recorded_number(
    tmp_path: Path,
) -> None:
    """inc may take a number the COPY recorded (it links at the next free
    one): that file is another inode, and it is mail."""
    root = tmp_path / "Mail"
    asyncio.run(_prepare(root))
    target = root / "Target"
    ours = target / "1"
    os.link(root / "inbox" / "1", ours)
    (target / "2").write_bytes(b"Subject: from inc\r\n\r\nhello\r\n")
    conn = sqlite3.connect(root / DB_NAME)
    try:
        (mailbox_id,) = conn.execute(
            "SELECT id FROM mailboxes WHERE name='Target'"
        ).fetchone()
        ino = ours.stat().st_ino
        conn.executemany(
            "INSERT INTO pending_files (mailbox_id, num, ino) VALUES (?, ?, ?)",
            [(mailbox_id, 1, ino), (mailbox_id, 2, ino)],
        )
        conn.commit()
    finally:
        conn.close()
    assert asyncio.run(_messages(root, "Target")) == 1
    assert _files(target) == ["2"]
    assert _pending_rows(root) == 0


async def _rescan_while_linking(root: Path) -> tuple[int, int]:
    """A file a COPY has recorded and linked but not yet made mail, seen
    by a rescan (a COPY within one folder rescans it when a source moved;
    a delivery in another process rescans whenever it writes): not
    imported; once the record is gone, a file there is mail."""
    store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
    try:
        target = await store.mailbox("Target")
        path = root / "Target" / "1"
        path.write_bytes(b"Subject: half\r\n\r\nx\r\n")
        conn = store.core.conn
        batch = pending.Creating(conn, target.mailbox_id, root / "Target")
        await store.call(lambda: batch.expect([(1, path.stat().st_ino)]))
        # A new directory mtime makes the next job rescan the folder.
        os.utime(root / "Target", ns=(1, 1))
        during = (await target.status()).messages

        def settle() -> None:
            with transaction(conn):
                batch.settle()

        await store.call(settle)
        os.utime(root / "Target", ns=(2, 2))
        after = (await target.status()).messages
        return during, after
    finally:
        await store.close()


def test_a_rescan_skips_files_a_copy_is_linking(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    asyncio.run(_prepare(root))
    assert asyncio.run(_rescan_while_linking(root)) == (0, 1)


async def _copy_failing_half_way(root: Path) -> None:
    store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
    try:
        inbox = await store.mailbox("INBOX")
        target = await store.mailbox("Target")
        os.chmod(root / "inbox" / "3", 0)
        # Root reads anything: the check is on the effective ids.
        with pytest.raises(MessageUnreadable):
            await inbox.copy_to([1, 2, 3], target)
        assert (await target.status()).messages == 0
    finally:
        await store.close()


def test_a_copy_failing_half_way_leaves_no_file_and_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "Mail"
    asyncio.run(_prepare(root))
    real_access = os.access

    def access(path: object, mode: int, **kwargs: object) -> bool:
        if str(path).endswith("inbox/3"):
            return False
        return real_access(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    real_read = files.read_message

    def refusing(dir_fd: int, name: str, expected: object) -> bytes:
        if name == "3":
            raise PermissionError(13, "Permission denied", name)
        return real_read(dir_fd, name, expected)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "read_message", refusing)
    asyncio.run(_copy_failing_half_way(root))
    assert (_files(root / "Target"), _pending_rows(root)) == ([], 0)


def test_recovery_leaves_a_live_writers_files_alone(tmp_path: Path) -> None:
    """A delivery agent may open the store in a process of its own while
    the worker COPYs: its open must not remove the files of that COPY in
    flight, nor import them; once the writer is gone, they go."""
    root = tmp_path / "Mail"
    asyncio.run(_prepare(root))
    target = root / "Target"
    linked = target / "1"
    os.link(root / "inbox" / "1", linked)
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = f"{writer.pid}:{pending._start_time(writer.pid)}"
        conn = sqlite3.connect(root / DB_NAME)
        try:
            (mailbox_id,) = conn.execute(
                "SELECT id FROM mailboxes WHERE name='Target'"
            ).fetchone()
            conn.execute(
                "INSERT INTO pending_files (mailbox_id, num, ino, owner) "
                "VALUES (?, 1, ?, ?)",
                (mailbox_id, linked.stat().st_ino, owner),
            )
            conn.commit()
        finally:
            conn.close()
        assert asyncio.run(_messages(root, "Target")) == 0
        assert _files(target) == ["1"] and _pending_rows(root) == 1
    finally:
        writer.kill()
        writer.wait()
    assert asyncio.run(_messages(root, "Target")) == 0
    assert (_files(target), _pending_rows(root)) == ([], 0)
