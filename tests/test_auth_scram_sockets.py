"""SCRAM-SHA-256 over real TLS sockets against ``asimapd`` in worker mode.

The clients are Python's ``imaplib`` (``authenticate`` with an
authobject), ``poplib`` driven line by line (it has no SASL support of
its own) and a raw IMAP conversation using SASL-IR; the SCRAM arithmetic
is the independent test client's (tests/scram_client.py).  After a
successful exchange the connection must be served by the user's worker
process, as after LOGIN.

Real third-party SCRAM clients too: mbsync (IMAP) and nmh's ``inc``
(POP3) authenticate through Cyrus SASL, whose SCRAM plugin
(``libsasl2-modules``) computes the proof and checks our ServerSignature
itself; ``inc`` also sends an authzid (``a=demo``), which must equal the
user.  It is also why failures end
without an ``e=`` challenge: that plugin neither answers nor hangs up
after one (see ``asimap.auth.scram_exchange``), so the wrong-password
case must end promptly, not at the idle timeout.

curl is not exercised: curl only does SCRAM when built with libgsasl,
and Debian's curl 7.88.1 here is not (``curl -V`` lists no "gsasl").
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import imaplib
import poplib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SAMPLE_MESSAGE, TlsFiles, require_tool
from scram_client import ScramClient
from worker_harness import Asimapd, LineClient, MailSetup, mail_setup

TIMEOUT = 15.0


@contextlib.contextmanager
def scram_server(tls_files: TlsFiles) -> Iterator[Asimapd]:
    """asimapd in worker mode with POP3, and a user who cannot use SCRAM."""
    setup: MailSetup
    with mail_setup() as setup:
        # A user whose hash is not pbkdf2_sha256 (legacy salted MD5): the
        # right password works with PLAIN but can never work with SCRAM.
        legacy = "md5$salt$" + hashlib.md5(b"saltlegacy-pw").hexdigest()
        with setup.pwfile.open("a") as pwfile:
            pwfile.write(f"legacy:{legacy}:{setup.roots['other']}\n")
        daemon = Asimapd(
            setup, tls_files.cert, tls_files.key, "--enable-pop3", "--pop3-port=0"
        )
        try:
            yield daemon
        finally:
            assert daemon.stop() == 0, daemon.log()


#: One server for the module, so its login throttle (production defaults:
#: 5 failures per address a minute) spans the tests; the module as written
#: makes exactly 5 failed attempts with it, in the last one.
@pytest.fixture(scope="module")
def server(tls_files: TlsFiles) -> Iterator[Asimapd]:
    with scram_server(tls_files) as daemon:
        yield daemon


def imaps(server: Asimapd) -> imaplib.IMAP4_SSL:
    return imaplib.IMAP4_SSL(
        "127.0.0.1",
        server.ports["imaps"],
        ssl_context=server.client_context(),
        timeout=TIMEOUT,
    )


class ImaplibAuth:
    """An imaplib authobject: answers each (decoded) challenge."""

    def __init__(self, client: ScramClient, **final_options: bool) -> None:
        self.client = client
        self.final_options = final_options
        self.challenges: list[bytes] = []

    def __call__(self, challenge: bytes) -> bytes | None:
        self.challenges.append(challenge)
        if not challenge:
            return self.client.first()
        if challenge.startswith(b"r="):
            return self.client.final(challenge, **self.final_options)
        if challenge.startswith(b"v="):
            self.client.check_server(challenge)
            return b""
        return None  # anything else: cancel ("*")


def test_imaplib_authenticate_is_served_by_the_worker(server: Asimapd) -> None:
    imap = imaps(server)
    assert "AUTH=SCRAM-SHA-256" in imap.capabilities
    auth = ImaplibAuth(ScramClient("demo", "demo"))
    typ, data = imap.authenticate("SCRAM-SHA-256", auth)
    assert typ == "OK", data
    assert [c[:2] for c in auth.challenges] == [b"", b"r=", b"v="]
    assert imap.select("INBOX")[0] == "OK"
    assert "demo" in server.workers()
    assert imap.logout()[0] == "BYE"
    assert "login (SCRAM-SHA-256): user 'demo'" in server.log()


@pytest.mark.parametrize(
    ("user", "password", "options"),
    [
        ("demo", "wrong", {}),
        ("ghost", "demo", {}),  # unknown user
        ("legacy", "legacy-pw", {}),  # right password, MD5 hash
        ("demo", "demo", {"tamper_proof": True}),
    ],
)
def test_imaplib_failures_are_all_alike(
    server: Asimapd, user: str, password: str, options: dict[str, bool]
) -> None:
    imap = imaps(server)
    auth = ImaplibAuth(ScramClient(user, password), **options)
    with pytest.raises(
        imap.error, match=r"^\[AUTHENTICATIONFAILED\] Authentication failed$"
    ):
        imap.authenticate("SCRAM-SHA-256", auth)
    # Refused right after the client-final-message, with no e= challenge.
    assert [c[:2] for c in auth.challenges] == [b"", b"r="]
    # Real and fake salts look alike: 22 characters of Django's alphabet,
    # and the iteration count real users have.
    attrs = dict(p.split(b"=", 1) for p in auth.challenges[1].split(b","))
    assert len(base64.b64decode(attrs[b"s"])) == 22
    assert attrs[b"i"] == b"1000"
    # The connection survives for another command.
    assert imap.noop()[0] == "OK"
    imap.logout()


def test_raw_imap_with_sasl_ir_and_bad_gs2_header(server: Asimapd) -> None:
    line = LineClient(server.tls_socket("imaps"), timeout=TIMEOUT)
    try:
        assert line.line().startswith(b"* OK")
        client = ScramClient("demo", "demo", gs2_header="p=tls-exporter,,")
        line.send(b"a AUTHENTICATE SCRAM-SHA-256 " + base64.b64encode(client.first()))
        line.send(b"\r\n")
        assert line.until_tagged(b"a") == [
            b"a NO [AUTHENTICATIONFAILED] Authentication failed: "
            b"channel-binding-not-supported"
        ]
        client = ScramClient("demo", "demo")
        line.send(b"b AUTHENTICATE SCRAM-SHA-256 " + base64.b64encode(client.first()))
        line.send(b"\r\n")
        server_first = base64.b64decode(line.line()[2:])
        line.send(base64.b64encode(client.final(server_first)) + b"\r\n")
        client.check_server(base64.b64decode(line.line()[2:]))
        line.send(b"\r\n")
        assert line.until_tagged(b"b")[-1].startswith(b"b OK [CAPABILITY ")
        assert line.command(b"c", b"SELECT INBOX")[-1].startswith(b"c OK")
    finally:
        line.close()


def pop_scram(
    server: Asimapd, client: ScramClient, *, cancel_at_first: bool = False
) -> tuple[poplib.POP3_SSL, list[bytes]]:
    """Run AUTH SCRAM-SHA-256 with SASL-IR over poplib's line I/O; return
    the connection and every line the server sent."""
    pop = poplib.POP3_SSL(
        "127.0.0.1",
        server.ports["pop3s"],
        context=server.client_context(),
        timeout=TIMEOUT,
    )
    lines: list[bytes] = []
    pop._putcmd("AUTH SCRAM-SHA-256 " + base64.b64encode(client.first()).decode())
    while True:
        reply, _octets = pop._getline()
        lines.append(reply)
        if not reply.startswith(b"+ "):
            return pop, lines
        challenge = base64.b64decode(reply[2:])
        if challenge.startswith(b"r=") and not cancel_at_first:
            pop._putcmd(base64.b64encode(client.final(challenge)).decode())
        elif challenge.startswith(b"v="):
            client.check_server(challenge)
            pop._putcmd("")
        else:
            pop._putcmd("*")


def test_poplib_scram_login_and_failures(server: Asimapd) -> None:
    pop = poplib.POP3_SSL(
        "127.0.0.1",
        server.ports["pop3s"],
        context=server.client_context(),
        timeout=TIMEOUT,
    )
    assert "SCRAM-SHA-256" in pop.capa()["SASL"]
    pop.quit()

    pop, lines = pop_scram(server, ScramClient("demo", "demo"))
    assert lines[-1].startswith(b"+OK Logged in"), lines
    assert pop.stat() == (0, 0)
    assert "demo" in server.workers()
    assert pop.quit().startswith(b"+OK")

    pop, lines = pop_scram(server, ScramClient("other", "wrong"))
    assert base64.b64decode(lines[-2][2:]).startswith(b"r=")
    assert lines[-1] == b"-ERR [AUTH] Authentication failed"
    pop.quit()

    pop, lines = pop_scram(server, ScramClient("other", "x"), cancel_at_first=True)
    assert lines[-1] == b"-ERR Authentication cancelled"
    pop.quit()


def run_mbsync(server: Asimapd, tls: TlsFiles, password: str) -> tuple[int, str]:
    """One mbsync run of INBOX with ``AuthMechs SCRAM-SHA-256``."""
    mbsync = require_tool("mbsync")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "mail").mkdir()
        config = home / "mbsyncrc"
        config.write_text(
            "IMAPAccount asimap\n"
            # isync 1.4 matches the certificate's DNS names only.
            "Host localhost\n"
            f"Port {server.ports['imaps']}\n"
            "User demo\n"
            f"Pass {password}\n"
            "SSLType IMAPS\n"
            f"CertificateFile {tls.cert}\n"
            "AuthMechs SCRAM-SHA-256\n"
            "Timeout 20\n\n"
            "IMAPStore remote\nAccount asimap\n\n"
            f"MaildirStore local\nPath {home}/mail/\nInbox {home}/mail/INBOX\n\n"
            "Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\n"
            "Create Both\nSyncState *\n"
        )
        result = subprocess.run(
            [mbsync, "-a", "-V", "-c", str(config)],
            capture_output=True,
            timeout=40,
            check=False,
            stdin=subprocess.DEVNULL,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        )
    return result.returncode, (result.stdout + result.stderr).decode(errors="replace")


def test_mbsync_cyrus_sasl_scram(tls_files: TlsFiles) -> None:
    # A server of its own: the module's has used up its failure budget.
    with scram_server(tls_files) as server:
        check_mbsync(server, tls_files)


def check_mbsync(server: Asimapd, tls_files: TlsFiles) -> None:
    code, output = run_mbsync(server, tls_files, "demo")
    assert code == 0, output
    assert "Authenticating with SASL mechanism SCRAM-SHA-256" in output
    assert "far side: 0 messages" in output
    # A wrong password fails at once (one failure_delay), not by timeout.
    started = time.monotonic()
    code, output = run_mbsync(server, tls_files, "wrong")
    assert code != 0, output
    assert "AUTHENTICATIONFAILED" in output or "Authentication failed" in output
    assert time.monotonic() - started < 15


def run_inc(server: Asimapd, tls: TlsFiles, home: Path, password: str) -> str:
    """nmh's inc over POP3S with ``-sasl -saslmech SCRAM-SHA-256``."""
    inc = require_tool("/usr/bin/mh/inc")
    (home / "Mail" / "inbox").mkdir(parents=True, exist_ok=True)
    profile = home / ".mh_profile"
    profile.write_text(f"Path: {home / 'Mail'}\ncredentials: file:{home / 'netrc'}\n")
    netrc = home / "netrc"
    # nmh checks the certificate's DNS names only.
    netrc.write_text(f"machine localhost login demo password {password}\n")
    netrc.chmod(0o600)
    port = str(server.ports["pop3s"])
    sasl = ["-sasl", "-saslmech", "SCRAM-SHA-256", "-snoop"]
    result = subprocess.run(
        [
            inc,
            "-host",
            "localhost",
            "-port",
            port,
            "-user",
            "demo",
            "-initialtls",
            *sasl,
        ],
        capture_output=True,
        timeout=40,
        check=False,
        stdin=subprocess.DEVNULL,
        env={
            "HOME": str(home),
            "PATH": "/usr/bin:/bin",
            "MH": str(profile),
            "SSL_CERT_FILE": str(tls.cert),
        },
    )
    return (result.stdout + result.stderr).decode(errors="replace")


def test_nmh_inc_pop3_cyrus_sasl_scram(tls_files: TlsFiles, tmp_path: Path) -> None:
    with scram_server(tls_files) as server:
        imap = imaps(server)
        imap.login("demo", "demo")
        assert imap.append("INBOX", "", None, SAMPLE_MESSAGE)[0] == "OK"
        imap.logout()
        output = run_inc(server, tls_files, tmp_path, "demo")
        assert "AUTH SCRAM-SHA-256 b64<n,a=demo,n=demo,r=" in output, output
        assert "+OK Logged in, 1 messages" in output, output
        delivered = (tmp_path / "Mail" / "inbox" / "1").read_bytes()
        assert delivered == SAMPLE_MESSAGE.replace(b"\r\n", b"\n")
        output = run_inc(server, tls_files, tmp_path / "wrong", "wrong")
        assert "-ERR [AUTH] Authentication failed" in output, output
        assert not (tmp_path / "wrong" / "Mail" / "inbox" / "1").exists()
