"""Nobody is served as someone else: not by command injection before TLS,
not by an authorization identity, not by a variant spelling of a name.

Security review (docs/security.md, "Logins"), against a real ``asimapd`` in
worker mode with a plain IMAP port (STARTTLS) and a plain POP3 port (STLS):

* commands pipelined in the same packet as STARTTLS or STLS
  (CVE-2011-0411) are discarded: no login happens, no worker is started;
* demo's credentials with the authorization identity ``other`` (SASL
  PLAIN's authzid, SCRAM's ``a=``), in IMAP and POP3, are refused and
  start no worker for ``other``; so is demo's password under variant
  spellings of ``other`` (case, spaces, a NUL).

Which worker serves whom is read from ``/proc`` (``asimap-w:<user>``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    running_with_pop3,
    status_ids,
)


@pytest.fixture
def server(tls_files: TlsFiles) -> Iterator[Asimapd]:
    with running_with_pop3(tls_files.cert, tls_files.key) as daemon:
        yield daemon


def _upgrade(server: Asimapd, raw: socket.socket) -> LineClient:
    tls = server.client_context().wrap_socket(raw, server_hostname="127.0.0.1")
    return LineClient(tls)


def _read_line(raw: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = raw.recv(1)  # byte by byte: nothing after the line is taken
        assert chunk, data
        data += chunk
    return data


def test_commands_pipelined_with_starttls_or_stls_never_run(server: Asimapd) -> None:
    raw = socket.create_connection(("127.0.0.1", server.ports["imap"]), 10)
    assert _read_line(raw).startswith(b"* OK")
    raw.sendall(b"a STARTTLS\r\nb LOGIN demo demo\r\nc SELECT INBOX\r\n")
    assert _read_line(raw).startswith(b"a OK")
    imap = _upgrade(server, raw)
    answer = imap.command(b"d", b"NOOP")
    assert answer == [b"d OK NOOP completed"], answer  # no b, no c
    assert imap.command(b"e", b"SELECT INBOX")[-1].startswith(b"e BAD")

    raw = socket.create_connection(("127.0.0.1", server.ports["pop3"]), 10)
    assert _read_line(raw).startswith(b"+OK")
    raw.sendall(b"STLS\r\nUSER demo\r\nPASS demo\r\n")
    assert _read_line(raw).startswith(b"+OK")
    pop3 = _upgrade(server, raw)
    pop3.send(b"STAT\r\n")
    assert pop3.line().startswith(b"-ERR")
    assert server.workers() == {}, "a pipelined login reached a worker"
    assert "login: user" not in server.log()
    # The connections still work: TLS is up and a real login succeeds.
    assert imap.command(b"f", b"LOGIN demo demo")[-1].startswith(b"f OK")
    server.wait_for_worker("demo")
    imap.close()
    pop3.close()


def _plain(authzid: str, user: str, password: str) -> bytes:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode())


def _imap(server: Asimapd) -> LineClient:
    client = LineClient(server.tls_socket())
    assert client.line().startswith(b"* OK")
    return client


def test_no_one_is_served_as_another_user(server: Asimapd) -> None:
    client = _imap(server)
    refused: list[bytes] = []
    refused += client.command(
        b"a", b"AUTHENTICATE PLAIN " + _plain("other", "demo", "demo")
    )
    scram = ScramClient("demo", "demo", gs2_header="n,a=other,")
    client.send(
        b"s AUTHENTICATE SCRAM-SHA-256 " + base64.b64encode(scram.first()) + b"\r\n"
    )
    refused += client.until_tagged(b"s")
    for tag, name in (
        (b"b", b"OTHER"),
        (b"c", b"Other"),
        (b"d", b'" other"'),
        (b"e", b'"other "'),
    ):
        refused += client.command(tag, b"LOGIN " + name + b" demo")
    client.send(b"g LOGIN {6+}\r\nother\x00 demo\r\n")
    refused += client.until_tagged(b"g")
    tagged = [line for line in refused if not line.startswith((b"*", b"+"))]
    assert len(tagged) == 7, refused
    assert all(b" NO " in line or b" BAD " in line for line in tagged), tagged

    pop3 = LineClient(server.tls_socket("pop3s"))
    assert pop3.line().startswith(b"+OK")
    pop3.send(b"AUTH PLAIN " + _plain("other", "demo", "demo") + b"\r\n")
    assert pop3.line().startswith(b"-ERR")
    pop3.send(b"USER OTHER\r\nPASS demo\r\n")
    assert pop3.line().startswith(b"+OK")  # USER never tells (RFC 1939)
    assert pop3.line().startswith(b"-ERR")
    assert "other" not in server.workers(), server.workers()
    # demo's own login on the same connection still works, as demo.
    assert client.command(b"h", b"LOGIN demo demo")[-1].startswith(b"h OK")
    assert set(server.workers()) == {"demo"}
    client.close()
    pop3.close()


def _descriptors(pid: int) -> dict[str, str]:
    """fd -> what it is (``socket:[inode]``, ``pipe:[inode]``, a path)."""
    found: dict[str, str] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            found[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
    return found


def test_a_worker_holds_no_capability_no_zygote_channel_and_no_secret_file(
    server: Asimapd, tls_files: TlsFiles
) -> None:
    """The zygote runs as root and forks a worker for whatever it is told;
    a worker (running as its user) that kept a descriptor of the zygote's
    channel could order workers for other users.  Nor may a worker hold
    the password file, the TLS key or the certificate open (that no worker
    socket listens is tests/test_worker_privileges.py's)."""
    clients = []
    for user in ("demo", "other"):
        client = _imap(server)
        password = PASSWORDS[user].encode()
        answer = client.command(
            b"a", b"LOGIN " + user.encode() + b' "' + password + b'"'
        )
        assert answer[-1].startswith(b"a OK"), answer
        clients.append(client)
        server.wait_for_worker(user)
    zygote = _descriptors(server.zygote_pid())
    channels = {v for v in zygote.values() if v.startswith(("socket:", "pipe:"))}
    assert channels, zygote  # the zygote does have its channel
    secret_files = {
        str(path.resolve())
        for path in (server.log_path.parent / "pwfile", tls_files.key, tls_files.cert)
    }
    for user, pid in server.workers().items():
        # No capability left either (capabilities(7)): root's are dropped
        # with the uid, and none may come back through an exec.
        status = Path(f"/proc/{pid}/status").read_text()
        caps = dict(re.findall(r"^(Cap\w+):\s+([0-9a-f]+)$", status, re.MULTILINE))
        if IS_ROOT:
            for kind in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
                assert int(caps[kind], 16) == 0, f"worker {user} {kind} {caps[kind]}"
        held = set(_descriptors(pid).values())
        assert not held & channels, f"worker {user} shares {held & channels}"
        assert not held & secret_files, f"worker {user} holds {held & secret_files}"
    for client in clients:
        client.close()


MARK = b"Subject: only-for-other-7c1e\r\n\r\nprivate\r\n"


def test_a_mail_root_swapped_for_a_link_to_another_users_root_is_refused(
    tls_files: TlsFiles,
) -> None:
    """A worker takes the identity of its mail root's owner.  If the user
    can replace their mail root (it lies in their home) by a symlink to
    another user's mail root, the owner seen through the link is the other
    user: the worker must not become them.  A link made by root (an
    administrator moving mail elsewhere) keeps working."""
    if not IS_ROOT:
        pytest.skip("identities only change when asimapd runs as root")
    setup: MailSetup
    with mail_setup() as setup:
        other_inbox = setup.roots["other"] / "inbox"
        other_inbox.mkdir()
        (other_inbox / "1").write_bytes(MARK)
        for path in (other_inbox, other_inbox / "1"):
            os.chown(path, UIDS["other"], UIDS["other"])
        demo_root = setup.roots["demo"]
        demo_root.rmdir()
        demo_root.symlink_to(setup.roots["other"])
        os.lchown(demo_root, UIDS["demo"], UIDS["demo"])  # made by demo
        server = Asimapd(setup, tls_files.cert, tls_files.key)
        try:
            client = _imap(server)
            answer = client.command(b"a", b"LOGIN demo demo")
            if answer[-1].startswith(b"a OK"):
                fetched = client.command(b"s", b"SELECT INBOX")
                fetched += client.command(b"f", b"FETCH 1:* BODY.PEEK[]")
                assert b"only-for-other" not in b"".join(fetched), fetched
            else:
                assert answer == [
                    b"a NO [UNAVAILABLE] Mail store unavailable for this account"
                ], answer
                assert "symbolic link" in server.log()
            worker = server.workers().get("demo")
            if worker is not None:
                assert status_ids(worker)["Uid"][0] != UIDS["other"]
            client.close()
        finally:
            assert server.stop() == 0, server.log()
        # The administrator's link (owned by root) to a root owned by demo.
        elsewhere = setup.base / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        os.chown(elsewhere, UIDS["demo"], UIDS["demo"])
        demo_root.unlink()
        demo_root.symlink_to(elsewhere)
        server = Asimapd(setup, tls_files.cert, tls_files.key)
        try:
            client = _imap(server)
            assert client.command(b"a", b"LOGIN demo demo")[-1].startswith(b"a OK")
            worker = server.wait_for_worker("demo")
            assert status_ids(worker)["Uid"][0] == UIDS["demo"]
            assert (elsewhere / "inbox").is_dir()
            client.close()
        finally:
            assert server.stop() == 0, server.log()


def test_links_inside_link_targets_are_checked_too(tmp_path: Path) -> None:
    """An administrator's link (root's) leading to a user's link that
    points at another user's mail: the user's link decides, and refuses."""
    if not IS_ROOT:
        pytest.skip("needs root to give links other owners")
    from asimap.worker.privileges import PrivilegeError, check_links_to_mail_root

    others = tmp_path / "other-root"
    others.mkdir()
    os.chown(others, UIDS["other"], UIDS["other"])
    home = tmp_path / "home"
    home.mkdir()
    (home / "Mail").symlink_to(others)
    os.lchown(home / "Mail", UIDS["demo"], UIDS["demo"])  # demo's doing
    (tmp_path / "mailroot").symlink_to("home/Mail")  # root's, relative
    with pytest.raises(PrivilegeError, match="home/Mail"):
        check_links_to_mail_root(tmp_path / "mailroot", UIDS["other"])
    # The same chain made by root alone is trusted.
    os.lchown(home / "Mail", 0, 0)
    check_links_to_mail_root(tmp_path / "mailroot", UIDS["other"])
    # And a missing tail below real directories is fine (a new account).
    check_links_to_mail_root(tmp_path / "home" / "new" / "Mail", UIDS["demo"])
