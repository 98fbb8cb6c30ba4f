"""FETCH and UID FETCH (RFC 3501 / RFC 9051 section 6.4.5, RFC 3516, RFC 7162).

Grammar (RFC 9051 section 9, with RFC 3516 BINARY, RFC 7162 modifiers,
RFC 8970 PREVIEW, RFC 8474 OBJECTID, RFC 8514 SAVEDATE)::

    fetch     = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
                fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
    fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822" [".HEADER" /
                ".SIZE" / ".TEXT"] / "BODY" ["STRUCTURE"] / "UID" /
                "BODY" section [partial] / "BODY.PEEK" section [partial] /
                "BINARY" [".PEEK"] section-binary [partial] /
                "BINARY.SIZE" section-binary / "MODSEQ" / "PREVIEW" [...] / ...

The item list is flat, so deep parentheses fail at the second "(" without
any recursion.
"""

from __future__ import annotations

import re

from asimap.imap.commands import (
    Fetch,
    FetchAtt,
    FetchKind,
    Partial,
    PartialRange,
    Section,
    SectionText,
)
from asimap.imap.parser.search import parse_partial_range
from asimap.imap.parser.sequence import parse_sequence_set
from asimap.imap.parser.tokens import (
    LANGLE,
    LBRACKET,
    LPAREN,
    MAX_NUMBER,
    MAX_NUMBER64,
    RBRACKET,
    RPAREN,
    Reader,
    decode_text,
    fail,
)
from asimap.message.limits import MAX_MIME_DEPTH

_ITEM_NAME_RE = re.compile(rb"[A-Za-z0-9.]+")
_PART_RE = re.compile(rb"[0-9]+(?:\.[0-9]+)*")
_TEXT_NAME_RE = re.compile(rb"[A-Za-z.]+")
# partial = "<" number "." nz-number ">" (RFC 3501); RFC 9051 widens both
# to 64 bits.  "<0.0>" is kept as written (length 0 is only odd, not fatal).
_PARTIAL_RE = re.compile(rb"<([0-9]{1,20})\.([0-9]{1,20})>")

_SIMPLE: dict[bytes, FetchKind] = {
    b"UID": FetchKind.UID,
    b"FLAGS": FetchKind.FLAGS,
    b"INTERNALDATE": FetchKind.INTERNALDATE,
    b"RFC822.SIZE": FetchKind.RFC822_SIZE,
    b"ENVELOPE": FetchKind.ENVELOPE,
    b"BODYSTRUCTURE": FetchKind.BODYSTRUCTURE,
    b"RFC822": FetchKind.RFC822,
    b"RFC822.HEADER": FetchKind.RFC822_HEADER,
    b"RFC822.TEXT": FetchKind.RFC822_TEXT,
    b"MODSEQ": FetchKind.MODSEQ,
    b"SAVEDATE": FetchKind.SAVEDATE,
    b"EMAILID": FetchKind.EMAILID,
    b"THREADID": FetchKind.THREADID,
}

_FAST = (
    FetchAtt(FetchKind.FLAGS),
    FetchAtt(FetchKind.INTERNALDATE),
    FetchAtt(FetchKind.RFC822_SIZE),
)
_ALL = (*_FAST, FetchAtt(FetchKind.ENVELOPE))
# RFC 3501 section 6.4.5: the macros and their expansions.
MACROS: dict[bytes, tuple[FetchAtt, ...]] = {
    b"FAST": _FAST,
    b"ALL": _ALL,
    b"FULL": (*_ALL, FetchAtt(FetchKind.BODY)),
}

_TEXTS = {
    b"HEADER": SectionText.HEADER,
    b"HEADER.FIELDS": SectionText.HEADER_FIELDS,
    b"HEADER.FIELDS.NOT": SectionText.HEADER_FIELDS_NOT,
    b"TEXT": SectionText.TEXT,
    b"MIME": SectionText.MIME,
}


