"""An unknown user and a wrong password look alike, on the wire and in work.

Security review (docs/security.md, "Logins"): over real TLS sockets to a
real server, every login path -- IMAP LOGIN, AUTHENTICATE PLAIN with and
without an initial response, AUTHENTICATE LOGIN and SCRAM-SHA-256, POP3
USER/PASS, AUTH PLAIN, AUTH LOGIN and SCRAM-SHA-256 -- is tried for a
known user with a wrong password, for a user who does not exist, and for a
user whose password is unusable (``!``).  The server must answer each with
exactly the same bytes and do the same work: one password-hash
verification per PLAIN/LOGIN attempt, against a stand-in hash of the same
algorithm and iteration count as the real users' (a cheaper or dearer
stand-in would tell them apart by time), one SCRAM proof check per SCRAM
attempt, with salt and iteration count shaped alike.  Nothing here
measures time (timing on a shared machine is noise); counting the
verifications and their cost is what makes the times alike.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asimap.auth import hashers, scram
from asimap.auth.authenticator import PasswordFileAuthenticator
from asimap.auth.throttle import LoginPenalty
from asimap.config import Config
from conftest import ServerThread, TlsFiles
from scram_client import ScramClient

TIMEOUT = 15.0
PASSWORD = "right-password"
WRONG = "not-the-password"


class CountingServer(ServerThread):
    """A real server whose authenticator is the production one (SCRAM
    included) with a counting hash verifier and no delays, so that many
    failures in a row stay fast and comparable."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.verifications: list[str] = []
        self._lock = threading.Lock()

    def _verify(self, password: str, encoded: str) -> bool:
        with self._lock:
            self.verifications.append(encoded)
        return hashers.verify_password(password, encoded)

    async def _main(self) -> None:
        import asyncio

        from asimap.imap.server import ImapServer, build_services

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        services, registry = build_services(self.config)
        authenticator = PasswordFileAuthenticator(
            self.config.pwfile,
            verify=self._verify,
            failure_delay=0,
            penalty=LoginPenalty(max_delay=0),
        )
        services = dataclasses.replace(services, authenticator=authenticator)
        async with ImapServer(self.config, services) as server:
            self.server = server
            self.ports = dict(server.ports)
            self._ready.set()
            await self._stop.wait()
        authenticator.close()
        await registry.close_all()


@pytest.fixture
def server(tmp_path: Path, tls_files: TlsFiles) -> Iterator[CountingServer]:
    pwfile = tmp_path / "pwfile"
    real = hashers.make_password(PASSWORD, iterations=1000)
    pwfile.write_text(f"demo:{real}:mail/demo\nlocked:!{real}:mail/locked\n")
    config = Config(
        address="127.0.0.1",
        port=0,
        imap_port=0,
        cert=tls_files.cert,
        key=tls_files.key,
        pwfile=pwfile,
        store="memory",
        enable_pop3=True,
        pop3_port=0,
    )
    thread = CountingServer(config).start()
    try:
        yield thread
    finally:
        thread.stop()


class Lines:
    def __init__(self, server: CountingServer, tls_files: TlsFiles, port: str):
        raw = socket.create_connection(("127.0.0.1", server.ports[port]), TIMEOUT)
        self.sock: ssl.SSLSocket = tls_files.client_context().wrap_socket(
            raw, server_hostname="localhost"
        )
        self.buffer = b""
        self.greeting = self.line()

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, f"closed; pending {self.buffer!r}"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def send(self, data: bytes) -> None:
        self.sock.sendall(data + b"\r\n")

    def close(self) -> None:
        self.sock.close()


def _plain(user: str, password: str) -> bytes:
    return base64.b64encode(f"\0{user}\0{password}".encode())


#: The three kinds of failure that must look alike.
USERS = {"wrong password": "demo", "unknown user": "nobody-here", "unusable": "locked"}


def _imap_attempts(c: Lines, user: str) -> list[bytes]:
    answers = []
    c.send(f'a LOGIN {user} "{WRONG}"'.encode())
    answers.append(c.line())
    c.send(b"b AUTHENTICATE PLAIN " + _plain(user, WRONG))
    answers.append(c.line())
    c.send(b"c AUTHENTICATE PLAIN")
    answers.append(c.line())
    c.send(_plain(user, WRONG))
    answers.append(c.line())
    c.send(b"d AUTHENTICATE LOGIN")
    answers += _sasl_login(c, user)
    return answers


