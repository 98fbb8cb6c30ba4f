"""The connection driver over real loopback sockets, with a scripted session.

The session here is a small stand-in whose behaviour each test controls, so
these tests pin down what the *driver* does -- STARTTLS plaintext
discarding (CVE-2011-0411), idle timeouts, literal continuation, internal
errors, the connection limit, shutdown -- independently of the real
session's command handling (which ``test_clients_*`` exercise end to end).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest

from asimap.config import Config
from asimap.imap import commands as c
from asimap.imap.clientio import ClientIO
from asimap.imap.parser import PendingCommand
from asimap.imap.responses import (
    Atom,
    Continuation,
    Response,
    Status,
    Tagged,
    Untagged,
    UntaggedStatus,
)
from asimap.imap.server import ImapServer
from asimap.imap.session.services import Services
from conftest import TlsFiles

TIMEOUT = 5.0


class ScriptedSession:
    """Answers a few commands in the simplest correct way and records them."""

    handled: list[str]

    def __init__(self, io: ClientIO, services: Services) -> None:
        self.io = io
        self.handled = []
        self.closed = False
        SESSIONS.append(self)

    def greeting(self) -> Response:
        return UntaggedStatus(Status.OK, "scripted ready")

    async def handle(self, command: c.Command | c.ParseError) -> bool:
        if isinstance(command, c.ParseError):
            await self.io.send(Tagged(command.tag or "*", Status.BAD, command.message))
            return True
        self.handled.append(command.tag)
        tag = command.tag
        if isinstance(command, c.Capability):
            caps = ["IMAP4rev1"] + (["STARTTLS"] if self.io.starttls_available else [])
            await self.io.send(
                Untagged((Atom("CAPABILITY"), *[Atom(x) for x in caps])),
                Tagged(tag, Status.OK, "done"),
            )
        elif isinstance(command, c.StartTLS):
            await self.io.send(Tagged(tag, Status.OK, "Begin TLS negotiation now"))
            await self.io.start_tls()
        elif isinstance(command, c.Login):
            await self.io.send(Tagged(tag, Status.OK, "logged in"))
        elif isinstance(command, c.Idle):
            await self.io.send(Continuation("idling"))
            line = await self.io.read_line()
            if line is None:
                return True
            await self.io.send(Tagged(tag, Status.OK, f"idle ended by {line!r}"))
        elif isinstance(command, c.Append):
            size = sum(len(m.data) for m in command.messages)
            await self.io.send(Tagged(tag, Status.OK, f"got {size}"))
        elif isinstance(command, c.Logout):
            await self.io.send(
                UntaggedStatus(Status.BYE, "bye"), Tagged(tag, Status.OK, "done")
            )
            return False
        elif isinstance(command, c.Delete):
            raise RuntimeError("scripted crash")
        elif isinstance(command, c.Check):
            await asyncio.sleep(0.5)  # a slow command: idle timeout must not hit
            await self.io.send(Tagged(tag, Status.OK, "checked"))
        else:
            await self.io.send(Tagged(tag, Status.OK, type(command).__name__))
        return True

    async def check_literal(
        self, pending: PendingCommand, size: int, synchronizing: bool
    ) -> Response | None:
        if size > 1000:
            return Tagged(pending.tag or "*", Status.NO, "[TOOBIG] too big")
        return None

    async def close(self) -> None:
        self.closed = True


SESSIONS: list[ScriptedSession] = []


class _NoAuth:
    async def authenticate(self, username: str, password: str, peer_host: str) -> None:
        return None


async def _no_store(account: object) -> object:
    raise AssertionError("not used")


@pytest.fixture
async def start_server(
    tls_files: TlsFiles,
) -> AsyncIterator[Callable[..., object]]:
    servers: list[ImapServer] = []
    SESSIONS.clear()

    async def start(**overrides: object) -> ImapServer:
        config = Config(
            address="127.0.0.1",
            port=0,
            imap_port=0,
            cert=tls_files.cert,
            key=tls_files.key,
        )
        config = replace(config, **overrides)  # type: ignore[arg-type]
        services = Services(authenticator=_NoAuth(), open_store=_no_store)  # type: ignore[arg-type]
        server = ImapServer(config, services, session_factory=ScriptedSession)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


class Client:
    """A line-oriented test client over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> Client:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ssl_context
        )
        return cls(reader, writer)

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), TIMEOUT)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_tagged(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            line = await self.line()
            assert line, f"EOF before {tag!r}: {lines!r}"
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    async def at_eof(self) -> bool:
        data = await asyncio.wait_for(self.reader.read(), TIMEOUT)
        return data == b""

    def close(self) -> None:
        self.writer.close()


async def test_greeting_commands_and_logout_over_plain(start_server) -> None:
    server = await start_server()
    client = await Client.connect(server.ports["imap"])
    assert await client.line() == b"* OK scripted ready\r\n"
    await client.send(b"a CAPABILITY\r\n")
    lines = await client.until_tagged(b"a")
    assert lines[0] == b"* CAPABILITY IMAP4rev1 STARTTLS\r\n"
    await client.send(b"b LOGOUT\r\n")
    assert await client.until_tagged(b"b") == [b"* BYE bye\r\n", b"b OK done\r\n"]
    assert await client.at_eof()
    client.close()


async def test_implicit_tls_has_no_starttls(start_server, tls_files) -> None:
    server = await start_server()
    client = await Client.connect(server.ports["imaps"], tls_files.client_context())
    assert await client.line() == b"* OK scripted ready\r\n"
    await client.send(b"a CAPABILITY\r\n")
    assert (await client.until_tagged(b"a"))[0] == b"* CAPABILITY IMAP4rev1\r\n"
    client.close()


async def test_pipelined_plaintext_after_starttls_is_never_executed(
    start_server, tls_files
) -> None:
    """CVE-2011-0411: ``b`` arrives in the same packet as STARTTLS."""
    server = await start_server()
    client = await Client.connect(server.ports["imap"])
    await client.line()
    await client.send(b"a STARTTLS\r\nb CAPABILITY\r\n")
    assert await client.line() == b"a OK Begin TLS negotiation now\r\n"
    await client.writer.start_tls(tls_files.client_context())
    await client.send(b"c CAPABILITY\r\n")
    lines = await client.until_tagged(b"c")
    # Under TLS STARTTLS is no longer offered, and b never ran.
    assert lines == [b"* CAPABILITY IMAP4rev1\r\n", b"c OK done\r\n"]
    assert SESSIONS[0].handled == ["a", "c"]
    client.close()


async def test_plaintext_sent_while_tls_handshake_pending_breaks_handshake(
    start_server,
) -> None:
    """Bytes sent after the OK in plaintext are fed to the TLS layer, where
    they fail the handshake instead of becoming a command."""
    server = await start_server()
    client = await Client.connect(server.ports["imap"])
    await client.line()
    await client.send(b"a STARTTLS\r\n")
    assert await client.line() == b"a OK Begin TLS negotiation now\r\n"
    await client.send(b"b CAPABILITY\r\n")
    assert await client.at_eof()
    assert SESSIONS[0].handled == ["a"]
    await asyncio.sleep(0.1)
    assert server.connection_count == 0


async def test_unauthenticated_idle_timeout_says_bye(start_server) -> None:
    server = await start_server(idle_timeout_unauthenticated=0.3)
    client = await Client.connect(server.ports["imap"])
    await client.line()
    assert await client.line() == b"* BYE Autologout; idle for too long\r\n"
    assert await client.at_eof()
    assert SESSIONS[0].closed


async def test_authenticated_timeout_is_longer_and_commands_do_not_time_out(
    start_server,
) -> None:
    server = await start_server(
        idle_timeout_unauthenticated=0.3, idle_timeout_authenticated=2.0
    )
    client = await Client.connect(server.ports["imap"])
    await client.line()
    # CHECK runs for 0.5 s, longer than the unauthenticated timeout.
    await client.send(b"a CHECK\r\n")
    assert await client.until_tagged(b"a") == [b"a OK checked\r\n"]
    await client.send(b"b LOGIN u p\r\n")
    await client.until_tagged(b"b")
    await asyncio.sleep(0.8)
    await client.send(b"c NOOP\r\n")
    assert await client.until_tagged(b"c") == [b"c OK Noop\r\n"]
    assert await client.line() == b"* BYE Autologout; idle for too long\r\n"
    client.close()


async def test_idle_reads_a_raw_line(start_server) -> None:
    server = await start_server()
    client = await Client.connect(server.ports["imap"])
    await client.line()
    await client.send(b"a IDLE\r\n")
    assert await client.line() == b"+ idling\r\n"
    await client.send(b"DONE\r\n")
    assert await client.until_tagged(b"a") == [b"a OK idle ended by b'DONE'\r\n"]
    client.close()


async def test_literals_are_accepted_or_refused_before_being_read(
    start_server,
) -> None:
    server = await start_server()
    client = await Client.connect(server.ports["imap"])
    await client.line()
    await client.send(b"a APPEND INBOX {5}\r\n")
    assert await client.line() == b"+ Ready for literal\r\n"
    await client.send(b"hello\r\n")
    assert await client.until_tagged(b"a") == [b"a OK got 5\r\n"]
    # Refused synchronizing literal: NO, and the client never sends it.
    await client.send(b"b APPEND INBOX {5000}\r\n")
    assert await client.until_tagged(b"b") == [b"b NO [TOOBIG] too big\r\n"]
    # A 4 GB announcement costs nothing.
    await client.send(b"c APPEND INBOX {4294967296}\r\n")
    lines = await client.until_tagged(b"c")
    assert lines[-1].startswith(b"c NO") or lines[-1].startswith(b"c BAD")
    await client.send(b"d NOOP\r\n")
    assert await client.until_tagged(b"d") == [b"d OK Noop\r\n"]
    client.close()


async def test_framing_errors_get_bad_and_the_connection_survives(
    start_server,
) -> None:
    server = await start_server()
    client = await Client.connect(server.ports["imap"])
    await client.line()
    await client.send(b"a NOOP " + b"x" * (1024 * 1024) + b"\r\n")
    lines = await client.until_tagged(b"a")
    assert lines[-1].startswith(b"a BAD")
    await client.send(b"b NOOP\r\n")
    assert await client.until_tagged(b"b") == [b"b OK Noop\r\n"]
    client.close()


async def test_internal_error_says_bye_and_server_keeps_serving(
    start_server, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server()
    client = await Client.connect(server.ports["imap"])
    await client.line()
    with caplog.at_level(logging.ERROR, logger="asimap.imap.driver"):
        await client.send(b"a DELETE foo\r\n")
        assert await client.line() == b"* BYE Internal error\r\n"
        assert await client.at_eof()
    assert "internal error" in caplog.text
    other = await Client.connect(server.ports["imap"])
    assert await other.line() == b"* OK scripted ready\r\n"
    other.close()


async def test_eof_and_reset_are_quiet(
    start_server, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server()
    with caplog.at_level(logging.WARNING):
        client = await Client.connect(server.ports["imap"])
        await client.line()
        await client.send(b"a APPEND INBOX {10}\r\n")
        await client.line()
        await client.send(b"abc")  # EOF in the middle of a literal
        client.writer.write_eof()
        assert await client.at_eof()
        client.close()
        client = await Client.connect(server.ports["imap"])
        await client.line()
        client.writer.transport.abort()  # connection reset
        await asyncio.sleep(0.2)
    assert server.connection_count == 0
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert all(session.closed for session in SESSIONS)


async def test_commands_pipelined_before_eof_are_answered(start_server) -> None:
    server = await start_server()
    client = await Client.connect(server.ports["imap"])
    await client.line()
    await client.send(b"a NOOP\r\nb LOGOUT\r\n")
    client.writer.write_eof()
    lines = await client.until_tagged(b"b")
    assert lines == [b"a OK Noop\r\n", b"* BYE bye\r\n", b"b OK done\r\n"]
    client.close()


async def test_connection_limit(start_server) -> None:
    """The cap is full of connections that have not logged in: the oldest
    makes room for the newcomer (asimap.net.admission), so a client is
    never shut out by connections that just sit there."""
    server = await start_server(max_connections=2, max_prelogin_connections=2)
    first = await Client.connect(server.ports["imap"])
    second = await Client.connect(server.ports["imap"])
    assert await first.line() == b"* OK scripted ready\r\n"
    assert await second.line() == b"* OK scripted ready\r\n"
    third = await Client.connect(server.ports["imap"])
    assert await third.line() == b"* OK scripted ready\r\n"
    assert await first.line() == b"* BYE Too many connections waiting to log in\r\n"
    assert await first.at_eof()
    await second.send(b"a NOOP\r\n")
    assert await second.until_tagged(b"a") == [b"a OK Noop\r\n"]
    first.close()
    second.close()
    third.close()


async def test_shutdown_says_bye_to_waiting_clients(start_server) -> None:
    server = await start_server()
    client = await Client.connect(server.ports["imap"])
    await client.line()
    await server.stop()
    assert await client.line() == b"* BYE Server shutting down\r\n"
    assert await client.at_eof()


async def test_ipv6_loopback_listener(start_server, tls_files) -> None:
    import socket

    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    server = await start_server(address="::1")
    reader, writer = await asyncio.open_connection(
        "::1", server.ports["imaps"], ssl=tls_files.client_context()
    )
    client = Client(reader, writer)
    assert await client.line() == b"* OK scripted ready\r\n"
    client.close()