#: Most numbers in a section part: one more than the deepest structure the
#: message model parses (:data:`~asimap.message.limits.MAX_MIME_DEPTH`), so
#: every part a BODYSTRUCTURE shows can be named, and ``.1`` below its
#: deepest leaf too; each number has at most 10 digits and a dot.
MAX_PART_NUMBERS = MAX_MIME_DEPTH + 2


def _part(raw: bytes) -> tuple[int, ...]:
    """section-part = nz-number *("." nz-number)."""
    short = len(raw) <= 11 * MAX_PART_NUMBERS and raw.count(b".") < MAX_PART_NUMBERS
    numbers = tuple(int(n) for n in raw.split(b".")) if short else ()
    if not numbers or any(n == 0 or n > MAX_NUMBER for n in numbers):
        fail("Invalid section part number")
    return numbers


def _header_list(reader: Reader) -> tuple[str, ...]:
    """header-list = "(" header-fld-name *(SP header-fld-name) ")"."""
    reader.space()
    reader.open_paren()
    names: list[str] = []
    while True:
        names.append(decode_text(reader.astring("header field name")))
        if len(names) > reader.limits.max_items:
            fail("Too many header fields")
        if reader.peek() == RPAREN:
            reader.pos += 1
            return tuple(names)
        reader.space()


def _section(reader: Reader) -> Section:
    """section = "[" [section-spec] "]" (cursor is on "[")."""
    reader.pos += 1
    part: tuple[int, ...] = ()
    raw_part = reader.match(_PART_RE)
    if raw_part is not None:
        part = _part(raw_part)
        if reader.peek() == RBRACKET:
            reader.pos += 1
            return Section(part)
        reader.byte(0x2E, '"." or "]" in section')
    elif reader.peek() == RBRACKET:
        reader.pos += 1
        return Section()
    name = reader.match(_TEXT_NAME_RE)
    text = _TEXTS.get(name.upper()) if name is not None else None
    if text is None:
        fail("Invalid section")
    if text is SectionText.MIME and not part:
        # RFC 3501 section 6.4.5: MIME refers to the header of a body part.
        fail("MIME section needs a part number")
    fields: tuple[str, ...] = ()
    if text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
        fields = _header_list(reader)
    reader.byte(RBRACKET, '"]" ending the section')
    return Section(part, text, fields)


def _binary_section(reader: Reader) -> Section:
    """section-binary = "[" [section-part] "]" (RFC 3516 section 4.2)."""
    reader.byte(LBRACKET, '"[" after BINARY')
    raw_part = reader.match(_PART_RE)
    part = _part(raw_part) if raw_part is not None else ()
    reader.byte(RBRACKET, '"]" ending the binary section')
    return Section(part)


def _partial(reader: Reader) -> Partial | None:
    if reader.peek() != LANGLE:
        return None
    m = _PARTIAL_RE.match(reader.line, reader.pos)
    if m is None:
        fail("Invalid partial range")
    start, length = int(m.group(1)), int(m.group(2))
    if start > MAX_NUMBER64 or length > MAX_NUMBER64:
        fail("Invalid partial range")
    reader.pos = m.end()
    return Partial(start, length)


def _preview_modifiers(reader: Reader) -> bool:
    """RFC 8970 section 7: ``PREVIEW [SP "(" preview-mod *(SP ...) ")"]``.

    The only modifier is LAZY, which lets us skip slow previews; returns
    whether it was given (a repeated LAZY means the same as one).
    """
    if not reader.line.startswith(b" (", reader.pos):
        return False
    word = _ITEM_NAME_RE.match(reader.line, reader.pos + 2)
    if word is None or word.group().upper() != b"LAZY":
        return False  # not ours: the FETCH modifiers follow
    reader.pos += 2
    while True:
        if reader.keyword("PREVIEW modifier") != "LAZY":
            fail("Unknown PREVIEW modifier")
        if reader.peek() == RPAREN:
            reader.pos += 1
            return True
        reader.space()


