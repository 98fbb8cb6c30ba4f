"""All-digit mailbox names (``Archive/2024``) in the MH store.

To nmh an all-digit entry of a folder is a message number, so such a
level lives in an escaped directory (``Archive/#2024``,
:mod:`asimap.store.mh.paths`).  Shown here: the mapping round-trips for
any name, IMAP commands over a real server never show the escape, nmh
sees ordinary folders, folders nmh makes under escaped names reach the
change feed under their IMAP names, nothing escapes the root, and mbsync
copies a local ``Archive/2024`` into the server.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asimap.store.base import InvalidMailboxName, MailboxNotFound
from asimap.store.feed import FeedKind
from asimap.store.mh import MHStore
from asimap.store.mh.paths import (
    check_mh_name,
    escape_level,
    folder_relpath,
    is_message_number,
    name_of_relpath,
    unescape_level,
)
from asimap.store.mh.profile import Profile
from conftest import PASSWORD, USER, ServerFactory, TlsFiles, require_tool
from legacy_asimap2 import build_legacy_db
from test_clients_mbsync import (
    Synced,
    local_state,
    mbsync_config,
    message,
    run_mbsync,
    server_state,
)
from test_idle_latency import Tools, make_tools
from test_mh_live_imap import RawClient, mbox_of
from test_mh_live_imap import message as mh_message
from test_store_feed_mh import Events

NO_PROFILE = Profile(path=None, unseen=("unseen",))

# -- the mapping -------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "directory"),
    [
        ("2024", "#2024"),
        ("0", "#0"),
        ("#2024", "##2024"),
        ("##7", "###7"),
        ("#misc", "#misc"),  # not digits after the #: its own name
        ("#", "#"),
        ("_2023", "_2023"),
        ("2024a", "2024a"),
        ("٣", "٣"),  # not an ASCII digit: nmh does not take it for a number
        ("Archive", "Archive"),
    ],
)
def test_escape_table(level: str, directory: str) -> None:
    assert escape_level(level) == directory
    assert unescape_level(directory) == level


def test_message_numbers_are_never_folders() -> None:
    assert unescape_level("2024") is None
    assert name_of_relpath("Archive/2024") is None
    assert name_of_relpath("Archive/#2024") == "Archive/2024"
    assert name_of_relpath("inbox/#1") == "INBOX/1"
    assert name_of_relpath(".hidden/x") is None
    assert name_of_relpath("") is None
    assert folder_relpath("INBOX/2024/12") == "inbox/#2024/#12"


LEVEL = st.one_of(
    st.text(min_size=1, max_size=8),
    st.from_regex(r"\A#{0,3}[0-9]{1,5}\Z"),
    st.from_regex(r"\A#{0,3}[a-z0-9#]{0,4}\Z").filter(bool),
)


@given(st.lists(LEVEL, min_size=1, max_size=4))
def test_any_name_round_trips(levels: list[str]) -> None:
    try:
        name = check_mh_name("/".join(levels))
    except InvalidMailboxName:
        return
    relpath = folder_relpath(name)
    for entry in relpath.split("/"):
        assert not is_message_number(entry)
        assert not entry.startswith(".")
        assert entry not in ("", "..")
    assert name_of_relpath(relpath) == name


@given(st.text(min_size=1, max_size=10))
def test_any_directory_round_trips(entry: str) -> None:
    if "/" in entry or entry.startswith(".") or is_message_number(entry):
        return
    level = unescape_level(entry)
    assert level is not None
    assert escape_level(level) == entry


# -- the store with nmh --------------------------------------------------------


@pytest.fixture
async def mh(tmp_path: Path) -> AsyncIterator[tuple[MHStore, Tools]]:
    store = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE)
    try:
        yield store, make_tools(tmp_path, store.root, None)
    finally:
        await store.close()


def folders(tools: Tools) -> str:
    """nmh's recursive folder listing (``folder -all -recurse``)."""
    return nmh_output(tools, "folder", "-all", "-recurse", "-fast")


