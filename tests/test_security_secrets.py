"""No password or SASL secret leaves the processes that handle it.

Security review (docs/security.md, "Secrets"): a real ``asimapd`` in
worker mode, with ``--debug`` logging and ``--trace`` on, takes logins by
every way a client can send a secret -- IMAP LOGIN (quoted and as a
literal), AUTHENTICATE PLAIN with and without an initial response,
AUTHENTICATE LOGIN, SCRAM-SHA-256, POP3 USER/PASS, AUTH PLAIN and AUTH
LOGIN -- right and wrong.  Then:

* the log (DEBUG level, main process, zygote and workers all write it),
  every trace file, and the command line and name (``/proc/PID/cmdline``
  and ``comm``) of the main process, the zygote and each worker contain
  neither a password nor a SASL PLAIN blob (base64 or decoded);
* no process that holds secrets can leave a core file: ``RLIMIT_CORE`` is
  0 in the main process, the zygote and every worker (``/proc/PID/limits``),
  and they are not dumpable (``PR_SET_DUMPABLE`` 0: a worker's ``/proc``
  entries then belong to root, not to the user it runs as).
"""

from __future__ import annotations

import base64
import ctypes
import itertools
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from asimap.ops.coredump import forbid_core_dumps
from conftest import TlsFiles
from scram_client import ScramClient
from worker_harness import (
    IS_ROOT,
    PASSWORDS,
    UIDS,
    Asimapd,
    LineClient,
    MailSetup,
    mail_setup,
)

#: A wrong password, as distinctive as the right one, so that finding
#: either anywhere is a leak.
WRONG = "wrong-Pa55word-xyzzy"
RIGHT = PASSWORDS["other"]  # "other-secret": not a substring of anything else


def _plain_blob(user: str, password: str) -> bytes:
    return base64.b64encode(f"\0{user}\0{password}".encode())


def _secrets() -> list[bytes]:
    found: list[bytes] = []
    for password in (RIGHT, WRONG):
        found.append(password.encode())
        found.append(_plain_blob("other", password))
        found.append(base64.b64encode(password.encode()))
    return found


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


@pytest.fixture
def server(setup: MailSetup, tls_files: TlsFiles) -> Iterator[Asimapd]:
    daemon = Asimapd(
        setup,
        tls_files.cert,
        tls_files.key,
        "--debug",
        "--trace",
        f"--trace-dir={setup.base / 'traces'}",
        "--enable-pop3",
        "--pop3-port=0",
    )
    try:
        yield daemon
    finally:
        assert daemon.stop() == 0, daemon.log()


_SOURCES = itertools.count(2)


def _connect(server: Asimapd, port: str = "imaps") -> LineClient:
    """A TLS connection from a loopback address of its own (127.0.0.N):
    the login penalty counts failures per address, and these tests fail
    on purpose; a fresh address keeps them from waiting on each other."""
    source = f"127.0.0.{next(_SOURCES) % 250 + 2}"
    raw = socket.create_connection(
        ("127.0.0.1", server.ports[port]), 10, source_address=(source, 0)
    )
    context = server.client_context()
    return LineClient(context.wrap_socket(raw, server_hostname="127.0.0.1"))


def _imap(server: Asimapd) -> LineClient:
    client = _connect(server)
    assert client.line().startswith(b"* OK")
    return client


