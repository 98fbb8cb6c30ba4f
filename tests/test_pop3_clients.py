"""POP3 against real clients: curl, fetchmail, getmail6 and nmh's inc.

Each client talks to a real server on loopback over POP3S or POP3+STLS,
verifying our self-signed certificate, and we check what it delivered
and what it left on the server (seen through IMAP, the other protocol
sharing the user's store).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from asimap.pop3.transfer import normalise
from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles, require_tool
from test_pop3_poplib import append_messages, imap_login, make_message

TIMEOUT = 60


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerThread:
    return server_factory(enable_pop3=True, pop3_port=0, pop3_stls_port=0)


def _inbox_subjects(server: ServerThread, tls_files: TlsFiles) -> list[bytes]:
    imap = imap_login(server, tls_files)
    _typ, count = imap.select("INBOX")
    data: list[object] = []
    if count != [b"0"]:
        _typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")  # type: ignore[assignment]
    imap.logout()
    return [part[1].strip() for part in data if isinstance(part, tuple)]


def _run(args: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, capture_output=True, timeout=TIMEOUT, check=False, env=env
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    return output


# curl -----------------------------------------------------------------------


def _curl(tls_files: TlsFiles, url: str, *args: str) -> bytes:
    curl = require_tool("curl")
    result = subprocess.run(
        [
            curl,
            "-sS",
            "--max-time",
            "30",
            "--cacert",
            str(tls_files.cert),
            "-u",
            f"{USER}:{PASSWORD}",
            url,
            *args,
        ],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def test_curl_pop3s_and_stls(server: ServerThread, tls_files: TlsFiles) -> None:
    dotted = make_message(1, b"line\r\n.starts with a dot\r\n..two\r\n")
    append_messages(server, tls_files, dotted, make_message(2))
    pop3s = f"pop3s://{server.host}:{server.ports['pop3s']}"
    listing = _curl(tls_files, pop3s + "/")
    assert listing == f"1 {len(dotted)}\r\n2 {len(make_message(2))}\r\n".encode()
    assert _curl(tls_files, pop3s + "/1") == dotted
    uidl = _curl(tls_files, pop3s + "/", "-X", "UIDL")
    assert len(uidl.splitlines()) == 2
    # Plain port: --ssl-reqd makes curl send STLS before any credentials.
    pop3 = f"pop3://{server.host}:{server.ports['pop3']}"
    assert _curl(tls_files, pop3 + "/2", "--ssl-reqd") == make_message(2)
    # DELE through curl (-X DELE with --no-body, curl's documented way).
    _curl(tls_files, pop3s + "/1", "-X", "DELE", "-I")
    assert _inbox_subjects(server, tls_files) == [b"Subject: pop3 test 2"]


def test_curl_without_tls_on_the_plain_port_cannot_log_in(
    server: ServerThread, tls_files: TlsFiles
) -> None:
    curl = require_tool("curl")
    result = subprocess.run(
        [
            curl,
            "-sS",
            "--max-time",
            "20",
            "-u",
            f"{USER}:{PASSWORD}",
            f"pop3://{server.host}:{server.ports['pop3']}/",
        ],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode != 0
    assert server.authenticator is not None and server.authenticator.attempts == []


# fetchmail ------------------------------------------------------------------


def _fetchmail(
    server: ServerThread,
    tls_files: TlsFiles,
    home: Path,
    port: int,
    tls: str,
    keep: bool,
) -> Path:
    fetchmail = require_tool("fetchmail")
    home.mkdir(exist_ok=True)
    out = home / "delivered.mbox"
    rc = home / "fetchmailrc"
    rc.write_text(
        f"set no bouncemail\n"
        f"poll {server.host} with proto POP3 port {port} timeout 30\n"
        f'  user "{USER}" there with password "{PASSWORD}" is "nobody" here\n'
        f"  {tls} sslcertck sslcertfile {tls_files.cert} sslcommonname localhost\n"
        f"  {'keep' if keep else 'nokeep'} fetchall\n"
        f"  mda \"/bin/sh -c 'cat >> {out}'\"\n"
    )
    rc.chmod(0o600)
    env = {**os.environ, "HOME": str(home), "FETCHMAILHOME": str(home)}
    _run([fetchmail, "--nosyslog", "--nodetach", "-f", str(rc)], env)
    return out


def test_fetchmail_pop3s_keep_then_delete(
    server: ServerThread, tls_files: TlsFiles, tmp_path: Path
) -> None:
    messages = [make_message(n) for n in (1, 2, 3)]
    append_messages(server, tls_files, *messages)
    home = tmp_path / "home"
    out = _fetchmail(server, tls_files, home, server.ports["pop3s"], "ssl", keep=True)
    delivered = out.read_bytes()
    assert all(f"Subject: pop3 test {n}".encode() in delivered for n in (1, 2, 3))
    assert len(_inbox_subjects(server, tls_files)) == 3  # "keep"
    out.unlink()
    out = _fetchmail(server, tls_files, home, server.ports["pop3s"], "ssl", keep=False)
    assert out.read_bytes().count(b"Subject: pop3 test") == 3
    assert _inbox_subjects(server, tls_files) == []


def test_fetchmail_over_stls(
    server: ServerThread, tls_files: TlsFiles, tmp_path: Path
) -> None:
    append_messages(server, tls_files, make_message(7))
    out = _fetchmail(
        server,
        tls_files,
        tmp_path,
        server.ports["pop3"],
        "sslproto tls1.2+",
        keep=False,
    )
    assert b"Subject: pop3 test 7" in out.read_bytes()
    assert _inbox_subjects(server, tls_files) == []


# getmail6 -------------------------------------------------------------------


def _getmail(
    server: ServerThread,
    tls_files: TlsFiles,
    tmp_path: Path,
    maildir: Path,
    delete: bool,
) -> None:
    getmail = require_tool("getmail")
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    # getmail refuses to deliver as root; deliver as nobody instead, into a
    # directory nobody can reach (pytest's tmp_path is private to root).
    user_line = ""
    if os.geteuid() == 0:
        user_line = "user = nobody\n"
        for path in (maildir, *(maildir / s for s in ("cur", "new", "tmp"))):
            path.chmod(0o777)
    rc = tmp_path / "getmailrc"
    rc.write_text(
        "[retriever]\ntype = SimplePOP3SSLRetriever\n"
        f"server = {server.host}\nport = {server.ports['pop3s']}\n"
        f"username = {USER}\npassword = {PASSWORD}\n"
        f"ca_certs = {tls_files.cert}\n"
        f"[destination]\ntype = Maildir\npath = {maildir}/\n{user_line}"
        f"[options]\nread_all = true\ndelete = {'true' if delete else 'false'}\n"
        "verbose = 1\n"
    )
    state = tmp_path / "getmail-state"
    state.mkdir(exist_ok=True)
    _run([getmail, "--getmaildir", str(state), "--rcfile", str(rc)])


@pytest.fixture
def public_maildir() -> Iterator[Path]:
    """A Maildir path under /tmp that the delivering user can reach."""
    top = Path(tempfile.mkdtemp(prefix="asimap-getmail-"))
    top.chmod(0o755)
    yield top / "Maildir"
    shutil.rmtree(top, ignore_errors=True)


def test_getmail6_pop3s_delivers_byte_exact_and_deletes(
    server: ServerThread, tls_files: TlsFiles, tmp_path: Path, public_maildir: Path
) -> None:
    messages = [make_message(1), make_message(2, b".dot line\r\nend\r\n")]
    append_messages(server, tls_files, *messages)
    maildir = public_maildir
    _getmail(server, tls_files, tmp_path, maildir, delete=False)
    delivered = sorted(p.read_bytes() for p in (maildir / "new").iterdir())
    assert len(delivered) == 2
    # getmail stores LF line ends and adds Delivered-To/Return-Path headers.
    for raw in messages:
        body = normalise(raw).replace(b"\r\n", b"\n")
        assert any(item.endswith(body) for item in delivered), body
    assert len(_inbox_subjects(server, tls_files)) == 2
    _getmail(server, tls_files, tmp_path, maildir, delete=True)
    assert _inbox_subjects(server, tls_files) == []


# nmh inc --------------------------------------------------------------------


def _inc(
    server: ServerThread, tls_files: TlsFiles, tmp_path: Path, *switches: str
) -> Path:
    inc = require_tool("/usr/bin/mh/inc")
    home = tmp_path / "home"
    mail = home / "Mail"
    (mail / "inbox").mkdir(parents=True, exist_ok=True)
    profile = home / ".mh_profile"
    profile.write_text(f"Path: {mail}\ncredentials: file:{home / 'netrc'}\n")
    netrc = home / "netrc"
    # The certificate names localhost and 127.0.0.1, but nmh checks names only.
    netrc.write_text(f"machine localhost login {USER} password {PASSWORD}\n")
    netrc.chmod(0o600)
    env = {
        **os.environ,
        "HOME": str(home),
        "MH": str(profile),
        "SSL_CERT_FILE": str(tls_files.cert),
    }
    _run([inc, "-host", "localhost", "-user", USER, "-width", "200", *switches], env)
    return mail / "inbox"


def _inc_messages(inbox: Path) -> list[bytes]:
    names = sorted(
        (p for p in inbox.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )
    return [p.read_bytes() for p in names]


def test_nmh_inc_pop3s_notruncate_then_truncate(
    server: ServerThread, tls_files: TlsFiles, tmp_path: Path
) -> None:
    messages = [make_message(1), make_message(2, b".dot\r\nplain\r\n")]
    append_messages(server, tls_files, *messages)
    port = str(server.ports["pop3s"])
    inbox = _inc(
        server, tls_files, tmp_path, "-port", port, "-initialtls", "-notruncate"
    )
    got = _inc_messages(inbox)
    assert got == [normalise(m).replace(b"\r\n", b"\n") for m in messages]
    assert len(_inbox_subjects(server, tls_files)) == 2  # -notruncate keeps them
    _inc(server, tls_files, tmp_path, "-port", port, "-initialtls")
    assert len(_inc_messages(inbox)) == 4
    assert _inbox_subjects(server, tls_files) == []  # default: maildrop zeroed


def test_nmh_inc_over_stls(
    server: ServerThread, tls_files: TlsFiles, tmp_path: Path
) -> None:
    append_messages(server, tls_files, make_message(5))
    port = str(server.ports["pop3"])
    inbox = _inc(server, tls_files, tmp_path, "-port", port, "-tls")
    assert _inc_messages(inbox) == [normalise(make_message(5)).replace(b"\r\n", b"\n")]
    assert _inbox_subjects(server, tls_files) == []