def parse_fetch_att(reader: Reader) -> FetchAtt:
    raw = reader.match(_ITEM_NAME_RE)
    if raw is None:
        if reader.at_end():
            fail("Missing argument")
        fail("Invalid FETCH item")
    name = raw.upper()
    kind = _SIMPLE.get(name)
    if kind is not None:
        return FetchAtt(kind)
    if name == b"BODY" or name == b"BODY.PEEK":
        if reader.peek() != LBRACKET:
            if name == b"BODY.PEEK":
                fail("BODY.PEEK needs a section")
            return FetchAtt(FetchKind.BODY)
        section = _section(reader)
        return FetchAtt(
            FetchKind.BODY_SECTION, section, _partial(reader), name == b"BODY.PEEK"
        )
    if name == b"BINARY" or name == b"BINARY.PEEK":
        section = _binary_section(reader)
        return FetchAtt(
            FetchKind.BINARY, section, _partial(reader), name == b"BINARY.PEEK"
        )
    if name == b"BINARY.SIZE":
        return FetchAtt(FetchKind.BINARY_SIZE, _binary_section(reader))
    if name == b"PREVIEW":
        return FetchAtt(FetchKind.PREVIEW, lazy=_preview_modifiers(reader))
    if name in MACROS:
        fail(f"Macro {name.decode()} cannot be used in a list")
    fail("Unknown FETCH item")


def _fetch_modifiers(
    reader: Reader, uid: bool
) -> tuple[int | None, bool, PartialRange | None]:
    """fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")".

    RFC 7162 section 3.1.4.1 (CHANGEDSINCE) and 3.2.6 (VANISHED: UID FETCH
    only, and only together with CHANGEDSINCE); RFC 9394 section 3.3
    (PARTIAL: UID FETCH only).
    """
    changed_since: int | None = None
    vanished = False
    partial: PartialRange | None = None
    if not reader.try_space():
        return None, False, None
    reader.open_paren()
    while True:
        word = reader.keyword("FETCH modifier")
        if word == "CHANGEDSINCE" and changed_since is None:
            reader.space()
            changed_since = reader.number("CHANGEDSINCE", MAX_NUMBER64)
        elif word == "VANISHED" and not vanished:
            if not uid:
                fail("VANISHED is only allowed in UID FETCH")
            vanished = True
        elif word == "PARTIAL" and partial is None:
            if not uid:
                fail("PARTIAL is only allowed in UID FETCH")
            reader.space()
            partial = parse_partial_range(reader)
        else:
            fail("Unknown or repeated FETCH modifier")
        if reader.peek() == RPAREN:
            reader.pos += 1
            break
        reader.space()
    if vanished and changed_since is None:
        fail("VANISHED requires CHANGEDSINCE")
    return changed_since, vanished, partial


def parse_fetch(reader: Reader, tag: str, uid: bool) -> Fetch:
    reader.space()
    sequence = parse_sequence_set(reader)
    reader.space()
    macro: str | None = None
    if reader.peek() == LPAREN:
        reader.pos += 1
        items: list[FetchAtt] = []
        while True:
            items.append(parse_fetch_att(reader))
            if len(items) > reader.limits.max_items:
                fail("Too many FETCH items")
            if reader.peek() == RPAREN:
                reader.pos += 1
                break
            reader.space()
        atts = tuple(items)
    else:
        m = _ITEM_NAME_RE.match(reader.line, reader.pos)
        word = m.group().upper() if m is not None else b""
        if word in MACROS:
            reader.pos += len(word)
            atts = MACROS[word]
            macro = word.decode("ascii")
        else:
            atts = (parse_fetch_att(reader),)
    changed_since, vanished, partial = _fetch_modifiers(reader, uid)
    reader.expect_end()
    return Fetch(tag, sequence, atts, uid, changed_since, vanished, macro, partial)
