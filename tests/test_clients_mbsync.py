"""mbsync (isync) mirrors every folder of an MH-backed account both ways.

Issue 6 asks to *show* real synchronisers working.  The server runs in
process on the MH store; mbsync syncs into a local Maildir, and both sides
are compared message by message (content and flags), before and after
changes made on each side.  Helpers here are reused by the offlineimap test.
"""

from __future__ import annotations

import email.parser
import email.policy
import imaplib
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles, require_tool

TIMEOUT = 10.0
SYNC_TIMEOUT = 120

#: Maildir info letters <-> IMAP system flags (maildir(5), "info" part).
MAILDIR_FLAGS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}

#: Folder -> [(message id, flags)] seeded over IMAP before the first sync:
#: INBOX, a nested folder, and a folder whose name has a space.
SEED: dict[str, list[tuple[str, str]]] = {
    "INBOX": [
        ("inbox-1", "\\Seen"),
        ("inbox-2", "\\Seen \\Flagged"),
        ("inbox-3", ""),
        ("inbox-4", "\\Answered \\Seen"),
    ],
    "Archive/Lists": [("nested-1", "\\Seen"), ("nested-2", "\\Flagged")],
    "Old Mail": [("space-1", "\\Seen \\Draft")],
}


def message(ident: str) -> bytes:
    """A small RFC 5322 message with CRLF line ends, keyed by Message-ID."""
    return (
        f"From: Alice <alice@example.org>\r\n"
        f"To: Demo <demo@example.org>\r\n"
        f"Subject: sync test {ident}\r\n"
        f"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
        f"Message-ID: <{ident}@example.org>\r\n"
        f"\r\n"
        f"Body of {ident}.\r\n"
        f"Second line.\r\n"
    ).encode()


#: folder -> message id -> (content with LF line ends, set of IMAP flags)
State = dict[str, dict[str, tuple[bytes, frozenset[str]]]]


def message_id(content: bytes) -> str:
    parsed = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
        content
    )
    return str(parsed["Message-ID"]).strip().strip("<>").split("@")[0]


def quote(name: str) -> str:
    """An IMAP quoted string (RFC 3501 section 4.3); imaplib quotes nothing."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def connect(server: ServerThread, tls: TlsFiles) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(
        server.host,
        server.imaps_port,
        ssl_context=tls.client_context(),
        timeout=TIMEOUT,
    )
    client.login(USER, PASSWORD)
    return client


LIST_LINE = re.compile(rb'^\((?P<attrs>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.*)$')


def list_folders(client: imaplib.IMAP4_SSL) -> list[str]:
    typ, data = client.list('""', "*")
    assert typ == "OK", data
    names = []
    for line in data:
        assert isinstance(line, bytes), data
        match = LIST_LINE.match(line)
        assert match is not None, line
        if b"\\Noselect" in match["attrs"] or b"\\NonExistent" in match["attrs"]:
            continue
        name = match["name"].decode()
        names.append(name[1:-1] if name.startswith('"') else name)
    return names


FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")


def server_state(server: ServerThread, tls: TlsFiles) -> State:
    """Every message of every selectable folder, read without side effects."""
    state: State = {}
    client = connect(server, tls)
    try:
        for folder in list_folders(client):
            typ, data = client.select(quote(folder), readonly=True)
            assert typ == "OK", (folder, data)
            messages: dict[str, tuple[bytes, frozenset[str]]] = {}
            if data != [b"0"]:
                typ, fetched = client.fetch("1:*", "(FLAGS BODY.PEEK[])")
                assert typ == "OK", fetched
                for item in fetched:
                    if not isinstance(item, tuple):
                        continue
                    meta, body = item
                    flags = FETCH_FLAGS.search(meta)
                    assert flags is not None, meta
                    names = frozenset(flags[1].decode().split()) - {"\\Recent"}
                    messages[message_id(body)] = (body.replace(b"\r\n", b"\n"), names)
            state[folder] = messages
    finally:
        client.logout()
    return state


def maildir_flags(path: Path) -> frozenset[str]:
    """The IMAP flags a Maildir file name carries (``...:2,FS``)."""
    _, _, info = path.name.partition(":2,")
    return frozenset(
        MAILDIR_FLAGS[letter] for letter in info if letter in MAILDIR_FLAGS
    )


def maildirs(root: Path) -> Iterator[tuple[str, Path]]:
    """(folder name with ``/`` separators, directory) of each Maildir below."""
    for cur in sorted(root.rglob("cur")):
        directory = cur.parent
        if (directory / "new").is_dir() and (directory / "tmp").is_dir():
            yield directory.relative_to(root).as_posix(), directory


def local_state(root: Path, inbox: str = "INBOX") -> State:
    """Every message of every Maildir below ``root``; ``inbox`` is INBOX's path."""
    state: State = {}
    for name, directory in maildirs(root):
        messages: dict[str, tuple[bytes, frozenset[str]]] = {}
        for sub in ("cur", "new"):
            for path in (directory / sub).iterdir():
                content = path.read_bytes()
                messages[message_id(content)] = (content, maildir_flags(path))
        state["INBOX" if name == inbox else name] = messages
    return state


def seed(server: ServerThread, tls: TlsFiles) -> None:
    """Create the SEED folders and APPEND their messages with their flags."""
    client = connect(server, tls)
    try:
        for folder, items in SEED.items():
            if folder != "INBOX":
                typ, data = client.create(quote(folder))
                assert typ == "OK", (folder, data)
            for ident, flags in items:
                typ, data = client.append(
                    quote(folder), f"({flags})", None, message(ident)
                )
                assert typ == "OK", (folder, data)
    finally:
        client.logout()


