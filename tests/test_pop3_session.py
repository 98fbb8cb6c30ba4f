"""POP3 session transcripts over an in-memory connection and store.

Each test is a scripted conversation: client lines and the exact server
answers, read as documentation of the behaviour (RFC 1939 states,
snapshot numbering, deletion only at a clean QUIT, RFC 2449/3206 codes).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from asimap.auth.account import Account
from asimap.imap.session.services import Services
from asimap.pop3.commands import parse_line
from asimap.pop3.session import Pop3Session
from asimap.pop3.states import State
from asimap.store.base import Mailbox, StoreMode
from asimap.store.memory import MemoryStore

M1 = b"Subject: one\r\n\r\nfirst\r\n"
M2 = b"Subject: two\n\n.dotted\nline two\n"  # bare LF, a dot line
M3 = b"Subject: three\r\n\r\n1\r\n2\r\n3\r\n"
#: What STAT reports for the three: M2's four bare LFs become CRLF.
TOTAL = len(M1) + len(M2) + 4 + len(M3)


class Accounts:
    """alice/secret; remembers attempts so tests see what was checked."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, str]] = []

    async def authenticate(
        self, username: str, password: str, peer_host: str
    ) -> Account | None:
        self.attempts.append((username, password))
        if (username, password) == ("alice", "secret"):
            return Account("alice", Path("/nonexistent"))
        return None


@dataclass
class FakeIO:
    tls_active: bool = True
    stls_available: bool = False
    peer_host: str = "192.0.2.1"
    output: bytearray = field(default_factory=bytearray)
    lines: list[bytes] = field(default_factory=list)
    tls_started: int = 0

    async def send(self, data: bytes) -> None:
        self.output += data

    async def read_line(self) -> bytes | None:
        return self.lines.pop(0) if self.lines else None

    async def start_tls(self) -> None:
        self.tls_started += 1
        self.tls_active, self.stls_available = True, False


@dataclass
class World:
    store: MemoryStore
    accounts: Accounts
    services: Services

    async def inbox(self) -> Mailbox:
        return await self.store.mailbox("INBOX")

    def session(self, io: FakeIO | None = None, **io_args: bool) -> Client:
        io = io or FakeIO(**io_args)  # type: ignore[arg-type]
        return Client(io, Pop3Session(io, self.services))


@dataclass
class Client:
    io: FakeIO
    session: Pop3Session
    open: bool = True

    async def say(self, line: bytes) -> bytes:
        """Send one command line, return everything the server answered."""
        assert self.open
        self.io.output.clear()
        self.open = await self.session.handle(parse_line(line))
        return bytes(self.io.output)

    async def login(self) -> None:
        assert await self.say(b"USER alice") == b"+OK Send your password\r\n"
        assert (await self.say(b"PASS secret")).startswith(b"+OK Logged in")


@pytest.fixture
async def world() -> World:
    store = MemoryStore.for_new_account()
    inbox = await store.mailbox("INBOX")
    for raw in (M1, M2, M3):
        await inbox.append(raw)
    accounts = Accounts()

    async def open_store(_account: Account) -> MemoryStore:
        return store

    return World(store, accounts, Services(accounts, open_store))


async def test_greeting_and_login_with_user_pass(world: World) -> None:
    client = world.session()
    assert client.session.greeting() == b"+OK asimap POP3 ready\r\n"
    assert await client.say(b"PASS secret") == (
        b"-ERR No username given; send USER first\r\n"
    )
    await client.say(b"USER alice")
    assert await client.say(b"PASS wrong") == b"-ERR [AUTH] Authentication failed\r\n"
    # A failed PASS forgets the user: PASS alone cannot be retried.
    assert (await client.say(b"PASS secret")).startswith(b"-ERR No username")
    await client.say(b"USER alice")
    sizes = len(M1) + (len(M2) + 4) + len(M3)
    assert await client.say(b"PASS secret") == (
        f"+OK Logged in, 3 messages ({sizes} octets)\r\n".encode()
    )
    assert client.session.state is State.TRANSACTION


async def test_transaction_commands_before_login_and_auth_after(world: World) -> None:
    # Two at a time: the third invalid command before login ends the
    # session (asimap.net.prelogin, tests/test_prelogin_invalid.py).
    for pair in ((b"STAT", b"LIST"), (b"RETR 1", b"DELE 1"), (b"NOOP", b"RSET")):
        client = world.session()
        for line in pair:
            assert (await client.say(line)).startswith(b"-ERR")
    await client.login()
    assert await client.say(b"USER alice") == b"-ERR USER not allowed now\r\n"
    assert await client.say(b"AUTH PLAIN") == b"-ERR AUTH not allowed now\r\n"
    assert await client.say(b"STLS") == b"-ERR STLS not allowed now\r\n"


