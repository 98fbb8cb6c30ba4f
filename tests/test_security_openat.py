"""A folder swapped for a symlink between the store's check and its use
reaches nothing outside the mail root (docs/security.md section 2).

The MH store checks a folder's path (``folder_of``, ``folder_path``:
every level a real directory inside the root) and then writes.  A user
who can write their mail root could swap a folder -- or a level above
it -- for a symlink to somewhere else in that instant; where every
account belongs to one uid (asimapd not started as root) that could be
another account's folder.  The race is made deterministic here: a hook
runs the swap right after the check, before the final open, link,
mkdir, rename, unlink or rmdir.  Since the writes go through directory
descriptors opened level by level with ``O_NOFOLLOW``
(``asimap.store.mh.files.folder_fd``), each of APPEND, COPY (its
destination), EXPUNGE, STORE (``.mh_sequences``), CREATE, RENAME and
DELETE either fails with
``StorageDenied`` or acts on the real directory, and the tree outside is
left byte for byte as it was.  Before, APPEND and COPY wrote into the
symlink's target, CREATE made a directory there, RENAME moved the
target's folder into the mail root and DELETE removed it; EXPUNGE was
already kept out by its check of each file's identity (kept here as a
guard).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from asimap.store.base import StoreError, StoreMode
from asimap.store.mh import account as account_module
from asimap.store.mh import files
from asimap.store.mh.corebase import CoreBase
from asimap.store.mh.profile import Profile
from asimap.store.mh.reconcile import Reconciler
from asimap.store.mh.store import MHStore

MESSAGE = b"From: a@example.org\r\nSubject: ours\r\n\r\nbody\r\n"
PRECIOUS = b"From: b@example.org\r\nSubject: someone else's\r\n\r\nsecret\r\n"


def _tree(top: Path) -> dict[str, bytes | None]:
    """Every entry under ``top``: file bytes, or None for a directory."""
    found: dict[str, bytes | None] = {}
    for directory, dirs, names in os.walk(top):
        for name in dirs:
            found[os.path.relpath(os.path.join(directory, name), top)] = None
        for name in names:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, top)] = Path(path).read_bytes()
    return found


def _swap(path: Path, outside: Path) -> None:
    """What the attacker does: the real directory moves aside (still in
    the root), a symlink to ``outside`` takes its name."""
    os.rename(path, path.with_name(path.name + ".moved"))
    os.symlink(outside, path)


class World:
    def __init__(self, root: Path, outside: Path, store: MHStore) -> None:
        self.root = root
        self.outside = outside
        self.store = store
        self.before = _tree(outside)

    def assert_outside_untouched(self) -> None:
        assert _tree(self.outside) == self.before


@contextlib.asynccontextmanager
async def _world(tmp_path: Path, locking: bool = False) -> AsyncIterator[World]:
    root = tmp_path / "Mail"
    outside = tmp_path / "outside"
    # What a symlink may point at: another account's folders, each with a
    # message "1" and its sequences, and inferiors named as the test's.
    for name in ("", "Old", "Leaf", "Child"):
        (outside / name).mkdir(parents=True, exist_ok=True)
        (outside / name / "1").write_bytes(PRECIOUS)
        (outside / name / ".mh_sequences").write_text("unseen: 1\nflagged: 1\n")
    store = await MHStore.open(
        root,
        locking=locking,
        profile=Profile(path=root, unseen=("unseen",)),
        watch=False,
    )
    try:
        inbox = await store.mailbox("INBOX")
        await inbox.append(MESSAGE)
        for name in ("Target", "Parent/Old", "Parent/Leaf"):
            await store.create(name)
        target = await store.mailbox("Target")
        await target.append(MESSAGE)
        yield World(root, outside, store)
    finally:
        await store.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with _world(tmp_path) as made:
        yield made


def _swap_after_folder_of(
    monkeypatch: pytest.MonkeyPatch, world: World, name: str
) -> None:
    """Swap folder ``name`` right after the store's check returns it."""
    real = CoreBase.folder_of

    def checked_then_swapped(self: CoreBase, mailbox_id: int) -> Path:
        folder = real(self, mailbox_id)
        if folder.name == name and not folder.is_symlink():
            _swap(folder, world.outside)
        return folder

    monkeypatch.setattr(CoreBase, "folder_of", checked_then_swapped)