def expected_seed() -> dict[str, dict[str, frozenset[str]]]:
    return {
        folder: {ident: frozenset(flags.split()) for ident, flags in items}
        for folder, items in SEED.items()
    }


def flags_of(state: State) -> dict[str, dict[str, frozenset[str]]]:
    return {
        folder: {ident: flags for ident, (_, flags) in messages.items()}
        for folder, messages in state.items()
    }


@dataclass
class Synced:
    """A server on the MH store, seeded, and the local directory to sync to."""

    server: ServerThread
    tls: TlsFiles
    tmp: Path
    root: Path


@pytest.fixture
def synced(
    tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory
) -> Synced:
    from asimap.auth.hashers import make_password

    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"{USER}:{make_password(PASSWORD, iterations=1000)}:Mail\n")
    (tmp_path / "Mail").mkdir()
    server = server_factory(pwfile=pwfile, store="mh", workers=False)
    seed(server, tls_files)
    return Synced(server, tls_files, tmp_path, tmp_path / "Mail")


#: The header isync inserts into every message it copies, to find it again
#: on the target side (isync's "TUID"); it is the client's, not ours.
TUID_HEADER = re.compile(rb"^X-TUID: [^\n]*\n", re.MULTILINE)


def assert_agree(server: State, local: State) -> None:
    """Same folders, same messages, same flags and byte-identical content
    (Maildir files use LF line ends; the server sends CRLF; isync's own
    X-TUID header is removed before comparing)."""
    assert sorted(local) == sorted(server)
    for folder, messages in server.items():
        assert flags_of({folder: local[folder]}) == flags_of({folder: messages})
        for ident, (content, _) in messages.items():
            mirrored = TUID_HEADER.sub(b"", local[folder][ident][0], count=1)
            assert mirrored == content, (folder, ident)


# -- mbsync -----------------------------------------------------------------


def change_both_sides(synced: Synced, local: Path) -> None:
    """Between two syncs: flag ``inbox-3`` locally by renaming its Maildir
    file (maildir(5)); on the server, APPEND to the nested folder and
    delete + EXPUNGE ``inbox-1``."""
    [path] = [
        p
        for sub in ("cur", "new")
        for p in (local / "INBOX" / sub).iterdir()
        if message_id(p.read_bytes()) == "inbox-3"
    ]
    base = path.name.partition(":2,")[0]
    path.rename(local / "INBOX" / "cur" / f"{base}:2,F")
    client = connect(synced.server, synced.tls)
    try:
        typ, data = client.append(
            quote("Archive/Lists"), "(\\Seen)", None, message("nested-3")
        )
        assert typ == "OK", data
        assert client.select("INBOX")[0] == "OK"
        typ, data = client.search(None, "HEADER", "Message-ID", "inbox-1")
        assert typ == "OK" and data[0], data
        client.store(data[0].decode(), "+FLAGS", "(\\Deleted)")
        assert client.expunge()[0] == "OK"
    finally:
        client.logout()


def assert_changes_synced(synced: Synced, local: Path) -> None:
    """After the second sync both sides carry :func:`change_both_sides`."""
    server = server_state(synced.server, synced.tls)
    assert server["INBOX"]["inbox-3"][1] == {"\\Flagged"}
    assert "inbox-1" not in server["INBOX"]
    assert server["Archive/Lists"]["nested-3"][1] == {"\\Seen"}
    assert_agree(server, local_state(local))


def mbsync_config(synced: Synced, local: Path) -> Path:
    """isync 1.4 keywords (``SSLType``; 1.5 renamed it ``TLSType``)."""
    config = synced.tmp / "mbsyncrc"
    config.write_text(
        f"IMAPAccount asimap\n"
        # isync 1.4 matches the certificate's DNS names only, not IP SANs.
        "Host localhost\n"
        f"Port {synced.server.imaps_port}\n"
        f"User {USER}\n"
        f"Pass {PASSWORD}\n"
        f"SSLType IMAPS\n"
        f"CertificateFile {synced.tls.cert}\n"
        f"Timeout 20\n"
        f"\n"
        f"IMAPStore remote\n"
        f"Account asimap\n"
        f"\n"
        f"MaildirStore local\n"
        f"Path {local}/\n"
        f"Inbox {local}/INBOX\n"
        f"SubFolders Verbatim\n"
        f"\n"
        f"Channel sync\n"
        f"Far :remote:\n"
        f"Near :local:\n"
        f"Patterns *\n"
        f"Create Both\n"
        f"Remove None\n"
        f"Expunge Both\n"
        f"SyncState *\n"
    )
    return config


def run_mbsync(config: Path, home: Path) -> str:
    mbsync = require_tool("mbsync")
    result = subprocess.run(
        [mbsync, "-a", "-V", "-c", str(config)],
        capture_output=True,
        timeout=SYNC_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output[-4000:]
    return output


def test_mbsync_mirrors_every_folder_and_converges_after_changes(
    synced: Synced,
) -> None:
    require_tool("mbsync")
    local = synced.tmp / "maildir"
    local.mkdir()
    config = mbsync_config(synced, local)
    run_mbsync(config, synced.tmp)

    server = server_state(synced.server, synced.tls)
    for folder, flags in expected_seed().items():
        assert flags_of(server)[folder] == flags
    # The special-use folders of a new account exist and are synced too.
    assert {"Junk", "Archive", "Sent Messages", "Drafts", "Deleted Messages"} <= set(
        server
    )
    assert_agree(server, local_state(local))

    change_both_sides(synced, local)
    run_mbsync(config, synced.tmp)
    assert_changes_synced(synced, local)
