"""Read-only folders and files, and a ``.mh_sequences`` full of garbage.

Under a real server in worker mode (started as root, the worker runs as
the mail owner, so file modes apply to it): a write the file system
refuses answers ``NO [NOPERM] Permission denied`` -- never ``NO
[SERVERBUG]`` with a traceback -- the session goes on, and the same
command works once the mode is given back.  A sequence file with garbage
in it is read as well as it can be: the folder opens, its messages and
the flags that can be made out are served.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import TlsFiles
from worker_harness import IS_ROOT, UIDS, Asimapd, LineClient, MailSetup, mail_setup

DENIED = b"NO [NOPERM] Permission denied"
MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    if not IS_ROOT:
        if os.environ.get("CI"):
            pytest.fail("worker mode must start as root under CI")
        pytest.skip("worker mode drops privileges only when started as root")
    with mail_setup() as made:
        yield made


def _login(server: Asimapd) -> LineClient:
    client = LineClient(server.tls_socket())
    assert client.line().startswith(b"* OK")
    assert client.command(b"a", b"LOGIN demo demo")[-1].startswith(b"a OK")
    return client


def _append(client: LineClient, tag: bytes) -> bytes:
    client.send(b"%s APPEND INBOX {%d+}\r\n%s\r\n" % (tag, len(MESSAGE), MESSAGE))
    return client.until_tagged(tag)[-1]


def test_read_only_folder_and_root_answer_noperm(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    root = setup.roots["demo"]
    inbox = _folder(root, "inbox", 2)
    server = Asimapd(setup, tls_files.cert, tls_files.key)
    try:
        client = _login(server)
        assert client.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
        inbox.chmod(0o500)
        assert _append(client, b"p") == b"p " + DENIED
        flagged = client.command(b"f", b"STORE 1 +FLAGS (\\Deleted)")
        assert flagged[-1] == b"f " + DENIED, flagged
        # Reading still works, and nothing changed.
        fetched = client.command(b"g", b"FETCH 1:* (FLAGS BODY.PEEK[])")
        assert fetched[-1].startswith(b"g OK"), fetched
        assert sorted(p.name for p in inbox.iterdir() if p.name.isdigit()) == [
            "1",
            "2",
        ]
        inbox.chmod(0o700)
        assert _append(client, b"q").startswith(b"q OK [APPENDUID")
        flagged = client.command(b"h", b"STORE 1 +FLAGS (\\Deleted)")
        assert flagged[-1].startswith(b"h OK"), flagged
        # A read-only MH root: no new folder, but mail is still added.
        root.chmod(0o500)
        made = client.command(b"c", b"CREATE Fresh")
        assert made[-1] == b"c " + DENIED, made
        assert _append(client, b"r").startswith(b"r OK [APPENDUID")
        root.chmod(0o700)
        assert client.command(b"c2", b"CREATE Fresh")[-1].startswith(b"c2 OK")
        assert client.command(b"n", b"NOOP")[-1].startswith(b"n OK")
        client.close()
    finally:
        inbox.chmod(0o700)
        root.chmod(0o700)
        server.stop()
    log = server.log()
    assert "SERVERBUG" not in log and "Traceback" not in log, log


GARBAGE = [
    b"\x00\xff\xfe binary \x80\x81\n",
    b"no colon on this line\n",
    b"unseen: 2 x-y 3-1 -4 5- 99999999999999999999999 1-2-3\n",
    b"flagged: 1\n\tcontinued 2 junk\n",
    b": nameless 1\n",
    b"replied:\n",
    b"\n\n\xc3\x28 broken utf-8: 1\n",
]


def test_garbage_in_mh_sequences_is_read_sanely(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    """The garbage is skipped: the folder reads as one whose file holds
    only the lines and numbers that make sense."""
    root = setup.roots["demo"]
    folders = {"INBOX": _folder(root, "inbox", 3), "Clean": _folder(root, "Clean", 3)}
    _sequences(folders["INBOX"], b"".join(GARBAGE))
    _sequences(folders["Clean"], b"unseen: 2\nflagged: 1 2\n")
    server = Asimapd(setup, tls_files.cert, tls_files.key)
    try:
        client = _login(server)
        flags: dict[str, list[bytes]] = {}
        for name in folders:
            selected = client.command(b"s", b"SELECT " + name.encode())
            assert selected[-1].startswith(b"s OK"), selected
            assert b"* 3 EXISTS" in selected
            fetched = client.command(b"f", b"FETCH 1:3 FLAGS")
            assert fetched[-1].startswith(b"f OK"), fetched
            flags[name] = fetched[:-1]
        assert flags["INBOX"] == flags["Clean"]
        assert b"\\Flagged" in flags["INBOX"][1], flags
        # Writing the flags back works and leaves nmh a clean file.
        assert client.command(b"e", b"SELECT INBOX")[-1].startswith(b"e OK")
        stored = client.command(b"t", b"STORE 3 +FLAGS (\\Answered)")
        assert stored[-1].startswith(b"t OK"), stored
        text = (folders["INBOX"] / ".mh_sequences").read_bytes()
        assert b"replied: 3" in text and b"flagged: 1-2" in text, text
        client.close()
    finally:
        server.stop()
    log = server.log()
    assert "SERVERBUG" not in log and "Traceback" not in log, log


def _folder(root: Path, name: str, count: int) -> Path:
    folder = root / name
    folder.mkdir(mode=0o700)
    for n in range(1, count + 1):
        (folder / str(n)).write_bytes(MESSAGE)
    for path in (folder, *folder.iterdir()):
        os.chown(path, UIDS["demo"], UIDS["demo"])
    return folder


def _sequences(folder: Path, text: bytes) -> None:
    path = folder / ".mh_sequences"
    path.write_bytes(text)
    os.chown(path, UIDS["demo"], UIDS["demo"])
