"""Real nmh tools on folders an IMAP client has selected and is IDLE on.

The whole server runs in-process on the MH store (real TLS, real driver,
session and file watcher), and a raw TLS client reads the bytes the server
sends during IDLE (RFC 2177), so each test can say *exactly* which untagged
responses an nmh command causes: ``inc`` -> EXISTS (+ RECENT), ``rmm`` /
``refile`` -> one EXPUNGE with the right sequence number and no other UID
renumbered, ``mark`` -> FETCH FLAGS (and a new ``* FLAGS`` for a new
keyword), ``folder -pack`` / ``sortm`` / ``scan`` / ``pick -list`` ->
nothing at all.  The reverse direction is checked too: what the client
stores and appends is what ``mark -list``, ``pick`` and ``scan`` see.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles, require_tool

NMH_BIN = Path("/usr/bin/mh")

#: How long a tool's effect may take to reach an IDLE client (the brief's
#: bound), and how long we listen afterwards for anything unexpected.
ARRIVAL_S = 1.0
QUIET_S = 2.0


# -- nmh -------------------------------------------------------------------


@dataclass
class Nmh:
    """nmh programs run as subprocesses, with a profile whose ``Path:`` is
    the MH root the server serves (nmh ``mh-profile(5)``)."""

    root: Path
    env: dict[str, str]

    def __call__(self, *argv: str, stdin: bytes | None = None) -> str:
        tool = require_tool(str(NMH_BIN / argv[0]))
        done = subprocess.run(
            [tool, *argv[1:]],
            env=self.env,
            input=stdin,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        return done.stdout.decode("utf-8", "replace")


def make_nmh(tmp_path: Path, root: Path) -> Nmh:
    profile = tmp_path / "mh_profile"
    profile.write_text(f"Path: {root}\nUnseen-Sequence: unseen\n")
    env = {
        "PATH": f"{NMH_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MH": str(profile),
        "HOME": str(tmp_path),
        "LC_ALL": "C",
    }
    return Nmh(root, env)


def message(tag: str, date: str = "Mon, 1 Jan 2024 10:00:00 +0000") -> bytes:
    """A small message (LF line ends, as in an mbox) identified by ``tag``."""
    return (
        f"From: a@example.org\nTo: demo@example.org\nSubject: {tag}\n"
        f"Date: {date}\nMessage-ID: <{tag}@example.org>\n\nBody of {tag}\n"
    ).encode()


def mbox_of(messages: list[bytes]) -> bytes:
    """An mbox (``From `` separator lines) for ``inc -file``."""
    return b"".join(
        b"From a@example.org Mon Jan  1 10:00:00 2024\n" + m + b"\n" for m in messages
    )


def inc(nmh: Nmh, tmp_path: Path, messages: list[bytes], folder: str = "inbox") -> None:
    mbox = tmp_path / f"inc-{time.monotonic_ns()}.mbox"
    mbox.write_bytes(mbox_of(messages))
    nmh("inc", f"+{folder}", "-file", str(mbox), "-notruncate", "-silent")


def sequence(nmh: Nmh, folder: str, name: str) -> set[int]:
    """Message numbers in an MH sequence, as ``mark -list`` reports them."""
    out = nmh("mark", f"+{folder}", "-list", "-sequence", name)
    _, _, ranges = out.partition(":")
    numbers: set[int] = set()
    for token in ranges.split():
        low, _, high = token.partition("-")
        numbers.update(range(int(low), int(high or low) + 1))
    return numbers


# -- a raw IMAP client -------------------------------------------------------


_LITERAL = re.compile(rb"\{(\d+)\}$")


@dataclass
class RawClient:
    """An IMAPS client that keeps every byte the server sends, so a test
    can assert the exact untagged responses (imaplib hides them)."""

    sock: ssl.SSLSocket
    buffer: bytes = b""
    counter: int = 0
    log: list[bytes] = field(default_factory=list)

    @classmethod
    def connect(cls, server: ServerThread, tls: TlsFiles) -> RawClient:
        raw = socket.create_connection((server.host, server.imaps_port), timeout=10)
        sock = tls.client_context().wrap_socket(raw, server_hostname="localhost")
        client = cls(sock)
        assert client.read_line(10).startswith(b"* OK")
        return client

    def read_line(self, timeout: float) -> bytes:
        """One response line, literals inlined; b"" when ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        line = b""
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                part, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
                line += part
                literal = _LITERAL.search(part)
                if literal is None:
                    self.log.append(line)
                    return line
                size = int(literal.group(1))
                while len(self.buffer) < size:
                    self._fill(deadline, required=True)
                line += b"\r\n" + self.buffer[:size]
                self.buffer = self.buffer[size:]
                continue
            if not self._fill(deadline, required=bool(line)):
                return b""

    def _fill(self, deadline: float, *, required: bool) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if required:
                raise AssertionError(f"response cut short: {self.buffer!r}")
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            if required:
                raise AssertionError(f"response cut short: {self.buffer!r}") from None
            return False
        if not chunk:
            raise AssertionError("server closed the connection")
        self.buffer += chunk
        return True

    def command(
        self, text: str, timeout: float = 10, accept: tuple[bytes, ...] = (b"OK",)
    ) -> tuple[list[bytes], bytes]:
        """Send one command; (untagged lines, tagged line).  Fails unless the
        tagged status is in ``accept``."""
        self.counter += 1
        tag = f"t{self.counter}".encode()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        untagged: list[bytes] = []
        while True:
            line = self.read_line(timeout)
            assert line, f"no answer to {text!r}"
            if line.startswith(tag + b" "):
                status = line[len(tag) + 1 :].split(b" ", 1)[0]
                assert status in accept, (text, line, untagged)
                return untagged, line
            untagged.append(line)

    def append(self, mailbox: str, data: bytes, flags: str = "") -> int:
        """APPEND with a synchronising literal; the APPENDUID UID (RFC 4315)."""
        self.counter += 1
        tag = f"t{self.counter}".encode()
        flag_part = f" ({flags})" if flags else ""
        head = f'{tag.decode()} APPEND "{mailbox}"{flag_part} {{{len(data)}}}\r\n'
        self.sock.sendall(head.encode())
        assert self.read_line(10).startswith(b"+")
        self.sock.sendall(data + b"\r\n")
        while True:
            line = self.read_line(10)
            if line.startswith(tag + b" "):
                break
        found = re.search(rb"\[APPENDUID \d+ (\d+)\]", line)
        assert line.startswith(tag + b" OK") and found, line
        return int(found.group(1))

    def login_select(self, mailbox: str) -> list[bytes]:
        self.command(f"LOGIN {USER} {PASSWORD}")
        untagged, _ = self.command(f'SELECT "{mailbox}"')
        return untagged

    def idle(self) -> None:
        self.counter += 1
        self._idle_tag = f"t{self.counter}".encode()
        self.sock.sendall(self._idle_tag + b" IDLE\r\n")
        assert self.read_line(10).startswith(b"+ ")

    def done(self) -> list[bytes]:
        """End IDLE; whatever arrived before the tagged OK."""
        self.sock.sendall(b"DONE\r\n")
        late: list[bytes] = []
        while True:
            line = self.read_line(10)
            assert line, "no answer to DONE"
            if line.startswith(self._idle_tag + b" "):
                assert line.startswith(self._idle_tag + b" OK"), line
                return late
            late.append(line)

    def collect(self, seconds: float) -> list[tuple[float, bytes]]:
        """Every line that arrives within ``seconds``, with its arrival time."""
        start = time.monotonic()
        got: list[tuple[float, bytes]] = []
        while (left := start + seconds - time.monotonic()) > 0:
            line = self.read_line(left)
            if line:
                got.append((time.monotonic() - start, line))
        return got

    def uid_map(self) -> list[int]:
        """UIDs by sequence number, from ``UID FETCH 1:* (UID)``."""
        untagged, _ = self.command("UID FETCH 1:* (UID)")
        pairs = []
        for line in untagged:
            found = re.fullmatch(rb"\* (\d+) FETCH \(UID (\d+)\)", line)
            assert found, line
            pairs.append((int(found.group(1)), int(found.group(2))))
        assert [seq for seq, _ in pairs] == list(range(1, len(pairs) + 1))
        return [uid for _, uid in pairs]

    def flags_by_uid(self) -> dict[int, bytes]:
        untagged, _ = self.command("UID FETCH 1:* (FLAGS)")
        result: dict[int, bytes] = {}
        for line in untagged:
            found = re.fullmatch(rb"\* \d+ FETCH \(UID (\d+) FLAGS \((.*)\)\)", line)
            if found is None:
                found = re.fullmatch(
                    rb"\* \d+ FETCH \(FLAGS \((.*)\) UID (\d+)\)", line
                )
                assert found, line
                result[int(found.group(2))] = found.group(1)
            else:
                result[int(found.group(1))] = found.group(2)
        return result

    def close(self) -> None:
        self.sock.close()


