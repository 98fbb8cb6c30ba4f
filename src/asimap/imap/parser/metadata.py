"""GETMETADATA and SETMETADATA (RFC 5464 sections 4.2, 4.3 and 5).

Formal syntax (section 5)::

    getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries
    getmetadata-options = "(" getmetadata-option *(SP getmetadata-option) ")"
    getmetadata-option = "MAXSIZE" SP number / "DEPTH" SP ("0" / "1" / "infinity")
    entries = entry / "(" entry *(SP entry) ")"
    setmetadata = "SETMETADATA" SP mailbox SP entry-values
    entry-values = "(" entry-value *(SP entry-value) ")"
    entry-value = entry SP value
    value = nstring / literal8

The RFC's own examples put the options *after* the mailbox
(``GETMETADATA "INBOX" (MAXSIZE 1024) (...)``), so both places are
accepted, as Dovecot and Cyrus do.  Entry names follow section 3.2: they
begin with ``/``, hold no ``*``, ``%``, controls or non-ASCII, no ``//``,
and do not end with ``/``; anything else is BAD.
"""

from __future__ import annotations

import re

from asimap.imap.commands import GetMetadata, SetMetadata
from asimap.imap.parser.tokens import LPAREN, RPAREN, TILDE, Reader, fail

#: Section 3.2: printable ASCII without the LIST wildcards.
_ENTRY_RE = re.compile(r"(?:/[\x20-\x24\x26-\x29\x2b-\x2e\x30-\x7e]+)+")

#: DEPTH values (section 4.2.2); ``infinity`` is -1.
_DEPTHS = {"0": 0, "1": 1, "INFINITY": -1}


def check_entry(raw: bytes) -> str:
    """An entry name as ``str``, or a parse failure (section 3.2)."""
    try:
        entry = raw.decode("ascii")
    except UnicodeDecodeError:
        fail("Metadata entry names are ASCII")
    if _ENTRY_RE.fullmatch(entry) is None:
        fail("Invalid metadata entry name")
    return entry


def _entry(reader: Reader) -> str:
    return check_entry(reader.astring("metadata entry"))


def _options(reader: Reader, maxsize: int | None, depth: int) -> tuple[int | None, int]:
    """Parse ``(MAXSIZE n DEPTH d)`` (section 4.2.1, 4.2.2)."""
    reader.open_paren()
    seen: set[str] = set()
    while True:
        option = reader.keyword("GETMETADATA option")
        if option in seen or option not in ("MAXSIZE", "DEPTH"):
            fail(f"Unknown or repeated GETMETADATA option {option[:40]}")
        seen.add(option)
        reader.space()
        if option == "MAXSIZE":
            maxsize = reader.number("MAXSIZE")
        else:
            value = reader.atom("DEPTH").decode("ascii").upper()
            if value not in _DEPTHS:
                fail("DEPTH must be 0, 1 or infinity")
            depth = _DEPTHS[value]
        if reader.peek() == RPAREN:
            reader.pos += 1
            return maxsize, depth
        reader.space()


def _is_options(reader: Reader) -> bool:
    """True when a ``(`` at the cursor opens options, not an entry list."""
    return (
        reader.peek() == LPAREN
        and not reader.startswith(b"(/")
        and not (reader.startswith(b'("'))
    )


def parse_getmetadata(reader: Reader, tag: str, uid: bool) -> GetMetadata:
    reader.space()
    maxsize: int | None = None
    depth = 0
    if _is_options(reader):
        maxsize, depth = _options(reader, maxsize, depth)
        reader.space()
    mailbox = reader.mailbox()
    reader.space()
    if _is_options(reader):
        maxsize, depth = _options(reader, maxsize, depth)
        reader.space()
    entries: list[str] = []
    if reader.peek() == LPAREN:
        reader.pos += 1
        while True:
            entries.append(_entry(reader))
            if len(entries) > reader.limits.max_items:
                fail("Too many metadata entries")
            if reader.peek() == RPAREN:
                reader.pos += 1
                break
            reader.space()
    else:
        entries.append(_entry(reader))
    reader.expect_end()
    return GetMetadata(tag, mailbox, tuple(entries), maxsize, depth)


def _value(reader: Reader) -> bytes | None:
    if reader.peek() == TILDE:
        return reader.literal(allow_literal8=True)[0]
    return reader.nstring("metadata value")


def parse_setmetadata(reader: Reader, tag: str, uid: bool) -> SetMetadata:
    reader.space()
    mailbox = reader.mailbox()
    reader.space()
    reader.open_paren()
    values: list[tuple[str, bytes | None]] = []
    while True:
        entry = _entry(reader)
        reader.space()
        values.append((entry, _value(reader)))
        if len(values) > reader.limits.max_items:
            fail("Too many metadata entries")
        if reader.peek() == RPAREN:
            reader.pos += 1
            break
        reader.space()
    reader.expect_end()
    return SetMetadata(tag, mailbox, tuple(values))
