"""A worker's memory is bounded: by the limits on what a hostile message
costs to interpret (``asimap.message.limits``), and by the worker's memory
limit (``--worker-memory-limit``, ``asimap.worker.memory``).

Real ``asimapd`` processes in worker mode on loopback; memory is read from
``/proc/<worker>/status`` (VmHWM, the peak resident size) and compared with
generous bounds -- never timed.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import resource
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from asimap.message.limits import MAX_ADDRESSES
from asimap.worker.memory import apply_memory_limit
from conftest import TlsFiles
from worker_harness import IS_ROOT, PASSWORDS, UIDS, Asimapd, MailSetup, mail_setup

imaplib._MAXLINE = 100_000_000  # type: ignore[attr-defined]

MiB = 1024 * 1024


@pytest.fixture
def setup() -> Iterator[MailSetup]:
    with mail_setup() as made:
        yield made


def put_messages(setup: MailSetup, user: str, messages: list[bytes]) -> None:
    """Messages 1..n of the user's inbox, written as nmh would."""
    inbox = setup.roots[user] / "inbox"
    inbox.mkdir()
    for number, raw in enumerate(messages, 1):
        (inbox / str(number)).write_bytes(raw)
    if IS_ROOT:
        for path in [inbox, *inbox.iterdir()]:
            os.chown(path, UIDS[user], UIDS[user])


def connect(server: Asimapd, user: str) -> imaplib.IMAP4_SSL:
    context = ssl.create_default_context(cafile=str(server.cert))
    client = imaplib.IMAP4_SSL(
        "127.0.0.1", server.ports["imaps"], ssl_context=context, timeout=120
    )
    client.login(user, PASSWORDS[user])
    client.select("INBOX")
    return client


def vm_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} for {pid}")


def many_addresses(count: int) -> bytes:
    to = b",\r\n\t".join(
        b'"Person %07d" <p%07d@example.org>' % (i, i) for i in range(count)
    )
    return (
        b"From: a@example.org\r\nSubject: many\r\nTo: "
        + to
        + b"\r\nMessage-ID: <many@example.org>\r\n\r\nhello\r\n"
    )


def small(n: int) -> bytes:
    return b"From: a@example.org\r\nSubject: small %d\r\n\r\nbody %d\r\n" % (n, n)


def test_200000_addresses_cost_a_worker_little(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    """Before the limits: 14 s and a worker peak of 1.2 GB for FETCH
    ENVELOPE then SORT (TO) of one such message (8.6 MB)."""
    put_messages(setup, "demo", [many_addresses(200_000), small(2)])
    server = Asimapd(setup, tls_files.cert, tls_files.key)
    try:
        client = connect(server, "demo")
        worker = server.wait_for_worker("demo")
        typ, data = client.fetch("1", "(ENVELOPE)")
        assert typ == "OK"
        envelope = bytes(data[0])  # type: ignore[arg-type]
        assert (
            envelope.count(b'"example.org")') == MAX_ADDRESSES + 3
        )  # + From, Sender, Reply-To
        typ, data = client.uid("SORT", "(TO)", "UTF-8", "ALL")
        assert typ == "OK" and data[0] == b"2 1"  # no To: sorts first
        typ, data = client.uid("SEARCH", "TO", "p0000003")
        assert typ == "OK" and data[0] == b"1"
        peak = vm_kib(worker, "VmHWM") * 1024
        assert peak < 300 * MiB, f"worker peaked at {peak / MiB:.0f} MiB"
        # And it comes back: nothing keyed by the message keeps its parse
        # (before: 227 MB still resident after these three commands).
        kept = vm_kib(worker, "VmRSS") * 1024
        assert kept < 150 * MiB, f"worker keeps {kept / MiB:.0f} MiB"
        client.logout()
    finally:
        server.stop()


def test_the_limit_is_rlimit_data_and_never_raised() -> None:
    """In a child process: the limit is set soft and hard, so nothing in the
    worker can raise it again, and an allocation past it is a MemoryError."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            apply_memory_limit(256 * MiB)
            soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
            try:
                resource.setrlimit(resource.RLIMIT_DATA, (soft, hard + MiB))
                raised = b"raised"
            except (ValueError, OSError):
                raised = b"kept"
            try:
                bytearray(512 * MiB)
                allocated = b"allocated"
            except MemoryError:
                allocated = b"refused"
            os.write(write, b"%d %d %s %s" % (soft, hard, raised, allocated))
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = pipe.read().split()
    os.waitpid(pid, 0)
    if IS_ROOT:
        # root may raise a hard limit; the worker is root only when it
        # serves a root-owned mail root (--allow-root-mail).
        assert report[:2] == [b"%d" % (256 * MiB)] * 2 and report[3] == b"refused"
    else:
        assert report == [b"%d" % (256 * MiB)] * 2 + [b"kept", b"refused"]


def test_a_command_past_the_worker_memory_limit_hurts_only_its_user(
    setup: MailSetup, tls_files: TlsFiles
) -> None:
    """A 96 MiB message read whole by a worker limited to 128 MiB: that
    FETCH fails (``NO [LIMIT]``, or the worker dies and its clients get
    ``* BYE``); the other user's worker, connected all along, is not
    touched, and the user can go on (in the same worker, or a new one)."""
    big = b"From: a@example.org\r\nSubject: big\r\n\r\n" + (b"x" * 76 + b"\r\n") * (
        96 * MiB // 78
    )
    put_messages(setup, "demo", [big, small(2)])
    put_messages(setup, "other", [small(1)])
    server = Asimapd(setup, tls_files.cert, tls_files.key, "--worker-memory-limit=128M")
    try:
        other = connect(server, "other")
        other_worker = server.wait_for_worker("other")
        demo = connect(server, "demo")
        first_worker = server.wait_for_worker("demo")
        assert vm_kib(first_worker, "VmData") < 128 * 1024
        limits = Path(f"/proc/{first_worker}/limits").read_text()
        assert f"{128 * MiB}" in limits.split("Max data size")[1].split("\n")[0]
        died = False
        try:
            typ, data = demo.fetch("1", "(BODY.PEEK[])")
        except (imaplib.IMAP4.abort, OSError) as exc:
            died = True
            assert "BYE" in str(exc) or isinstance(exc, OSError), exc
        else:
            assert typ == "NO", (typ, data[:1])
            assert b"[LIMIT]" in bytes(data[0]), data  # type: ignore[arg-type]
        if died:
            with contextlib.suppress(Exception):
                demo.shutdown()
            demo = connect(server, "demo")
        typ, data = demo.fetch("2", "(BODY.PEEK[])")
        assert typ == "OK" and b"body 2" in data[0][1]  # type: ignore[index]
        # The other user's worker was never touched.
        typ, data = other.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK" and b"body 1" in data[0][1]  # type: ignore[index]
        assert server.workers()["other"] == other_worker
        assert server.process.poll() is None
        demo.logout()
        other.logout()
    finally:
        server.stop()
