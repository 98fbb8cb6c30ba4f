"""A minimal asyncio IMAP client: just enough protocol to generate load.

Why not :mod:`imaplib` or a full client library: the load generator must run
hundreds of sessions concurrently on one core and measure each command's
latency precisely, so every command is one ``write`` and a tight read loop
over :class:`asyncio.StreamReader` with no threads.

Responses are read with literal handling per RFC 3501 section 4.3 /
RFC 9051 section 4.3: a line ending in ``{n}`` is followed by exactly ``n``
octets, after which the same response line continues.  The literal octets are
kept apart from the line text so that callers can pattern-match the text
(``UID 17``, ``* 5 EXISTS``) without ever matching inside message data.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from dataclasses import dataclass, field

#: A response line that ends with a literal announcement, RFC 9051 section 4.3
#: (``{n}``; ``{n+}`` only comes from clients but is tolerated).
_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}\r\n\Z")
_CAPABILITY_CODE = re.compile(rb"\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)

#: Largest literal we accept from a server; anything bigger is a protocol
#: failure for a benchmark (the corpus messages are far smaller).
DEFAULT_MAX_LITERAL = 64 * 1024 * 1024
#: StreamReader line limit; a longer line is a protocol failure.
DEFAULT_LINE_LIMIT = 4 * 1024 * 1024
#: RFC 7888 section 4: LITERAL- allows non-synchronizing literals up to 4096.
LITERAL_MINUS_MAX = 4096


class ImapError(Exception):
    """The connection is unusable: disconnect, timeout, BYE or bad syntax.

    NO and BAD are *not* ImapErrors; they are ordinary results that the load
    generator counts, after which the session can continue.
    """


@dataclass(slots=True)
class Response:
    """One complete server response.

    ``text`` is the response with CRLFs removed and literal octets cut out
    (the ``{n}`` markers stay in place); ``literals`` holds the octets in
    order of appearance.
    """

    text: bytes
    literals: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class TaggedResult:
    """The outcome of one command: its tagged status and untagged responses."""

    status: str
    text: bytes
    untagged: list[Response]

    @property
    def ok(self) -> bool:
        return self.status == "OK"


def quote(value: str) -> bytes:
    """Encode ``value`` as an IMAP quoted string (RFC 9051 section 4.3).

    Benchmark user names and passwords are plain ASCII; CR and LF cannot be
    quoted and are refused rather than silently producing bad syntax.
    """
    if "\r" in value or "\n" in value:
        raise ValueError("CR/LF cannot appear in a quoted string")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return b'"' + escaped.encode("utf-8") + b'"'


async def read_response(
    reader: asyncio.StreamReader, max_literal: int = DEFAULT_MAX_LITERAL
) -> Response:
    """Read one whole response, following literals until the final CRLF."""
    parts: list[bytes] = []
    literals: list[bytes] = []
    try:
        while True:
            line = await reader.readuntil(b"\r\n")
            match = _LITERAL_AT_END.search(line)
            parts.append(line[:-2])
            if match is None:
                return Response(b"".join(parts), literals)
            size = int(match[1])
            if size > max_literal:
                raise ImapError(f"server literal of {size} octets is too large")
            literals.append(await reader.readexactly(size))
    except asyncio.IncompleteReadError as exc:
        raise ImapError("connection closed by server") from exc
    except asyncio.LimitOverrunError as exc:
        raise ImapError("server response line too long") from exc
    except (ConnectionError, ssl.SSLError) as exc:
        raise ImapError(f"connection failed: {exc}") from exc


@functools.cache
def tls_context(verify: bool = False) -> ssl.SSLContext:
    """A shared client TLS context; benchmark servers use self-signed certs.

    Built once per process: loading the system CA store costs milliseconds
    of CPU, which per connection would be charged to the server's CONNECT
    latency.  Without verification no CA store is loaded at all.
    """
    if verify:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ImapClient:
    """One IMAP connection.  Not safe for concurrent commands (no pipelining).

    Every public coroutine either returns a :class:`TaggedResult` (OK, NO or
    BAD) or raises :class:`ImapError`; after an ImapError the client is
    closed and must not be reused.
    """

    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.capabilities: frozenset[str] = frozenset()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tag_counter = 0
        self._idle_tag = b""

    # -- connection ---------------------------------------------------------

    async def connect(
        self,
        host: str,
        port: int,
        *,
        security: str = "plain",
        context: ssl.SSLContext | None = None,
    ) -> None:
        """Connect and read the greeting; ``security`` is plain|tls|starttls.

        For ``starttls`` the upgrade happens here, before any credentials are
        sent (RFC 9051 section 6.2.1), and the capabilities are re-read
        afterwards because the pre-TLS list must be discarded.
        """
        if security not in ("plain", "tls", "starttls"):
            raise ValueError(f"unknown security {security!r}")
        context = context or tls_context()
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=context if security == "tls" else None,
                    limit=DEFAULT_LINE_LIMIT,
                )
                greeting = await read_response(self._reader)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.close()
            raise ImapError(f"connect to {host}:{port} failed: {exc!r}") from exc
        except ImapError:
            self.close()
            raise
        if not greeting.text.startswith((b"* OK", b"* PREAUTH")):
            self.close()
            raise ImapError(f"server refused us: {greeting.text!r}")
        self._remember_capabilities(greeting.text)
        if security == "starttls":
            result = await self.command(b"STARTTLS")
            if not result.ok:
                self.close()
                raise ImapError(f"STARTTLS refused: {result.text!r}")
            await self._upgrade(context)
            self.capabilities = frozenset()
        if not self.capabilities:
            await self.refresh_capabilities()

    async def _upgrade(self, context: ssl.SSLContext) -> None:
        assert self._writer is not None
        try:
            async with asyncio.timeout(self.timeout):
                await self._writer.start_tls(context)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.close()
            raise ImapError(f"TLS handshake failed: {exc!r}") from exc

    async def refresh_capabilities(self) -> None:
        result = await self.command(b"CAPABILITY")
        for response in result.untagged:
            if response.text.upper().startswith(b"* CAPABILITY "):
                self._set_capabilities(response.text[len(b"* CAPABILITY ") :])

    def _remember_capabilities(self, text: bytes) -> None:
        match = _CAPABILITY_CODE.search(text)
        if match:
            self._set_capabilities(match[1])

    def _set_capabilities(self, atoms: bytes) -> None:
        self.capabilities = frozenset(
            atom.decode("ascii", "replace").upper() for atom in atoms.split()
        )

    def close(self) -> None:
        """Drop the connection without LOGOUT (used after failures)."""
        if self._writer is not None:
            self._writer.transport.abort()
        self._reader = None
        self._writer = None

    @property
    def connected(self) -> bool:
        return self._writer is not None

    # -- commands -----------------------------------------------------------

    def _next_tag(self) -> bytes:
        self._tag_counter += 1
        return b"A%d" % self._tag_counter

    async def command(self, line: bytes) -> TaggedResult:
        """Send ``line`` (without tag or CRLF) and wait for its tagged reply."""
        tag = self._next_tag()
        return await self._run(tag, tag + b" " + line + b"\r\n", None)

    async def append(
        self, mailbox: str, message: bytes, flags: str = ""
    ) -> TaggedResult:
        """APPEND ``message`` to ``mailbox`` (RFC 9051 section 6.3.12).

        Uses a non-synchronizing literal when the server allows it (RFC 7888
        LITERAL+, or LITERAL- for small messages) to save a round trip, as
        real clients do; otherwise waits for the ``+`` continuation.
        """
        tag = self._next_tag()
        flag_part = b"(" + flags.encode("ascii") + b") " if flags else b""
        size = len(message)
        non_sync = "LITERAL+" in self.capabilities or (
            "LITERAL-" in self.capabilities and size <= LITERAL_MINUS_MAX
        )
        literal_marker = b"{%d+}" % size if non_sync else b"{%d}" % size
        head = tag + b" APPEND " + quote(mailbox) + b" " + flag_part + literal_marker
        if non_sync:
            return await self._run(tag, head + b"\r\n" + message + b"\r\n", None)
        return await self._run(tag, head + b"\r\n", message + b"\r\n")

    async def multiappend(self, mailbox: str, messages: list[bytes]) -> TaggedResult:
        """One APPEND of several messages (RFC 3502 MULTIAPPEND).

        Needs LITERAL+ (RFC 7888): every literal is non-synchronizing, so
        the whole command is one write, as a migrating client sends it.
        """
        if "LITERAL+" not in self.capabilities:
            raise ImapError("MULTIAPPEND here needs LITERAL+")
        tag = self._next_tag()
        parts = [tag, b" APPEND ", quote(mailbox)]
        for message in messages:
            parts += [b" {%d+}\r\n" % len(message), message]
        parts.append(b"\r\n")
        return await self._run(tag, b"".join(parts), None)

    async def idle_start(self) -> None:
        """Send IDLE and wait for its continuation (RFC 2177)."""
        if self._reader is None or self._writer is None:
            raise ImapError("not connected")
        self._idle_tag = self._next_tag()
        try:
            async with asyncio.timeout(self.timeout):
                self._writer.write(self._idle_tag + b" IDLE\r\n")
                await self._writer.drain()
                while True:
                    response = await read_response(self._reader)
                    if response.text.startswith(b"+"):
                        return
                    if response.text.startswith(self._idle_tag + b" "):
                        raise ImapError(f"IDLE refused: {response.text!r}")
        except TimeoutError as exc:
            self.close()
            raise ImapError("IDLE: no continuation") from exc

    async def idle_wait(self, pattern: bytes) -> Response:
        """The next untagged response during IDLE that contains ``pattern``."""
        if self._reader is None:
            raise ImapError("not connected")
        while True:
            response = await read_response(self._reader)
            if pattern in response.text:
                return response

    async def idle_done(self) -> TaggedResult:
        """DONE, and the tagged end of the IDLE command."""
        if self._reader is None or self._writer is None:
            raise ImapError("not connected")
        tag = self._idle_tag
        self._writer.write(b"DONE\r\n")
        untagged: list[Response] = []
        async with asyncio.timeout(self.timeout):
            while True:
                response = await read_response(self._reader)
                if response.text.startswith(tag + b" "):
                    status, _, rest = response.text[len(tag) + 1 :].partition(b" ")
                    return TaggedResult(status.decode().upper(), rest, untagged)
                untagged.append(response)

    async def _run(
        self, tag: bytes, data: bytes, after_continuation: bytes | None
    ) -> TaggedResult:
        if self._reader is None or self._writer is None:
            raise ImapError("not connected")
        reader, writer = self._reader, self._writer
        prefix = tag + b" "
        untagged: list[Response] = []
        try:
            async with asyncio.timeout(self.timeout):
                writer.write(data)
                await writer.drain()
                while True:
                    response = await read_response(reader)
                    text = response.text
                    if text.startswith(prefix):
                        status, _, rest = text[len(prefix) :].partition(b" ")
                        return TaggedResult(
                            status.decode("ascii", "replace").upper(), rest, untagged
                        )
                    if text.startswith(b"+"):
                        if after_continuation is None:
                            raise ImapError(f"unexpected continuation {text!r}")
                        writer.write(after_continuation)
                        await writer.drain()
                        after_continuation = None
                        continue
                    untagged.append(response)
        except TimeoutError as exc:
            self.close()
            raise ImapError(f"timeout after {self.timeout}s") from exc
        except (ConnectionError, ssl.SSLError) as exc:
            self.close()
            raise ImapError(f"connection failed: {exc!r}") from exc
        except ImapError:
            self.close()
            raise

    async def login(self, user: str, password: str) -> TaggedResult:
        result = await self.command(b"LOGIN " + quote(user) + b" " + quote(password))
        if result.ok:
            # RFC 9051 section 6.2.3: capabilities may change after login.
            match = _CAPABILITY_CODE.search(result.text)
            if match:
                self._set_capabilities(match[1])
        return result

    async def logout(self) -> TaggedResult:
        """LOGOUT; the server's BYE and close are expected, not errors."""
        try:
            return await self.command(b"LOGOUT")
        finally:
            self.close()
