"""The room kept for deletions is given back in steps (space.py).

A job that meets the full disk and is not a deletion -- a STORE of
``\\Flagged``, the ``\\Recent`` bookkeeping of a SELECT, a cache row --
used to free the whole 1 MiB reserve for the few pages it needed; the
rest was then free for anything else writing on that file system (here
:func:`tmpfs.fill`, as another account or an MH tool would), and the
user's later ``STORE \\Deleted`` and EXPUNGE met a full disk with no
reserve left: no way to make room.  Now each retry frees one step.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from asimap.store.base import StoreMode
from asimap.store.mh.profile import Profile
from asimap.store.mh.space import RELEASE_STEP, RESERVE_BYTES, RESERVE_NAME, Space
from asimap.store.mh.store import MHStore
from tmpfs import fill, tmpfs


def _message(n: int) -> bytes:
    return f"From: a@example.org\r\nSubject: m{n}\r\n\r\n".encode() + b"x" * 5000


@pytest.fixture
def mail_root(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "Mail", "2m") as root:
        yield root


async def test_a_small_job_leaves_most_of_the_reserve_for_deletions(
    mail_root: Path,
) -> None:
    store = await MHStore.open(
        mail_root, profile=Profile(path=mail_root, unseen=("unseen",)), watch=False
    )
    try:
        inbox = await store.mailbox("INBOX")
        uids = [await inbox.append(_message(n)) for n in range(20)]
        filler = fill(mail_root)
        # Not a deletion: it may use the reserve, a step of it.
        await inbox.store(uids[:1], StoreMode.ADD, ["\\Flagged"])
        assert 0 < store.space.left <= RESERVE_BYTES - RELEASE_STEP
        # Someone else takes whatever room that freed.
        other = fill(mail_root, name=".test-filler-2")
        # The user can still make room: flag and expunge everything.
        await inbox.store(uids, StoreMode.ADD, ["\\Deleted"])
        assert await inbox.expunge() == tuple(uids)
        assert not [p for p in (mail_root / "inbox").iterdir() if p.name.isdigit()]
        # With the room back, the whole reserve is put back.
        filler.unlink()
        other.unlink()
        await inbox.append(_message(99))
        assert store.space.held
        assert (mail_root / RESERVE_NAME).stat().st_size == RESERVE_BYTES
    finally:
        await store.close()


def test_release_in_steps_and_grow_back(tmp_path: Path) -> None:
    space = Space(tmp_path, size=4 * RELEASE_STEP)
    assert space.restore() and space.held
    assert space.release(RELEASE_STEP) and not space.held
    assert (tmp_path / RESERVE_NAME).stat().st_size == 3 * RELEASE_STEP
    assert space.restore() and space.held
    assert (tmp_path / RESERVE_NAME).stat().st_size == 4 * RELEASE_STEP
    # Removed behind our back: made again.
    space.release(RELEASE_STEP)
    (tmp_path / RESERVE_NAME).unlink()
    assert space.restore() and space.held and not space.unsupported
    assert space.release() and not (tmp_path / RESERVE_NAME).exists()
    assert not space.release()