def expect_during_idle(
    client: RawClient, expected: list[bytes], quiet: float = QUIET_S
) -> None:
    """Exactly ``expected`` arrives, each line within ARRIVAL_S of the call
    (the tool has just finished), then nothing else for ``quiet`` seconds."""
    got = client.collect(ARRIVAL_S + quiet)
    assert [line for _, line in got] == expected, got
    late = [(at, line) for at, line in got if at > ARRIVAL_S]
    assert not late, f"responses later than {ARRIVAL_S} s: {late}"


# -- fixtures ---------------------------------------------------------------


@dataclass
class Live:
    server: ServerThread
    tls: TlsFiles
    nmh: Nmh
    tmp: Path

    def client(self, mailbox: str = "INBOX") -> RawClient:
        client = RawClient.connect(self.server, self.tls)
        self.opened.append(client)
        client.login_select(mailbox)
        return client

    opened: list[RawClient] = field(default_factory=list)


@pytest.fixture
def live(
    tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory
) -> Iterator[Live]:
    """A server on the MH store whose only account's root nmh also uses.

    Four messages are inc'ed *before* the server first sees the folder, so
    they are imported as not \\Recent and the flag tests see plain flags;
    their Date: headers are out of order so that ``sortm`` renumbers.
    """
    from asimap.auth.hashers import make_password

    root = tmp_path / "Mail"
    nmh = make_nmh(tmp_path, root)
    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"{USER}:{make_password(PASSWORD, iterations=1000)}:Mail\n")
    root.mkdir()
    nmh("folder", "-create", "+inbox")
    nmh("folder", "-create", "+other")
    dates = ["4", "1", "3", "2"]
    inc(
        nmh,
        tmp_path,
        [
            message(f"m{n}", f"Mon, {day} Jan 2024 10:00:00 +0000")
            for n, day in zip(range(1, 5), dates, strict=True)
        ],
    )
    server = server_factory(pwfile=pwfile, store="mh")
    result = Live(server, tls_files, nmh, tmp_path)
    yield result
    for client in result.opened:
        client.close()


