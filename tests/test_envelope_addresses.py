"""The envelope address reader that SEARCH and SORT use (RFC 3501 7.4.2).

Both of its paths -- the parsed message's ENVELOPE tree and the wire bytes
a summary caches -- must give the same addresses for every message, or
SEARCH FROM would answer differently on the memory and MH stores.
"""

from __future__ import annotations

from asimap.imap.search import address_texts
from asimap.message.envelope_addresses import (
    ADDRESS_FIELDS,
    EnvelopeAddress,
    _general_field,
    first_wire_address,
    may_contain,
    parse_wire,
    value_addresses,
    wire_field,
)
from asimap.message.model import Message
from asimap.message.wire import encode_summary_value
from test_message_corpus import load_corpus


def wire_addresses(encoded: bytes) -> dict[str, tuple[EnvelopeAddress, ...]]:
    """Every field through the fast path, checked against the general one."""
    out = {}
    for field in ADDRESS_FIELDS:
        found = wire_field(encoded, field)
        assert found == _general_field(encoded, field), field
        assert first_wire_address(encoded, field) == (found[0] if found else None)
        out[field] = found
    return out


def test_all_paths_agree_on_the_corpus() -> None:
    for raw in load_corpus():
        envelope = Message(raw).envelope()
        wire = wire_addresses(encode_summary_value(envelope))
        for field in ADDRESS_FIELDS:
            assert wire[field] == value_addresses(envelope, field), field


def test_groups_literals_and_escapes() -> None:
    raw = (
        b'From: "Q\\"uote\\\\d" <q@x.org>\r\n'
        b"To: team: a@x.org, (only a comment) ;, empty:;\r\n"
        b"Cc: =?utf-8?q?J=C3=B6rg?= <j@x.org>\r\n"
        b"Subject: s\r\n\r\nbody\r\n"
    )
    envelope = Message(raw).envelope()
    wire = wire_addresses(encode_summary_value(envelope))
    assert wire["from"] == ((b'Q"uote\\d', None, b"q", b"x.org"),)
    assert wire["to"] == (
        (None, None, b"team", None),
        (None, None, b"a", b"x.org"),
        (None, None, None, None),
        (None, None, b"empty", None),
        (None, None, None, None),
    )
    assert wire["cc"] == ((b"=?utf-8?q?J=C3=B6rg?=", None, b"j", b"x.org"),)
    assert wire["bcc"] == ()
    assert wire == {f: value_addresses(envelope, f) for f in ADDRESS_FIELDS}


def test_parse_wire_reads_literals_and_survives_damage() -> None:
    assert parse_wire(b'(NIL "a" {3}\r\nx\x01y 12 ((NIL NIL "m" "h")))') == [
        [None, b"a", b"x\x01y", 12, [[None, None, b"m", b"h"]]]
    ]
    assert parse_wire(b'(("a" NIL') == [[[b"a", None]]]
    assert parse_wire(b"garbage") == []
    assert wire_addresses(b"(NIL)") == {f: () for f in ADDRESS_FIELDS}
    # A literal (8-bit name) takes the general path.
    encoded = (
        b'(NIL NIL (({4}\r\nJ\xc3\xb6r NIL "j" "x.org")) NIL NIL NIL NIL NIL NIL NIL)'
    )
    assert wire_field(encoded, "from") == ((b"J\xc3\xb6r", None, b"j", b"x.org"),)
    assert first_wire_address(encoded, "from") == (b"J\xc3\xb6r", None, b"j", b"x.org")


def test_the_search_shortcut_never_hides_a_match() -> None:
    """``may_contain`` is a necessary condition: for every address text of
    every corpus message, and pieces of it, it says True; and it does rule
    out a needle that is nowhere (the point of it)."""
    ruled_out = 0
    for raw in load_corpus():
        encoded = encode_summary_value(Message(raw).envelope())
        for field in ("from", "to", "cc", "bcc"):
            for text in address_texts(wire_field(encoded, field)):
                folded = text.casefold()
                third = len(folded) // 3
                for needle in (folded, folded[third : 2 * third], folded[-third:]):
                    assert may_contain(encoded, needle), (text, needle)
        ruled_out += not may_contain(encoded, "zq-nowhere@nothing")
    assert ruled_out > 1500
    assert not may_contain(b'(NIL NIL (("A" NIL "a" "b")) NIL NIL NIL NIL NIL)', "ä")
