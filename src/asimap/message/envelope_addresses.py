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
from functools import lru_cache

from asimap.imap.responses import Adjacent, Value
from asimap.message.decode import bytes_to_text, decode_words

EnvelopeAddress = tuple[bytes | None, bytes | None, bytes | None, bytes | None]

#: Position of each address field in the ENVELOPE (RFC 3501 section 7.4.2).
ADDRESS_FIELDS = {"from": 2, "sender": 3, "reply-to": 4, "to": 5, "cc": 6, "bcc": 7}

_TOKEN = re.compile(
    rb'[ ]*(?:(\()|(\))|(NIL)|"((?:[^"\\]|\\.)*)"|\{(\d+)\}\r\n|(\d+))', re.DOTALL
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


@lru_cache(maxsize=4096)
def wire_addresses(envelope: bytes) -> dict[str, tuple[EnvelopeAddress, ...]]:
    """Every address field of an encoded ENVELOPE, by lower-case name.

    Memoised like the envelope encoder itself: a folder's messages share
    a handful of From/To lists, and the result is immutable.
    """
    top = parse_wire(envelope)
    fields = top[0] if top and isinstance(top[0], list) else []
    out: dict[str, tuple[EnvelopeAddress, ...]] = {}
    for name, index in ADDRESS_FIELDS.items():
        value = fields[index] if index < len(fields) else None
        if isinstance(value, list):
            found = (_as_address(item) for item in value)
            out[name] = tuple(a for a in found if a is not None)
        else:
            out[name] = ()
    return out


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
