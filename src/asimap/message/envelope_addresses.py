"""The address lists of an ENVELOPE, for SEARCH and SORT.

RFC 3501/9051 section 6.4.4 has SEARCH FROM/TO/CC/BCC match the envelope
structure's field, and RFC 5256 section 3 / RFC 5957 sort by the first
address of the envelope.  Both must therefore see exactly the addresses
FETCH ENVELOPE reports -- groups included -- so they are read from the
envelope itself: from the parsed message's tree, or from the wire bytes a
summary caches (which the MH store answers without opening the message).

An address is the 4-tuple of RFC 3501 section 7.4.2: ``(name, adl,
mailbox, host)``; a group starts with ``(NIL NIL name NIL)`` and ends with
``(NIL NIL NIL NIL)``.
"""

from __future__ import annotations

import re

from asimap.imap.responses import Adjacent, Value
from asimap.message.decode import bytes_to_text, decode_words

EnvelopeAddress = tuple[bytes | None, bytes | None, bytes | None, bytes | None]

#: Position of each address field in the ENVELOPE (RFC 3501 section 7.4.2).
ADDRESS_FIELDS = {"from": 2, "sender": 3, "reply-to": 4, "to": 5, "cc": 6, "bcc": 7}

_TOKEN = re.compile(
    rb'[ ]*(?:(\()|(\))|(NIL)|"([^"\\]*(?:\\.[^"\\]*)*)"|\{(\d+)\}\r\n|(\d+))',
    re.DOTALL,
)
_QUOTED_PAIR = re.compile(rb"\\(.)", re.DOTALL)


def parse_wire(data: bytes) -> list[object]:
    """The values of an encoded ENVELOPE/BODYSTRUCTURE, as nested lists.

    Reads what :func:`asimap.message.wire.encode_summary_value` writes:
    parentheses, ``NIL``, numbers, quoted strings and literals.  Anything
    else ends the parse (what was read so far is returned): the bytes come
    from our own encoder, so that only happens to a damaged cache row.
    """
    stack: list[list[object]] = [[]]
    pos = 0
    end = len(data)
    while pos < end:
        match = _TOKEN.match(data, pos)
        if match is None:
            break
        pos = match.end()
        if match.group(1) is not None:
            stack.append([])
        elif match.group(2) is not None:
            if len(stack) == 1:
                break
            done = stack.pop()
            stack[-1].append(done)
        elif match.group(3) is not None:
            stack[-1].append(None)
        elif match.group(4) is not None:
            stack[-1].append(_QUOTED_PAIR.sub(rb"\1", match.group(4)))
        elif match.group(5) is not None:
            size = int(match.group(5))
            stack[-1].append(data[pos : pos + size])
            pos += size
        else:
            stack[-1].append(int(match.group(6)))
    while len(stack) > 1:  # unterminated: close what is open
        done = stack.pop()
        stack[-1].append(done)
    return stack[0]


def _as_address(value: object) -> EnvelopeAddress | None:
    if not isinstance(value, list | tuple) or len(value) != 4:
        return None
    parts = [v if isinstance(v, bytes) else None for v in value]
    return (parts[0], parts[1], parts[2], parts[3])


def _general_field(envelope: bytes, field: str) -> tuple[EnvelopeAddress, ...]:
    """The addresses of ``field`` through the general parser."""
    top = parse_wire(envelope)
    fields = top[0] if top and isinstance(top[0], list) else []
    index = ADDRESS_FIELDS[field]
    value = fields[index] if index < len(fields) else None
    if not isinstance(value, list):
        return ()
    found = (_as_address(item) for item in value)
    return tuple(a for a in found if a is not None)


# The fast path: envelopes whose strings are all quoted (no literal, so no
# 8-bit or very long string) -- nearly all of them -- are matched by one
# regular expression per field, so that SORT FROM over a big folder costs
# about what parsing the From: header did.
#: A quoted string as an "unrolled loop": runs of plain characters are one
#: single-character repetition, which the regex engine matches without
#: keeping state per character (``(?:[^"\\]|\\.)*`` kept some for every
#: character: tens of megabytes over a long address list).
_STRING = rb'(?:NIL|"[^"\\]*(?:\\.[^"\\]*)*")'
_ADDRESS = rb"\(" + rb" ".join([_STRING] * 4) + rb"\)"
_LIST = rb"(?:NIL|\((?:" + _ADDRESS + rb")+\))"
_ADDRESS_RE = re.compile(rb"\((" + rb") (".join([_STRING] * 4) + rb")\)", re.DOTALL)
_FIELD_RE = {
    name: re.compile(
        rb"\("
        + _STRING
        + rb" "
        + _STRING
        + rb" "
        + (_LIST + rb" ") * (index - 2)
        + rb"("
        + _LIST
        + rb")",
        re.DOTALL,
    )
    for name, index in ADDRESS_FIELDS.items()
}


