"""``--trace`` in worker mode: the main process traces the conversation up
to the login, the worker traces the rest as its user (or, when it cannot
write there, logs it and serves the connection untraced).  The worker
also logs what it learned at handoff: address, TLS, the client's ID."""

from __future__ import annotations

import json
import os
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
    assert client.command(b"z", b"LOGOUT")[-1].startswith(b"z OK")
    assert client.rest() == b""


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_main_traces_until_login_and_the_worker_after(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    traces = setup.base / "traces"
    traces.mkdir()
    os.chmod(traces, 0o1733)  # like /tmp: the dropped worker may add files
    server = Asimapd(
        setup, tls_files.cert, tls_files.key, "--trace", f"--trace-dir={traces}"
    )
    try:
        _converse(server)
    finally:
        assert server.stop() == 0, server.log()
    files = list(traces.iterdir())
    assert len(files) == 2, files
    texts = {path: json.dumps(_records(path)) for path in files}
    (main_file,) = [p for p, text in texts.items() if "a LOGIN" in text]
    (worker_file,) = [p for p in files if p != main_file]
    if IS_ROOT:  # each process wrote as who it runs as
        assert main_file.stat().st_uid == 0
        assert worker_file.stat().st_uid == UIDS["demo"]
    main, worker = _records(main_file), _records(worker_file)
    main_text = json.dumps(main)
    assert "a LOGIN demo ***" in main_text and "demo demo" not in main_text
    # SELECT arrived in the LOGIN's packet: the main process read it (and
    # traced it) but the worker ran it.
    assert "b OK" not in main_text
    worker_text = json.dumps(worker)
    assert "b SELECT INBOX" in worker_text and "b OK [READ-WRITE]" in worker_text
    assert "a OK [CAPABILITY" in worker_text
    assert "z LOGOUT" in worker_text
    # What the worker was told about the connection is in its log.
    assert "from 127.0.0.1 (tls=True, id=[['name', 'trace-test']])" in server.log()


def test_a_worker_that_cannot_write_traces_serves_untraced(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    if not IS_ROOT:
        pytest.skip("as a user the worker can write wherever the main process can")
    traces = setup.base / "traces"
    traces.mkdir(mode=0o700)  # root's only
    server = Asimapd(
        setup, tls_files.cert, tls_files.key, "--trace", f"--trace-dir={traces}"
    )
    try:
        _converse(server)
    finally:
        assert server.stop() == 0, server.log()
    assert len(list(traces.iterdir())) == 1  # the main process's
    assert "cannot trace a connection from 127.0.0.1" in server.log()
