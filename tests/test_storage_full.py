"""A full file system under a real server (worker mode, as root).

The mail root is a 4 MB tmpfs.  An IMAP client APPENDs until the disk is
full, then every way of adding mail (APPEND, MULTIAPPEND, CATENATE, COPY,
CREATE) answers ``NO [OVERQUOTA] Not enough disk space`` -- not ``NO
[SERVERBUG]`` -- and leaves nothing behind; the user can still flag
messages ``\\Deleted``, MOVE them, EXPUNGE them and DELETE a folder (the
account's reserve, ``store/mh/space.py``); then APPEND works again.
nmh's ``scan`` sees exactly the messages IMAP acknowledged, the database
passes SQLite's integrity check, and the log says "disk full" once per
episode, with no traceback.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import poplib
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import TlsFiles, require_tool
from tmpfs import fill, free_bytes, tmpfs
from worker_harness import UIDS, Asimapd, LineClient, MailSetup, mail_setup

FULL = b"NO [OVERQUOTA] Not enough disk space"
NMH_BIN = Path("/usr/bin/mh")


def _message(n: int, size: int) -> bytes:
    return (
        f"From: a@example.org\r\nSubject: m{n}\r\nMessage-ID: <m{n}@x>\r\n\r\n".encode()
        + b"x" * size
        + b"\r\n"
    )


def _append(
    client: LineClient, tag: bytes, data: bytes, box: bytes = b"INBOX"
) -> bytes:
    client.send(b"%s APPEND %s {%d+}\r\n%s\r\n" % (tag, box, len(data), data))
    return client.until_tagged(tag)[-1]


def _uids(client: LineClient, box: bytes) -> list[int]:
    lines = client.command(b"u", b"STATUS " + box + b" (MESSAGES)")
    assert lines[-1].startswith(b"u OK"), lines
    count = int(re.search(rb"MESSAGES (\d+)", lines[0]).group(1))  # type: ignore[union-attr]
    if not count:
        return []
    assert client.command(b"x", b"EXAMINE " + box)[-1].startswith(b"x OK")
    found = client.command(b"y", b"UID SEARCH ALL")
    assert found[-1].startswith(b"y OK"), found
    return [int(n) for n in found[0].split()[2:]]


def _scan(root: Path, folder: str, home: Path) -> list[str]:
    """Subjects of a folder, as nmh's ``scan`` lists them."""
    if not (NMH_BIN / "scan").exists():
        require_tool("scan")  # fails under CI, skips elsewhere
    profile = home / "mh_profile"
    profile.write_text(f"Path: {root}\n")
    done = subprocess.run(
        [str(NMH_BIN / "scan"), f"+{folder}", "-format", "%{subject}"],
        env={"MH": str(profile), "HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "no messages" in done.stderr:
        return []
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


@dataclass
class Full:
    """A logged-in client of a real server whose mail root is full."""

    server: Asimapd
    client: LineClient
    root: Path
    filler: Path
    acked: dict[int, str]
    #: UIDs of the messages in ``Old``.
    old: list[int]


@pytest.fixture
def full(setup: MailSetup, tls_files: TlsFiles) -> Iterator[Full]:
    """Ten messages in INBOX and a folder ``Old``, then not one byte free."""
    root = setup.roots["demo"]
    with tmpfs(root, "4m", owner=UIDS["demo"]):
        server = Asimapd(
            setup, tls_files.cert, tls_files.key, "--enable-pop3", "--pop3-port=0"
        )
        try:
            client = LineClient(server.tls_socket())
            assert client.line().startswith(b"* OK")
            assert client.command(b"a", b"LOGIN demo demo")[-1].startswith(b"a OK")
            assert client.command(b"c", b"CREATE Old")[-1].startswith(b"c OK")
            acked: dict[int, str] = {}
            for n in range(1, 11):
                answer = _append(client, b"p", _message(n, 100_000))
                assert answer.startswith(b"p OK"), answer
                acked[_appenduid(answer)] = f"m{n}"
            old: list[int] = []
            for n in range(11, 14):
                answer = _append(client, b"p", _message(n, 100_000), b"Old")
                assert answer.startswith(b"p OK"), answer
                old.append(_appenduid(answer))
            assert client.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
            yield Full(server, client, root, fill(root), acked, old)
            client.close()
        finally:
            server.stop()


def _appenduid(answer: bytes) -> int:
    found = re.search(rb"APPENDUID \d+ (\d+)", answer)
    assert found, answer
    return int(found.group(1))


def _check_log(server: Asimapd) -> None:
    log = server.log()
    assert "SERVERBUG" not in log and "Traceback" not in log, log
    # Logged once when it starts, not at every refused command.
    assert log.count("Not enough disk space") == 1, log


def test_deletion_works_on_a_full_disk(full: Full) -> None:
    """STORE \\Deleted, EXPUNGE, MOVE and DELETE need database and
    ``.mh_sequences`` writes: the reserve gives them the room."""
    client, acked = full.client, full.acked
    victims = sorted(acked)[:4]
    flagged = client.command(
        b"f", b"UID STORE %d:%d +FLAGS.SILENT (\\Deleted)" % (victims[0], victims[-1])
    )
    assert flagged[-1] == b"f OK Store completed", flagged
    expunged = client.command(b"e", b"EXPUNGE")
    assert expunged[-1] == b"e OK Expunge completed", expunged
    assert sum(line.endswith(b" EXPUNGE") for line in expunged) == len(victims)
    moved = client.command(b"m", b"UID MOVE %d Old" % sorted(acked)[-1])
    assert moved[-1].startswith(b"m OK"), moved
    # DELETE frees the room of its messages at once (even of messages
    # appended a moment ago, whose files the server still watched).
    before = free_bytes(full.root)
    assert client.command(b"d", b"DELETE Old")[-1].startswith(b"d OK")
    assert free_bytes(full.root) - before >= 3 * 100_000
    remaining = sorted(acked)[4:-1]
    assert _uids(client, b"INBOX") == remaining
    assert sorted(_scan(full.root, "inbox", full.root.parent)) == sorted(
        acked[uid] for uid in remaining
    )
    assert not (full.root / "Old").exists()


def test_create_on_a_full_disk_leaves_nothing(full: Full) -> None:
    """CREATE is all or nothing: refused, no directory, no row, no name."""
    made = full.client.command(b"n", b"CREATE Fresh/Child")
    assert made[-1] == b"n " + FULL, made
    listed = full.client.command(b"l", b'LIST "" *')
    assert not [line for line in listed if b"Fresh" in line], listed
    assert not (full.root / "Fresh").exists()
    with sqlite3.connect(full.root / ".asimap-store.sqlite3") as conn:
        rows = conn.execute("SELECT name FROM mailboxes WHERE name LIKE 'Fresh%'")
        assert rows.fetchall() == []
    # With room again, the same CREATE works.
    os.unlink(full.filler)
    again = full.client.command(b"n2", b"CREATE Fresh/Child")
    assert again[-1].startswith(b"n2 OK"), again
    assert (full.root / "Fresh" / "Child").is_dir()


def test_adding_mail_on_a_full_disk_is_a_clean_no(full: Full) -> None:
    """APPEND, MULTIAPPEND, CATENATE and COPY: ``NO [OVERQUOTA]``, no
    UID handed out, nothing left on disk; then APPEND works again."""
    client, acked = full.client, full.acked
    assert _append(client, b"q", _message(0, 10)) == b"q " + FULL
    two = _message(0, 10)
    client.send(
        b"r APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(two), two, len(two), two)
    )
    assert client.until_tagged(b"r")[-1] == b"r " + FULL
    client.send(b'k APPEND INBOX CATENATE (URL "/INBOX/;UID=1" TEXT {4+}\r\nmore)\r\n')
    assert client.until_tagged(b"k")[-1] == b"k " + FULL
    copied = client.command(b"o", b"UID COPY 1:3 Old")
    assert copied[-1] == b"o " + FULL, copied
    assert _uids(client, b"Old") == full.old
    assert _uids(client, b"INBOX") == sorted(acked)
    os.unlink(full.filler)
    answer = _append(client, b"z", _message(99, 1000))
    assert answer.startswith(b"z OK [APPENDUID"), answer
    uid = _appenduid(answer)
    assert uid == max(acked) + 1  # no UID was spent on a refused message
    acked[uid] = "m99"
    assert client.command(b"bye", b"LOGOUT")[-1].startswith(b"bye OK")
    full.server.stop()
    assert sorted(_scan(full.root, "inbox", full.root.parent)) == sorted(acked.values())
    assert not list(full.root.rglob(".asimap-tmp-*"))
    with sqlite3.connect(full.root / ".asimap-store.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    _check_log(full.server)


def test_append_until_full_then_expunge_then_append(
    setup: MailSetup, tls_files: TlsFiles, tmp_path: Path
) -> None:
    root = setup.roots["demo"]
    with tmpfs(root, "4m", owner=UIDS["demo"]):
        server = Asimapd(setup, tls_files.cert, tls_files.key)
        try:
            client = LineClient(server.tls_socket())
            assert client.line().startswith(b"* OK")
            assert client.command(b"a", b"LOGIN demo demo")[-1].startswith(b"a OK")
            assert client.command(b"c", b"CREATE Old")[-1].startswith(b"c OK")
            assert client.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
            # APPEND until the disk is full: each answer OK with a UID, or
            # the clean NO -- never SERVERBUG.
            acked: dict[int, str] = {}
            n = 0
            for size in (100_000, 10_000, 1_000):
                while True:
                    n += 1
                    answer = _append(client, b"p", _message(n, size))
                    if answer.startswith(b"p OK"):
                        uid = int(re.search(rb"APPENDUID \d+ (\d+)", answer).group(1))  # type: ignore[union-attr]
                        acked[uid] = f"m{n}"
                        continue
                    assert answer == b"p " + FULL, answer
                    break
            assert len(acked) > 20
            # To the last byte (as root, past the account's reserve).
            filler = fill(root)
            # Every way of adding mail: the same clean NO.
            assert _append(client, b"q", _message(0, 10)) == b"q " + FULL
            two = _message(0, 10)
            client.send(
                b"r APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n"
                % (len(two), two, len(two), two)
            )
            assert client.until_tagged(b"r")[-1] == b"r " + FULL
            client.send(
                b'k APPEND INBOX CATENATE (URL "/INBOX/;UID=1" TEXT {4+}\r\nmore)\r\n'
            )
            assert client.until_tagged(b"k")[-1] == b"k " + FULL
            copied = client.command(b"o", b"UID COPY 1:3 Old")
            assert copied[-1] == b"o " + FULL, copied
            made = client.command(b"n", b"CREATE Fresh/Child")
            assert made[-1] == b"n " + FULL, made
            listed = client.command(b"l", b'LIST "" *')
            assert not [line for line in listed if b"Fresh" in line], listed
            assert not (root / "Fresh").exists()
            # Deleting works on the full disk: flag, MOVE, EXPUNGE, DELETE.
            victims = sorted(acked)[:15]
            flagged = client.command(
                b"f",
                b"UID STORE %d:%d +FLAGS.SILENT (\\Deleted)"
                % (victims[0], victims[-1]),
            )
            assert flagged[-1] == b"f OK Store completed", flagged
            moved = client.command(b"m", b"UID MOVE %d Old" % sorted(acked)[-1])
            assert moved[-1].startswith(b"m OK"), moved
            acked.pop(sorted(acked)[-1])
            assert client.command(b"s2", b"SELECT INBOX")[-1].startswith(b"s2 OK")
            expunged = client.command(b"e", b"EXPUNGE")
            assert expunged[-1] == b"e OK Expunge completed", expunged
            assert sum(b" EXPUNGE" in line for line in expunged) == len(victims)
            for uid in victims:
                del acked[uid]
            assert client.command(b"d", b"DELETE Old")[-1].startswith(b"d OK")
            # The room is there again: adding works.
            os.unlink(filler)
            answer = _append(client, b"z", _message(999, 1000))
            assert answer.startswith(b"z OK [APPENDUID"), answer
            uid = int(re.search(rb"APPENDUID \d+ (\d+)", answer).group(1))  # type: ignore[union-attr]
            acked[uid] = "m999"
            assert client.command(b"n2", b"CREATE Fresh")[-1].startswith(b"n2 OK")
            assert _uids(client, b"INBOX") == sorted(acked)
            assert client.command(b"bye", b"LOGOUT")[-1].startswith(b"bye OK")
            client.close()
        finally:
            server.stop()
        log = server.log()
        # What IMAP acknowledged is what nmh sees, nothing partial.
        assert sorted(_scan(root, "inbox", tmp_path)) == sorted(acked.values())
        leftovers = [p.name for p in root.rglob(".asimap-tmp-*")]
        assert not leftovers
        with sqlite3.connect(root / ".asimap-store.sqlite3") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert "SERVERBUG" not in log and "Traceback" not in log, log
        assert log.count("Not enough disk space") <= 2, log
        assert "disk space available again" in log, log


def test_login_and_deletion_after_a_restart_on_a_full_disk(
    full: Full, setup: MailSetup, tls_files: TlsFiles
) -> None:
    """Opening the account writes too (SQLite's ``-wal`` and ``-shm``):
    a server (or worker) started on the full disk still lets the user in
    to delete mail."""
    full.client.close()
    full.server.stop()
    # As after a stop with room to spare: SQLite's side files are gone.
    os.unlink(full.filler)
    database = full.root / ".asimap-store.sqlite3"
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert not Path(f"{database}-shm").exists()
    fill(full.root)
    server = Asimapd(setup, tls_files.cert, tls_files.key)
    try:
        client = LineClient(server.tls_socket())
        assert client.line().startswith(b"* OK")
        login = client.command(b"a", b"LOGIN demo demo")
        assert login[-1].startswith(b"a OK"), login
        assert client.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
        flagged = client.command(b"f", b"STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        assert flagged[-1] == b"f OK Store completed", flagged
        expunged = client.command(b"e", b"EXPUNGE")
        assert expunged[-1] == b"e OK Expunge completed", expunged
        assert _uids(client, b"INBOX") == sorted(full.acked)[3:]
        client.close()
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


def test_rename_on_a_full_disk_changes_nothing(full: Full) -> None:
    """RENAME is all or nothing: refused, the mailbox keeps its name,
    directory and UIDs; INBOX's special RENAME leaves no empty mailbox."""
    client = full.client
    before = _uids(client, b"INBOX")
    renamed = client.command(b"r", b"RENAME Old New/Sub")
    assert renamed[-1] == b"r " + FULL, renamed
    moved = client.command(b"i", b"RENAME INBOX Saved")
    assert moved[-1] == b"i " + FULL, moved
    listed = client.command(b"l", b'LIST "" *')
    assert [line for line in listed if line.endswith(b'"Old"')], listed
    assert not [line for line in listed if b"New" in line or b"Saved" in line]
    assert (full.root / "Old").is_dir() and not (full.root / "New").exists()
    assert not (full.root / "Saved").exists()
    assert _uids(client, b"INBOX") == before
    os.unlink(full.filler)
    again = client.command(b"r2", b"RENAME Old New/Sub")
    assert again[-1].startswith(b"r2 OK"), again
    assert (full.root / "New" / "Sub").is_dir()


def test_real_clients_see_a_clean_refusal_and_can_delete(full: Full) -> None:
    """imaplib and poplib, as a user's client would: APPEND is refused
    with the code; deleting through POP3 (DELE, QUIT) frees the room."""
    context = full.server.client_context()
    imap = imaplib.IMAP4_SSL(
        "127.0.0.1", full.server.ports["imaps"], ssl_context=context, timeout=10
    )
    try:
        imap.login("demo", "demo")
        typ, data = imap.append("INBOX", None, None, _message(0, 10))
        assert typ == "NO" and data == [b"[OVERQUOTA] Not enough disk space"], data
        pop = poplib.POP3_SSL(
            "127.0.0.1", full.server.ports["pop3s"], context=context, timeout=10
        )
        pop.user("demo")
        pop.pass_("demo")
        count, _ = pop.stat()
        assert count == len(full.acked)
        for n in range(1, count + 1):
            assert pop.dele(n).startswith(b"+OK")
        assert pop.quit().startswith(b"+OK")
        # The room is back (beyond the account's reserve): APPEND works.
        typ, data = imap.append("INBOX", None, None, _message(0, 10))
        assert typ == "OK" and b"APPENDUID" in data[0], data
        imap.select("INBOX")
        typ, data = imap.uid("SEARCH", "ALL")
        assert typ == "OK" and len(data[0].split()) == 1, data
    finally:
        with contextlib.suppress(Exception):
            imap.logout()