def _string(token: bytes) -> bytes | None:
    if token == b"NIL":
        return None
    inner = token[1:-1]
    return _QUOTED_PAIR.sub(rb"\1", inner) if b"\\" in inner else inner


def _field_list(envelope: bytes, field: str) -> bytes | None:
    """The encoded list of ``field`` (``NIL`` or ``((...)...)``), or None
    when the fast path does not apply."""
    if b"{" in envelope:
        return None
    match = _FIELD_RE[field].match(envelope)
    return match.group(1) if match is not None else None


def wire_field(envelope: bytes, field: str) -> tuple[EnvelopeAddress, ...]:
    """The addresses of ENVELOPE field ``field`` in encoded ``envelope``."""
    encoded = _field_list(envelope, field)
    if encoded is None:
        return _general_field(envelope, field)
    if encoded == b"NIL":
        return ()
    return tuple(
        (_string(name), _string(route), _string(mailbox), _string(host))
        for name, route, mailbox, host in _ADDRESS_RE.findall(encoded)
    )


def first_wire_address(envelope: bytes, field: str) -> EnvelopeAddress | None:
    """The first address of ``field`` (what SORT needs), or None."""
    encoded = _field_list(envelope, field)
    if encoded is None:
        found = _general_field(envelope, field)
        return found[0] if found else None
    match = _ADDRESS_RE.match(encoded, 1)
    if match is None:
        return None
    name, route, mailbox, host = match.groups()
    return (_string(name), _string(route), _string(mailbox), _string(host))


def _after_subject(envelope: bytes) -> int:
    """Where the address lists of an encoded ENVELOPE start (after its
    Date and Subject strings, quoted or literal), or -1."""
    if not envelope.startswith(b"("):
        return -1
    pos = 1
    for _ in range(2):
        match = _TOKEN.match(envelope, pos)
        if match is None:
            return -1
        if match.group(5) is not None:  # a literal: skip its octets
            pos = match.end() + int(match.group(5))
        elif match.group(3) is not None or match.group(4) is not None:
            pos = match.end()  # NIL or a quoted string
        else:
            return -1
    return pos


def may_contain(envelope: bytes, needle: str) -> bool:
    """False only if no ``name <mailbox@host>`` text of the encoded
    ``envelope`` can contain ``needle`` (already casefolded).

    A cheap necessary condition that lets SEARCH FROM skip reading the
    addresses of most messages: each piece of the needle between the
    characters the text adds (space, ``<``, ``@``, ``>``) lies inside one
    name, mailbox or host, and those appear verbatim in the envelope
    bytes -- unless an encoded-word, an escape or a literal (8-bit) may
    change them, in which case the answer is True.  Without those, every
    text is ASCII, so a needle that is not can never match.
    """
    start = _after_subject(envelope)
    if start < 0:
        return True
    tail = envelope[start:]  # the address lists, In-Reply-To, Message-ID
    if b"=?" in tail or b"\\" in tail or b"{" in tail:
        return True
    try:
        folded = needle.encode("ascii")
    except UnicodeEncodeError:
        return False
    lowered = tail.lower()
    pieces = folded.replace(b"<", b" ").replace(b">", b" ").replace(b"@", b" ")
    return all(piece in lowered for piece in pieces.split(b" ") if piece)


def value_addresses(envelope: Value, field: str) -> tuple[EnvelopeAddress, ...]:
    """The addresses of ``field`` in an ENVELOPE tree (as the message
    model builds it: each list is ``[Adjacent(addresses)]`` or None)."""
    if not isinstance(envelope, tuple):
        return ()
    value = envelope[ADDRESS_FIELDS[field]]
    if not isinstance(value, list) or not value:
        return ()
    inner = value[0]
    items = inner.values if isinstance(inner, Adjacent) else ()
    found = (_as_address(item) for item in items)
    return tuple(a for a in found if a is not None)


def text_of(value: bytes | None) -> str:
    """An envelope string as text: UTF-8 if valid, else latin-1."""
    return bytes_to_text(value) if value else ""


def display_name(address: EnvelopeAddress) -> str:
    """The address's display name with RFC 2047 encoded-words decoded."""
    return decode_words(text_of(address[0])).strip()
