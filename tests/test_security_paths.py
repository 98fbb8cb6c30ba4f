"""No path leaves the user's mail root, through any command or any symlink.

Security review (docs/security.md, "Paths"): a real ``asimapd`` in worker
mode (as root on this machine and in CI, so the worker runs as the mail
root's owner) is sent hostile mailbox names through every command that
takes one, and serves a mail root in which its user planted symlinks that
point out of it.  Outside the root, in reach of the worker's uid, lie a
world-readable "secret" message and world-writable files: the kernel
would let the worker read and write them, so only the server's own rules
keep it inside.

After all of it: nothing outside the user's root changed (every file and
directory under the test's base, other user's mail included, is compared
before and after), no response carries a byte of what lies outside, and
the connection still works.  POP3 takes no mailbox name: it only ever
serves INBOX.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import TlsFiles
from worker_harness import (
    IS_ROOT,
    UIDS,
    Asimapd,
    LineClient,
    MailSetup,
    mail_setup,
)

SECRET = b"OUTSIDE-SECRET-7f3a"
SEQ_SECRET = b"outsidesecretseq"

MESSAGE = (
    b"From: a@example.org\r\nTo: demo@example.org\r\nSubject: inside\r\n"
    b"Message-ID: <inside@example.org>\r\n\r\nan ordinary message\r\n"
)
OUTSIDE_MESSAGE = (
    b"From: x@example.org\r\nSubject: " + SECRET + b"\r\n\r\n" + SECRET + b"\r\n"
)

#: Names that must never reach a path outside the root (raw wire bytes).
HOSTILE: list[bytes] = [
    b"..",
    b"../x",
    b"/etc",
    b"/tmp/x",
    b"a/../../x",
    b"inbox/../../other",
    b"../other/inbox",
    b".",
    b"./inbox",
    b"~",
    b"~other",
    b"~/x",
    b"x\x00y",
    b"a" * 5000,
    b"a/" * 700 + b"a",
    b"&AC4ALg-",  # modified UTF-7 for ".."
    b"&AC8-etc",  # "/etc"
    b"&AC4ALgAv-x",  # "../x"
    b"a&AC8ALgAu-",  # "a/.."
    b"&AH4-",  # "~"
    b"outside",  # a symlink the user made to a directory outside
    b"outside/sub",
    b"otherlink",  # a symlink to the other user's INBOX
    b"Archive/deep",  # a symlink one level down, to the outside folder
    b"Archive/deep/x",
]


def _literal(name: bytes) -> bytes:
    """A name as a non-synchronizing literal (RFC 7888): any byte goes."""
    return b"{%d+}\r\n" % len(name) + name


def _commands(name: bytes) -> list[tuple[bytes, bool]]:
    """(command text after the tag, must fail) for every command that takes
    a mailbox name; LIST/LSUB/UNSUBSCRIBE may answer OK (with nothing)."""
    n = _literal(name)
    return [
        (b"SELECT " + n, True),
        (b"EXAMINE " + n, True),
        (b"CREATE " + n, True),
        (b"CREATE " + n + b"/sub", True),
        (b"DELETE " + n, True),
        (b"RENAME " + n + b" renamed", True),
        (b"RENAME Junk " + n, True),
        (b"RENAME Junk " + n + b"/sub", True),
        # A subscription is a name in a list, not a path: RFC 3501 section
        # 6.3.6 lets a client subscribe to a name that does not exist.
        (b"SUBSCRIBE " + n, False),
        (b"UNSUBSCRIBE " + n, False),
        (b"LIST " + n + b' "*"', False),
        (b'LIST "" ' + n, False),
        (b"LIST " + n + b" " + n, False),
        (b'LIST (SUBSCRIBED) "" ' + n, False),
        (b"LSUB " + n + b' "*"', False),
        (b'LSUB "" ' + n, False),
        (b"STATUS " + n + b" (MESSAGES UIDNEXT SIZE)", True),
        (b"APPEND " + n + b" " + _literal(MESSAGE), True),
        (b"COPY 1 " + n, True),
        (b"UID COPY 1:* " + n, True),
        (b"MOVE 1 " + n, True),
        (b"UID MOVE 1:* " + n, True),
        (b"GETMETADATA " + n + b" /private/comment", True),
        (b"SETMETADATA " + n + b' (/private/comment "x")', True),
        (b"GETQUOTAROOT " + n, True),
        (b"NOTIFY SET (mailboxes " + n + b" (MessageNew))", False),
        (b"NOTIFY SET (subtree " + n + b" (MessageNew))", False),
        (b"NOTIFY SET (mailboxes (INBOX " + n + b") (MessageNew))", False),
        (b'APPEND Drafts CATENATE (URL "/' + name + b'/;UID=1")', True),
        (b'APPEND Drafts CATENATE (URL "/' + name + b';UID=1")', True),
    ]


#: Overlong UTF-8 forms of "..", "/" and "." (not UTF-8 at all: RFC 3629
#: section 3 forbids them, and a lenient decoder would see a path).
OVERLONG: list[bytes] = [
    b"\xc0\xae\xc0\xae",
    b"\xc0\xafetc",
    b"\xc0\xae\xc0\xae\xc0\xafx",
    b"\xe0\x80\xae\xe0\x80\xae",
]


def _run_hostile(client: LineClient, names: list[bytes], failures: list[str]) -> None:
    """Every command of :func:`_commands` with every name; what should have
    failed and did not goes to ``failures``."""
    for number, name in enumerate(names):
        for command, must_fail in _commands(name):
            tag = b"h%d" % number
            answer = client.command(tag, command)
            _assert_no_secret(answer)
            tagged = answer[-1]
            if must_fail and not tagged.startswith((tag + b" NO", tag + b" BAD")):
                failures.append(f"{command[:80]!r}: {tagged[:120]!r}")
            if command.startswith((b"LIST", b"LSUB")):
                # Only INBOX could ever match these names, or a subscribed
                # name that is no mailbox.
                listed = [line for line in answer[:-1] if line.startswith(b"* L")]
                assert all(
                    line.endswith(b"INBOX") or b"\\NonExistent" in line
                    for line in listed
                ), answer
        client.command(b"u", b"NOTIFY NONE")


def _tree(base: Path, skip: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under ``base`` except inside ``skip``: kind, mode, and
    what it holds (file digest, link target)."""
    found: dict[str, tuple[str, int, str]] = {}
    for top, dirs, files in os.walk(base):
        here = Path(top)
        if here == skip:
            dirs[:] = []
            continue
        for entry in [*dirs, *files]:
            path = here / entry
            st = path.lstat()
            if path.is_symlink():
                found[str(path)] = ("link", st.st_mode, os.readlink(path))
            elif path.is_dir():
                found[str(path)] = ("dir", st.st_mode, "")
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[str(path)] = ("file", st.st_mode, digest)
    return found


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


