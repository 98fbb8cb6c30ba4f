"""Header blocks located by byte offsets, and their fields kept verbatim.

IMAP serves header sections byte for byte (``BODY[HEADER]``,
``BODY[HEADER.FIELDS (...)]``), so a field is kept as the exact bytes it was
stored with, continuation lines and line ends included, next to an unfolded
value for everything that interprets it.
"""

from __future__ import annotations

import re
from operator import itemgetter

from asimap.message.decode import bytes_to_text, decode_words
from asimap.message.limits import MAX_FIELD_BYTES, MAX_HEADER_FIELDS

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
    # The first "\n\n" or "\n\r\n", whichever starts first.  Whichever
    # kind is looked for first is searched to its first occurrence, the
    # other only up to there: searching the whole entity for the kind a
    # message does not use (CRLF in an LF file from nmh) cost a scan of
    # every part's body.  The first line's end tells which kind to try
    # first; either order gives the same answer.
    newline = data.find(b"\n", start, end)
    if newline > start and data[newline - 1] == 0x0D:  # CRLF message
        crlf = data.find(b"\n\r\n", start, end)
        lf = data.find(b"\n\n", start, crlf + 2 if crlf >= 0 else end)
    else:
        lf = data.find(b"\n\n", start, end)
        crlf = data.find(b"\n\r\n", start, lf + 2 if lf >= 0 else end)
        if crlf >= 0:
            lf = -1  # a CRLF empty line before the first LF one
    if lf >= 0:
        return lf + 1, lf + 2
    if crlf >= 0:
        return crlf + 1, crlf + 3
    return end, end


#: One whole field: its first line (whatever it starts with -- a line that
#: is not a continuation starts a field, RFC 5322 section 2.2.3) and every
#: following line that starts with SP or TAB.  Groups: the field verbatim,
#: the name with its colon, the name.  A name is followed by optional
#: SP/TAB and the colon (RFC 5322 section 3.6.8 ``ftext`` is printable
#: ASCII but ":"; we also take 8-bit bytes, and obs-optional WSP before the
#: colon, RFC 5322 section 4.5.8).  ``findall`` does the whole split in C.
_FIELD = re.compile(rb"((([^\x00-\x20\x7f:]+)[ \t]*:)?[^\n]*\n?(?:[ \t][^\n]*\n?)*)")
_NAME_OF = itemgetter(2)
_WSP_AND_ENDS = b" \t\r\n"


def unfold(value: bytes) -> bytes:
    """The unfolded value of a field (RFC 5322 section 2.2.3), outer
    whitespace stripped: line breaks before SP/TAB are removed, any other
    run of CR/LF becomes one SP."""
    stripped = value.strip(_WSP_AND_ENDS)
    if b"\n" not in stripped and b"\r" not in stripped:
        # One line: every CR/LF was outer whitespace, which the strip
        # below would have removed anyway -- skip the two substitutions.
        return stripped
    return _LINE_ENDS.sub(b" ", _FOLD.sub(b"", value)).strip(_WSP_AND_ENDS)


_NAME = re.compile(rb"([^\x00-\x20\x7f:]+)[ \t]*:")
#: The line end that ends a field: one not followed by a continuation.
_FIELD_END = re.compile(rb"\n(?![ \t])")


def _bounded_fields(
    block: bytes, start: int, length: int
) -> list[tuple[bytes, bytes, bytes]]:
    """The first ``MAX_HEADER_FIELDS`` fields of a block with many lines,
    as ``_FIELD.findall`` gives them.

    Each field's end is found with a search for the next line end that
    no SP/TAB follows, rather than by ``_FIELD`` itself: its repetition
    of continuation lines keeps state per line, hundreds of megabytes for
    one field folded over a million lines.
    """
    found: list[tuple[bytes, bytes, bytes]] = []
    pos = start
    while pos < length and len(found) < MAX_HEADER_FIELDS:
        end_match = _FIELD_END.search(block, pos, length)
        end = length if end_match is None else end_match.end()
        named = _NAME.match(block, pos, end)
        if named is None:
            found.append((block[pos:end], b"", b""))
        else:
            found.append((block[pos:end], named.group(), named.group(1)))
        pos = end
    return found


