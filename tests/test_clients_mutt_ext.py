r"""mutt with CONDSTORE, QRESYNC, a header cache and IDLE, on MH.

Issue 6 (Show) lists mutt among the real clients.  With
``imap_condstore``/``imap_qresync`` and a header cache, Debian's mutt 2.2
sends ``ENABLE QRESYNC``, ``SELECT ... (CONDSTORE)`` and, on later opens,
``UID FETCH <cached uids> (FLAGS) (CHANGEDSINCE <cached modseq> VANISHED)``
(RFC 7162 3.2.6) instead of fetching every header again; it waits in the
index in IDLE (RFC 2177).  mutt 2.2 has no MOVE support: ``save-message``
to another folder is ``UID COPY`` + ``\Deleted`` + ``EXPUNGE`` (UID MOVE
is exercised by the IMAPClient tests instead).  mutt needs a terminal, so
it runs under ``script`` (util-linux), fed by ``push`` commands or, for
IDLE, by a keystroke written to ``script``'s stdin.

The server runs in process on the MH store with protocol traces on, so a
test can check which commands mutt really sent; the outcome is checked
through imaplib and in the MH files themselves.
"""

from __future__ import annotations

import email.parser
import email.policy
import imaplib
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles, require_tool

TIMEOUT = 10.0
MUTT_TIMEOUT = 60


def message(ident: str, subject: str) -> bytes:
    return (
        f"From: Alice <alice@example.org>\r\n"
        f"To: Demo <demo@example.org>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
        f"Message-ID: <{ident}@example.org>\r\n"
        f"\r\n"
        f"Body of {ident}.\r\n"
    ).encode()


def message_id(content: bytes) -> str:
    parsed = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
        content
    )
    return str(parsed["Message-ID"]).strip().strip("<>").split("@")[0]


@dataclass
class Mutt:
    """A server on the MH store plus everything a mutt run needs."""

    server: ServerThread
    tls: TlsFiles
    tmp: Path
    root: Path
    traces: Path

    def imap(self) -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL(
            self.server.host,
            self.server.imaps_port,
            ssl_context=self.tls.client_context(),
            timeout=TIMEOUT,
        )
        client.login(USER, PASSWORD)
        return client

    def config(self, *extra: str) -> Path:
        """A muttrc: CONDSTORE, QRESYNC, a header cache and a body cache
        that persist between runs, no questions asked."""
        path = self.tmp / "muttrc"
        path.write_text(
            f"set folder=imaps://{USER}@{self.server.host}:{self.server.imaps_port}/\n"
            "set spoolfile=+INBOX\n"
            f"set imap_pass={PASSWORD}\n"
            f"set ssl_ca_certificates_file={self.tls.cert}\n"
            "set ssl_verify_host=yes\n"
            "set certificate_file=/dev/null\n"
            f"set header_cache={self.tmp}/hcache/\n"
            f"set message_cachedir={self.tmp}/bodies/\n"
            "set imap_condstore=yes\n"
            "set imap_qresync=yes\n"
            "set imap_passive=no\n"
            "set sort=mailbox-order\n"
            "unset resolve\n"
            "unset mark_old\n"
            "set delete=yes\n"
            "set confirmappend=no\n"
            "set move=no\n"
            "set quit=yes\n"
            "set timeout=5\n"
            "set mail_check=60\n" + "".join(f"{line}\n" for line in extra)
        )
        (self.tmp / "hcache").mkdir(exist_ok=True)
        (self.tmp / "bodies").mkdir(exist_ok=True)
        return path

    def env(self) -> dict[str, str]:
        return dict(
            os.environ, TERM="xterm", HOME=str(self.tmp), COLUMNS="120", LINES="40"
        )

    def run(self, keys: str, *extra: str) -> str:
        """One bounded mutt run that opens INBOX and executes ``keys``."""
        mutt, script = require_tool("mutt"), require_tool("script")
        config = self.config("unset imap_idle", *extra)
        command = f"{mutt} -n -F {config} -e 'push \"{keys}\"'"
        result = subprocess.run(
            [script, "-qec", command, "/dev/null"],
            capture_output=True,
            timeout=MUTT_TIMEOUT,
            env=self.env(),
            check=False,
            stdin=subprocess.DEVNULL,
        )
        output = result.stdout.decode(errors="replace")
        assert result.returncode == 0, output[-2000:]
        return output

    def client_commands(self) -> list[str]:
        """Every command line clients sent so far, from the traces."""
        lines: list[str] = []
        for path in sorted(self.traces.glob("*.jsonl")):
            records = [json.loads(line) for line in path.read_text().splitlines()]
            # Trace data is escaped text (asimap.ops.trace.escape): a CRLF
            # is the four characters \r\n.
            text = "".join(r["data"] for r in records if r.get("dir") == "c")
            lines += text.split("\\r\\n")
        return lines

    def connection_records(
        self, timeout: float = TIMEOUT
    ) -> list[list[tuple[str, str]]]:
        """Per connection, once every trace is closed: (direction, line)
        with the tag removed from client lines, in order."""
        deadline = time.monotonic() + timeout
        while True:
            files = sorted(self.traces.glob("*.jsonl"))
            texts = [path.read_text() for path in files]
            if all(t.rstrip().endswith('"event": "close"}') for t in texts):
                break
            assert time.monotonic() < deadline, "traces not closed"
            time.sleep(0.05)
        result = []
        for text in texts:
            lines: list[tuple[str, str]] = []
            for entry in text.splitlines():
                record = json.loads(entry)
                if "data" not in record:
                    continue
                for line in record["data"].split("\\r\\n"):
                    if not line:
                        continue
                    if record["dir"] == "c" and line != "DONE":
                        line = line.partition(" ")[2]
                    lines.append((record["dir"], line))
            result.append(lines)
        return result

    def folder_ids(self, folder: str) -> dict[int, str]:
        """MH message number -> Message-ID tag, read from the files."""
        directory = self.root / folder
        return {
            int(p.name): message_id(p.read_bytes())
            for p in directory.iterdir()
            if p.name.isdigit()
        }

    def sequences(self, folder: str) -> dict[str, set[int]]:
        """The folder's ``.mh_sequences`` (mh-sequence(5)), parsed."""
        result: dict[str, set[int]] = {}
        path = self.root / folder / ".mh_sequences"
        for line in path.read_text().splitlines():
            name, _, ranges = line.partition(":")
            numbers: set[int] = set()
            for token in ranges.split():
                low, _, high = token.partition("-")
                numbers.update(range(int(low), int(high or low) + 1))
            result[name.strip()] = numbers
        return result


