"""The message model: one stored message, and everything IMAP derives from it.

The raw bytes are the truth.  ENVELOPE, BODYSTRUCTURE, section contents,
BINARY data and search text are all computed from them lazily and cached on
the instance, so a message that is only counted or flagged is never parsed,
and a message that is fetched twice is parsed once.

Nothing in here ever raises on bad input: a malformed message is served as
well as it can be (GUIDE section 4 rule 2).  The only exceptions are the two
documented ones of :meth:`Message.binary`, which the session turns into the
responses RFC 3516 section 4.2 asks for.
"""

from __future__ import annotations

from datetime import date

from asimap.imap.commands import Section
from asimap.imap.responses import Value


class UnknownTransferEncoding(Exception):
    """BINARY of a part whose Content-Transfer-Encoding we cannot undo.

    RFC 3516 section 4.2: the server answers ``NO [UNKNOWN-CTE]``.
    """


class PartNotFound(Exception):
    """BINARY of a part number that does not exist in the message."""


class Message:
    """One message, parsed on demand from its raw bytes."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    @property
    def size(self) -> int:
        """RFC822.SIZE: the exact number of stored octets."""
        return len(self.raw)

    def envelope(self) -> Value:
        raise NotImplementedError

    def bodystructure(self, extensible: bool = True) -> Value:
        raise NotImplementedError

    def section(self, section: Section | None) -> bytes:
        if section is None:
            return self.raw
        raise NotImplementedError

    def binary(self, part: tuple[int, ...]) -> bytes:
        raise NotImplementedError

    def binary_size(self, part: tuple[int, ...]) -> int:
        return len(self.binary(part))

    def header_values(self, name: str) -> list[str]:
        raise NotImplementedError

    def header_text(self) -> str:
        raise NotImplementedError

    def body_text(self) -> str:
        raise NotImplementedError

    def sent_date(self) -> date | None:
        raise NotImplementedError

    def preview(self) -> str:
        raise NotImplementedError

    def message_id(self) -> str | None:
        raise NotImplementedError

    def references(self) -> list[str]:
        raise NotImplementedError

    def in_reply_to(self) -> str | None:
        raise NotImplementedError

    def subject(self) -> str:
        raise NotImplementedError