def _swap_after_folder_path(
    monkeypatch: pytest.MonkeyPatch, world: World, level: str, after: str
) -> None:
    """Swap directory ``level`` (relative to the root) right after
    ``folder_path`` checked the name ``after`` (CREATE, RENAME, DELETE:
    the last check before the operation)."""
    real: Callable[[Path, str], Path] = account_module.folder_path

    def checked_then_swapped(root: Path, name: str) -> Path:
        path = real(root, name)
        victim = root / level
        if name == after and not victim.is_symlink():
            _swap(victim, world.outside)
        return path

    monkeypatch.setattr(account_module, "folder_path", checked_then_swapped)


async def test_append_into_a_swapped_folder(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = await world.store.mailbox("Target")
    _swap_after_folder_of(monkeypatch, world, "Target")
    with pytest.raises(StoreError):
        await target.append(MESSAGE)
    world.assert_outside_untouched()


async def test_copy_into_a_swapped_folder(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = await world.store.mailbox("INBOX")
    target = await world.store.mailbox("Target")
    (uid,) = [s.uid for s in await inbox.states()]
    _swap_after_folder_of(monkeypatch, world, "Target")
    with pytest.raises(StoreError):
        await inbox.copy_to([uid], target)
    world.assert_outside_untouched()


async def test_expunge_in_a_swapped_folder(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = await world.store.mailbox("Target")
    (uid,) = [s.uid for s in await target.states()]
    await target.store([uid], StoreMode.ADD, ["\\Deleted"])
    _swap_after_folder_of(monkeypatch, world, "Target")
    # Refused, or done in the real folder: never outside/1 unlinked.
    with contextlib.suppress(StoreError):
        await target.expunge()
    world.assert_outside_untouched()


async def test_create_under_a_swapped_parent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _swap_after_folder_path(monkeypatch, world, "Parent", "Parent/New")
    # The clean-up of a failed CREATE would hide a directory made outside
    # (the later check of the new mailbox fails): keep what was made.
    monkeypatch.setattr(files, "remove_folders", lambda created: None)
    with pytest.raises(StoreError):
        await world.store.create("Parent/New")
    world.assert_outside_untouched()


async def test_rename_under_a_swapped_parent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _swap_after_folder_path(monkeypatch, world, "Parent", "Parent/Old")
    with pytest.raises(StoreError):
        await world.store.rename("Parent/Old", "Moved")
    world.assert_outside_untouched()
    assert not (world.root / "Moved").exists()


async def test_delete_under_a_swapped_parent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _swap_after_folder_path(monkeypatch, world, "Parent", "Parent/Leaf")
    with pytest.raises(StoreError):
        await world.store.delete("Parent/Leaf")
    world.assert_outside_untouched()


@pytest.mark.parametrize("locking", [False, True], ids=["nolock", "lockf"])
async def test_store_flags_in_a_swapped_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, locking: bool
) -> None:
    """A STORE writes ``.mh_sequences`` (a temporary file and a rename, or
    in place under nmh's lock): never the swapped folder's target's."""
    async with _world(tmp_path, locking) as world:
        target = await world.store.mailbox("Target")
        (uid,) = [s.uid for s in await target.states()]
        real = Reconciler._write_sequences

        def swapped_first(
            self: Reconciler, mailbox_id: int, folder: Path, text: str | None = None
        ) -> None:
            # After every check of the job, right before the write.
            if folder.name == "Target" and not folder.is_symlink():
                _swap(folder, world.outside)
            real(self, mailbox_id, folder, text)

        monkeypatch.setattr(Reconciler, "_write_sequences", swapped_first)
        with contextlib.suppress(StoreError):
            await target.store([uid], StoreMode.ADD, ["\\Answered", "\\Seen"])
        world.assert_outside_untouched()
