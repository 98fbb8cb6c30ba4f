"""``--trace`` in worker mode: the main process traces the conversation up
to the login, the worker traces the rest as its user, in the user's own
folder of the trace directory (``trace_dir/<user>/trace.jsonl``), made by
the worker while it was still root, owned by the user, mode 0700 -- so the
default setup (a root-owned 0700 trace directory) loses nothing after the
login.  POP3 is traced both sides of the login too.  The worker also logs
what it learned at handoff: address, TLS, the client's ID."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import TlsFiles
from worker_harness import IS_ROOT, UIDS, Asimapd, LineClient, MailSetup, mail_setup


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


def _converse(server: Asimapd) -> None:
    client = LineClient(server.tls_socket())
    assert client.line().startswith(b"* OK")
    assert client.command(b"i", b'ID ("name" "trace-test")')[-1].startswith(b"i OK")
    client.send(b"a LOGIN demo demo\r\nb SELECT INBOX\r\n")
    assert client.until_tagged(b"a")[-1].startswith(b"a OK")
    assert client.until_tagged(b"b")[-1].startswith(b"b OK")
    assert client.command(b"f", b"UID FETCH 1:* FLAGS")[-1].startswith(b"f OK")
    assert client.command(b"z", b"LOGOUT")[-1].startswith(b"z OK")
    assert client.rest() == b""


def _pop3(server: Asimapd) -> None:
    pop3 = LineClient(server.tls_socket("pop3s"))
    assert pop3.line().startswith(b"+OK")
    pop3.send(b"USER demo\r\nPASS demo\r\n")
    assert pop3.line().startswith(b"+OK") and pop3.line().startswith(b"+OK")
    pop3.send(b"STAT\r\n")
    assert pop3.line() == b"+OK 0 0"
    pop3.send(b"QUIT\r\n")
    assert pop3.line().startswith(b"+OK")
    assert pop3.rest() == b""


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_default_trace_dir_main_until_login_worker_after_in_its_own_folder(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    traces = setup.base / "traces"  # made by asimapd: root's, 0700
    server = Asimapd(
        setup,
        tls_files.cert,
        tls_files.key,
        "--trace",
        f"--trace-dir={traces}",
        "--enable-pop3",
        "--pop3-port=0",
    )
    try:
        _converse(server)
        _pop3(server)
    finally:
        assert server.stop() == 0, server.log()
    assert stat.S_IMODE(traces.stat().st_mode) == 0o700
    main_files = sorted(traces.glob("*.jsonl"))
    assert len(main_files) == 2, main_files  # the IMAP and the POP3 login
    main_text = json.dumps([_records(path) for path in main_files])
    assert "a LOGIN demo ***" in main_text and "PASS ***" in main_text
    assert "demo demo" not in main_text and "PASS demo" not in main_text
    # SELECT arrived in the LOGIN's packet: the main process read it (and
    # traced it) but the worker ran it.
    assert "b OK" not in main_text
    user_dir = traces / "demo"
    assert stat.S_IMODE(user_dir.stat().st_mode) == 0o700
    (user_file,) = user_dir.iterdir()
    assert user_file.name == "trace.jsonl"
    assert stat.S_IMODE(user_file.stat().st_mode) == 0o600
    if IS_ROOT:  # each process wrote as who it runs as
        assert all(path.stat().st_uid == 0 for path in main_files)
        assert user_dir.stat().st_uid == UIDS["demo"]
        assert user_file.stat().st_uid == UIDS["demo"]
    records = _records(user_file)
    imap = [r for r in records if r.get("conn") == 1]
    pop3 = [r for r in records if r.get("conn") == 2]
    imap_text, pop3_text = json.dumps(imap), json.dumps(pop3)
    assert "a OK [CAPABILITY" in imap_text
    assert "b SELECT INBOX" in imap_text and "b OK [READ-WRITE]" in imap_text
    assert "f UID FETCH 1:* FLAGS" in imap_text and "z LOGOUT" in imap_text
    assert imap[0]["event"] == "connect" and imap[-1]["event"] == "close"
    assert "STAT" in pop3_text and "+OK 0 0" in pop3_text and "QUIT" in pop3_text
    assert pop3[0]["listener"] == "pop3s"
    assert "demo demo" not in json.dumps(records)
    # What the worker was told about the connection is in its log.
    assert "from 127.0.0.1 (tls=True, id=[['name', 'trace-test']])" in server.log()
    assert "cannot trace" not in server.log()