# -- nmh -> IMAP -----------------------------------------------------------


def test_select_imports_nmh_messages_without_recent(live: Live) -> None:
    client = RawClient.connect(live.server, live.tls)
    live.opened.append(client)
    untagged = client.login_select("INBOX")
    assert b"* 4 EXISTS" in untagged and b"* 0 RECENT" in untagged
    assert client.uid_map() == [1, 2, 3, 4]


def test_inc_is_exists_and_recent(live: Live) -> None:
    client = live.client()
    client.idle()
    inc(live.nmh, live.tmp, [message(f"new{n}") for n in range(3)])
    # RFC 3501 7.3.1/7.3.2: EXISTS, then RECENT -- this session claims the
    # new messages' \Recent because it is the first to see them.
    expect_during_idle(client, [b"* 7 EXISTS", b"* 3 RECENT"])
    assert client.done() == []
    assert client.uid_map() == [1, 2, 3, 4, 5, 6, 7]
    untagged, _ = client.command(
        "UID FETCH 5:7 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
    )
    assert [b"\\Recent" in line for line in untagged] == [True] * 3
    assert [re.search(rb"Subject: (\w+)", line).group(1) for line in untagged] == [  # type: ignore[union-attr]
        b"new0",
        b"new1",
        b"new2",
    ]


