"""A dead zygote is replaced: new logins keep working.

The zygote is SIGKILLed (found among the server's children, and in its
log);
the user already served keeps their worker, and a new user's login gets
a worker from a new zygote -- a fresh process, since forking one from the
threaded main process would not be safe -- dropped to the mail root's
owner exactly as before.  Real processes on loopback."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator

import pytest

from conftest import TlsFiles
from worker_harness import (
    IS_ROOT,
    PASSWORDS,
    UIDS,
    Asimapd,
    LineClient,
    MailSetup,
    alive,
    children_of,
    comm,
    mail_setup,
    status_ids,
    wait_until_gone,
)

_ZYGOTE = re.compile(r"zygote running: pid (\d+)")


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


def login(server: Asimapd, user: str) -> LineClient:
    client = LineClient(server.tls_socket())
    assert client.line().startswith(b"* OK")
    reply = client.command(b"a", f"LOGIN {user} {PASSWORDS[user]}".encode())
    assert reply[-1].startswith(b"a OK"), (reply, server.log())
    return client


def zygote_pids(server: Asimapd) -> list[int]:
    """Every zygote the server has announced, oldest first."""
    return [int(pid) for pid in _ZYGOTE.findall(server.log())]


def test_killed_zygote_is_replaced_and_new_workers_drop_privileges(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    server = Asimapd(setup, tls_files.cert, tls_files.key)
    try:
        first = server.zygote_pid()
        kept = login(server, "demo")
        assert kept.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
        kept_worker = server.wait_for_worker("demo")
        os.kill(first, signal.SIGKILL)
        wait_until_gone(first)
        # At once: the login waits for the new zygote if need be.
        fresh = login(server, "other")
        assert fresh.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
        second = server.zygote_pid()
        assert second != first
        assert zygote_pids(server) == [first, second]  # both announced
        (worker,) = [p for p in children_of(second) if comm(p) == "asimap-w:other"]
        if IS_ROOT:
            ids = status_ids(worker)
            assert ids["Uid"] == [UIDS["other"]] * 4
            assert ids["Gid"] == [UIDS["other"]] * 4
            assert 0 not in ids["Groups"]
        # The worker that was running goes on.
        assert kept.command(b"n", b"NOOP")[-1].startswith(b"n OK")
        assert alive(kept_worker)
        for client in (kept, fresh):
            assert client.command(b"z", b"LOGOUT")[-1].startswith(b"z OK")
            client.close()
    finally:
        assert server.stop() == 0, server.log()
    assert not alive(second) and not alive(worker)
    assert "Traceback" not in server.log(), server.log()
