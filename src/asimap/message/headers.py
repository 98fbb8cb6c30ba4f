"""Header blocks located by byte offsets, and their fields kept verbatim.

IMAP serves header sections byte for byte (``BODY[HEADER]``,
``BODY[HEADER.FIELDS (...)]``), so a field is kept as the exact bytes it was
stored with, continuation lines and line ends included, next to an unfolded
value for everything that interprets it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from asimap.message.decode import bytes_to_text, decode_words

_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_LINE_ENDS = re.compile(rb"[\r\n]+")


def split_header(data: bytes, start: int, end: int) -> tuple[int, int]:
    """Find where the header of the entity ``data[start:end]`` ends.

    Returns ``(header_end, body_start)``: the fields occupy
    ``data[start:header_end]`` (each with its line end), the empty line
    ``data[header_end:body_start]`` separates them from the body
    (RFC 5322 section 2.1).  CRLF and bare LF line ends are both accepted.
    With no empty line at all, everything is header and the body is empty.
    """
    if data.startswith(b"\r\n", start, end):
        return start, start + 2
    if data.startswith(b"\n", start, end):
        return start, start + 1
    crlf = data.find(b"\n\r\n", start, end)
    lf = data.find(b"\n\n", start, crlf + 2 if crlf >= 0 else end)
    if lf >= 0:
        return lf + 1, lf + 2
    if crlf >= 0:
        return crlf + 1, crlf + 3
    return end, end


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field.

    ``name`` is the field name as written (empty for a line that is not a
    field at all, such as an mbox ``From`` line or a stray continuation);
    ``raw`` is the whole field verbatim; ``value`` is the unfolded value
    (RFC 5322 section 2.2.3), outer whitespace stripped, still undecoded.
    """

    name: str
    raw: bytes
    value: bytes

    @property
    def key(self) -> str:
        """The name for case-insensitive comparison (RFC 5322 section 1.2.2)."""
        return self.name.lower()

    def text(self) -> str:
        """The value as text: 8-bit bytes decoded, RFC 2047 words decoded."""
        return decode_words(bytes_to_text(self.value))

    def latin1(self) -> str:
        """The value as latin-1 text: one char per byte, so that parsers can
        work on ``str`` and give back the exact bytes with ``encode("latin-1")``."""
        return self.value.decode("latin-1")


def _make_field(raw: bytes) -> HeaderField:
    colon = raw.find(b":")
    name = b""
    value = raw
    if colon > 0:
        candidate = raw[:colon].rstrip(b" \t")  # obs-optional WSP, RFC 5322 4.5.8
        if candidate and not any(c <= 32 or c == 127 for c in candidate):
            name = candidate
            value = raw[colon + 1 :]
    unfolded = _LINE_ENDS.sub(b" ", _FOLD.sub(b"", value)).strip(b" \t\r\n")
    return HeaderField(name.decode("latin-1"), raw, unfolded)


def parse_fields(block: bytes) -> list[HeaderField]:
    """Split a header block into fields; a line starting with SP or TAB
    continues the previous field (RFC 5322 section 2.2.3)."""
    fields: list[HeaderField] = []
    current_start = -1
    pos = 0
    length = len(block)
    while pos < length:
        newline = block.find(b"\n", pos)
        line_end = length if newline < 0 else newline + 1
        if block[pos] not in (0x20, 0x09) or current_start < 0:
            if current_start >= 0:
                fields.append(_make_field(block[current_start:pos]))
            current_start = pos
        pos = line_end
    if current_start >= 0:
        fields.append(_make_field(block[current_start:length]))
    return fields


class Headers:
    """The fields of one header block, in order, with lookup by name."""

    __slots__ = ("_by_key", "fields")

    def __init__(self, block: bytes) -> None:
        self.fields = parse_fields(block)
        self._by_key: dict[str, list[HeaderField]] = {}
        for field in self.fields:
            if field.name:
                self._by_key.setdefault(field.key, []).append(field)

    def all(self, name: str) -> list[HeaderField]:
        """Every field called ``name`` (case-insensitive), in order."""
        return self._by_key.get(name.lower(), [])

    def first(self, name: str) -> HeaderField | None:
        """The first field called ``name``, if any."""
        found = self._by_key.get(name.lower())
        return found[0] if found else None

    def value(self, name: str) -> bytes | None:
        """The unfolded raw value of the first ``name`` field, if any."""
        field = self.first(name)
        return None if field is None else field.value

    def latin1(self, name: str) -> str | None:
        """The first ``name`` field's value as latin-1 text, if any."""
        field = self.first(name)
        return None if field is None else field.latin1()