def _sasl_login(c: Lines, user: str) -> list[bytes]:
    """The SASL LOGIN exchange: user name, then password, each asked for."""
    answers = [c.line()]
    c.send(base64.b64encode(user.encode()))
    answers.append(c.line())
    c.send(base64.b64encode(WRONG.encode()))
    answers.append(c.line())
    return answers


def _scram(c: Lines, user: str, imap: bool) -> tuple[list[bytes], bytes]:
    """A SCRAM exchange with a wrong password; (answers, server-first
    message with its nonce masked)."""
    client = ScramClient(user, WRONG)
    c.send(b"s AUTHENTICATE SCRAM-SHA-256" if imap else b"AUTH SCRAM-SHA-256")
    ready = c.line()
    c.send(base64.b64encode(client.first()))
    challenge = c.line()
    server_first = base64.b64decode(challenge.split(b" ", 1)[1])
    c.send(base64.b64encode(client.final(server_first)))
    final = c.line()
    masked = re.sub(rb"r=[^,]+", b"r=NONCE", server_first)
    masked = re.sub(rb"s=[^,]+", lambda m: b"s=" + b"S" * len(m.group(0)), masked)
    return [ready, final], masked


def _pop3_attempts(c: Lines, user: str) -> list[bytes]:
    answers = []
    c.send(f"USER {user}".encode())
    answers.append(c.line())
    c.send(f"PASS {WRONG}".encode())
    answers.append(c.line())
    c.send(b"AUTH PLAIN " + _plain(user, WRONG))
    answers.append(c.line())
    c.send(b"AUTH PLAIN")
    answers.append(c.line())
    c.send(_plain(user, WRONG))
    answers.append(c.line())
    c.send(b"AUTH LOGIN")
    answers += _sasl_login(c, user)
    return answers


def _cost(encoded: str) -> str:
    """What a verification of ``encoded`` costs: algorithm and iterations
    (``pbkdf2_sha256$1000``), without salt or digest."""
    return "$".join(encoded.split("$")[:2])


def _run(
    server: CountingServer, tls_files: TlsFiles, user: str, monkeypatch: Any
) -> tuple[list[bytes], list[str], int]:
    """All attempts for ``user``: (answers, cost of each hash verification,
    SCRAM proof checks)."""
    proofs: list[int] = []
    real_verify_proof = scram.verify_proof

    def counting_proof(*args: Any) -> bool:
        proofs.append(1)
        return real_verify_proof(*args)

    monkeypatch.setattr(scram, "verify_proof", counting_proof)
    before = len(server.verifications)
    imap = Lines(server, tls_files, "imaps")
    answers = _imap_attempts(imap, user)
    scram_answers, shape = _scram(imap, user, imap=True)
    answers += [*scram_answers, shape]
    imap.send(b"z NOOP")
    answers.append(imap.line())  # still not logged in, still served
    imap.close()
    pop3 = Lines(server, tls_files, "pop3s")
    answers += _pop3_attempts(pop3, user)
    scram_answers, shape = _scram(pop3, user, imap=False)
    answers += [*scram_answers, shape]
    pop3.close()
    monkeypatch.undo()
    costs = [_cost(encoded) for encoded in server.verifications[before:]]
    return answers, costs, len(proofs)


def test_unknown_user_wrong_password_and_unusable_look_alike(
    server: CountingServer, tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = {
        kind: _run(server, tls_files, user, monkeypatch) for kind, user in USERS.items()
    }
    reference_answers, hashes, proofs = results["wrong password"]
    # The wrong password really was refused everywhere, with work done:
    # LOGIN, two AUTHENTICATE PLAIN, AUTHENTICATE LOGIN, PASS, two AUTH
    # PLAIN, AUTH LOGIN.
    assert b"a NO [AUTHENTICATIONFAILED]" in reference_answers[0]
    assert hashes == ["pbkdf2_sha256$1000"] * 8, hashes
    assert proofs == 2, proofs
    for kind, (answers, kind_hashes, kind_proofs) in results.items():
        assert answers == reference_answers, kind
        # As many verifications, each as costly as the real user's.
        assert (kind_hashes, kind_proofs) == (hashes, proofs), kind
    # And the right password still works after all those failures.
    imap = Lines(server, tls_files, "imaps")
    imap.send(f'a LOGIN demo "{PASSWORD}"'.encode())
    assert imap.line().startswith(b"a OK")
    imap.close()