class HeaderField:
    """One header field.

    ``name`` is the field name as written (empty for a line that is not a
    field at all, such as an mbox ``From`` line or a stray continuation);
    ``raw`` is the whole field verbatim; ``value`` is the unfolded value
    (RFC 5322 section 2.2.3), outer whitespace stripped, still undecoded,
    of at most :data:`~asimap.message.limits.MAX_FIELD_BYTES` octets of the
    stored value (``truncated`` says whether there was more): everything
    that interprets a field works on ``value``, so a 60 MB field costs a
    bounded amount to parse, while ``raw`` still serves it whole.

    ``value`` is computed on first use: a message has dozens of fields
    (Received, DKIM-Signature...) that only a few commands ever read, and
    unfolding all of them was the largest cost of parsing a message.
    """

    __slots__ = ("_value", "_value_start", "name", "raw")

    def __init__(
        self, name: str, raw: bytes, value: bytes | None = None, value_start: int = 0
    ) -> None:
        self.name = name
        self.raw = raw
        self._value = value
        self._value_start = value_start

    @property
    def value(self) -> bytes:
        if self._value is None:
            start = self._value_start
            self._value = unfold(self.raw[start : start + MAX_FIELD_BYTES])
        return self._value

    @property
    def truncated(self) -> bool:
        """True when ``value`` is only the first ``MAX_FIELD_BYTES`` of
        a longer stored value (its end may cut an address or a word)."""
        return len(self.raw) - self._value_start > MAX_FIELD_BYTES

    @property
    def key(self) -> str:
        """The name for case-insensitive comparison (RFC 5322 section 1.2.2)."""
        return self.name.lower()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeaderField):
            return NotImplemented
        return (self.name, self.raw, self.value) == (other.name, other.raw, other.value)

    def __hash__(self) -> int:
        return hash((self.name, self.raw))

    def __repr__(self) -> str:
        return f"HeaderField(name={self.name!r}, raw={self.raw!r})"

    def text(self) -> str:
        """The value as text: 8-bit bytes decoded, RFC 2047 words decoded."""
        return decode_words(bytes_to_text(self.value))

    def latin1(self) -> str:
        """The value as latin-1 text: one char per byte, so that parsers can
        work on ``str`` and give back the exact bytes with ``encode("latin-1")``."""
        return self.value.decode("latin-1")


class Headers:
    """The fields of one header block, in order, with lookup by name.

    Built for every part of every message when a folder is first
    summarised, so construction does no per-field Python work: one
    ``findall`` splits the block, the names are lower-cased in one string
    and indexed with ``dict(zip(...))``; a :class:`HeaderField` is made only
    for a field someone asks for (a multipart's parts are asked about their
    ``Content-*`` fields, nothing else).

    At most :data:`~asimap.message.limits.MAX_HEADER_FIELDS` fields are
    indexed: a 60 MB header of one-line fields would otherwise become ten
    million tuples.  Only a block with that many lines (each field has at
    least one) is split the slower, stoppable way.
    """

    __slots__ = ("_fields", "_first", "_found", "_keys", "_made")

    def __init__(self, block: bytes, start: int = 0, end: int | None = None) -> None:
        # ``block[start:end]`` is the header: a message's part passes the
        # whole message and offsets, so a huge header is not copied first.
        stop = len(block) if end is None else end
        found: list[tuple[bytes, bytes, bytes]]
        if block.count(b"\n", start, stop) < MAX_HEADER_FIELDS:
            found = _FIELD.findall(block, start, stop)
        else:
            found = _bounded_fields(block, start, stop)
        if found and not found[-1][0]:
            found.pop()  # the empty match at the end of the block
        self._found = found
        # Names hold no NUL (see _FIELD), so one join/lower/split gives the
        # key of every field ("" for a line that is not a field).
        keys = (
            b"\x00".join(map(_NAME_OF, found)).decode("latin-1").lower().split("\x00")
            if found
            else []
        )
        self._keys = keys
        count = len(keys)
        #: key -> index of its first field (the reversed zip keeps the first).
        self._first = dict(zip(reversed(keys), range(count - 1, -1, -1), strict=True))
        self._made: dict[int, HeaderField] = {}
        self._fields: list[HeaderField] | None = None

    def _field(self, index: int) -> HeaderField:
        field = self._made.get(index)
        if field is None:
            raw, prefix, name = self._found[index]
            field = HeaderField(name.decode("latin-1"), raw, None, len(prefix))
            self._made[index] = field
        return field

    @property
    def fields(self) -> list[HeaderField]:
        """Every field, in order (lines that are no field have name "")."""
        if self._fields is None:
            self._fields = [self._field(i) for i in range(len(self._found))]
        return self._fields

    def all(self, name: str) -> list[HeaderField]:
        """Every field called ``name`` (case-insensitive), in order."""
        key = name.lower()
        first = self._first.get(key) if key else None
        if first is None:
            return []
        keys = self._keys
        if keys.count(key) == 1:
            return [self._field(first)]
        return [self._field(i) for i in range(first, len(keys)) if keys[i] == key]

    def first(self, name: str) -> HeaderField | None:
        """The first field called ``name``, if any."""
        key = name.lower()
        first = self._first.get(key) if key else None
        return None if first is None else self._field(first)

    def value(self, name: str) -> bytes | None:
        """The unfolded raw value of the first ``name`` field, if any."""
        field = self.first(name)
        return None if field is None else field.value

    def latin1(self, name: str) -> str | None:
        """The first ``name`` field's value as latin-1 text, if any."""
        field = self.first(name)
        return None if field is None else field.latin1()