def _chown_tree(path: Path, uid: int) -> None:
    if not IS_ROOT:
        return
    for top, dirs, files in os.walk(path):
        for entry in [*dirs, *files]:
            os.lchown(Path(top) / entry, uid, uid)
    os.lchown(path, uid, uid)


def _plant(setup: MailSetup) -> Path:
    """The outside world and the user's symlinks; returns the outside dir.

    Outside: a world-readable folder ``outside`` holding message ``1``
    (the secret) and a world-writable ``.mh_sequences``, and a
    world-writable file ``writable``.  In demo's root, made as demo would:
    ``inbox/1`` a real message, ``inbox/2`` a symlink to the secret
    message, ``outside`` a symlink to the outside folder, ``otherlink`` a
    symlink to the other user's inbox, and ``Archive/.mh_sequences`` a
    symlink to the world-writable file.
    """
    outside = setup.base / "outside"
    outside.mkdir(mode=0o755)
    (outside / "1").write_bytes(OUTSIDE_MESSAGE)
    (outside / ".mh_sequences").write_bytes(SEQ_SECRET + b": 1\n")
    writable = setup.base / "writable"
    writable.write_bytes(SEQ_SECRET + b": 1\nflagged: 1\n")
    for path, mode in (
        (outside / "1", 0o644),
        (outside / ".mh_sequences", 0o666),
        (writable, 0o666),
    ):
        os.chmod(path, mode)
    other_inbox = setup.roots["other"] / "inbox"
    other_inbox.mkdir()
    (other_inbox / "1").write_bytes(OUTSIDE_MESSAGE)
    _chown_tree(setup.roots["other"], UIDS["other"])

    root = setup.roots["demo"]
    (root / "inbox").mkdir()
    (root / "inbox" / "1").write_bytes(MESSAGE)
    (root / "inbox" / "2").symlink_to(outside / "1")
    (root / "outside").symlink_to(outside)
    (root / "otherlink").symlink_to(other_inbox)
    (root / "Archive").mkdir()
    (root / "Archive" / "1").write_bytes(MESSAGE)
    (root / "Archive" / ".mh_sequences").symlink_to(writable)
    (root / "Archive" / "deep").symlink_to(outside)
    _chown_tree(root, UIDS["demo"])
    return outside


