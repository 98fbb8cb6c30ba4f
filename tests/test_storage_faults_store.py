"""Storage faults met by the stores themselves (in-process).

* A disk that fills up at *any* step of an APPEND or a delivery (the
  message file, ``.mh_sequences``, the database's COMMIT): the message is
  either stored and acknowledged, or refused with
  :class:`~asimap.store.mh.space.DiskFull` and not on disk at all -- nmh's
  ``scan`` never sees a message that got no UID.
* CREATE is all or nothing in the memory store too.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from asimap.store.base import OverQuota, StorageDenied, StoreMode
from asimap.store.memory import MemoryStore
from asimap.store.mh.delivery import deliver
from asimap.store.mh.profile import Profile
from asimap.store.mh.space import RESERVE_NAME, DiskFull, Space, classify
from asimap.store.mh.store import MHStore
from tmpfs import fill, tmpfs

PAGE = 4096


def _message(n: int, size: int = 200) -> bytes:
    return (
        f"From: a@example.org\r\nSubject: m{n}\r\nMessage-ID: <m{n}@x>\r\n\r\n".encode()
        + b"x" * size
        + b"\r\n"
    )


@pytest.fixture
def mail_root(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "Mail", "2m") as root:
        yield root


@pytest.fixture
async def store(mail_root: Path) -> AsyncIterator[MHStore]:
    opened = await MHStore.open(
        mail_root, profile=Profile(path=mail_root, unseen=("unseen",)), watch=False
    )
    yield opened
    await opened.close()


def _message_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.isdigit())


async def test_disk_full_at_any_step_of_append_leaves_nothing(
    store: MHStore, mail_root: Path
) -> None:
    """Leave 0, 1, 2... pages free and APPEND: whichever write meets the
    full disk (message file, sequences, WAL at COMMIT), the answer is
    either a UID for a stored message or DiskFull with nothing stored."""
    inbox = await store.mailbox("INBOX")
    acked: set[int] = set()
    for n in range(3):
        acked.add(await inbox.append(_message(n)))
    filler = fill(mail_root)
    size = filler.stat().st_size
    refused = 0
    for pages in range(12):
        os.truncate(filler, max(0, size - pages * PAGE))
        try:
            uid = await inbox.append(_message(100 + pages, 3000))
        except DiskFull as exc:
            assert str(exc) == "Not enough disk space"
            refused += 1
        else:
            assert uid not in acked
            acked.add(uid)
        await inbox.poll()
        uids = {state.uid for state in await inbox.states()}
        assert uids == acked, pages
        assert len(_message_files(mail_root / "inbox")) == len(acked), pages
        assert not list((mail_root / "inbox").glob(".asimap-tmp-*"))
        os.truncate(filler, size)
    assert refused, "the disk never filled"
    # Delivery (rcvstore's way, LMTP's entry point) says the same.
    with pytest.raises(OverQuota):
        await deliver(store, "INBOX", _message(999))
    filler.unlink()
    uid = await deliver(store, "INBOX", _message(999))
    assert uid == max(acked) + 1
    assert (mail_root / RESERVE_NAME).stat().st_size > 0


async def test_memory_create_is_all_or_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure making the mailbox itself leaves none of its parents."""
    store = MemoryStore()
    original = store._new_mailbox

    def failing(name: str, special_use: frozenset[str] = frozenset()) -> object:
        if name == "a/b/c":
            raise MemoryError
        return original(name, special_use)

    monkeypatch.setattr(store, "_new_mailbox", failing)
    with pytest.raises(MemoryError):
        await store.create("a/b/c")
    names = {entry.name for entry in await store.list_mailboxes()}
    assert names == {"INBOX"}


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (OSError(errno.ENOSPC, "x"), DiskFull, "Not enough disk space"),
        (OSError(errno.EDQUOT, "x"), DiskFull, "Not enough disk quota"),
        (PermissionError(errno.EACCES, "x"), StorageDenied, "Permission denied"),
        (OSError(errno.EROFS, "x"), StorageDenied, "Read-only file system"),
        (OSError(errno.EIO, "x"), None, ""),
        (FileNotFoundError(errno.ENOENT, "x"), None, ""),
        (ValueError("x"), None, ""),
    ],
)
def test_write_errors_map_to_store_errors(
    error: BaseException, kind: type[Exception] | None, text: str
) -> None:
    """EDQUOT cannot be made on a tmpfs here: the mapping, checked alone
    (RFC 5530 OVERQUOTA for both, NOPERM for a refused write)."""
    mapped = classify(error)
    if kind is None:
        assert mapped is None
    else:
        assert isinstance(mapped, kind) and str(mapped) == text


async def test_sqlite_io_error_counts_as_full_only_without_room(
    mail_root: Path,
) -> None:
    """SQLite reports ENOSPC on its ``-shm`` as an I/O error."""
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = sqlite3.SQLITE_IOERR_SHMSIZE  # type: ignore[attr-defined]
    assert classify(error, mail_root) is None
    filler = fill(mail_root)
    assert isinstance(classify(error, mail_root), DiskFull)
    filler.unlink()


def test_a_root_refusing_the_reserve_does_not_hold_mail_back(tmp_path: Path) -> None:
    """A reserve that cannot exist for another reason than room (a
    read-only root) must not make every APPEND look like a full disk."""
    space = Space(tmp_path / "missing")
    assert not space.restore() and space.unsupported
    assert space.run(lambda: 42, adds=True) == 42


@pytest.mark.parametrize("locking", [False, True], ids=["nolock", "lockf"])
async def test_store_refused_for_room_changes_no_flag(
    mail_root: Path, locking: bool
) -> None:
    """A STORE that cannot write ``.mh_sequences`` (no room and no
    reserve left) answers DiskFull and changes nothing, then or later:
    with locking the file (rewritten in place, as nmh does) keeps its old
    text instead of the head of the new one, and the sequences kept in
    memory forget what the rolled-back transaction had read."""
    inbox = mail_root / "inbox"
    inbox.mkdir()
    for n in (1, 2, 3):
        (inbox / str(n)).write_bytes(_message(n))
    # Just under a page: the new text needs a second one.
    pad = " ".join(str(n) for n in range(1, 4000, 2))[:4060]
    (inbox / ".mh_sequences").write_text(f"cur: {pad[: pad.rindex(' ')]}\n")
    store = await MHStore.open(
        mail_root,
        locking=locking,
        profile=Profile(path=mail_root, unseen=("unseen",)),
        watch=False,
    )
    try:
        box = await store.mailbox("INBOX")
        before = sorted((s.uid, s.flags) for s in await box.states())
        text = (inbox / ".mh_sequences").read_text()
        store.space.release()
        filler = fill(mail_root)
        with pytest.raises(DiskFull):
            await box.store([1, 2, 3], StoreMode.ADD, ["\\Flagged", "\\Answered"])
        # Untouched by the refused change (a rescan before it may have
        # written its own), and whole: no half-written line.
        after = (inbox / ".mh_sequences").read_text()
        assert "flagged" not in after and "replied" not in after, after[-80:]
        assert after.startswith(text[:4000]) and after.endswith("\n")
        filler.unlink()
        await box.poll()
        assert sorted((s.uid, s.flags) for s in await box.states()) == before
        assert "flagged" not in (inbox / ".mh_sequences").read_text()
        await box.store([2], StoreMode.ADD, ["\\Flagged"])
        assert "flagged: 2" in (inbox / ".mh_sequences").read_text()
    finally:
        await store.close()