def test_rmm_and_rmm_unlink_expunge_only_that_message(live: Live) -> None:
    client = live.client()
    client.idle()
    live.nmh("rmm", "+inbox", "2")  # renames 2 to ,2 (nmh rmm(1))
    assert (live.nmh.root / "inbox" / ",2").exists()
    expect_during_idle(client, [b"* 2 EXPUNGE"])
    assert client.done() == []
    assert client.uid_map() == [1, 3, 4]  # no other UID renumbered
    client.idle()
    live.nmh("rmm", "+inbox", "-unlink", "3")  # UID 3, now sequence number 2
    assert not (live.nmh.root / "inbox" / ",3").exists()
    expect_during_idle(client, [b"* 2 EXPUNGE"])
    assert client.done() == []
    assert client.uid_map() == [1, 4]


def test_refile_expunges_here_and_is_new_there(live: Live) -> None:
    inbox = live.client()
    other = live.client("other")
    untagged, _ = other.command('STATUS "other" (UIDNEXT)')
    uidnext = int(re.search(rb"UIDNEXT (\d+)", untagged[0]).group(1))  # type: ignore[union-attr]
    inbox.idle()
    other.idle()
    live.nmh("refile", "+other", "-src", "+inbox", "3")
    expect_during_idle(inbox, [b"* 3 EXPUNGE"], quiet=0.5)
    expect_during_idle(other, [b"* 1 EXISTS", b"* 1 RECENT"], quiet=0.5)
    assert inbox.done() == [] and other.done() == []
    assert inbox.uid_map() == [1, 2, 4]
    assert other.uid_map() == [uidnext]
    untagged, _ = other.command("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert b"<m3@example.org>" in untagged[0]


def test_mark_changes_flags_and_keywords(live: Live) -> None:
    client = live.client()
    client.idle()
    live.nmh("mark", "+inbox", "1", "-sequence", "flagged", "-add")
    expect_during_idle(client, [b"* 1 FETCH (FLAGS (\\Flagged))"], quiet=0.5)
    live.nmh("mark", "+inbox", "1", "-sequence", "unseen", "-delete")
    # Leaving the unseen sequence is \Seen (design.md section 2).
    expect_during_idle(client, [b"* 1 FETCH (FLAGS (\\Flagged \\Seen))"], quiet=0.5)
    live.nmh("mark", "+inbox", "1", "-sequence", "foo", "-add")
    # RFC 3501 7.2.6: FLAGS lists the new keyword before it is used.
    expect_during_idle(
        client,
        [
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft foo)",
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft"
            b" foo \\*)] Flags permitted",
            b"* 1 FETCH (FLAGS (\\Flagged \\Seen foo))",
        ],
    )
    assert client.done() == []
    assert client.flags_by_uid()[1] == b"\\Flagged \\Seen foo"


def test_folder_pack_is_invisible(live: Live) -> None:
    client = live.client()
    client.command("UID STORE 3 +FLAGS (\\Flagged)")
    client.idle()
    live.nmh("rmm", "+inbox", "2")
    expect_during_idle(client, [b"* 2 EXPUNGE"], quiet=0.2)
    assert client.done() == []
    assert client.uid_map() == [1, 3, 4]
    before_flags = client.flags_by_uid()
    client.idle()
    live.nmh("folder", "+inbox", "-pack")
    numbers = sorted(
        int(p.name) for p in (live.nmh.root / "inbox").iterdir() if p.name.isdigit()
    )
    assert numbers == [1, 2, 3]  # really renumbered on disk
    expect_during_idle(client, [])
    assert client.done() == []
    assert client.uid_map() == [1, 3, 4]
    assert client.flags_by_uid() == before_flags
    assert sequence(live.nmh, "inbox", "flagged") == {2}  # UID 3 is now 2


