"""asimap 2.x's special-use folders appear on an existing nmh root, once.

asimap 2.x made ``Junk``, ``Archive``, ``Sent Messages``, ``Drafts`` and
``Deleted Messages`` whenever they were missing.  We make the missing ones
the first time we serve a root -- also a root nmh made, with only
``inbox`` -- and record that in the database, so a folder the user deletes
afterwards stays deleted across logins and restarts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asimap.store.mh import MHStore
from asimap.store.mh.profile import Profile
from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles
from test_mh_live_imap import Nmh, RawClient, inc, make_nmh, mbox_of, message

SPECIAL = {
    "Junk": "\\Junk",
    "Archive": "\\Archive",
    "Sent Messages": "\\Sent",
    "Drafts": "\\Drafts",
    "Deleted Messages": "\\Trash",
}

LIST_LINE = re.compile(rb'^\* LIST \((?P<attrs>[^)]*)\) "/" (?P<name>.*)$')


def listing(client: RawClient) -> dict[str, set[str]]:
    """LIST "" "*" as name -> attributes."""
    untagged, _ = client.command('LIST "" "*"')
    found: dict[str, set[str]] = {}
    for line in untagged:
        match = LIST_LINE.match(line)
        assert match is not None, line
        found[match["name"].decode().strip('"')] = set(match["attrs"].decode().split())
    return found


def serve(server_factory: ServerFactory, tmp_path: Path) -> ServerThread:
    from asimap.auth.hashers import make_password

    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"{USER}:{make_password(PASSWORD, iterations=1000)}:Mail\n")
    return server_factory(pwfile=pwfile, store="mh", workers=False)


def login(server: ServerThread, tls: TlsFiles) -> RawClient:
    client = RawClient.connect(server, tls)
    client.command(f"LOGIN {USER} {PASSWORD}")
    return client


def nmh_root(tmp_path: Path) -> Nmh:
    """An MH root as nmh alone leaves it: ``inc`` made ``inbox``."""
    root = tmp_path / "Mail"
    root.mkdir()
    nmh = make_nmh(tmp_path, root)
    mbox = tmp_path / "first.mbox"
    mbox.write_bytes(mbox_of([message("m1"), message("m2")]))
    # Without -silent: inc makes the missing inbox (nmh's first run).
    nmh("inc", "+inbox", "-file", str(mbox), "-notruncate")
    assert sorted(p.name for p in root.iterdir()) == ["context", "inbox"]
    return nmh


def test_nmh_root_gets_them_once(
    tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory
) -> None:
    nmh = nmh_root(tmp_path)
    server = serve(server_factory, tmp_path)
    client = login(server, tls_files)
    found = listing(client)
    for name, use in SPECIAL.items():
        assert use in found.get(name, ()), (name, found)
    assert set(found) == {"INBOX", *SPECIAL}
    untagged, _ = client.command("SELECT INBOX")
    assert b"* 2 EXISTS" in untagged  # nmh's mail is untouched
    listed = nmh("folder", "-all", "-fast").splitlines()
    assert set(listed) == {"inbox", *SPECIAL}
    client.command("CLOSE")
    client.command("DELETE Junk")
    client.sock.close()
    # Restart: a new store reads the same database.
    server.stop()
    server = serve(server_factory, tmp_path)
    client = login(server, tls_files)
    found = listing(client)
    assert "Junk" not in found
    assert set(found) == {"INBOX", *SPECIAL} - {"Junk"}
    client.sock.close()
    assert "Junk" not in nmh("folder", "-all", "-fast").splitlines()


async def test_existing_folder_gets_the_attribute_and_keeps_its_mail(
    tmp_path: Path,
) -> None:
    nmh = nmh_root(tmp_path)
    nmh("folder", "-create", "+Drafts")
    inc(nmh, tmp_path, [message("draft")], folder="Drafts")
    store = await MHStore.open(nmh.root, profile=Profile(path=None, unseen=()))
    try:
        entries = {e.name: e for e in await store.list_mailboxes()}
        assert "\\Drafts" in entries["Drafts"].attributes
        assert len(await (await store.mailbox("Drafts")).states()) == 1
        await store.delete("Archive")
        await store.delete("Sent Messages")
    finally:
        await store.close()
    for _ in range(2):
        store = await MHStore.open(nmh.root, profile=Profile(path=None, unseen=()))
        try:
            names = {e.name for e in await store.list_mailboxes()}
        finally:
            await store.close()
        assert names == {"INBOX", "Junk", "Drafts", "Deleted Messages"}


async def test_an_interrupted_layout_is_finished_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Folders are made before the mark is committed: a failure (or a crash)
    in between leaves the mark unset and the next start completes the
    layout."""
    from asimap.store.mh import account

    root = tmp_path / "Mail"
    (root / "inbox").mkdir(parents=True)
    real = account.files.make_folder
    made: list[Path] = []

    def flaky(path: Path, mode: int) -> bool:
        if path.name == "Drafts":
            raise OSError("disk full")
        made.append(path)
        return real(path, mode)

    monkeypatch.setattr(account.files, "make_folder", flaky)
    # The user still logs in; the folder that failed is missing for now.
    store = await MHStore.open(root, profile=Profile(path=None, unseen=()))
    try:
        names = {e.name for e in await store.list_mailboxes()}
    finally:
        await store.close()
    assert names == {"INBOX", *SPECIAL} - {"Drafts"}
    monkeypatch.setattr(account.files, "make_folder", real)
    store = await MHStore.open(root, profile=Profile(path=None, unseen=()))
    try:
        names = {e.name for e in await store.list_mailboxes()}
    finally:
        await store.close()
    assert names == {"INBOX", *SPECIAL}


async def test_a_link_out_of_the_root_under_a_special_name(tmp_path: Path) -> None:
    """Never followed, never replaced, and the account still opens."""
    root = tmp_path / "Mail"
    (root / "inbox").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "Junk").symlink_to(outside)
    store = await MHStore.open(root, profile=Profile(path=None, unseen=()))
    try:
        names = {e.name for e in await store.list_mailboxes()}
    finally:
        await store.close()
    assert names == {"INBOX", *SPECIAL} - {"Junk"}
    assert (root / "Junk").is_symlink() and not any(outside.iterdir())


async def test_create_over_a_file_is_refused_cleanly(tmp_path: Path) -> None:
    from asimap.store.base import OperationNotPermitted

    root = tmp_path / "Mail"
    store = await MHStore.open(root, profile=Profile(path=None, unseen=()))
    try:
        (root / "notes").write_text("not a folder")
        for name in ("notes", "notes/sub"):
            with pytest.raises(OperationNotPermitted, match="a file"):
                await store.create(name)
        assert (root / "notes").read_text() == "not a folder"
    finally:
        await store.close()
