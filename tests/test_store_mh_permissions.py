"""What the MH store creates is as private as nmh makes mail.

The database holds the From/To/Subject of every message, so it, its
``-wal``/``-shm``, every folder and every message file follow the MH
profile's ``Folder-Protect`` / ``Msg-Protect`` (nmh defaults 700 / 600),
whatever the process umask.  A real server serves a fresh root, is
restarted (SQLite makes a new ``-wal`` then), and every file and directory
under the root is checked.
"""

from __future__ import annotations

import imaplib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from asimap.store.mh import MHStore
from asimap.store.mh.db import DB_NAME
from asimap.store.mh.profile import Profile, parse_profile
from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles
from test_clients_mbsync import connect, message, quote


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: every mode we get, we set ourselves."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    """Relative path -> permission bits of the root and all below it."""
    found = {".": root.stat().st_mode & 0o777}
    for path in root.rglob("*"):
        found[path.relative_to(root).as_posix()] = path.lstat().st_mode & 0o777
    return found


def use_the_account(server: ServerThread, tls: TlsFiles, round_: int) -> None:
    """Everything that makes files: CREATE with missing parents, APPEND,
    COPY (a hard link), STORE (the sequences file), EXPUNGE."""
    client = connect(server, tls)
    try:
        folder = f"made/in/round{round_}"
        assert client.create(quote(folder))[0] == "OK"
        for target in ("INBOX", folder):
            typ, data = client.append(
                quote(target), "(\\Seen)", None, message(f"{target}-{round_}")
            )
            assert typ == "OK", data
        assert client.select("INBOX")[0] == "OK"
        assert client.copy("1:*", "Junk")[0] == "OK"
        assert client.store("1", "+FLAGS", "(\\Flagged \\Deleted)")[0] == "OK"
        assert client.expunge()[0] == "OK"
    finally:
        client.logout()


def start(
    server_factory: ServerFactory, tmp_path: Path, workers: bool = False
) -> ServerThread:
    from asimap.auth.hashers import make_password

    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"{USER}:{make_password(PASSWORD, iterations=1000)}:Mail\n")
    return server_factory(pwfile=pwfile, store="mh", workers=workers)


def check_modes(root: Path, folder: int, file: int) -> None:
    found = modes(root)
    for relpath, mode in found.items():
        if relpath == "." or (root / relpath).is_dir():
            assert mode == folder, (relpath, oct(mode))
        elif Path(relpath).name == ".mh_sequences":
            # Only message numbers, and never more open than a message.
            assert mode & ~file == 0, (relpath, oct(mode))
        else:
            assert mode == file, (relpath, oct(mode))
    assert {DB_NAME, "inbox", "made/in/round0", "Junk/1"} <= set(found)


@pytest.mark.parametrize("workers", [False, True], ids=["in-process", "workers"])
def test_fresh_root_is_private_across_a_restart(
    tmp_path: Path,
    tls_files: TlsFiles,
    server_factory: ServerFactory,
    open_umask: None,
    workers: bool,
) -> None:
    root = tmp_path / "Mail"
    server = start(server_factory, tmp_path, workers)
    use_the_account(server, tls_files, 0)
    # While serving: the -wal and -shm SQLite made itself are there.
    assert (root / f"{DB_NAME}-wal").exists()
    check_modes(root, 0o700, 0o600)
    server.stop()
    assert not (root / f"{DB_NAME}-wal").exists()  # removed on close
    server = start(server_factory, tmp_path, workers)
    use_the_account(server, tls_files, 1)
    assert (root / f"{DB_NAME}-wal").exists()  # made anew
    check_modes(root, 0o700, 0o600)


def test_profile_modes_are_followed(
    tmp_path: Path,
    tls_files: TlsFiles,
    server_factory: ServerFactory,
    open_umask: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "Mail"
    profile = tmp_path / "mh_profile"
    profile.write_text(f"Path: {root}\nFolder-Protect: 750\nMsg-Protect: 640\n")
    monkeypatch.setenv("MH", str(profile))
    server = start(server_factory, tmp_path)
    use_the_account(server, tls_files, 0)
    check_modes(root, 0o750, 0o640)


def test_profile_modes_parse_and_keep_the_owner_bits(tmp_path: Path) -> None:
    parsed = parse_profile("Folder-Protect: 755\nMsg-Protect: 0644\n", tmp_path)
    assert (parsed.protection.folder, parsed.protection.file) == (0o755, 0o644)
    # Nothing that would lock the store out of its own files.
    parsed = parse_profile("Folder-Protect: 500\nMsg-Protect: 400\n", tmp_path)
    assert (parsed.protection.folder, parsed.protection.file) == (0o700, 0o600)
    # Garbage falls back to nmh's defaults.
    parsed = parse_profile("Folder-Protect: rwx\nMsg-Protect: 99999\n", tmp_path)
    assert (parsed.protection.folder, parsed.protection.file) == (0o700, 0o600)


async def test_world_readable_database_files_are_tightened(
    tmp_path: Path, open_umask: None
) -> None:
    root = tmp_path / "Mail"
    no_profile = Profile(path=None, unseen=("unseen",))
    store = await MHStore.open(root, profile=no_profile)
    await store.close()
    # As an older version left it: 0644, with a -wal and -shm in use by
    # another connection.
    other = sqlite3.connect(root / DB_NAME)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE IF NOT EXISTS scratch (x)")
    other.execute("INSERT INTO scratch VALUES (1)")
    other.commit()
    files = [root / DB_NAME, root / f"{DB_NAME}-wal", root / f"{DB_NAME}-shm"]
    for file in files:
        os.chmod(file, 0o644)
    try:
        store = await MHStore.open(root, profile=no_profile)
        try:
            assert [oct(f.stat().st_mode & 0o777) for f in files] == ["0o600"] * 3
        finally:
            await store.close()
    finally:
        other.close()


def test_imaplib_sees_the_private_folders(
    tmp_path: Path,
    tls_files: TlsFiles,
    server_factory: ServerFactory,
    open_umask: None,
) -> None:
    """Private modes do not get in the way: a second login lists and reads
    everything the first one made."""
    server = start(server_factory, tmp_path)
    use_the_account(server, tls_files, 0)
    client: imaplib.IMAP4_SSL = connect(server, tls_files)
    try:
        typ, data = client.select(quote("made/in/round0"), readonly=True)
        assert (typ, data) == ("OK", [b"1"])
    finally:
        client.logout()


async def test_directories_above_a_new_root_are_not_made_private(
    tmp_path: Path,
) -> None:
    """Only the mail root is the user's; the directories above it that we
    make on the way (a shared ``/srv/mail``) keep the ordinary mode."""
    old = os.umask(0o022)
    try:
        root = tmp_path / "srv" / "mail" / "alice"
        store = await MHStore.open(root, profile=Profile(path=None, unseen=()))
        await store.close()
    finally:
        os.umask(old)
    assert root.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "srv").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "srv" / "mail").stat().st_mode & 0o777 == 0o755