async def test_capa_before_tls_after_tls_and_after_login(world: World) -> None:
    plain = world.session(tls_active=False, stls_available=True)
    assert await plain.say(b"CAPA") == (
        b"+OK Capability list follows\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
        b"AUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\nIMPLEMENTATION asimap\r\n.\r\n"
    )
    assert await plain.say(b"USER alice") == (
        b"-ERR [AUTH] Plaintext authentication disallowed on non-secure "
        b"connections; use STLS\r\n"
    )
    assert (await plain.say(b"PASS secret")).startswith(b"-ERR [AUTH] Plaintext")
    assert (await plain.say(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==")).startswith(
        b"-ERR [AUTH] Plaintext"
    )
    assert (await plain.say(b"AUTH")).startswith(b"-ERR [AUTH] Plaintext")
    assert world.accounts.attempts == []  # never even checked
    assert await plain.say(b"STLS") == b"+OK Begin TLS negotiation now\r\n"
    assert plain.io.tls_started == 1
    capa = await plain.say(b"CAPA")
    assert b"STLS" not in capa
    assert b"\r\nUSER\r\nSASL PLAIN LOGIN\r\n" in capa
    assert await plain.say(b"STLS") == b"-ERR STLS not available on this connection\r\n"
    await plain.login()
    capa = await plain.say(b"CAPA")
    assert b"USER" not in capa and b"SASL" not in capa and b"\r\nTOP\r\n" in capa


async def test_auth_plain_login_and_listing(world: World) -> None:
    client = world.session()
    assert (
        await client.say(b"AUTH") == b"+OK Mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n"
    )
    assert await client.say(b"AUTH CRAM-MD5") == (
        b"-ERR Unsupported authentication mechanism\r\n"
    )
    bad = base64.b64encode(b"\x00alice\x00nope")
    assert await client.say(b"AUTH PLAIN " + bad) == (
        b"-ERR [AUTH] Authentication failed\r\n"
    )
    assert await client.say(b"AUTH PLAIN !!!") == (
        b"-ERR Invalid base64 in SASL response\r\n"
    )
    # Acting as someone else (authzid) is refused like a wrong password.
    other = base64.b64encode(b"bob\x00alice\x00secret")
    assert (await client.say(b"AUTH PLAIN " + other)).startswith(b"-ERR [AUTH]")
    # Without initial response: "+ " challenge, then the response line.
    client.io.lines = [b"*"]
    assert await client.say(b"AUTH PLAIN") == b"+ \r\n-ERR Authentication cancelled\r\n"
    client.io.lines = [base64.b64encode(b"\x00alice\x00secret")]
    reply = await client.say(b"AUTH PLAIN")
    assert reply.startswith(b"+ \r\n+OK Logged in, 3 messages")


async def test_auth_login_mechanism(world: World) -> None:
    client = world.session()
    client.io.lines = [base64.b64encode(b"alice"), base64.b64encode(b"secret")]
    reply = await client.say(b"AUTH LOGIN")
    assert reply.startswith(b"+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n+OK Logged in")
    assert world.accounts.attempts == [("alice", "secret")]


async def test_stat_list_uidl_retr_top(world: World) -> None:
    client = world.session()
    await client.login()
    inbox = await world.inbox()
    v = inbox.uidvalidity
    size2 = len(M2) + 4  # four bare LFs become CRLF
    total = len(M1) + size2 + len(M3)
    assert await client.say(b"STAT") == f"+OK 3 {total}\r\n".encode()
    assert await client.say(b"LIST") == (
        f"+OK 3 messages ({total} octets)\r\n"
        f"1 {len(M1)}\r\n2 {size2}\r\n3 {len(M3)}\r\n.\r\n".encode()
    )
    assert await client.say(b"LIST 2") == f"+OK 2 {size2}\r\n".encode()
    assert (
        await client.say(b"UIDL")
        == (
            f"+OK Unique-ID listing follows\r\n1 {v}.1\r\n2 {v}.2\r\n3 {v}.3\r\n.\r\n"
        ).encode()
    )
    assert await client.say(b"UIDL 3") == f"+OK 3 {v}.3\r\n".encode()
    assert await client.say(b"RETR 2") == (
        f"+OK {size2} octets\r\n".encode()
        + b"Subject: two\r\n\r\n..dotted\r\nline two\r\n.\r\n"
    )
    assert await client.say(b"TOP 3 1") == b"+OK\r\nSubject: three\r\n\r\n1\r\n.\r\n"
    assert await client.say(b"TOP 3 0") == b"+OK\r\nSubject: three\r\n\r\n.\r\n"
    # RETR marks the message seen at once; TOP does not.
    seen = {s.uid for s in await inbox.states() if "\\Seen" in s.flags}
    assert seen == {2}


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        (b"RETR 4", b"-ERR No such message, only 3 in maildrop\r\n"),
        (b"LIST 99", b"-ERR No such message, only 3 in maildrop\r\n"),
        (b"TOP 0 1", b"-ERR Invalid message number: must be at least 1\r\n"),
        (b"DELE x", b"-ERR Invalid message number: not a number\r\n"),
        (b"UIDL -1", b"-ERR Invalid message number: not a number\r\n"),
        (b"RETR", b"-ERR Missing argument\r\n"),
        (b"TOP 1", b"-ERR Missing argument\r\n"),
        (b"XTND XMIT", b"-ERR Unknown command\r\n"),
    ],
)
async def test_bad_arguments_answer_err_and_continue(
    world: World, line: bytes, answer: bytes
) -> None:
    client = world.session()
    await client.login()
    assert await client.say(line) == answer
    assert await client.say(b"NOOP") == b"+OK\r\n"


