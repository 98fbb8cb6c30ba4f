"""Privilege separation of workers, checked from outside through ``/proc``.

Run as root (this machine and CI are): each worker must run as the owner
of its mail root -- real, effective, saved and file-system ids, and no
supplementary group of root's -- and must not be able to read another
user's mail root.  For the last point a helper process takes exactly the
worker's credentials as ``/proc/PID/status`` lists them and really tries:
that proves what the kernel would let the worker do, without a debug
command in production code that could make a worker read arbitrary paths.

Workers must also be unreachable for any other local process: none of
their sockets listens, none has a name (file system or abstract), and none
is a TCP socket -- only the socketpairs inherited from the main process
and, for TLS clients, relay socketpairs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import TlsFiles
from worker_harness import (
    IS_ROOT,
    PASSWORDS,
    UIDS,
    Asimapd,
    LineClient,
    MailSetup,
    mail_setup,
    status_ids,
)


@pytest.fixture(autouse=True)
def _root_only() -> None:
    if IS_ROOT:
        return
    if os.environ.get("CI"):
        pytest.fail("worker privilege tests must run as root under CI")
    pytest.skip("needs root: workers only change identity when started as root")


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


def login(server: Asimapd, user: str) -> LineClient:
    client = LineClient(server.tls_socket())
    assert client.line().startswith(b"* OK")
    reply = client.command(b"a", f"LOGIN {user} {PASSWORDS[user]}".encode())
    assert reply[-1].startswith(b"a OK"), reply
    return client


def can_list_as(ids: dict[str, list[int]], directory: Path) -> bool:
    """Whether a process with these credentials may list ``directory``."""
    pid = os.fork()
    if pid == 0:  # the helper: become the worker's identity, then try
        code = 2
        try:
            os.setgroups(ids["Groups"])
            os.setresgid(*ids["Gid"][:3])
            os.setresuid(*ids["Uid"][:3])
            try:
                os.listdir(directory)
                code = 0
            except PermissionError:
                code = 1
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), f"helper failed with {code}"
    return code == 0


def test_each_worker_runs_as_its_mail_root_owner_and_cannot_read_others(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    server = Asimapd(setup, tls_files.cert, tls_files.key)
    try:
        clients = [login(server, "demo"), login(server, "other")]
        workers = server.workers()
        assert set(workers) == {"demo", "other"}
        for user, pid in workers.items():
            ids = status_ids(pid)
            uid = UIDS[user]
            # Real, effective, saved and file-system ids (proc(5)).
            assert ids["Uid"] == [uid] * 4
            assert ids["Gid"] == [uid] * 4
            assert 0 not in ids["Groups"]
            own = setup.roots[user]
            other = setup.roots["other" if user == "demo" else "demo"]
            assert own.stat().st_uid == uid
            assert other.stat().st_mode & 0o777 == 0o700
            assert can_list_as(ids, own)
            assert not can_list_as(ids, other)
        # The worker wrote its store as its user.
        assert (setup.roots["demo"] / "inbox").stat().st_uid == UIDS["demo"]
        for client in clients:
            client.close()
    finally:
        assert server.stop() == 0, server.log()


def test_a_root_owned_mail_root_is_refused_unless_allowed(
    tls_files: TlsFiles,
) -> None:
    with mail_setup(owners={"demo": 0, "other": UIDS["other"]}) as setup:
        server = Asimapd(setup, tls_files.cert, tls_files.key)
        try:
            client = LineClient(server.tls_socket())
            assert client.line().startswith(b"* OK")
            reply = client.command(b"a", b"LOGIN demo demo")
            assert reply == [
                b"a NO [UNAVAILABLE] Mail store unavailable for this account"
            ]
            assert "owned by root" in server.log()
            assert "demo" not in server.workers()
            login(server, "other").close()  # other users are not affected
        finally:
            assert server.stop() == 0, server.log()
        allowing = Asimapd(setup, tls_files.cert, tls_files.key, "--allow-root-mail")
        try:
            client = login(allowing, "demo")
            assert status_ids(allowing.wait_for_worker("demo"))["Uid"] == [0] * 4
            client.close()
        finally:
            assert allowing.stop() == 0, allowing.log()


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        match = re.fullmatch(r"socket:\[(\d+)\]", target)
        if match:
            inodes.add(int(match.group(1)))
    return inodes


def _tcp_inodes() -> set[int]:
    inodes: set[int] = set()
    for name in ("tcp", "tcp6"):
        lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        inodes.update(int(line.split()[9]) for line in lines)
    return inodes


def _unix_sockets() -> dict[int, tuple[int, str]]:
    """inode -> (flags, path) from /proc/net/unix."""
    sockets: dict[int, tuple[int, str]] = {}
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        path = fields[7] if len(fields) > 7 else ""
        sockets[int(fields[6])] = (int(fields[3], 16), path)
    return sockets


#: __SO_ACCEPTCON in /proc/net/unix's Flags: the socket listens.
_ACCEPTCON = 0x10000


def test_workers_have_no_listening_named_or_tcp_socket(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    server = Asimapd(setup, tls_files.cert, tls_files.key)
    try:
        clients = [login(server, "demo"), login(server, "demo"), login(server, "other")]
        workers = server.workers()
        assert len(workers) == 2
        tcp = _tcp_inodes()
        unix = _unix_sockets()
        for pid in [*workers.values(), server.zygote_pid()]:
            inodes = _socket_inodes(pid)
            assert inodes, "a worker holds at least its control socket"
            assert not inodes & tcp, "no TCP socket in a worker"
            for inode in inodes:
                assert inode in unix, f"socket {inode} of {pid} is not AF_UNIX"
                flags, path = unix[inode]
                assert not flags & _ACCEPTCON, "a worker socket listens"
                assert path == "", f"a worker socket has a name: {path}"
        for client in clients:
            client.close()
    finally:
        assert server.stop() == 0, server.log()
