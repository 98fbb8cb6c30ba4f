"""SCRAM-SHA-256 on the wire: IMAP AUTHENTICATE transcripts (RFC 4959
SASL-IR, RFC 5530 codes) and POP3 AUTH sessions (RFC 5034, RFC 3206).

The server nonce is fixed to RFC 7677 section 3's, so the first
transcript is that RFC's example exchange byte for byte, and the others
can be written out in full.  Proofs come from the independent test
client (tests/scram_client.py).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from asimap.auth import scram, scram_exchange
from asimap.auth.account import Account
from asimap.auth.scram_exchange import ScramLookup
from asimap.imap.session.services import Services
from asimap.pop3.commands import parse_line
from asimap.pop3.session import Pop3Session
from asimap.store.memory import MemoryStore
from scram_client import ScramClient
from test_auth_scram import (
    RFC_CLIENT_FINAL,
    RFC_CLIENT_FIRST,
    RFC_SERVER_FINAL,
    RFC_SERVER_FIRST,
    RFC_SERVER_NONCE,
)
from test_pop3_session import FakeIO
from test_session_basic import AUTH_CAPS, CAPS
from transcript import FakeAuthenticator, World, run_transcript

ALICE_SALT = b"alice-salt"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def salted(password: bytes, salt: bytes, iterations: int) -> scram.ScramCredentials:
    key = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    return scram.credentials_from_salted_password(salt, iterations, key)


class ScramAccounts(FakeAuthenticator):
    """The transcript users (PLAIN) plus SCRAM for "user"/"pencil" (RFC
    7677's example) and "alice"/"secret-a"; anyone else gets fake
    credentials, as the password-file authenticator gives them."""

    CREDENTIALS = {
        "user": salted(b"pencil", base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096),
        "alice": salted(b"secret-a", ALICE_SALT, 4096),
    }

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: list[tuple[str, bool]] = []

    async def scram_lookup(self, username: str) -> ScramLookup:
        credentials = self.CREDENTIALS.get(username)
        if credentials is None:
            fake = scram.fake_credentials(b"secret", username, 4096)
            return ScramLookup(username, fake, None)
        return ScramLookup(username, credentials, Account(username, Path("/m")))

    async def scram_outcome(
        self, lookup: ScramLookup, proof_valid: bool, peer_host: str
    ) -> Account | None:
        self.outcomes.append((lookup.username, proof_valid))
        return lookup.account if proof_valid else None


@pytest.fixture(autouse=True)
def rfc_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scram_exchange, "server_nonce", lambda: RFC_SERVER_NONCE)


def scram_world(**options: bool) -> World:
    return World(authenticator=ScramAccounts(), **options)


def alice_exchange(password: str = "secret-a") -> tuple[ScramClient, bytes, bytes]:
    """A client for alice, the server-first it will get, and its answer."""
    client = ScramClient("alice", password, nonce="cn0nce")
    salt = base64.b64encode(ALICE_SALT).decode()
    server_first = f"r=cn0nce{RFC_SERVER_NONCE},s={salt},i=4096".encode()
    return client, server_first, client.final(server_first)


# --- IMAP -------------------------------------------------------------------


async def test_imap_rfc7677_example_with_sasl_ir() -> None:
    await run_transcript(
        f"""
        C1 a CAPABILITY
        S1 * CAPABILITY {CAPS} AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256
        S1 a OK Capability completed
        C1 b AUTHENTICATE SCRAM-SHA-256 {b64(RFC_CLIENT_FIRST)}
        S1 + {b64(RFC_SERVER_FIRST)}
        C1 {b64(RFC_CLIENT_FINAL)}
        S1 + {b64(RFC_SERVER_FINAL)}
        C1
        S1 b OK [CAPABILITY %*] Logged in
        C1 c CAPABILITY
        S1 * CAPABILITY {AUTH_CAPS}
        S1 c OK Capability completed
        """,
        scram_world(),
    )


async def test_imap_without_initial_response_and_server_signature() -> None:
    client, server_first, final = alice_exchange()
    await run_transcript(
        f"""
        C1 a authenticate scram-sha-256
        S1 +%*
        C1 {b64(client.first())}
        S1 + {b64(server_first)}
        C1 {b64(final)}
        S1 + {b64(b"v=" + base64.b64encode(client.server_signature or b""))}
        C1
        S1 a OK [CAPABILITY %*] Logged in
        """,
        scram_world(),
    )


async def test_imap_failures_look_like_a_wrong_password() -> None:
    wrong, wrong_first, wrong_final = alice_exchange("not-her-password")
    ghost = ScramClient("ghost", "secret-a", nonce="cn0nce")
    ghost_first = ghost.first()
    world = scram_world()
    ghost_salt = base64.b64encode(
        scram.fake_credentials(b"secret", "ghost", 4096).salt
    ).decode()
    ghost_server_first = f"r=cn0nce{RFC_SERVER_NONCE},s={ghost_salt},i=4096".encode()
    good, good_first, _final = alice_exchange()
    tampered = good.final(good_first, tamper_proof=True)
    await run_transcript(
        f"""
        # Wrong password: NO at once (no e= challenge, RFC 5802 5.1 "e").
        C1 a AUTHENTICATE SCRAM-SHA-256 {b64(wrong.first())}
        S1 + {b64(wrong_first)}
        C1 {b64(wrong_final)}
        S1 a NO [AUTHENTICATIONFAILED] Authentication failed
        # Unknown user: a salt all the same, and the same answer.
        C1 b AUTHENTICATE SCRAM-SHA-256 {b64(ghost_first)}
        S1 + {b64(ghost_server_first)}
        C1 {b64(ghost.final(ghost_server_first))}
        S1 b NO [AUTHENTICATIONFAILED] Authentication failed
        # Tampered proof.
        C1 c AUTHENTICATE SCRAM-SHA-256 {b64(good.first())}
        S1 + {b64(good_first)}
        C1 {b64(tampered)}
        S1 c NO [AUTHENTICATIONFAILED] Authentication failed
        C1 d NOOP
        S1 d OK NOOP completed
        """,
        world,
    )
    assert isinstance(world.authenticator, ScramAccounts)
    assert world.authenticator.outcomes == [
        ("alice", False),
        ("ghost", False),
        ("alice", False),
    ]


async def test_imap_protocol_errors_cancel_and_bad_base64() -> None:
    client, server_first, _final = alice_exchange()
    wrong_nonce = client.final(server_first, nonce_override="cn0nce")
    await run_transcript(
        f"""
        # RFC 5802 section 6: "p" without -PLUS offered fails at once.
        C1 a AUTHENTICATE SCRAM-SHA-256 {b64(b"p=tls-exporter,,n=alice,r=x")}
        S1 a NO [AUTHENTICATIONFAILED] Authentication failed: %?
        C1 b AUTHENTICATE SCRAM-SHA-256 {b64(b"n,,m=x,n=alice,r=x")}
        S1 b NO [AUTHENTICATIONFAILED] Authentication failed: extensions-not-supported
        # The nonce must be ours, not merely start with the client's.
        C1 c AUTHENTICATE SCRAM-SHA-256 {b64(client.first())}
        S1 + {b64(server_first)}
        C1 {b64(wrong_nonce)}
        S1 c NO [AUTHENTICATIONFAILED] Authentication failed: other-error
        # "*" during the exchange cancels: BAD (RFC 3501 section 6.2.2).
        C1 d AUTHENTICATE SCRAM-SHA-256 {b64(client.first())}
        S1 + {b64(server_first)}
        C1 *
        S1 d BAD Authentication cancelled
        C1 e AUTHENTICATE SCRAM-SHA-256 not*base64
        S1 e BAD Invalid base64 initial response
        C1 f AUTHENTICATE SCRAM-SHA-256 =
        S1 f NO [AUTHENTICATIONFAILED] Authentication failed: invalid-encoding
        C1 g AUTHENTICATE SCRAM-SHA-1
        S1 g NO Unsupported authentication mechanism
        """,
        scram_world(),
    )


async def test_imap_scram_needs_privacy_and_a_capable_authenticator() -> None:
    await run_transcript(
        f"""
        C1 a CAPABILITY
        S1 * CAPABILITY {CAPS} LOGINDISABLED
        S1 a OK Capability completed
        C1 b AUTHENTICATE SCRAM-SHA-256 {b64(RFC_CLIENT_FIRST)}
        S1 b NO [PRIVACYREQUIRED] Plaintext authentication disallowed
        """,
        scram_world(allow_plaintext_auth=False),
    )
    # An authenticator without SCRAM support (the worker's replay one, the
    # plain transcript one): neither advertised nor accepted.
    await run_transcript(
        f"""
        C1 a CAPABILITY
        S1 * CAPABILITY {CAPS} AUTH=PLAIN AUTH=LOGIN
        S1 a OK Capability completed
        C1 b AUTHENTICATE SCRAM-SHA-256 {b64(RFC_CLIENT_FIRST)}
        S1 b NO Unsupported authentication mechanism
        """
    )


# --- POP3 -------------------------------------------------------------------


async def pop3_session(
    io: FakeIO | None = None,
) -> tuple[FakeIO, Pop3Session, ScramAccounts]:
    store = MemoryStore.for_new_account()
    await (await store.mailbox("INBOX")).append(b"Subject: x\r\n\r\nbody\r\n")
    accounts = ScramAccounts()

    async def open_store(_account: Account) -> MemoryStore:
        return store

    io = io or FakeIO()
    return io, Pop3Session(io, Services(accounts, open_store)), accounts


async def say(io: FakeIO, session: Pop3Session, line: bytes) -> bytes:
    io.output.clear()
    await session.handle(parse_line(line))
    return bytes(io.output)


async def test_pop3_capa_auth_listing_and_rfc_example() -> None:
    io, session, _accounts = await pop3_session()
    assert b"\r\nSASL PLAIN LOGIN SCRAM-SHA-256\r\n" in await say(io, session, b"CAPA")
    assert await say(io, session, b"AUTH") == (
        b"+OK Mechanisms follow\r\nPLAIN\r\nLOGIN\r\nSCRAM-SHA-256\r\n.\r\n"
    )
    io.lines = [b64(RFC_CLIENT_FINAL).encode(), b""]
    reply = await say(
        io, session, b"AUTH SCRAM-SHA-256 " + b64(RFC_CLIENT_FIRST).encode()
    )
    assert reply == (
        f"+ {b64(RFC_SERVER_FIRST)}\r\n+ {b64(RFC_SERVER_FINAL)}\r\n".encode()
        + b"+OK Logged in, 1 messages (20 octets)\r\n"
    )


async def test_pop3_without_initial_response() -> None:
    io, session, _accounts = await pop3_session()
    client, server_first, final = alice_exchange()
    io.lines = [b64(client.first()).encode(), b64(final).encode(), b"="]
    reply = await say(io, session, b"AUTH SCRAM-SHA-256")
    lines = reply.split(b"\r\n")
    assert lines[0] == b"+ "
    assert lines[1] == b"+ " + b64(server_first).encode()
    client.check_server(base64.b64decode(lines[2][2:]))
    assert lines[3].startswith(b"+OK Logged in")


async def test_pop3_failures() -> None:
    io, session, accounts = await pop3_session()
    wrong, wrong_first, wrong_final = alice_exchange("wrong")
    io.lines = [b64(wrong_final).encode()]
    assert await say(io, session, b"AUTH SCRAM-SHA-256 " + b64(wrong.first()).encode())
    assert io.output == (
        f"+ {b64(wrong_first)}\r\n".encode() + b"-ERR [AUTH] Authentication failed\r\n"
    )
    reply = await say(
        io, session, b"AUTH SCRAM-SHA-256 " + b64(b"p=tls-unique,,n=a,r=b").encode()
    )
    assert reply == (
        b"-ERR [AUTH] Authentication failed: channel-binding-not-supported\r\n"
    )
    io.lines = [b"*"]
    reply = await say(io, session, b"AUTH SCRAM-SHA-256 " + b64(wrong.first()).encode())
    assert reply.endswith(b"\r\n-ERR Authentication cancelled\r\n")
    assert accounts.outcomes == [("alice", False)]
    # Before TLS (plaintext not allowed): refused without an exchange.
    plain_io, plain, _ = await pop3_session(FakeIO(tls_active=False))
    assert b"SASL" not in await say(plain_io, plain, b"CAPA")
    assert (await say(plain_io, plain, b"AUTH SCRAM-SHA-256")).startswith(
        b"-ERR [AUTH] Plaintext"
    )
