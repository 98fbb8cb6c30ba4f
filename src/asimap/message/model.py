"""The message model: one stored message, and everything IMAP derives from it.

The raw bytes are the truth.  ENVELOPE, BODYSTRUCTURE, section contents,
BINARY data and search text are all computed from them lazily and cached on
the instance, so a message that is only counted or flagged is never parsed,
and a message that is fetched twice is parsed once.

Nothing in here ever raises on bad input: a malformed message is served as
well as it can be (design.md section 4 rule 2).  The only exceptions are the two
documented ones of :meth:`Message.binary`, which the session turns into the
responses RFC 3516 section 4.2 asks for.
"""

from __future__ import annotations

import re
from datetime import date

from asimap.imap.commands import Section
from asimap.imap.responses import Value
from asimap.message import sections, text
from asimap.message.bodystructure import body_structures
from asimap.message.dates import parse_sent_date
from asimap.message.decode import decode_transfer, normalise_cte
from asimap.message.envelope import envelope
from asimap.message.envelope_addresses import EnvelopeAddress, value_addresses
from asimap.message.mime import Part

_MSG_ID = re.compile(r"<[^<>\s]*>")


class UnknownTransferEncoding(Exception):
    """BINARY of a part whose Content-Transfer-Encoding we cannot undo.

    RFC 3516 section 4.2: the server answers ``NO [UNKNOWN-CTE]``.
    """


class PartNotFound(Exception):
    """BINARY of a part number that does not exist in the message."""


class Message:
    """One message, parsed on demand from its raw bytes.

    Instances are not thread-safe while filling their caches, but every
    cached value is a pure function of ``raw``, so a race only costs a
    duplicate computation.
    """

    __slots__ = (
        "_binary",
        "_body",
        "_body_text",
        "_bodystructure",
        "_envelope",
        "_header_text",
        "_preview",
        "_root",
        "_sent_date",
        "_sent_date_done",
        "raw",
    )

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._root: Part | None = None
        self._envelope: Value = None
        self._bodystructure: Value = None
        self._body: Value = None
        self._header_text: str | None = None
        self._body_text: str | None = None
        self._preview: str | None = None
        self._sent_date: date | None = None
        self._sent_date_done = False
        self._binary: dict[tuple[int, ...], bytes] = {}

    def __repr__(self) -> str:
        return f"<Message {len(self.raw)} bytes>"

    @property
    def size(self) -> int:
        """RFC822.SIZE: the exact number of stored octets."""
        return len(self.raw)

    @property
    def root(self) -> Part:
        """The parsed MIME tree (parsed on first use, then cached)."""
        if self._root is None:
            self._root = Part(self.raw, 0, len(self.raw))
        return self._root

    # -- FETCH ---------------------------------------------------------------

    def envelope(self) -> Value:
        """FETCH ENVELOPE (RFC 3501 section 7.4.2)."""
        if self._envelope is None:
            self._envelope = envelope(self.root.headers)
        return self._envelope

    def bodystructure(self, extensible: bool = True) -> Value:
        """FETCH BODYSTRUCTURE (``extensible``) or BODY."""
        if self._bodystructure is None or self._body is None:
            # Both in one walk: BODY is BODYSTRUCTURE minus extension data.
            self._bodystructure, self._body = body_structures(self.root)
        return self._bodystructure if extensible else self._body

    def section(self, section: Section | None) -> bytes:
        """``BODY[section]`` content; None means ``BODY[]``; b"" for a part
        that does not exist (RFC 3501 6.4.5 lets us send an empty string)."""
        if section is None or (not section.part and section.text is None):
            return self.raw
        return sections.extract(self.root, section)

    def binary(self, part: tuple[int, ...]) -> bytes:
        """RFC 3516 ``BINARY[part]``: the part with its transfer encoding
        undone.  ``BINARY[]`` is the whole message, which has no encoding of
        its own to undo.  Multiparts and encapsulated messages are returned
        as they are (RFC 2045 6.4 forbids encoding them).

        Raises :class:`PartNotFound` or :class:`UnknownTransferEncoding`.
        """
        cached = self._binary.get(part)
        if cached is not None:
            return cached
        if not part:
            return self.raw
        found = sections.resolve(self.root, part)
        if found is None:
            raise PartNotFound(".".join(map(str, part)))
        if found.children or found.message is not None or found.is_opaque:
            # A leaf past a limit is a container's bytes: undone as is.
            data = found.body
        else:
            cte = normalise_cte(found.headers.latin1("Content-Transfer-Encoding"))
            decoded = decode_transfer(found.body, cte)
            if decoded is None:
                raise UnknownTransferEncoding(cte)
            data = decoded
        self._binary[part] = data
        return data

    def binary_size(self, part: tuple[int, ...]) -> int:
        """RFC 3516 ``BINARY.SIZE[part]``: the size of the decoded part."""
        return len(self.binary(part))

    def preview(self) -> str:
        """RFC 8970 PREVIEW text (at most 256 characters, section 3.1);
        empty when the message has no inline text part."""
        if self._preview is None:
            self._preview = text.preview(self.root)
        return self._preview

    # -- SEARCH --------------------------------------------------------------

    def header_values(self, name: str) -> list[str]:
        """Every ``name`` field (case-insensitive), unfolded and decoded."""
        return [field.text() for field in self.root.headers.all(name)]

    def addresses(self, field: str) -> tuple[EnvelopeAddress, ...]:
        """The addresses of ENVELOPE field ``field`` ("from", "to", "cc",
        "bcc", "sender", "reply-to"), groups included, for SEARCH."""
        return value_addresses(self.envelope(), field)

    def may_match_addresses(self, needle: str) -> bool:
        """False only when no address text can contain ``needle``
        (casefolded): a shortcut for stores' summaries; always True here."""
        return True

    def header_text(self) -> str:
        """All header fields, decoded, for SEARCH TEXT."""
        if self._header_text is None:
            self._header_text = text.header_text(self.root)
        return self._header_text

    def mime_header_text(self) -> str:
        """The header fields of every body part, decoded, for SEARCH TEXT
        (not cached: TEXT is rare and the parts' headers are indexed)."""
        return text.mime_header_text(self.root)

    def body_text(self) -> str:
        """All text parts, decoded, for SEARCH BODY and TEXT."""
        if self._body_text is None:
            self._body_text = text.body_text(self.root)
        return self._body_text

    def sent_date(self) -> date | None:
        """The date of the Date: header in its own zone, or None."""
        if not self._sent_date_done:
            field = self.root.headers.first("Date")
            self._sent_date = parse_sent_date(field.text() if field else None)
            self._sent_date_done = True
        return self._sent_date

    # -- THREAD / SORT -------------------------------------------------------

    def _ids(self, name: str) -> list[str]:
        field = self.root.headers.first(name)
        return _MSG_ID.findall(field.latin1()) if field is not None else []

    def message_id(self) -> str | None:
        """The ``<id>`` of Message-ID, or None if there is none."""
        ids = self._ids("Message-ID")
        return ids[0] if ids else None

    def references(self) -> list[str]:
        """The ``<id>`` list of References, oldest first (RFC 5256)."""
        return self._ids("References")

    def in_reply_to(self) -> str | None:
        """The first ``<id>`` of In-Reply-To, or None."""
        ids = self._ids("In-Reply-To")
        return ids[0] if ids else None

    def subject(self) -> str:
        """The decoded Subject, "" when there is none."""
        values = self.header_values("Subject")
        return values[0] if values else ""
