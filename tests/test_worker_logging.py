"""SIGHUP gives running workers (and the zygote) the new logging
configuration, not only the main process.

The configuration file is a ``dictConfig`` JSON whose file handler names
``before.log``; the test rewrites it to name ``after.log``, sends SIGHUP
to the main process, then has the already-running worker log a line (a
second connection handed to it): the line is in ``after.log`` with the
worker's pid, and nothing of the worker reaches ``before.log`` after the
reload.  Both files are writable by the worker's unprivileged user, as an
administrator sets up a log file meant for workers.  A console handler
keeps stdout, where the harness reads the bound ports."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import TlsFiles
from worker_harness import IS_ROOT, UIDS, Asimapd, LineClient, MailSetup, mail_setup


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


def _log_config(path: Path, log_file: Path) -> None:
    settings = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(process)d %(name)s: %(message)s"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
            "file": {
                "class": "logging.FileHandler",
                "filename": str(log_file),
                "formatter": "plain",
            },
        },
        "root": {"level": "INFO", "handlers": ["console", "file"]},
    }
    temp = path.with_suffix(".new")
    temp.write_text(json.dumps(settings))
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def _login(server: Asimapd) -> LineClient:
    client = LineClient(server.tls_socket())
    assert client.line().startswith(b"* OK")
    assert client.command(b"a", b"LOGIN demo demo")[-1].startswith(b"a OK")
    return client


def _wait_for(path: Path, text: str) -> str:
    deadline = time.monotonic() + 10
    while text not in (content := path.read_text()):
        assert time.monotonic() < deadline, content
        time.sleep(0.05)
    return content


def test_sighup_reaches_a_running_worker(setup: MailSetup, tls_files: TlsFiles) -> None:
    before, after = setup.base / "before.log", setup.base / "after.log"
    for path in (before, after):
        path.touch(mode=0o600)
        if IS_ROOT:
            os.chown(path, UIDS["demo"], 0)  # the worker's, root can write
    config = setup.base / "asimapd_log.json"
    _log_config(config, before)
    server = Asimapd(setup, tls_files.cert, tls_files.key, f"--log-config={config}")
    try:
        first = _login(server)
        worker = server.wait_for_worker("demo")
        source = f"{worker} asimap.worker.child"
        _wait_for(before, f"{source}: worker demo: imap connection 1")
        _log_config(config, after)
        server.process.send_signal(signal.SIGHUP)
        _wait_for(after, f"{source}: worker for demo: logging")
        size_before = before.stat().st_size
        second = _login(server)  # the same worker logs the handoff
        line = f"{source}: worker demo: imap connection 2"
        _wait_for(after, line)
        assert server.wait_for_worker("demo") == worker
        assert line not in before.read_text()
        assert before.stat().st_size == size_before, before.read_text()
        for client in (first, second):
            client.close()
    finally:
        assert server.stop() == 0, server.log()


def test_a_worker_that_cannot_open_the_new_log_file_logs_to_stdout(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    if not IS_ROOT:
        pytest.skip("as a user the worker can open whatever the main process can")
    before = setup.base / "before.log"
    before.touch(mode=0o666)
    os.chmod(before, 0o666)
    private = setup.base / "private"
    private.mkdir(mode=0o700)  # root's only: the worker cannot log there
    after = private / "after.log"
    config = setup.base / "asimapd_log.json"
    _log_config(config, before)
    server = Asimapd(setup, tls_files.cert, tls_files.key, f"--log-config={config}")
    try:
        first = _login(server)
        worker = server.wait_for_worker("demo")
        _log_config(config, after)
        server.process.send_signal(signal.SIGHUP)
        _wait_for(server.log_path, "cannot use the new logging configuration")
        second = _login(server)  # the worker still logs: to stdout
        _wait_for(server.log_path, "worker demo: imap connection 2")
        assert "worker demo: imap connection 2" not in after.read_text()
        assert "reloaded password file" in after.read_text()  # main could
        assert server.wait_for_worker("demo") == worker
        for client in (first, second):
            client.close()
    finally:
        assert server.stop() == 0, server.log()