def nmh_output(tools: Tools, *argv: str) -> str:
    done = subprocess.run(
        [require_tool(str(Path("/usr/bin/mh") / argv[0])), *argv[1:]],
        env={"MH": str(tools.profile), "HOME": str(tools.home), "LC_ALL": "C"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return done.stdout


async def test_nmh_sees_escaped_folders(mh: tuple[MHStore, Tools]) -> None:
    store, tools = mh
    await store.create("Archive/2024")
    await store.create("2024")
    await store.create("#7")
    await (await store.mailbox("Archive/2024")).append(b"Subject: old\r\n\r\nx\r\n")
    assert (store.root / "Archive" / "#2024" / "1").is_file()
    assert (store.root / "#2024").is_dir()
    assert (store.root / "##7").is_dir()
    listed = folders(tools).split()
    assert {"Archive/#2024", "#2024", "##7", "Archive"} <= set(listed)
    # Archive itself has no messages: nmh does not take #2024 for one.
    summary = nmh_output(tools, "folder", "+Archive")
    assert "has no messages" in summary
    assert "old" in nmh_output(tools, "scan", "+Archive/#2024")


async def test_nmh_folders_reach_the_feed_by_imap_name(
    mh: tuple[MHStore, Tools], tmp_path: Path
) -> None:
    store, tools = mh
    await store.create("Archive/2024")
    await store.prepare_feed()
    events = Events(store)
    await asyncio.to_thread(tools.nmh, "folder", "-create", "+Archive/#2025")
    await events.until(FeedKind.CREATED, "Archive/2025")
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(mbox_of([mh_message("a"), mh_message("b")]))
    await asyncio.to_thread(
        tools.nmh, "inc", "+Archive/#2024", "-file", str(mbox), "-notruncate"
    )
    await events.until(FeedKind.MESSAGES, "Archive/2024")
    assert (await (await store.mailbox("Archive/2024")).status()).messages == 2
    await asyncio.to_thread(tools.nmh, "rmf", "-nointeractive", "+Archive/#2025")
    await events.until(FeedKind.DELETED, "Archive/2025")
    names = {e.mailbox for e in events.seen}
    assert not any("#" in name for name in names), names


async def test_raw_digit_directories_and_escaping_links(
    mh: tuple[MHStore, Tools], tmp_path: Path
) -> None:
    store, _ = mh
    # A directory made by hand under a message number stays invisible (nmh
    # takes it for a message too) and does not disturb LIST.
    (store.root / "Junk" / "2023").mkdir()
    # A link under an escaped name pointing out of the root is never used.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "1").write_bytes(b"Subject: secret\r\n\r\n")
    (store.root / "#99").symlink_to(outside)
    names = {e.name for e in await store.list_mailboxes()}
    assert "Junk/2023" not in names and "99" not in names
    with pytest.raises(InvalidMailboxName):
        await store.mailbox("99")
    with pytest.raises(InvalidMailboxName):
        await store.create("99/x")
    with pytest.raises((InvalidMailboxName, MailboxNotFound)):
        await store.delete("99")  # not a mailbox at all
    assert sorted(p.name for p in outside.iterdir()) == ["1"]


# -- over a real server --------------------------------------------------------


@pytest.fixture
def raw(
    tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory
) -> Iterator[RawClient]:
    from asimap.auth.hashers import make_password

    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"{USER}:{make_password(PASSWORD, iterations=1000)}:Mail\n")
    (tmp_path / "Mail").mkdir()
    server = server_factory(pwfile=pwfile, store="mh", workers=False)
    client = RawClient.connect(server, tls_files)
    client.command(f"LOGIN {USER} {PASSWORD}")
    yield client
    client.sock.close()


def listed_names(untagged: list[bytes]) -> set[str]:
    """Mailbox names of LIST replies (quoted or not, none needs escapes)."""
    return {line.rsplit(b" ", 1)[-1].decode().strip('"') for line in untagged}


def test_transcript_of_digit_names(raw: RawClient, tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    for name in ("Archive/2024", "2024"):
        untagged, tagged = raw.command(f'CREATE "{name}"')
        assert tagged.startswith(b"t") and b" OK " in tagged, tagged
    assert (root / "Archive" / "#2024").is_dir() and (root / "#2024").is_dir()
    untagged, _ = raw.command('LIST "" "*"')
    listed = listed_names(untagged)
    assert {"Archive/2024", "2024"} <= listed
    assert not any(b"#" in line for line in untagged), untagged
    untagged, _ = raw.command('LIST "" "Archive/%"')
    assert untagged == [b'* LIST (\\HasNoChildren) "/" "Archive/2024"']
    uid = raw.append("Archive/2024", b"Subject: kept\r\n\r\nbody\r\n")
    untagged, _ = raw.command('STATUS "Archive/2024" (MESSAGES UIDNEXT)')
    assert untagged == [
        f'* STATUS "Archive/2024" (MESSAGES 1 UIDNEXT {uid + 1})'.encode()
    ]
    untagged, tagged = raw.command("SELECT 2024")
    assert b"* 0 EXISTS" in untagged and b"[READ-WRITE]" in tagged
    untagged, _ = raw.command('SELECT "Archive/2024"')
    assert b"* 1 EXISTS" in untagged
    raw.command("CLOSE")
    raw.command('RENAME "Archive/2024" "Archive/2025/01"')
    raw.command('RENAME "2024" "1999"')
    assert (root / "Archive" / "#2025" / "#01" / "1").is_file()
    assert (root / "#1999").is_dir() and not (root / "#2024").exists()
    untagged, _ = raw.command('LIST "" "*"')
    listed = listed_names(untagged)
    assert {"Archive/2025", "Archive/2025/01", "1999"} <= listed
    assert not {"Archive/2024", "2024"} & listed
    untagged, _ = raw.command('SELECT "Archive/2025/01"')
    assert b"* 1 EXISTS" in untagged
    untagged, _ = raw.command("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert any(b"Subject: kept" in line for line in untagged), untagged
    raw.command("CLOSE")
    raw.command('DELETE "Archive/2025/01"')
    raw.command("DELETE 1999")
    assert not (root / "#1999").exists()
    assert not (root / "Archive" / "#2025" / "#01").exists()
    untagged, _ = raw.command('LIST "" "*"')
    listed = listed_names(untagged)
    assert not {"Archive/2025/01", "1999"} & listed


def read_lines(client: RawClient, count: int) -> list[bytes]:
    """The next ``count`` lines (a guard against hanging, not a timing test),
    then whatever else arrives within a short quiet period."""
    lines = []
    for _ in range(count):
        line = client.read_line(10)
        if not line:
            break
        lines.append(line)
    return lines + [line for _, line in client.collect(0.5)]


def test_notify_reports_digit_names(raw: RawClient, tmp_path: Path) -> None:
    """RFC 5465 sections 5.2 and 5.4 under IMAP names: nmh's changes in
    escaped directories reach a NOTIFY client as ``Archive/2024``."""
    raw.command('CREATE "Archive/2024"')
    initial, _ = raw.command(
        "NOTIFY SET STATUS (personal (MessageNew MessageExpunge MailboxName))"
    )
    assert any(b'"Archive/2024"' in line for line in initial), initial
    tools = make_tools(tmp_path, tmp_path / "Mail", None)
    mbox = tmp_path / "n.mbox"
    mbox.write_bytes(mbox_of([mh_message("n1")]))
    tools.nmh("inc", "+Archive/#2024", "-file", str(mbox), "-notruncate")
    assert read_lines(raw, 1) == [b'* STATUS "Archive/2024" (UIDNEXT 2 MESSAGES 1)']
    tools.nmh("folder", "-create", "+Archive/#2025")
    created = read_lines(raw, 1)
    # The parent's LIST may follow (its children changed, RFC 5465 5.4).
    assert created[0] == b'* LIST (\\HasNoChildren) "/" "Archive/2025"', created
    tools.nmh("rmf", "-nointeractive", "+Archive/#2025")
    removed = read_lines(raw, 1)
    assert removed[0] == b'* LIST (\\NonExistent) "/" "Archive/2025"', removed
    assert not any(b"#" in line for line in created + removed)


# -- mbsync from a local Maildir --------------------------------------------------


def test_mbsync_copies_a_local_all_digit_folder(
    tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory
) -> None:
    """The mbsync user's case: mail synced from elsewhere into a local
    Maildir with Thunderbird-style yearly archives goes up to asimap."""
    from asimap.auth.hashers import make_password

    local = tmp_path / "local"
    for folder, idents in {
        "INBOX": ["in-1"],
        "Archive/2024": ["y2024-1", "y2024-2"],
        "2023": ["y2023-1"],
    }.items():
        for sub in ("cur", "new", "tmp"):
            (local / folder / sub).mkdir(parents=True, exist_ok=True)
        for number, ident in enumerate(idents):
            name = f"17000000{number}.{ident}.host:2,S"
            (local / folder / "cur" / name).write_bytes(
                message(ident).replace(b"\r\n", b"\n")
            )
    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"{USER}:{make_password(PASSWORD, iterations=1000)}:Mail\n")
    (tmp_path / "Mail").mkdir()
    server = server_factory(pwfile=pwfile, store="mh", workers=False)
    synced = Synced(server, tls_files, tmp_path, tmp_path / "Mail")
    config = mbsync_config(synced, local)
    run_mbsync(config, tmp_path)
    state = server_state(server, tls_files)
    assert set(state["Archive/2024"]) == {"y2024-1", "y2024-2"}
    assert set(state["2023"]) == {"y2023-1"}
    assert all(flags == {"\\Seen"} for _, flags in state["Archive/2024"].values())
    root = tmp_path / "Mail"
    assert len(os.listdir(root / "Archive" / "#2024")) >= 2
    # A second run finds both sides in agreement and changes nothing.
    run_mbsync(config, tmp_path)
    assert local_state(local)["Archive/2024"].keys() == state["Archive/2024"].keys()
    assert server_state(server, tls_files) == state


# -- roots asimap 2.x served ------------------------------------------------------


async def test_asimap2_digit_directories_are_adopted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """asimap 2.x stored ``Archive/2024`` as the directory ``Archive/2024``
    (a message number to nmh); the first start renames it to the escaped
    name, before the import looks up 2.x's UIDs, so nothing is lost."""
    root = tmp_path / "Mail"
    for folder in ("inbox", "Archive/2024", "Archive/2024/01", "2023", "1999"):
        (root / folder).mkdir(parents=True)
        (root / folder / "1").write_bytes(f"Subject: {folder}\r\n\r\n".encode())
    (root / "#1999").mkdir()  # the escaped name is taken: 1999 stays put
    build_legacy_db(
        root / "asimap.db",
        uid_vv=50,
        mailboxes=[
            {"name": "inbox", "uid_vv": 41, "uids": [3], "msg_keys": [1]},
            {"name": "Archive/2024", "uid_vv": 42, "uids": [7], "msg_keys": [1]},
        ],
    )
    store = await MHStore.open(root, profile=NO_PROFILE)
    try:
        names = {e.name for e in await store.list_mailboxes()}
        assert {"Archive/2024", "Archive/2024/01", "2023", "1999"} <= names
        archive = await store.mailbox("Archive/2024")
        assert archive.uidvalidity == 42
        assert [s.uid for s in await archive.states()] == [7]
        assert (await archive.message(7)).subject() == "Archive/2024"
        nested = await store.mailbox("Archive/2024/01")
        [state] = await nested.states()
        assert (await nested.message(state.uid)).subject() == "Archive/2024/01"
        assert not await (await store.mailbox("1999")).states()  # the empty #1999
    finally:
        await store.close()
    assert (root / "Archive" / "#2024" / "#01" / "1").is_file()
    assert (root / "#2023" / "1").is_file()
    assert (root / "1999" / "1").is_file()
    assert "1999 not renamed" in caplog.text
