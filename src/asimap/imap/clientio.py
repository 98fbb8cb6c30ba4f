"""What a session may ask of the connection that carries it.

The session is transport-agnostic: the asyncio driver (``asimap.imap.driver``)
implements :class:`ClientIO` over a socket (plain or TLS), a worker relay, or
a test harness.  The session only ever *sends typed responses* and, for the
few commands that read more than one command's worth of client input
(AUTHENTICATE's SASL exchange, IDLE's ``DONE``), *reads a raw line*.
"""

from __future__ import annotations

from typing import Protocol

from asimap.imap.responses import Response


class ClientIO(Protocol):
    #: Client address for logs and throttling ("127.0.0.1", "::1", ...).
    peer_host: str
    #: True once the connection is protected by TLS.
    tls_active: bool
    #: True when this connection can be upgraded with STARTTLS.
    starttls_available: bool
    #: True once COMPRESS=DEFLATE is on (RFC 4978).
    compression_active: bool

    async def send(self, *responses: Response) -> None:
        """Encode and write the responses, and flush."""

    async def read_line(self) -> bytes | None:
        """Read one raw client line, without its CRLF.

        Used for SASL responses and IDLE's ``DONE``.  Returns None when the
        client went away, the line was too long, or the idle timeout hit.
        """

    async def start_tls(self) -> None:
        """Upgrade to TLS after the session sent its tagged OK.

        Any plaintext the client pipelined after STARTTLS is discarded
        (the CVE-2011-0411 class of injection cannot happen).
        """

    async def start_compression(self) -> None:
        """Switch both directions to DEFLATE after the session sent its
        tagged OK to COMPRESS (RFC 4978 section 3); bytes the client
        pipelined after the command are inflated, not parsed as they are."""

    def set_utf8(self, enabled: bool) -> None:
        """Let the encoder send UTF-8 in quoted strings (RFC 6855, RFC 9051)."""