def _imap_logins(server: Asimapd) -> list[LineClient]:
    """Every IMAP way of sending a password, wrong first, then right; the
    right ones stay connected (their workers must be running)."""
    kept: list[LineClient] = []
    client = _imap(server)
    assert client.command(b"a", f'LOGIN other "{WRONG}"'.encode())[-1].startswith(
        b"a NO"
    )
    assert client.command(b"b", f'LOGIN other "{RIGHT}"'.encode())[-1].startswith(
        b"b OK"
    )
    kept.append(client)

    client = _imap(server)  # the password as a synchronizing literal
    client.send(b"c LOGIN other {%d}\r\n" % len(RIGHT))
    assert client.line().startswith(b"+")
    client.send(RIGHT.encode() + b"\r\n")  # ends the command line
    assert client.until_tagged(b"c")[-1].startswith(b"c OK")
    kept.append(client)

    client = _imap(server)  # SASL-IR (RFC 4959), wrong then right
    wrong = client.command(b"d", b"AUTHENTICATE PLAIN " + _plain_blob("other", WRONG))
    assert wrong[-1].startswith(b"d NO")
    client.send(b"e AUTHENTICATE PLAIN\r\n")
    assert client.line() == b"+ "
    client.send(_plain_blob("other", RIGHT) + b"\r\n")
    right = client.until_tagged(b"e")
    assert right[-1].startswith(b"e OK"), right
    kept.append(client)

    client = _imap(server)  # SASL LOGIN: user and password in turn
    for tag, password in ((b"h", WRONG), (b"i", RIGHT)):
        client.send(tag + b" AUTHENTICATE LOGIN\r\n")
        assert client.line().startswith(b"+ ")
        client.send(base64.b64encode(b"other") + b"\r\n")
        assert client.line().startswith(b"+ ")
        client.send(base64.b64encode(password.encode()) + b"\r\n")
        answer = client.until_tagged(tag)[-1]
        assert answer.startswith(tag + (b" NO" if password == WRONG else b" OK"))
    kept.append(client)

    client = _imap(server)  # SCRAM-SHA-256, wrong then right
    for tag, password in ((b"f", WRONG), (b"g", RIGHT)):
        scram = ScramClient("other", password)
        client.send(tag + b" AUTHENTICATE SCRAM-SHA-256\r\n")
        assert client.line() == b"+ "
        client.send(base64.b64encode(scram.first()) + b"\r\n")
        server_first = base64.b64decode(client.line().removeprefix(b"+ "))
        client.send(base64.b64encode(scram.final(server_first)) + b"\r\n")
        answer = client.line()
        if password == WRONG:
            assert answer.startswith(tag + b" NO"), answer
        else:
            assert answer.startswith(b"+ "), answer
            client.send(b"\r\n")
            assert client.until_tagged(tag)[-1].startswith(tag + b" OK")
    kept.append(client)
    return kept


def _pop3_logins(server: Asimapd) -> list[LineClient]:
    kept: list[LineClient] = []
    pop3 = _connect(server, "pop3s")
    assert pop3.line().startswith(b"+OK")
    pop3.send(f"USER other\r\nPASS {WRONG}\r\n".encode())
    assert pop3.line().startswith(b"+OK") and pop3.line().startswith(b"-ERR")
    pop3.send(f"USER other\r\nPASS {RIGHT}\r\n".encode())
    assert pop3.line().startswith(b"+OK") and pop3.line().startswith(b"+OK")
    kept.append(pop3)

    pop3 = _connect(server, "pop3s")
    assert pop3.line().startswith(b"+OK")
    pop3.send(b"AUTH PLAIN " + _plain_blob("other", WRONG) + b"\r\n")
    assert pop3.line().startswith(b"-ERR")
    pop3.send(b"AUTH PLAIN\r\n")
    assert pop3.line().startswith(b"+")
    pop3.send(_plain_blob("other", RIGHT) + b"\r\n")
    assert pop3.line().startswith(b"+OK")
    pop3.send(b"STAT\r\n")
    assert pop3.line().startswith(b"+OK")
    kept.append(pop3)

    pop3 = _connect(server, "pop3s")
    assert pop3.line().startswith(b"+OK")
    for password in (WRONG, RIGHT):
        pop3.send(b"AUTH LOGIN\r\n")
        assert pop3.line().startswith(b"+ ")
        pop3.send(base64.b64encode(b"other") + b"\r\n")
        assert pop3.line().startswith(b"+ ")
        pop3.send(base64.b64encode(password.encode()) + b"\r\n")
        assert pop3.line().startswith(b"-ERR" if password == WRONG else b"+OK")
    kept.append(pop3)
    return kept


def _leaks(data: bytes) -> list[bytes]:
    return [secret for secret in _secrets() if secret in data]


def _process_ids(server: Asimapd) -> dict[str, int]:
    pids = {"main": server.pid, "zygote": server.zygote_pid()}
    pids.update({f"worker {user}": pid for user, pid in server.workers().items()})
    return pids


def test_no_secret_in_logs_traces_or_process_titles(
    server: Asimapd, setup: MailSetup
) -> None:
    clients = _imap_logins(server) + _pop3_logins(server)
    for client in clients[:5]:
        assert client.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    server.wait_for_worker("other")
    pids = _process_ids(server)
    assert "worker other" in pids
    for name, pid in pids.items():
        for entry in ("cmdline", "comm", "environ"):
            data = Path(f"/proc/{pid}/{entry}").read_bytes()
            assert not _leaks(data), f"{name} /proc/{pid}/{entry}: {data!r}"
    for client in clients:
        client.close()
    server.stop()
    log = server.log_path.read_bytes()
    assert b"DEBUG" in log  # the log really was at DEBUG level
    assert b"failed login: user 'other'" in log  # and saw the failures
    assert not _leaks(log), _leaks(log)
    traces = [p for p in (setup.base / "traces").rglob("*") if p.is_file()]
    assert len(traces) >= 9, traces  # 8 connections in main, 1 user file
    every = b"".join(path.read_bytes() for path in traces)
    assert b"LOGIN other" in every and b"AUTHENTICATE PLAIN" in every
    assert b"PASS ***" in every
    for path in traces:
        assert not _leaks(path.read_bytes()), path