@pytest.fixture
def mutt(tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory) -> Mutt:
    """INBOX holds m1..m4 (m4 already \\Seen)."""
    from asimap.auth.hashers import make_password

    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"{USER}:{make_password(PASSWORD, iterations=1000)}:Mail\n")
    (tmp_path / "Mail").mkdir()
    traces = tmp_path / "traces"
    traces.mkdir(mode=0o700)
    server = server_factory(
        pwfile=pwfile, store="mh", workers=False, trace=True, trace_dir=traces
    )
    result = Mutt(server, tls_files, tmp_path, tmp_path / "Mail", traces)
    client = result.imap()
    try:
        for n in range(1, 5):
            flags = "(\\Seen)" if n == 4 else None
            typ, data = client.append("INBOX", flags, None, message(f"m{n}", f"M{n}"))
            assert typ == "OK", data
    finally:
        client.logout()
    return result


def flags_by_id(client: imaplib.IMAP4_SSL, mailbox: str) -> dict[str, set[str]]:
    typ, data = client.select(f'"{mailbox}"', readonly=True)
    assert typ == "OK", data
    if data == [b"0"]:
        return {}
    typ, fetched = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", fetched
    result: dict[str, set[str]] = {}
    for item in fetched:
        if not isinstance(item, tuple):
            continue
        meta, body = item
        found = re.search(rb"FLAGS \(([^)]*)\)", meta)
        assert found is not None, meta
        flags = set(found[1].decode().split()) - {"\\Recent"}
        result[message_id(body)] = flags
    return result