def test_sortm_is_invisible(live: Live) -> None:
    client = live.client()
    client.command("UID STORE 1 +FLAGS (\\Answered)")
    before_flags = client.flags_by_uid()
    ids_before = _message_ids_by_uid(client)
    client.idle()
    live.nmh("sortm", "+inbox")
    # Dates were 4,1,3,2 January: sortm really moved the files.
    assert b"m2@" in (live.nmh.root / "inbox" / "1").read_bytes()
    expect_during_idle(client, [])
    assert client.done() == []
    assert client.uid_map() == [1, 2, 3, 4]
    assert client.flags_by_uid() == before_flags
    assert _message_ids_by_uid(client) == ids_before
    assert sequence(live.nmh, "inbox", "replied") == {4}  # m1 is now last


def test_read_only_tools_are_invisible(live: Live) -> None:
    client = live.client()
    client.idle()
    assert len(live.nmh("scan", "+inbox").splitlines()) == 4
    assert live.nmh("pick", "+inbox", "-subject", "m3", "-list").split() == ["3"]
    # A private sequence lives in the context file, not in the folder.
    live.nmh("pick", "+inbox", "-subject", "m3", "-sequence", "x", "-nopublic")
    expect_during_idle(client, [])
    assert client.done() == []


def test_public_pick_sequence_is_a_keyword(live: Live) -> None:
    """``pick -sequence x`` is *not* read-only: it writes a public
    sequence, which is keyword ``x`` (design.md section 2)."""
    client = live.client()
    client.idle()
    live.nmh("pick", "+inbox", "-subject", "m3", "-sequence", "x")
    expect_during_idle(
        client,
        [
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft x)",
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft"
            b" x \\*)] Flags permitted",
            b"* 3 FETCH (FLAGS (x))",
        ],
    )
    assert client.done() == []


def _message_ids_by_uid(client: RawClient) -> dict[int, bytes]:
    untagged, _ = client.command(
        "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
    )
    result: dict[int, bytes] = {}
    for line in untagged:
        uid = re.search(rb"UID (\d+)", line)
        mid = re.search(rb"<[^>]+>", line)
        assert uid and mid, line
        result[int(uid.group(1))] = mid.group(0)
    return result


# -- IMAP -> nmh -----------------------------------------------------------


def test_flags_stored_over_imap_are_nmh_sequences(live: Live) -> None:
    client = live.client()
    client.command("UID STORE 2,4 +FLAGS (\\Flagged)")
    client.command("UID STORE 3 +FLAGS (\\Seen \\Answered Work)")
    assert sequence(live.nmh, "inbox", "flagged") == {2, 4}
    assert sequence(live.nmh, "inbox", "replied") == {3}
    assert sequence(live.nmh, "inbox", "Work") == {3}
    assert sequence(live.nmh, "inbox", "unseen") == {1, 2, 4}
    assert live.nmh("pick", "+inbox", "flagged", "-list").split() == ["2", "4"]
    client.command("UID STORE 2 -FLAGS (\\Flagged)")
    assert live.nmh("pick", "+inbox", "flagged", "-list").split() == ["4"]


def test_appended_messages_are_listed_by_scan(live: Live) -> None:
    client = live.client()
    data = (
        b"From: Carol <carol@example.org>\r\nTo: demo@example.org\r\n"
        b"Subject: appended over imap\r\nDate: Tue, 2 Jan 2024 09:00:00 +0000\r\n"
        b"Message-ID: <appended@example.org>\r\n\r\nHello nmh.\r\n"
    )
    uid = client.append("INBOX", data, "\\Seen")
    assert uid == 5
    lines = live.nmh("scan", "+inbox").splitlines()
    assert len(lines) == 5
    assert "appended over imap" in lines[4] and lines[4].split()[0] == "5"
    path = live.nmh("mhpath", "+inbox", "5").strip()
    assert Path(path).read_bytes() == data
    assert 5 not in sequence(live.nmh, "inbox", "unseen")
