"""The quickstart as a user runs it: a separate process, real ports, SIGTERM.

This also covers :func:`asimap.imap.server.run` (uvloop, signal handling,
graceful stop with exit status 0) and the demo mail seeding.
"""

from __future__ import annotations

import imaplib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asimap.config import Config
from asimap.demo import DEMO_FOLDERS, demo_messages
from asimap.imap.server import run
from asimap.quickstart import prepare
from conftest import require_tool


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_prepare_is_idempotent(tmp_path: Path) -> None:
    pwfile, cert, key = prepare(tmp_path / "demo")
    before = (pwfile.read_bytes(), cert.read_bytes(), key.read_bytes())
    assert pwfile.read_text().count("\ndemo:pbkdf2_sha256$") == 1
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert prepare(tmp_path / "demo") == (pwfile, cert, key)
    assert (pwfile.read_bytes(), cert.read_bytes(), key.read_bytes()) == before


def test_demo_messages_cover_every_folder_with_crlf() -> None:
    messages = list(demo_messages())
    assert len(messages) >= 20
    assert {mailbox for mailbox, _name, _raw in messages} == set(DEMO_FOLDERS.values())
    for _mailbox, _name, raw in messages:
        assert b"\n" not in raw.replace(b"\r\n", b"")


def test_quickstart_serves_demo_mail_and_stops_on_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, imap_port = _free_port(), _free_port()
    # nmh installs its programs in /usr/bin/mh (Debian).
    path = f"/usr/bin/mh{os.pathsep}{os.environ.get('PATH', '')}"
    monkeypatch.setenv("PATH", path)
    env = dict(os.environ, PORT=str(port), IMAP_PORT=str(imap_port), PATH=path)
    process = subprocess.Popen(
        [sys.executable, "-m", "asimap.quickstart", "--dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        banner = b""
        while b"Try it:" not in banner and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            banner += line
        assert f"127.0.0.1:{port}".encode() in banner, banner.decode()
        context = ssl.create_default_context(cafile=str(tmp_path / "demo/cert.pem"))
        with imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context) as client:
            client.login("demo", "demo")
            typ, data = client.select("INBOX", readonly=True)
            inbox = sum(1 for m, _n, _r in demo_messages() if m == "INBOX")
            assert (typ, data) == ("OK", [str(inbox).encode()])
            typ, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert b"Welcome to asimap" in data[0][1]  # type: ignore[index]
            assert client.select("Lists/usrp-users", readonly=True)[0] == "OK"
        with imaplib.IMAP4("127.0.0.1", imap_port) as plain:
            plain.starttls(context)
            plain.login("demo", "demo")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        # The demo mail is in MH folders that nmh reads as they are.
        scan = require_tool("scan")
        profile = tmp_path / "mh_profile"
        profile.write_text(f"Path: {tmp_path / 'demo/mail/demo'}\n")
        listed = subprocess.run(
            [scan, "+inbox"],
            env={"MH": str(profile), "HOME": str(tmp_path), "PATH": path},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.splitlines()
        assert len(listed) == inbox
        assert "Welcome to asimap" in listed[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_run_reports_an_unavailable_store(tmp_path: Path) -> None:
    config = Config(address="127.0.0.1", port=0, store="nosuch", pwfile=tmp_path / "pw")
    assert run(config) == 1


def test_run_reports_a_missing_certificate(tmp_path: Path) -> None:
    config = Config(
        address="127.0.0.1",
        port=0,
        cert=tmp_path / "missing.pem",
        key=tmp_path / "missing.key",
        pwfile=tmp_path / "pw",
    )
    assert run(config) == 1
