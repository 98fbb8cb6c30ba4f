"""Worker mode under faults and signals: SIGKILL of a worker mid-APPEND,
SIGHUP reloads, SIGTERM drains.  Real processes on loopback."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asimap.store.mh.files import TEMP_PREFIX
from asimap.tls import generate_self_signed
from conftest import TlsFiles
from worker_harness import (
    IS_ROOT,
    PASSWORDS,
    UIDS,
    Asimapd,
    LineClient,
    MailSetup,
    alive,
    mail_setup,
    wait_until_gone,
)


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


def login(
    server: Asimapd, user: str = "demo", password: str | None = None
) -> LineClient:
    client = LineClient(server.tls_socket())
    assert client.line().startswith(b"* OK")
    secret = PASSWORDS[user] if password is None else password
    reply = client.command(b"a", f"LOGIN {user} {secret}".encode())
    assert reply[-1].startswith(b"a OK"), reply
    return client


def message(n: int, size: int = 2000) -> bytes:
    head = f"From: a@example.org\r\nSubject: kept {n}\r\nMessage-ID: <k{n}@x>\r\n\r\n"
    return head.encode() + (b"%d" % n) * (size // len(b"%d" % n)) + b"\r\n"


def test_sigkill_mid_append_keeps_acknowledged_mail_and_nothing_partial(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    server = Asimapd(
        setup, tls_files.cert, tls_files.key, "--enable-pop3", "--pop3-port=0"
    )
    try:
        writer = login(server)
        kept = [message(n) for n in range(3)]
        for n, raw in enumerate(kept):
            writer.send(b"w%d APPEND INBOX {%d+}\r\n" % (n, len(raw)) + raw + b"\r\n")
            assert writer.until_tagged(b"w%d" % n)[-1].startswith(b"w%d OK" % n)
        watcher = login(server)
        assert watcher.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
        pop3 = LineClient(server.tls_socket("pop3s"))
        assert pop3.line().startswith(b"+OK")
        pop3.send(b"USER demo\r\nPASS demo\r\n")
        assert pop3.line().startswith(b"+OK") and pop3.line().startswith(b"+OK")
        worker = server.wait_for_worker("demo")
        # What a kill between writing and linking would leave (files.py).
        inbox = setup.roots["demo"] / "inbox"
        stale = inbox / f"{TEMP_PREFIX}killed-mid-write"
        stale.write_bytes(b"partial")
        if IS_ROOT:
            os.chown(stale, UIDS["demo"], UIDS["demo"])
        # Half of a synchronizing literal, then the worker dies.
        big = message(99, 200_000)
        writer.send(b"x APPEND INBOX {%d}\r\n" % len(big))
        assert writer.line().startswith(b"+ ")
        writer.send(big[: len(big) // 2])
        time.sleep(0.2)
        os.kill(worker, signal.SIGKILL)
        # Every client of the dead worker is told, then disconnected.
        for client in (writer, watcher):
            assert b"* BYE " in client.rest()
        assert pop3.rest().startswith(b"-ERR [SYS/TEMP]")
        wait_until_gone(worker)
        assert server.process.poll() is None, "the main process survives"
        # Next login: a new worker, every acknowledged message, nothing more.
        again = login(server)
        assert server.wait_for_worker("demo") != worker
        selected = again.command(b"s", b"SELECT INBOX")
        assert b"* 3 EXISTS" in selected
        for n, raw in enumerate(kept, 1):
            lines = again.command(b"f%d" % n, b"FETCH %d BODY.PEEK[]" % n)
            assert lines[0].endswith(b"{%d}" % len(raw))
        on_disk = sorted(p.name for p in inbox.iterdir() if not p.name.startswith("."))
        assert on_disk == ["1", "2", "3"]
        assert [(inbox / n).read_bytes() for n in on_disk] == kept
        assert not [p for p in inbox.iterdir() if p.name.startswith(TEMP_PREFIX)]
        again.close()
    finally:
        assert server.stop() == 0, server.log()


def _new_cert(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    generate_self_signed(cert, key, ["127.0.0.1", "localhost"])
    return cert, key


def test_sighup_reloads_passwords_and_certificate_without_dropping(
    setup: MailSetup,
) -> None:
    cert, key = _new_cert(setup.base, "cert")
    server = Asimapd(setup, cert, key)
    try:
        kept = login(server)  # served by a worker, through the TLS relay
        waiting = LineClient(server.tls_socket())  # not logged in yet
        assert waiting.line().startswith(b"* OK")
        old_der = server.tls_socket().getpeercert(binary_form=True)
        # New password for demo, new certificate at the same paths.
        setup.write_pwfile({**PASSWORDS, "demo": "new-secret"})
        replacement, replacement_key = _new_cert(setup.base, "replacement")
        os.replace(replacement, cert)
        os.replace(replacement_key, key)
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reloaded password file" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        # New connections see the new certificate (the old one is no
        # longer trusted by this context).
        trusting_new = ssl.create_default_context(cafile=str(cert))
        sock = server.tls_socket()
        assert sock.getpeercert(binary_form=True) != old_der
        sock.close()
        raw = socket.create_connection(("127.0.0.1", server.ports["imaps"]), 10)
        fresh = LineClient(trusting_new.wrap_socket(raw, server_hostname="127.0.0.1"))
        assert fresh.line().startswith(b"* OK")
        assert fresh.command(b"a", b"LOGIN demo new-secret")[-1].startswith(b"a OK")
        # The old password fails; connections made before still work.
        assert waiting.command(b"b", b"LOGIN demo demo")[-1].startswith(b"b NO")
        assert waiting.command(b"c", b"LOGIN demo new-secret")[-1].startswith(b"c OK")
        assert kept.command(b"n", b"NOOP") == [b"n OK NOOP completed"]
        for client in (kept, waiting, fresh):
            client.close()
    finally:
        assert server.stop() == 0, server.log()


def test_sigterm_says_bye_to_worker_clients_and_leaves_no_process(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    server = Asimapd(setup, tls_files.cert, tls_files.key)
    try:
        clients = [login(server), login(server, "other")]
        assert clients[0].command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
        zygote = server.zygote_pid()
        workers = list(server.workers().values())
        assert len(workers) == 2
    finally:
        assert server.stop() == 0, server.log()
    for client in clients:
        assert client.rest().startswith(b"* BYE Server shutting down")
    for pid in [zygote, *workers]:
        assert not alive(pid)