_CORE_LIMIT = re.compile(r"^Max core file size\s+(\S+)\s+(\S+)", re.MULTILINE)


def test_no_process_holding_secrets_can_dump_core(server: Asimapd) -> None:
    clients = []
    for user in ("demo", "other"):
        login = _imap(server)
        password = PASSWORDS[user].encode()
        assert login.command(b"a", b"LOGIN " + user.encode() + b' "' + password + b'"')[
            -1
        ].startswith(b"a OK")
        clients.append(login)
        server.wait_for_worker(user)
    pids = _process_ids(server)
    assert {"worker demo", "worker other"} <= set(pids)
    for name, pid in pids.items():
        limits = Path(f"/proc/{pid}/limits").read_text()
        match = _CORE_LIMIT.search(limits)
        assert match is not None, limits
        assert match.groups() == ("0", "0"), f"{name}: {match.group(0)}"
    if IS_ROOT:
        # proc(5): the files of a process that is not dumpable belong to
        # root; a dumpable worker's would belong to the user it runs as.
        for user in ("demo", "other"):
            pid = pids[f"worker {user}"]
            assert os.stat(f"/proc/{pid}/status").st_uid == 0
            status = Path(f"/proc/{pid}/status").read_text()
            assert f"Uid:\t{UIDS[user]}\t" in status  # it did drop privileges
    for client in clients:
        client.close()


_PR_GET_DUMPABLE = 3


def test_forbid_core_dumps_makes_a_process_undumpable() -> None:
    """In a forked child: what a root-owned main process cannot show
    through /proc ownership, prctl(PR_GET_DUMPABLE) tells directly."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            forbid_core_dumps()
            libc = ctypes.CDLL(None, use_errno=True)
            dumpable = libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0)
            code = 0 if dumpable == 0 else 1
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _memory(pid: int) -> bytes:
    """Every readable mapping of ``pid`` that it can write (heap, stacks,
    data of the interpreter and libraries), read as root."""
    chunks: list[bytes] = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5] if len(fields) > 5 else ""
            perms = fields[1]
            if "r" not in perms or (path.startswith("/") and "w" not in perms):
                continue  # code and read-only data of files hold nothing of ours
            if path in ("[vvar]", "[vsyscall]"):
                continue
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except (OSError, OverflowError, ValueError):
                continue
    return b"".join(chunks)


def test_workers_and_zygote_hold_no_tls_key_and_no_password(
    server: Asimapd, tls_files: TlsFiles
) -> None:
    """What a worker's user could find in the worker's memory if a bug let
    them read it: neither the TLS private key (loaded by the main process
    only) nor any password (the main process verifies; the worker gets a
    one-time token)."""
    if not IS_ROOT:
        pytest.skip("reading another process's memory needs root")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_pem_private_key(tls_files.key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    # As DER holds it, and as OpenSSL's BIGNUM does on x86-64 (64-bit
    # little-endian limbs, least significant first: the bytes reversed).
    forms = (scalar, scalar[::-1])
    pem_lines = [
        line.encode()
        for line in tls_files.key.read_text().splitlines()
        if line and not line.startswith("-----")
    ]
    clients = _imap_logins(server) + _pop3_logins(server)
    demo = _imap(server)
    assert demo.command(b"a", b"LOGIN demo demo")[-1].startswith(b"a OK")
    server.wait_for_worker("demo")
    hashes = {
        line.split(":")[0]: line.split(":")[1].encode()
        for line in server.log_path.parent.joinpath("pwfile").read_text().splitlines()
    }
    pids = _process_ids(server)
    del pids["main"]  # it holds the key by design, and sees passwords
    assert {"zygote", "worker demo", "worker other"} <= set(pids)
    # Control: the main process's memory does hold the key.
    main_memory = _memory(server.pid)
    assert any(form in main_memory for form in forms)
    for name, pid in pids.items():
        memory = _memory(pid)
        assert len(memory) > 1_000_000, name  # really read
        assert not any(form in memory for form in forms), f"TLS key in {name}"
        assert not any(line in memory for line in pem_lines), name
        for secret in (RIGHT.encode(), WRONG.encode(), _plain_blob("other", RIGHT)):
            assert secret not in memory, f"{secret!r} in {name}"
        # Nor the password file's hashes (only the main process reads it).
        for user, encoded in hashes.items():
            assert encoded not in memory, f"{user}'s hash in {name}"
    for client in [*clients, demo]:
        client.close()