def _login(server: Asimapd) -> LineClient:
    client = LineClient(server.tls_socket())
    assert client.line().startswith(b"* OK")
    assert client.command(b"l", b"LOGIN demo demo")[-1].startswith(b"l OK")
    return client


def _assert_no_secret(lines: list[bytes]) -> None:
    text = b"\n".join(lines)
    assert SECRET not in text, text[:2000]
    assert SEQ_SECRET not in text.lower(), text[:2000]


@pytest.mark.parametrize("locking", [False, True], ids=["nolock", "mhlock"])
def test_no_command_reaches_outside_the_mail_root(
    setup: MailSetup,
    tls_files: TlsFiles,
    locking: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _plant(setup)
    if locking:
        monkeypatch.setenv("ENABLE_MH_FILE_LOCKING", "1")
    before = _tree(setup.base, setup.roots["demo"])
    server = Asimapd(setup, tls_files.cert, tls_files.key)
    try:
        client = _login(server)
        lines = client.command(b"s", b"SELECT INBOX")
        assert lines[-1].startswith(b"s OK"), lines
        assert b"* 1 EXISTS" in lines, lines  # the symlinked message is no message
        _assert_no_secret(lines)
        fetched = client.command(b"f", b"FETCH 1:* (FLAGS BODY.PEEK[] ENVELOPE)")
        assert fetched[-1].startswith(b"f OK")
        _assert_no_secret(fetched)
        found = client.command(b"q", b"SEARCH TEXT " + SECRET)
        assert found[:-1] == [b"* SEARCH"], found
        # Flags of a folder whose .mh_sequences is a symlink out: neither
        # read (no keyword from it) nor written through.
        archive = client.command(b"a", b"SELECT Archive")
        assert archive[-1].startswith(b"a OK"), archive
        _assert_no_secret(archive)
        stored = client.command(b"t", b"STORE 1 +FLAGS (\\Seen \\Flagged kw)")
        assert stored[-1].startswith(b"t OK"), stored
        _assert_no_secret(stored)
        appended = client.command(b"p", b"APPEND Archive " + _literal(MESSAGE))
        assert appended[-1].startswith(b"p OK"), appended
        assert client.command(b"s2", b"SELECT INBOX")[-1].startswith(b"s2 OK")
        listed = client.command(b"L", b'LIST "" "*"')
        _assert_no_secret(listed)
        assert not any(
            b"outside" in line or b"otherlink" in line or b"deep" in line
            for line in listed
        ), listed
        # CATENATE URLs naming another user, or another server, are refused
        # (RFC 4469 section 6: NO [BADURL]).
        for tag, url in (
            (b"c1", b"imap://other@127.0.0.1/INBOX/;UID=1"),
            (b"c2", b"imap://127.0.0.1/%2E%2E/other/inbox/;UID=1"),
            (b"c3", b"/%2E%2E/other/inbox/;UID=1"),
            (b"c4", b"/INBOX/;UID=1;URLAUTH=anonymous"),
        ):
            answer = client.command(tag, b'APPEND Drafts CATENATE (URL "' + url + b'")')
            assert answer[-1].startswith(tag + b" NO"), answer
            _assert_no_secret(answer)
        failures: list[str] = []
        _run_hostile(client, HOSTILE, failures)
        # Once the client has enabled UTF-8 names (RFC 6855), modified UTF-7
        # no longer applies; overlong UTF-8 spellings of "." and "/" are
        # not UTF-8 at all and must be refused too.  (The modified UTF-7
        # spellings are then plain names with "&", harmless and allowed.)
        assert client.command(b"u8", b"ENABLE UTF8=ACCEPT")[-1].startswith(b"u8 OK")
        plain = [name for name in HOSTILE if b"&" not in name]
        _run_hostile(client, plain + OVERLONG, failures)
        assert not failures, "\n".join(failures)
        assert client.command(b"n", b"NOOP") == [b"n OK NOOP completed"]
        still = client.command(b"e", b"EXAMINE INBOX")
        assert b"* 1 EXISTS" in still, still  # MOVE to a bad name moved nothing
        client.close()
    finally:
        assert server.stop() == 0, server.log()
    after = _tree(setup.base, setup.roots["demo"])
    changed = {
        path: (before.get(path), after.get(path))
        for path in before.keys() | after.keys()
        if before.get(path) != after.get(path) and not path.endswith(".log")
    }
    assert not changed, changed
    root = setup.roots["demo"]
    assert (root / "inbox" / "2").is_symlink()
    assert os.readlink(root / "outside") == str(setup.base / "outside")


def test_a_message_file_swapped_for_a_symlink_is_not_read_through(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    """The user replaces a message the server already knows by a symlink to
    a file outside (same name, after the server indexed it)."""
    outside = _plant(setup)
    server = Asimapd(setup, tls_files.cert, tls_files.key)
    try:
        client = _login(server)
        assert client.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
        envelope = client.command(b"e", b"FETCH 1 ENVELOPE")
        assert b"inside" in envelope[0], envelope
        message = setup.roots["demo"] / "inbox" / "1"
        swapped = message.with_name(".swap")
        swapped.symlink_to(outside / "1")
        if IS_ROOT:
            os.lchown(swapped, UIDS["demo"], UIDS["demo"])
        os.replace(swapped, message)
        answers: list[bytes] = []
        for tag, command in (
            (b"f", b"FETCH 1 BODY.PEEK[]"),
            (b"g", b"FETCH 1 BODY.PEEK[TEXT]"),
            (b"h", b"FETCH 1 (RFC822.SIZE BODY.PEEK[HEADER])"),
            (b"i", b"SEARCH TEXT " + SECRET),
            (b"c", b"COPY 1 Drafts"),
        ):
            answers += client.command(tag, command)
        _assert_no_secret(answers)
        drafts = client.command(b"d", b"EXAMINE Drafts")
        draft_body = client.command(b"b", b"FETCH 1:* BODY.PEEK[]")
        _assert_no_secret(drafts + draft_body)
        assert client.command(b"n", b"NOOP") == [b"n OK NOOP completed"]
        client.close()
    finally:
        assert server.stop() == 0, server.log()
    # Nothing outside was copied into the root either.
    for path in setup.roots["demo"].rglob("*"):
        if path.is_file() and not path.is_symlink() and path.suffix != ".sqlite3":
            assert SECRET not in path.read_bytes(), path


#: Files and folders of the store itself that a user could replace by a
#: symlink out of the root: (entry in the root, whether it is a folder).
PLANTED = [
    (".asimap-store.sqlite3", False),
    (".asimap-store.sqlite3-wal", False),
    (".asimap-store.sqlite3-shm", False),
    (".asimap-reserve", False),
    (".asimap-reserve.new", False),
    ("inbox", True),
    ("Drafts", True),
]


@pytest.mark.parametrize(("entry", "folder"), PLANTED, ids=[p[0] for p in PLANTED])
def test_store_files_planted_as_symlinks_are_not_followed(
    setup: MailSetup, tls_files: TlsFiles, entry: str, folder: bool
) -> None:
    """The store's own database (and its side files), INBOX and a
    special-use folder, each a symlink to a world-writable target outside
    before the first login.  Serving may refuse the account, but must not
    read, write, create or change the mode of anything outside."""
    target = setup.base / "target"
    if folder:
        target.mkdir(mode=0o777)
        (target / "1").write_bytes(OUTSIDE_MESSAGE)
        os.chmod(target, 0o777)
        os.chmod(target / "1", 0o666)
    else:
        target.write_bytes(b"precious data of someone else\n")
        os.chmod(target, 0o666)
    # Owned by the user: as another account's file would be where every
    # account belongs to one service uid (asimapd not started as root), so
    # only the server's own rule keeps it out of reach.
    _chown_tree(target, UIDS["demo"])
    root = setup.roots["demo"]
    (root / entry).symlink_to(target)
    _chown_tree(root, UIDS["demo"])
    before = _tree(setup.base, root)
    server = Asimapd(
        setup, tls_files.cert, tls_files.key, "--enable-pop3", "--pop3-port=0"
    )
    try:
        # POP3 first (it takes no mailbox name, but serves INBOX).
        pop3 = LineClient(server.tls_socket("pop3s"))
        assert pop3.line().startswith(b"+OK")
        pop3.send(b"USER demo\r\nPASS demo\r\n")
        assert pop3.line().startswith(b"+OK")
        if pop3.line().startswith(b"+OK"):
            pop3.send(b"LIST\r\n")
            listing = [pop3.line()]
            while listing[-1] != b"." and not listing[0].startswith(b"-ERR"):
                listing.append(pop3.line())
            pop3.send(b"RETR 1\r\n")
            retrieved = [pop3.line()]
            while retrieved[-1] != b"." and not retrieved[0].startswith(b"-ERR"):
                retrieved.append(pop3.line())
            _assert_no_secret(listing + retrieved)
        pop3.close()
        client = LineClient(server.tls_socket())
        assert client.line().startswith(b"* OK")
        login = client.command(b"l", b"LOGIN demo demo")
        if login[-1].startswith(b"l OK"):
            answers: list[bytes] = []
            for tag, command in (
                (b"s", b"SELECT INBOX"),
                (b"f", b"FETCH 1:* BODY.PEEK[]"),
                (b"a", b"APPEND INBOX " + _literal(MESSAGE)),
                (b"d", b"APPEND Drafts " + _literal(MESSAGE)),
                (b"t", b"STORE 1:* +FLAGS (\\Seen)"),
                (b"x", b"STATUS Drafts (MESSAGES)"),
                (b"L", b'LIST "" "*"'),
            ):
                answers += client.command(tag, command)
            _assert_no_secret(answers)
        else:  # a refused store says why
            assert login[-1].startswith(b"l NO [NOPERM]"), login
            assert "is a symbolic link" in server.log()
        client.close()
    finally:
        assert server.stop() == 0, server.log()
    after = _tree(setup.base, root)
    changed = {
        path: (before.get(path), after.get(path))
        for path in before.keys() | after.keys()
        if before.get(path) != after.get(path) and not path.endswith(".log")
    }
    assert not changed, changed


def test_a_known_folder_swapped_for_a_symlink_is_not_written_through(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    """``Archive`` is selected when the user replaces the directory by a
    symlink to a directory outside that the worker's uid may write: FETCH,
    STORE, EXPUNGE in the selected mailbox, and APPEND, COPY, STATUS,
    CREATE, SELECT by name must put nothing there, and nothing from there
    reaches the client (each command checks the folder's path anew)."""
    _plant(setup)
    target = setup.base / "target"
    target.mkdir(mode=0o777)
    os.chmod(target, 0o777)
    (target / "1").write_bytes(OUTSIDE_MESSAGE)
    _chown_tree(target, UIDS["demo"])
    root = setup.roots["demo"]
    server = Asimapd(setup, tls_files.cert, tls_files.key)
    try:
        client = _login(server)
        for tag, command in (
            (b"s", b"SELECT Archive"),
            (b"a", b"APPEND Archive " + _literal(MESSAGE)),
            (b"p", b"NOOP"),
        ):
            assert client.command(tag, command)[-1].startswith(tag + b" OK")
        before = _tree(setup.base, root)
        os.rename(root / "Archive", root / ".Archive-moved")
        (root / "Archive").symlink_to(target)
        if IS_ROOT:
            os.lchown(root / "Archive", UIDS["demo"], UIDS["demo"])
        answers: list[bytes] = []
        for tag, command in (
            # Still selected when the swap happened.
            (b"f", b"FETCH 1:* (FLAGS BODY.PEEK[])"),
            (b"t", b"STORE 1:* +FLAGS (\\Seen \\Deleted kw)"),
            (b"a2", b"APPEND Archive " + _literal(MESSAGE)),
            (b"c", b"COPY 1:* Archive"),
            (b"x", b"EXPUNGE"),
            (b"o", b"NOOP"),
            (b"m", b"STATUS Archive (MESSAGES UIDNEXT)"),
            (b"n", b"CREATE Archive/sub"),
            (b"s2", b"SELECT Archive"),
            (b"l", b'LIST "" "*"'),
        ):
            answers += client.command(tag, command)
        _assert_no_secret(answers)
        assert client.command(b"z", b"NOOP")[-1].startswith(b"z OK")
        client.close()
    finally:
        assert server.stop() == 0, server.log()
    after = _tree(setup.base, root)
    changed = {
        path: (before.get(path), after.get(path))
        for path in before.keys() | after.keys()
        if before.get(path) != after.get(path) and not path.endswith(".log")
    }
    assert not changed, changed
