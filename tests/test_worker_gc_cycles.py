"""The main process frees a relayed connection without the cyclic collector.

With thousands of connections in the main process, a full collection of
the cyclic garbage collector walks every object of every connection and
stops them all meanwhile (seconds at 9,000 IDLE connections, every IDLE
connection waiting for its new mail).  So what a connection leaves behind
-- its pre-login driver and session once handed to a worker, its relay
once it closes -- must be freed by reference counting as soon as it is
let go: no reference cycles.  ``tests/gc_launcher.py`` runs a real
``asimapd`` whose main process keeps what the collector finds
unreachable (``gc.DEBUG_SAVEALL``) and reports it by type.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import TlsFiles
from worker_harness import PASSWORDS, Asimapd, LineClient, MailSetup, mail_setup

#: asimap's own objects, and the event loop's that only our code makes.
OURS = ("asimap.", "uvloop.", "asyncio.", "_asyncio.", "ssl.", "_ssl.")


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


@pytest.fixture
def probe(setup: MailSetup, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Under the mail setup's base (open to traversal), writable by the
    # workers' unprivileged users.
    folder = setup.base / "probe"
    folder.mkdir()
    os.chmod(folder, 0o777)
    monkeypatch.setenv("ASIMAP_GC_PROBE", str(folder))
    return folder


@pytest.fixture
def daemon(tls_files: TlsFiles, setup: MailSetup, probe: Path) -> Iterator[Asimapd]:
    server = Asimapd(setup, tls_files.cert, tls_files.key, launcher="gc_launcher.py")
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log()


def _report(probe: Path) -> dict[str, dict[str, int]]:
    """Collect in the main process: what it found unreachable (``garbage``)
    and what it still follows (``tracked``), by type."""
    report = probe / "garbage.json"
    report.unlink(missing_ok=True)
    (probe / "collect").touch()
    deadline = time.monotonic() + 10
    while not report.exists():
        assert time.monotonic() < deadline, "no garbage report"
        time.sleep(0.02)
    found: dict[str, dict[str, int]] = json.loads(report.read_text())
    return found


def _garbage(probe: Path) -> dict[str, int]:
    """Collect in the main process; what it found unreachable, by type."""
    counts = _report(probe)["garbage"]
    return {name: n for name, n in counts.items() if name.startswith(OURS)}


def _session(daemon: Asimapd, user: str) -> LineClient:
    client = LineClient(daemon.tls_socket())
    assert client.line().startswith(b"* OK")
    login = client.command(b"a", f"LOGIN {user} {PASSWORDS[user]}".encode())
    assert login[-1].startswith(b"a OK"), login
    assert client.command(b"b", b"SELECT INBOX")[-1].startswith(b"b OK")
    client.send(b"c IDLE\r\n")
    assert client.line().startswith(b"+ ")
    return client


def test_relayed_connections_leave_no_cycles(daemon: Asimapd, probe: Path) -> None:
    _garbage(probe)  # what start-up left
    clients = [_session(daemon, user) for user in ("demo", "other") * 3]
    # Handed to the workers and parked in IDLE: the pre-login side of each
    # connection is gone by now.
    assert _garbage(probe) == {}
    for client in clients[:3]:
        client.send(b"DONE\r\n")
        assert client.until_tagged(b"c")[-1].startswith(b"c OK")
        assert client.command(b"d", b"LOGOUT")[-1].startswith(b"d OK")
        assert client.rest() == b""
    for client in clients[3:]:
        client.sock.close()  # gone without a word
    found: dict[str, int] = {}
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        for name, n in _garbage(probe).items():
            found[name] = found.get(name, 0) + n
        time.sleep(0.1)
    assert found == {}, " ".join(f"{k}={v}" for k, v in sorted(found.items()))


def test_a_relayed_connection_keeps_nothing_of_its_login(
    daemon: Asimapd, probe: Path
) -> None:
    """The pre-login driver and session are let go once the worker has the
    connection: the relay is all the main process keeps (they were kept by
    the context the LOGIN ran in, copied into the relay's transport)."""
    clients = [_session(daemon, user) for user in ("demo", "other") * 2]
    tracked = _report(probe)["tracked"]
    kept = {
        name: tracked.get(name, 0)
        for name in (
            "asimap.imap.driver.ConnectionDriver",
            "asimap.imap.session.context.Context",
            "asimap.auth.account.Account",
        )
    }
    assert kept == dict.fromkeys(kept, 0)
    assert tracked.get("asimap.worker.relay.Relay") == len(clients)
    for client in clients:
        client.sock.close()


def _worker_tracked(daemon: Asimapd, probe: Path, user: str) -> dict[str, int]:
    """What the collector of ``user``'s worker follows, by type."""
    report = probe / f"worker-{daemon.wait_for_worker(user)}.json"
    report.unlink(missing_ok=True)
    (probe / "collect-worker").touch()
    deadline = time.monotonic() + 10
    while not report.exists():
        assert time.monotonic() < deadline, "no report from the worker"
        time.sleep(0.02)
    (probe / "collect-worker").unlink()
    tracked: dict[str, int] = json.loads(report.read_text())
    return tracked


def test_a_parked_connection_keeps_no_login_in_its_worker(
    daemon: Asimapd, probe: Path
) -> None:
    """The LOGIN a worker runs for the main process (with the one-time token
    as its password) is let go once answered, not kept by the connection's
    driver for as long as the connection lives."""
    clients = [_session(daemon, "demo") for _ in range(3)]
    tracked = _worker_tracked(daemon, probe, "demo")
    assert tracked.get("asimap.imap.session.session.Session") == len(clients)
    assert tracked.get("asimap.imap.commands.Login", 0) == 0
    for client in clients:
        client.sock.close()
