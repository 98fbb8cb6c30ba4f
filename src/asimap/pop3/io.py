"""What a POP3 session may ask of the connection that carries it.

Like :class:`asimap.imap.clientio.ClientIO`: the session writes bytes it
built with :mod:`asimap.pop3.responses` / :mod:`asimap.pop3.transfer`,
reads a raw line only inside a SASL exchange (RFC 5034), and asks for the
TLS upgrade after its ``+OK`` to STLS.  The asyncio driver implements it;
tests can implement it in memory.
"""

from __future__ import annotations

from typing import Protocol


class Pop3IO(Protocol):
    #: Client address for logs and login throttling.
    peer_host: str
    #: True once the connection is protected by TLS.
    tls_active: bool
    #: True when this connection can still be upgraded with STLS.
    stls_available: bool

    async def send(self, data: bytes) -> None:
        """Write ``data`` and wait until the transport accepts more, so a
        large RETR sent piece by piece is paced by the client."""

    async def read_line(self) -> bytes | None:
        """One raw client line without its line end; None if the client
        went away, the line was too long or the idle timeout hit."""

    async def start_tls(self) -> None:
        """Upgrade to TLS, dropping plaintext pipelined after STLS
        (RFC 2595 section 4; the CVE-2011-0411 class of injection)."""