async def test_dele_rset_and_quit_commits_exactly_the_marked(world: World) -> None:
    client = world.session()
    await client.login()
    inbox = await world.inbox()
    # An IMAP client flagged message 3 \Deleted without expunging it: a POP3
    # QUIT must not expunge it, only what POP3 deleted.
    await inbox.store([3], StoreMode.ADD, ["\\Deleted"])
    assert await client.say(b"DELE 1") == b"+OK Message 1 deleted\r\n"
    assert await client.say(b"DELE 1") == b"-ERR Message 1 already deleted\r\n"
    assert await client.say(b"RETR 1") == b"-ERR Message 1 already deleted\r\n"
    assert (await client.say(b"STAT")).startswith(b"+OK 2 ")
    assert not (await client.say(b"LIST")).count(b"\r\n1 ")
    assert (
        await client.say(b"RSET")
        == (f"+OK Maildrop has 3 messages ({TOTAL} octets)\r\n").encode()
    )
    await client.say(b"DELE 2")
    assert (await inbox.status()).messages == 3  # nothing happened yet
    assert await client.say(b"QUIT") == b"+OK Logging out, 2 messages left\r\n"
    assert not client.open
    assert [s.uid for s in await inbox.states()] == [1, 3]


async def test_a_session_that_ends_without_quit_deletes_nothing(world: World) -> None:
    client = world.session()
    await client.login()
    await client.say(b"DELE 1")
    await client.say(b"DELE 2")
    await client.session.close()  # the driver's cleanup on a dropped connection
    assert len(await (await world.inbox()).states()) == 3


async def test_message_expunged_elsewhere_keeps_numbering(world: World) -> None:
    client = world.session()
    await client.login()
    inbox = await world.inbox()
    await inbox.store([2], StoreMode.ADD, ["\\Deleted"])
    assert await inbox.expunge() == (2,)
    assert await client.say(b"RETR 2") == b"-ERR Message 2 no longer exists\r\n"
    assert await client.say(b"TOP 2 0") == b"-ERR Message 2 no longer exists\r\n"
    assert (await client.say(b"STAT")).startswith(b"+OK 3 ")
    assert (await client.say(b"RETR 3")).startswith(f"+OK {len(M3)} octets".encode())
    # Deleting the vanished message is harmless at QUIT.
    await client.say(b"DELE 2")
    await client.say(b"DELE 1")
    assert (await client.say(b"QUIT")).startswith(b"+OK")
    assert [s.uid for s in await inbox.states()] == [3]


async def test_uidl_is_the_same_in_a_second_session(world: World) -> None:
    first = world.session()
    await first.login()
    listing = await first.say(b"UIDL")
    await first.say(b"DELE 1")
    await first.say(b"QUIT")
    second = world.session()
    await second.login()
    again = await second.say(b"UIDL")
    # Message 1 is gone; the others keep their unique-ids, renumbered.
    old = [line.split(b" ")[1] for line in listing.split(b"\r\n")[1:-2]]
    new = [line.split(b" ")[1] for line in again.split(b"\r\n")[1:-2]]
    assert new == old[1:]


async def test_quit_before_login_and_empty_maildrop(world: World) -> None:
    client = world.session()
    assert await client.say(b"QUIT") == b"+OK Bye\r\n"
    assert not client.open
    empty = MemoryStore.for_new_account()

    async def open_empty(_account: Account) -> MemoryStore:
        return empty

    services = Services(world.accounts, open_empty)
    io = FakeIO()
    other = Client(io, Pop3Session(io, services))
    await other.login()
    assert await other.say(b"STAT") == b"+OK 0 0\r\n"
    assert await other.say(b"LIST") == b"+OK 0 messages (0 octets)\r\n.\r\n"
    assert await other.say(b"RETR 1") == b"-ERR No such message, only 0 in maildrop\r\n"
