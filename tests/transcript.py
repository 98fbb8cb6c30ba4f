"""Transcript harness: scripted IMAP conversations, run in-process.

A transcript is readable as documentation of the protocol::

    C1 a LOGIN alice secret-a
    S1 a OK [CAPABILITY %*] Logged in
    C2 b LOGIN bob secret-b
    S2 b OK %*

``Cn line`` sends ``line`` + CRLF from client *n*; ``Sn line`` expects the
next line client *n* receives.  In expected lines ``%?`` matches one token
(no spaces) and ``%*`` matches anything (possibly empty); everything else is
literal.  ``%{name}`` matches one identifier-like token (letters, digits,
``_``, ``-``, ``.``) and remembers it: later ``%{name}`` in expected lines
must match the same value, and in client lines it is replaced by it
(``World.captured`` holds them afterwards, e.g. to check that two ids
differ).  ``En`` closes client *n*'s input (EOF) and ``Xn`` expects client
*n*'s session to have ended.  In client lines ``\\xNN`` sends byte NN.
Blank lines and ``#`` comments are ignored.

Every client runs the real stack without sockets: bytes go through the
:class:`CommandReader`, the parser, the :class:`Session` and the encoder,
exactly as the driver wires them.  Clients of the same user share one
:class:`MemoryStore`, so they see each other's changes.  At the end of a
transcript every client must have no unread output: a server that says
more than the transcript expects fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from asimap.auth.account import Account
from asimap.imap.encoder import encode
from asimap.imap.limits import DEFAULT_LIMITS, Limits
from asimap.imap.parser import describe_pending, parse_command
from asimap.imap.reader import (
    CommandFrame,
    CommandReader,
    Eof,
    FrameError,
    LiteralPending,
    RawLine,
)
from asimap.imap.responses import Code, Continuation, Response, Status, Tagged
from asimap.imap.session import Session
from asimap.imap.session.services import Services
from asimap.store.base import NO_QUOTA, QuotaLimits, Store
from asimap.store.memory import MemoryStore

#: Seconds to wait for an expected line before failing.
LINE_TIMEOUT = 3.0

PASSWORDS = {"alice": "secret-a", "bob": "secret-b"}


class FakeAuthenticator:
    """Accepts the users of :data:`PASSWORDS`; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def authenticate(
        self, username: str, password: str, peer_host: str
    ) -> Account | None:
        self.calls += 1
        if PASSWORDS.get(username) == password:
            return Account(username, Path("/nonexistent") / username)
        return None


@dataclass
class World:
    """Everything clients share: the authenticator and one store per user."""

    allow_plaintext_auth: bool = True
    starttls_available: bool = False
    limits: Limits = DEFAULT_LIMITS
    authenticator: FakeAuthenticator = field(default_factory=FakeAuthenticator)
    stores: dict[str, MemoryStore] = field(default_factory=dict)
    #: Every user's quota (RFC 9208), as the configuration would set it.
    quota: QuotaLimits = NO_QUOTA
    #: Values of ``%{name}`` captures, by name.
    captured: dict[str, bytes] = field(default_factory=dict)

    async def open_store(self, account: Account) -> Store:
        store = self.stores.get(account.username)
        if store is None:
            store = self.stores[account.username] = MemoryStore.for_new_account()
            store.set_quota_limits(self.quota)
        return store

    def services(self) -> Services:
        return Services(
            authenticator=self.authenticator,
            open_store=self.open_store,
            limits=self.limits,
            allow_plaintext_auth=self.allow_plaintext_auth,
        )