def test_mutt_flag_delete_save_and_resync_with_qresync(mutt: Mutt) -> None:
    # First run: flag m1, delete m2, save m3 to Archive, sync.
    mutt.run(
        "<first-entry><flag-message>"
        "<next-entry><delete-message>"
        "<next-entry><save-message>=Archive<enter>"
        "<sync-mailbox><quit>"
    )
    sent = mutt.client_commands()
    assert any(re.search(r"ENABLE .*QRESYNC", line) for line in sent), sent
    # mutt 2.2 saves with UID COPY, then marks the original \Deleted (it
    # has no MOVE support; neomutt has).
    assert 'UID COPY 3 "Archive"' in [line.partition(" ")[2] for line in sent]

    client = mutt.imap()
    try:
        assert flags_by_id(client, "INBOX") == {
            "m1": {"\\Flagged"},
            "m4": {"\\Seen"},
        }
        assert flags_by_id(client, "Archive") == {"m3": set()}
    finally:
        client.logout()
    # The MH files agree: m2 and m3 left inbox, m3 is in Archive, and the
    # flag is in the flagged sequence (design.md section 2).
    inbox = mutt.folder_ids("inbox")
    assert sorted(inbox.values()) == ["m1", "m4"]
    assert list(mutt.folder_ids("Archive").values()) == ["m3"]
    number = {tag: n for n, tag in inbox.items()}
    assert mutt.sequences("inbox")["flagged"] == {number["m1"]}

    # Between the runs another client expunges m1, answers m4 and appends
    # m5.  The second run resynchronises from the header cache with QRESYNC
    # (RFC 7162 3.2.5): if it missed the VANISHED m1 or the new m5, the
    # first entry it deletes would not be m4.
    client = mutt.imap()
    try:
        client.select("INBOX")
        typ, data = client.uid("SEARCH", "HEADER", "Message-ID", "m1")
        assert typ == "OK" and data[0], data
        client.uid("STORE", data[0].decode(), "+FLAGS", "(\\Deleted)")
        assert client.expunge()[0] == "OK"
        typ, data = client.uid("SEARCH", "HEADER", "Message-ID", "m4")
        client.uid("STORE", data[0].decode(), "+FLAGS", "(\\Answered)")
        assert client.append("INBOX", None, None, message("m5", "M5"))[0] == "OK"
    finally:
        client.logout()
    before = len(mutt.client_commands())
    output = mutt.run("<first-entry><delete-message><sync-mailbox><quit>")
    sent = mutt.client_commands()[before:]
    # mutt 2.2 resynchronises with the header cache's UIDs and modseq as
    # RFC 7162 3.2.6 allows: UID FETCH ... (CHANGEDSINCE m VANISHED), which
    # the server answers with VANISHED (EARLIER); then it fetches the
    # headers of the one new message only (m5, sequence number 2).
    commands = [line.partition(" ")[2] for line in sent]
    assert any(
        re.fullmatch(r"UID FETCH [\d:,]+ \(FLAGS\) \(CHANGEDSINCE \d+ VANISHED\)", c)
        for c in commands
    ), sent
    headers = [c for c in commands if "BODY.PEEK[HEADER.FIELDS" in c]
    assert [c.split()[:2] for c in headers] == [["FETCH", "2"]], sent
    assert "M5" in output, output[-2000:]
    client = mutt.imap()
    try:
        assert flags_by_id(client, "INBOX") == {"m5": set()}
    finally:
        client.logout()
    assert list(mutt.folder_ids("inbox").values()) == ["m5"]


class Screen:
    """mutt's terminal output, read by a thread so that mutt never blocks
    on a full pipe and the test can wait for text to appear."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self._stdout = process.stdout
        self._data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while chunk := os.read(self._stdout.fileno(), 65536):
            with self._lock:
                self._data += chunk

    def text(self) -> str:
        with self._lock:
            return self._data.decode(errors="replace")

    def wait_for(self, needle: str, timeout: float) -> float:
        """Seconds until ``needle`` was on the screen; fails after timeout."""
        start = time.monotonic()
        while needle not in self.text():
            assert time.monotonic() - start < timeout, self.text()[-2000:]
            time.sleep(0.05)
        return time.monotonic() - start


def test_mutt_idle_shows_mail_appended_by_another_connection(mutt: Mutt) -> None:
    """mutt in the index, IDLE on (RFC 2177), sees a new message another
    client appends, without a key being pressed."""
    binary, script = require_tool("mutt"), require_tool("script")
    # mutt checks the mailbox (and so polls its IDLE connection) when no key
    # came for $timeout seconds.
    config = mutt.config("set imap_idle=yes", "set timeout=1", "set mail_check=1")
    process = subprocess.Popen(
        [script, "-qec", f"{binary} -n -F {config}", "/dev/null"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=mutt.env(),
    )
    try:
        screen = Screen(process)
        screen.wait_for("M4", TIMEOUT)  # the index is drawn
        # mutt enters IDLE right after loading the index; the traces are
        # buffered, so whether it did is checked from them at the end.
        time.sleep(1.0)
        client = mutt.imap()
        try:
            typ, data = client.append("INBOX", None, None, message("m9", "IdleNews9"))
            assert typ == "OK", data
        finally:
            client.logout()
        # mutt's own check interval ($timeout) bounds how soon it looks.
        screen.wait_for("IdleNews9", TIMEOUT)
        assert process.stdin is not None
        process.stdin.write(b"q")
        process.stdin.flush()
        assert process.wait(TIMEOUT) == 0, screen.text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
    # mutt's connection (the one that used AUTHENTICATE; imaplib LOGINs):
    # the new message's EXISTS reached it while it was idling, and it
    # then left IDLE (RFC 2177: DONE) to fetch the headers.
    [records] = [
        r for r in mutt.connection_records() if ("c", "AUTHENTICATE PLAIN ***") in r
    ]
    events = [
        (direction, text)
        for direction, text in records
        if (direction, text) in {("c", "IDLE"), ("s", "* 5 EXISTS"), ("c", "DONE")}
    ]
    # (It may idle again before the "q" is read; only the first round
    # matters.)
    assert events[:3] == [("c", "IDLE"), ("s", "* 5 EXISTS"), ("c", "DONE")], records
