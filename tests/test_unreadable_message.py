"""A message file the server cannot read (issue: ``chmod 000``, EACCES).

FETCH of it answers ``NO [UNAVAILABLE] Message UID n cannot be read:
permission denied`` (RFC 5530: a server-side resource temporarily out of
reach), every other message of the same FETCH is still returned, the
session goes on, and the log says so once -- not a ``NO [SERVERBUG]`` with
a traceback at every retry.  A POP3 maildrop opens without it.

Twice: in-process (``--workers=off``) and as root in worker mode, where
the worker runs as the mail owner and the file is made unreadable to it.
In-process as root, the file is unreadable to the server thread because
that thread runs without ``CAP_DAC_OVERRIDE``/``CAP_DAC_READ_SEARCH``
(dropped from the thread's effective set before the server starts, so
the threads it starts lack them too), as a non-root server would.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from asimap.auth.hashers import make_password
from caps import without_file_override
from conftest import ServerFactory, TlsFiles
from worker_harness import (
    IS_ROOT,
    UIDS,
    Asimapd,
    LineClient,
    MailSetup,
    mail_setup,
)

MESSAGES = [
    f"From: a@example.org\r\nSubject: m{n}\r\nMessage-ID: <m{n}@x>\r\n\r\nbody {n}\r\n"
    for n in (1, 2, 3)
]
REFUSAL = b"NO [UNAVAILABLE] Message UID 2 cannot be read: permission denied"


def _write_inbox(root: Path, owner: int | None = None) -> Path:
    """Three messages in an MH inbox, before the server first sees it."""
    inbox = root / "inbox"
    inbox.mkdir(parents=True, mode=0o700)
    for n, text in enumerate(MESSAGES, 1):
        (inbox / str(n)).write_text(text)
        (inbox / str(n)).chmod(0o600)
    if owner is not None:
        for path in (inbox, *inbox.iterdir()):
            os.chown(path, owner, owner)
    return inbox


def _check_session(client: LineClient, inbox: Path) -> None:
    """Login done: SELECT, make message 2 unreadable, FETCH around it."""
    assert client.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    (inbox / "2").chmod(0)
    lines = client.command(b"f", b"FETCH 1:3 (UID BODY[])")
    assert lines[-1] == b"f " + REFUSAL, lines
    fetched = [line for line in lines if b" FETCH (" in line]
    assert [line.split()[1] for line in fetched] == [b"1", b"3"], lines
    # A retry gets the same clean answer; ENVELOPE too (summaries path).
    again = client.command(b"g", b"UID FETCH 2 BODY.PEEK[]")
    assert again[-1] == b"g " + REFUSAL, again
    envelopes = client.command(b"e", b"FETCH 1:3 ENVELOPE")
    assert envelopes[-1].startswith(b"e "), envelopes
    assert b"SERVERBUG" not in envelopes[-1]
    # Any other command that needs the content says the same (SEARCH).
    searched = client.command(b"x", b"SEARCH BODY nothing-like-this")
    assert searched[-1] == b"x " + REFUSAL, searched
    # Every other command needing the content says so too (SORT, THREAD).
    for tag, command in (
        (b"o", b"SORT (SIZE) UTF-8 ALL"),
        (b"r", b"THREAD REFS UTF-8 BODY x"),
    ):
        lines = client.command(tag, command)
        assert lines[-1] == tag + b" " + REFUSAL or lines[-1].startswith(
            tag + b" OK"
        ), lines
    # COPY is all or nothing (RFC 3501 section 6.4.7).
    assert client.command(b"k", b"CREATE Target")[-1].startswith(b"k OK")
    copied = client.command(b"c", b"COPY 1:3 Target")
    assert copied[-1] == b"c " + REFUSAL, copied
    status = client.command(b"t", b"STATUS Target (MESSAGES)")
    assert b"(MESSAGES 0)" in status[0], status
    assert not [p for p in (inbox.parent / "Target").iterdir() if p.name.isdigit()]
    # The session survives and the other messages are still served.
    assert client.command(b"h", b"FETCH 3 BODY[]")[-1] == b"h OK Fetch completed"
    assert client.command(b"n", b"NOOP")[-1].startswith(b"n OK")


# -- in-process ----------------------------------------------------------------


def test_in_process_unreadable_message_is_a_clean_no(
    tmp_path: Path,
    tls_files: TlsFiles,
    server_factory: ServerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "Mail"
    inbox = _write_inbox(root)
    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"demo:{make_password('demo', iterations=1000)}:Mail\n")
    caplog.set_level(logging.INFO)
    with without_file_override():
        server = server_factory(pwfile=pwfile, store="mh")
        raw = ssl.create_default_context(cafile=str(tls_files.cert)).wrap_socket(
            socket.create_connection(("127.0.0.1", server.imaps_port)),
            server_hostname="127.0.0.1",
        )
        client = LineClient(raw)
        try:
            assert client.line().startswith(b"* OK")
            assert client.command(b"a", b"LOGIN demo demo")[-1].startswith(b"a OK")
            _check_session(client, inbox)
        finally:
            client.close()
            server.stop()
    text = caplog.text
    assert "Traceback" not in text and "SERVERBUG" not in text
    assert text.count("message UID 2 cannot be read") == 1, text


# -- worker mode, as root ------------------------------------------------------


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


def test_worker_unreadable_message_is_a_clean_no_for_imap_and_pop3(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    if not IS_ROOT:
        pytest.skip("worker mode drops privileges only when started as root")
    inbox = _write_inbox(setup.roots["demo"], UIDS["demo"])
    server = Asimapd(
        setup, tls_files.cert, tls_files.key, "--enable-pop3", "--pop3-port=0"
    )
    try:
        client = LineClient(server.tls_socket())
        assert client.line().startswith(b"* OK")
        assert client.command(b"a", b"LOGIN demo demo")[-1].startswith(b"a OK")
        _check_session(client, inbox)
        pop3 = LineClient(server.tls_socket("pop3s"))
        assert pop3.line().startswith(b"+OK")
        pop3.send(b"USER demo\r\nPASS demo\r\n")
        assert pop3.line().startswith(b"+OK") and pop3.line().startswith(b"+OK")
        # The maildrop opens without the unreadable message.
        pop3.send(b"UIDL\r\n")
        listing = [pop3.line() for _ in range(4)]
        assert listing[0].startswith(b"+OK") and listing[-1] == b"."
        assert [line.split()[1].rpartition(b".")[2] for line in listing[1:3]] == [
            b"1",
            b"3",
        ]
        pop3.send(b"RETR 2\r\n")
        assert pop3.line().startswith(b"+OK")
        for client_ in (client, pop3):
            client_.close()
    finally:
        assert server.stop() == 0, server.log()
    log = server.log()
    assert "Traceback" not in log and "SERVERBUG" not in log, log
    assert log.count("message UID 2 cannot be read") == 1, log