class FakeClient:
    """One connection: implements ClientIO and pumps reader -> session."""

    def __init__(self, world: World) -> None:
        self.peer_host = "127.0.0.1"
        self.tls_active = False
        self.starttls_available = world.starttls_available
        self.limits = world.limits
        self.reader = CommandReader(
            world.limits, literal_plus=not world.limits.literal_minus
        )
        self.compression_active = False
        #: How many times COMPRESS switched the (simulated) layer on.
        self.compress_started = 0
        self.session = Session(self, world.services())
        self.output = bytearray()
        self.output_changed = asyncio.Event()
        self.input: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False
        self.eof = False
        self.tls_started = 0
        self.utf8 = False
        self.task: asyncio.Task[None] | None = None
        self.pending: asyncio.Future[object] | None = None

    # -- ClientIO ----------------------------------------------------------

    async def send(self, *responses: Response) -> None:
        for response in responses:
            self.output += encode(response, utf8=self.utf8)
        self.output_changed.set()

    async def read_line(self) -> bytes | None:
        self.reader.set_raw_line_mode(True)
        try:
            event = await self._next_event()
        finally:
            self.reader.set_raw_line_mode(False)
        return event.line if isinstance(event, RawLine) else None

    async def start_tls(self) -> None:
        self.tls_started += 1
        self.reader.discard_buffered()
        self.tls_active = True

    async def start_compression(self) -> None:
        # Transcripts show the protocol, not the bytes: the layer itself is
        # tested over real sockets (test_ext_compress).
        self.compress_started += 1
        self.compression_active = True
        self.starttls_available = False

    def set_utf8(self, enabled: bool) -> None:
        self.utf8 = enabled

    # -- pumping -----------------------------------------------------------

    def start(self) -> None:
        self.output += encode(self.session.greeting())
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _next_event(self) -> object:
        while True:
            event = self.reader.next_event()
            if event is not None:
                return event
            if self.eof:
                return Eof()
            data = await self.input.get()
            if data is None:
                self.eof = True
                self.reader.feed_eof()
            else:
                self.reader.feed(data)

    async def _next_command_event(self) -> object:
        """Like the driver: between commands, write what the session says
        unsolicited (NOTIFY) while waiting for the next command."""
        if self.pending is None and not self.session.notifying:
            return await self._next_event()
        if self.pending is None:
            self.pending = asyncio.ensure_future(self._next_event())
        pending = self.pending
        while self.session.notifying:
            ready = asyncio.ensure_future(self.session.wait_unsolicited())
            await asyncio.wait({pending, ready}, return_when=asyncio.FIRST_COMPLETED)
            if pending.done():
                ready.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ready
                break
            responses = await self.session.unsolicited()
            if responses:
                await self.send(*responses)
        self.pending = None
        return await pending

    async def _run(self) -> None:
        try:
            while True:
                event = await self._next_command_event()
                if isinstance(event, Eof):
                    break
                if isinstance(event, CommandFrame):
                    command = parse_command(event.lines, event.literals, self.limits)
                    if not await self.session.handle(command):
                        break
                elif isinstance(event, LiteralPending):
                    await self._answer_literal(event)
                elif isinstance(event, FrameError):
                    code = Code(event.code) if event.code else None
                    if event.tag is None:
                        await self.send(Tagged("*", Status.BAD, event.message, code))
                    else:
                        await self.send(
                            Tagged(event.tag, Status.BAD, event.message, code)
                        )
        finally:
            await self.session.close()
            self.closed = True
            self.output_changed.set()

    async def _answer_literal(self, event: LiteralPending) -> None:
        pending = describe_pending(event.lines, event.literals)
        refusal = await self.session.check_literal(
            pending, event.size, event.synchronizing
        )
        if refusal is None:
            self.reader.accept_literal()
            if event.synchronizing:
                await self.send(Continuation("Ready for literal"))
        else:
            self.reader.reject_literal()
            await self.send(refusal)

    # -- test side ---------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.input.put_nowait(data)

    def close_input(self) -> None:
        self.input.put_nowait(None)

    async def next_line(self, timeout: float = LINE_TIMEOUT) -> bytes:
        """The next CRLF-terminated line of output (CRLF removed)."""
        async with asyncio.timeout(timeout):
            while True:
                end = self.output.find(b"\r\n")
                if end >= 0:
                    line = bytes(self.output[:end])
                    del self.output[: end + 2]
                    return line
                if self.closed:
                    raise AssertionError("session ended while a line was expected")
                self.output_changed.clear()
                await self.output_changed.wait()

    async def wait_closed(self, timeout: float = LINE_TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while not self.closed:
                self.output_changed.clear()
                await self.output_changed.wait()

    async def stop(self) -> None:
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


_CAPTURE_RE = re.compile(r"%\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _pattern(
    expected: str, captured: dict[str, bytes] | None = None
) -> re.Pattern[bytes]:
    """Compile an expected line: ``%?`` one token, ``%*`` anything,
    ``%{name}`` a captured token (the value seen before, if any)."""
    captured = captured or {}
    parts = re.split(r"(%\?|%\*|%\{[A-Za-z_][A-Za-z0-9_]*\})", expected)
    regex = ""
    named: set[str] = set()
    for part in parts:
        capture = _CAPTURE_RE.fullmatch(part)
        if part == "%?":
            regex += r"[^ ]+"
        elif part == "%*":
            regex += r".*"
        elif capture is not None:
            name = capture.group(1)
            if name in captured:
                regex += re.escape(captured[name].decode("utf-8"))
            elif name in named:
                regex += f"(?P={name})"
            else:
                named.add(name)
                regex += f"(?P<{name}>[A-Za-z0-9_.-]+)"
        else:
            regex += re.escape(part)
    return re.compile(regex.encode("utf-8"), re.DOTALL)


def _substitute(text: str, captured: dict[str, bytes]) -> str:
    """A client line with its ``%{name}`` captures filled in."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in captured:
            raise AssertionError(f"%{{{name}}} used before it was captured")
        return captured[name].decode("utf-8")

    return _CAPTURE_RE.sub(value, text)


def _client_bytes(text: str) -> bytes:
    """A client line as bytes; ``\\xNN`` writes an arbitrary byte."""
    return re.sub(
        rb"\\x([0-9a-fA-F]{2})",
        lambda m: bytes([int(m.group(1), 16)]),
        text.encode("utf-8"),
    )


_STEP_RE = re.compile(r"^([CSEX])(\d+)(?: (.*))?$")


async def settle() -> None:
    """Let every session run until it waits for input."""
    for _ in range(20):
        await asyncio.sleep(0)


async def run_transcript(
    script: str,
    world: World | None = None,
    *,
    before: Callable[[World], Awaitable[None]] | None = None,
) -> World:
    """Run ``script`` (see module docstring) and return the shared world."""
    world = world or World()
    if before is not None:
        await before(world)
    clients: dict[str, FakeClient] = {}
    try:
        for number, raw in enumerate(script.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            match = _STEP_RE.match(line)
            if match is None:
                raise AssertionError(f"line {number}: cannot read step {raw!r}")
            kind, who, text = match.group(1), match.group(2), match.group(3) or ""
            client = clients.get(who)
            if client is None:
                client = clients[who] = FakeClient(world)
                client.start()
                # Every transcript starts by reading the greeting.
                greeting = await client.next_line()
                assert greeting.startswith(b"* OK [CAPABILITY "), greeting
            if kind == "C":
                text = _substitute(text, world.captured)
                client.write(_client_bytes(text) + b"\r\n")
                await settle()
            elif kind == "S":
                try:
                    got = await client.next_line()
                except TimeoutError:
                    raise AssertionError(
                        f"line {number}: client {who} expected {text!r}, got nothing"
                    ) from None
                found = _pattern(text, world.captured).fullmatch(got)
                if found is None:
                    raise AssertionError(
                        f"line {number}: client {who} expected\n  {text!r}\ngot\n  "
                        f"{got.decode('utf-8', 'replace')!r}"
                    )
                world.captured.update(
                    {k: v for k, v in found.groupdict().items() if v is not None}
                )
            elif kind == "E":
                client.close_input()
                await settle()
            else:  # X
                await client.wait_closed()
        await settle()
        for who, client in clients.items():
            if client.output:
                raise AssertionError(
                    f"client {who} has unexpected output: {bytes(client.output)!r}"
                )
    finally:
        for client in clients.values():
            await client.stop()
    return world


def message(subject: str, body: str = "Hello", sender: str = "a@example.org") -> bytes:
    """A small RFC 5322 message for APPEND lines."""
    return (
        f"From: {sender}\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
        f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n{body}\r\n"
    ).encode("ascii")


def append_lines(
    client: int, tag: str, mailbox: str, data: bytes, flags: str = ""
) -> str:
    """Transcript lines for a LITERAL+ APPEND of ``data`` (which must end
    with CRLF), followed by the empty line that ends the command."""
    flag_part = f"({flags}) " if flags else ""
    head = f"C{client} {tag} APPEND {mailbox} {flag_part}{{{len(data)}+}}"
    body = data.decode("ascii")[:-2].split("\r\n")
    return "\n".join([head, *(f"C{client} {part}" for part in body), f"C{client}"])


async def add_messages(world: World, user: str, mailbox: str, *datas: bytes) -> None:
    """Put messages straight into a user's store (test set-up)."""
    store = world.stores.get(user)
    if store is None:
        store = world.stores[user] = MemoryStore.for_new_account()
        store.set_quota_limits(world.quota)
    box = await store.mailbox(mailbox)
    for data in datas:
        await box.append(data)
