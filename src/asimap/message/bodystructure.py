"""FETCH BODY and BODYSTRUCTURE (RFC 3501 section 7.4.2, RFC 9051 7.5.2).

Types and subtypes are sent upper-case (``"TEXT" "PLAIN"``), as the RFC's
own examples do; matching is case-insensitive for clients either way.
Parameter values, ids and descriptions are the header bytes as stored.
A text part with no charset gets ``CHARSET US-ASCII``, the RFC 2045
section 5.2 default.
"""

from __future__ import annotations

from asimap.imap.responses import Adjacent, Value
from asimap.message.envelope import envelope
from asimap.message.mime import Part
from asimap.message.params import StructuredValue, parse_disposition


def _b(text: str) -> bytes:
    return text.encode("latin-1", errors="replace")


def _params(value: StructuredValue, text_default: bool = False) -> Value:
    """A body-fld-param: a flat list of name/value strings, or NIL."""
    flat: list[Value] = []
    for name, val in value.params:
        flat.extend((_b(name.upper()), _b(val)))
    if text_default and value.param("charset") is None:
        flat.extend((b"CHARSET", b"US-ASCII"))
    return flat or None


def _disposition(part: Part) -> Value:
    parsed = parse_disposition(part.headers.latin1("Content-Disposition"))
    if parsed is None:
        return None
    return (_b(parsed.value.upper()), _params(parsed))


def _language(part: Part) -> Value:
    text = part.headers.latin1("Content-Language")
    if text is None:
        return None
    tags = [tag.strip() for tag in text.split(",") if tag.strip()]
    return [_b(tag) for tag in tags] or None


#: Encodings that leave the bytes as they are (RFC 2045 section 6.2).
_IDENTITY = frozenset({b"7BIT", b"8BIT", b"BINARY"})


def _encoding(part: Part) -> bytes:
    value = part.headers.value("Content-Transfer-Encoding")
    encoding = value.upper() if value else b"7BIT"
    if part.is_opaque and encoding not in _IDENTITY:
        # A leaf past a limit holds a container's bytes, which BINARY
        # returns as they are: say so, whatever its header claimed.
        return b"BINARY"
    return encoding


def body_structures(part: Part) -> tuple[Value, Value]:
    """BODYSTRUCTURE and BODY of a part in one walk: ``(extensible, basic)``.

    BODY is BODYSTRUCTURE without the extension data (RFC 3501 section
    7.4.2), so both are built from the same fields; summaries store both,
    and building them separately parsed every part's parameters twice.
    The straightforward one-structure-per-walk construction is kept in
    ``tests/test_summary_fast.py`` as the oracle this is checked against on
    the whole corpus.
    """
    if part.is_multipart:
        pairs = [body_structures(child) for child in part.children]
        subtype = _b(part.subtype.upper())
        extended: list[Value] = [Adjacent(tuple(p[0] for p in pairs)), subtype]
        extended.extend(
            (
                _params(part.content_type),
                _disposition(part),
                _language(part),
                part.headers.value("Content-Location"),
            )
        )
        return extended, [Adjacent(tuple(p[1] for p in pairs)), subtype]
    is_text = part.type == "text"
    common: list[Value] = [
        _b(part.type.upper()),
        _b(part.subtype.upper()),
        _params(part.content_type, text_default=is_text),
        part.headers.value("Content-ID"),
        part.headers.value("Content-Description"),
        _encoding(part),
        part.body_size,
    ]
    extended = list(common)
    basic = common
    if part.message is not None:
        envelope_value = envelope(part.message.headers)
        inner_extended, inner_basic = body_structures(part.message)
        lines = part.body_lines()
        extended.extend((envelope_value, inner_extended, lines))
        basic.extend((envelope_value, inner_basic, lines))
    elif is_text:
        lines = part.body_lines()
        extended.append(lines)
        basic.append(lines)
    extended.extend(
        (
            part.headers.value("Content-MD5"),
            _disposition(part),
            _language(part),
            part.headers.value("Content-Location"),
        )
    )
    return extended, basic
