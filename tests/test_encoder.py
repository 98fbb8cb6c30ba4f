"""Tests for the response encoder (asimap.imap.encoder).

The property tests decode the encoder's output with a small, strict
reference decoder written from the RFC 3501 / RFC 9051 grammar, so any
value the session can build either round-trips or raises in our code:
the encoder can never put invalid syntax on the wire.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asimap.imap.encoder import MAX_QUOTED, NUL_REPLACEMENT, encode, encode_value
from asimap.imap.responses import (
    Atom,
    Code,
    Continuation,
    Literal,
    Literal8,
    Raw,
    Status,
    Tagged,
    Untagged,
    UntaggedStatus,
    Value,
)

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "usrp-users.mbox.gz"

# -- reference decoder --------------------------------------------------------

_ATOM_CHARS = re.compile(rb"\\?[!#$&'+,\-./0-9:;<=>?@A-Z\[\]^_`a-z|}~]+|\\\*")
_NUMBER = re.compile(rb"[0-9]+")
_LITERAL = re.compile(rb"(~?)\{([0-9]+)\}\r\n")


class DecodeError(Exception):
    pass


def decode_one(data: bytes, pos: int, utf8: bool) -> tuple[Any, int]:
    """Decode one value at ``pos``; strings come back as bytes, atoms as
    ("atom", text), literal8 as ("literal8", bytes)."""
    if data.startswith(b"(", pos):
        items: list[Any] = []
        pos += 1
        while not data.startswith(b")", pos):
            if items:
                if not data.startswith(b" ", pos):
                    raise DecodeError(f"expected SP at {pos}")
                pos += 1
            item, pos = decode_one(data, pos, utf8)
            items.append(item)
        return items, pos + 1
    if data.startswith(b'"', pos):
        out = bytearray()
        pos += 1
        while True:
            if pos >= len(data):
                raise DecodeError("unterminated quoted string")
            byte = data[pos]
            if byte == ord('"'):
                break
            if byte == ord("\\"):
                escaped = data[pos + 1 : pos + 2]
                if escaped not in (b"\\", b'"'):
                    raise DecodeError("bad escape")
                out += escaped
                pos += 2
                continue
            if byte in (0, 10, 13):
                raise DecodeError("CR, LF or NUL in quoted string")
            out.append(byte)
            pos += 1
        if not utf8 and any(b > 0x7F for b in out):
            raise DecodeError("8-bit in quoted string without UTF-8")
        bytes(out).decode("utf-8")  # raises on invalid UTF-8
        return bytes(out), pos + 1
    match = _LITERAL.match(data, pos)
    if match:
        size = int(match.group(2))
        body = data[match.end() : match.end() + size]
        if len(body) != size:
            raise DecodeError("short literal")
        value = ("literal8", body) if match.group(1) else body
        return value, match.end() + size
    if data.startswith(b"NIL", pos) and not _ATOM_CHARS.match(data, pos + 3):
        return None, pos + 3
    match = _NUMBER.match(data, pos)
    if match and not _ATOM_CHARS.match(data, match.end()):
        return int(match.group()), match.end()
    match = _ATOM_CHARS.match(data, pos)
    if match:
        return ("atom", match.group().decode("ascii")), match.end()
    raise DecodeError(f"no value at {pos}: {data[pos : pos + 10]!r}")


def decode_all(data: bytes, utf8: bool = False) -> Any:
    value, end = decode_one(data, 0, utf8)
    if end != len(data):
        raise DecodeError(f"trailing bytes at {end}")
    return value


def expected(value: Value) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8").replace(b"\x00", NUL_REPLACEMENT)
    if isinstance(value, bytes):
        return value.replace(b"\x00", NUL_REPLACEMENT)
    if isinstance(value, Atom):
        return ("atom", value.text)
    if isinstance(value, Literal):
        return value.data
    if isinstance(value, Literal8):
        return ("literal8", value.data)
    if isinstance(value, list | tuple):
        return [expected(item) for item in value]
    return value


# -- strategies ---------------------------------------------------------------

atoms = st.from_regex(r"\\?[A-Za-z$][A-Za-z0-9$\[\].<>_\-]{0,12}", fullmatch=True).map(
    Atom
)
scalars = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=2**63),
    st.binary(max_size=40),
    st.text(max_size=20),
    atoms,
    st.binary(max_size=20).map(Literal),
    st.binary(max_size=20).map(Literal8),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5), max_leaves=20)


@settings(max_examples=500)
@given(data=st.binary(max_size=1100), utf8=st.booleans())
def test_any_bytes_round_trip_as_string(data: bytes, utf8: bool) -> None:
    """Every byte but NUL, which no string may carry (RFC 3501 4.3)."""
    encoded = encode_value(data, utf8=utf8)
    assert b"\x00" not in encoded
    assert decode_all(encoded, utf8) == data.replace(b"\x00", NUL_REPLACEMENT)


@settings(max_examples=300)
@given(text=st.text(max_size=50), utf8=st.booleans())
def test_any_text_round_trips_as_string(text: str, utf8: bool) -> None:
    assert decode_all(encode_value(text, utf8=utf8), utf8) == expected(text)


@settings(max_examples=300)
@given(value=values, utf8=st.booleans())
def test_nested_values_round_trip(value: Value, utf8: bool) -> None:
    assert decode_all(encode_value(value, utf8=utf8), utf8) == expected(value)


@settings(max_examples=300)
@given(text=st.text(), tag=st.from_regex(r"[A-Za-z0-9.]{1,8}", fullmatch=True))
def test_response_text_is_always_one_safe_line(text: str, tag: str) -> None:
    for response in (
        Tagged(tag, Status.NO, text),
        UntaggedStatus(Status.BYE, text),
        Continuation(text),
    ):
        line = encode(response)
        assert line.endswith(b"\r\n")
        body = line[:-2]
        assert all(0x20 <= b <= 0x7E for b in body), line


# -- string choices -------------------------------------------------------------


def test_quoted_escapes() -> None:
    assert encode_value('a"b\\c') == b'"a\\"b\\\\c"'
    assert encode_value(b"") == b'""'
    assert encode_value("tab\there") == b'"tab\there"'


def test_crlf_force_literal_and_nul_is_replaced() -> None:
    assert encode_value(b"a\r\nb") == b"{4}\r\na\r\nb"
    # RFC 3501 section 4.3: CHAR8 excludes NUL, so not even a literal may
    # carry it; a header field with one (stored by nmh) is still served.
    assert encode_value(b"a\x00b", utf8=True) == b'"a\xef\xbf\xbdb"'
    assert encode_value(b"a\x00b") == b"{5}\r\na\xef\xbf\xbdb"
    assert encode_value(Literal(b"a\x00b")) == b"{3}\r\na\x00b"


def test_8bit_is_literal_unless_utf8_mode_and_valid_utf8() -> None:
    assert encode_value("caf\u00e9") == b"{5}\r\ncaf\xc3\xa9"
    assert encode_value("caf\u00e9", utf8=True) == b'"caf\xc3\xa9"'
    assert encode_value(b"caf\xe9", utf8=True) == b"{4}\r\ncaf\xe9"


def test_long_strings_are_literals() -> None:
    assert encode_value("x" * MAX_QUOTED).startswith(b'"')
    assert encode_value("x" * (MAX_QUOTED + 1)).startswith(b"{1001}\r\n")


def test_surrogate_escaped_str_keeps_original_bytes() -> None:
    text = b"\xff\xfe".decode("utf-8", "surrogateescape")
    assert encode_value(text) == b"{2}\r\n\xff\xfe"


def test_scalars_and_lists() -> None:
    assert encode_value(None) == b"NIL"
    assert encode_value(0) == b"0"
    assert encode_value(2**63 - 1) == b"9223372036854775807"
    assert encode_value([]) == b"()"
    assert encode_value([Atom("\\Seen"), [1, None], ()]) == b"(\\Seen (1 NIL) ())"
    assert encode_value(Literal(b"")) == b"{0}\r\n"
    assert encode_value(Literal8(b"\x00\x01")) == b"~{2}\r\n\x00\x01"
    assert encode_value(bytearray(b"ab")) == b'"ab"'


@pytest.mark.parametrize(
    "bad",
    [
        -1,
        True,
        Atom(""),
        Atom("a b"),
        Atom("a\r\n"),
        Atom("(x"),
        Atom("{5}"),
        Atom('"q'),
        Atom("%"),
        Atom("*"),
        Atom("a\\b"),
        Atom("\u00e9"),
        Atom("a\x00"),
        Raw("a\r\nb"),
        Raw("nul\x00"),
        Raw("\u00e9"),
        object(),
    ],
)
def test_invalid_values_raise(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        encode_value(bad)


def test_valid_atoms() -> None:
    for text in ("\\Seen", "\\*", "$Forwarded", "BODY[1.2]<0>", "BODY[]", "UID"):
        assert encode_value(Atom(text)) == text.encode()
    assert encode_value(Raw("BODY[HEADER.FIELDS (FROM)]")) == (
        b"BODY[HEADER.FIELDS (FROM)]"
    )


# -- responses ------------------------------------------------------------------


def test_tagged() -> None:
    assert encode(Tagged("a1", Status.OK, "LOGIN completed")) == (
        b"a1 OK LOGIN completed\r\n"
    )
    response = Tagged("a2", Status.OK, "SELECT done", Code("READ-WRITE"))
    assert encode(response) == b"a2 OK [READ-WRITE] SELECT done\r\n"
    copyuid = Tagged(
        "a3", Status.OK, "copied", Code("COPYUID", (7, Raw("1:3"), Raw("10:12")))
    )
    assert encode(copyuid) == b"a3 OK [COPYUID 7 1:3 10:12] copied\r\n"


def test_tagged_rejects_untaggable_status_and_bad_tag() -> None:
    with pytest.raises(ValueError):
        encode(Tagged("a", Status.BYE, "x"))
    for tag in ("", "a b", "a+", "a\r\n", "*"):
        with pytest.raises(ValueError):
            encode(Tagged(tag, Status.OK, "x"))


def test_untagged_status_with_code_args() -> None:
    response = UntaggedStatus(
        Status.OK,
        "Flags permitted.",
        Code("PERMANENTFLAGS", ([Atom("\\Seen"), Atom("\\*")],)),
    )
    assert (
        encode(response) == b"* OK [PERMANENTFLAGS (\\Seen \\*)] Flags permitted.\r\n"
    )
    assert encode(UntaggedStatus(Status.PREAUTH, "")) == b"* PREAUTH logged in\r\n"
    with pytest.raises(ValueError):
        encode(UntaggedStatus(Status.OK, "x", Code("BAD]NAME")))


def test_text_is_sanitized() -> None:
    line = encode(Tagged("a", Status.BAD, "bad \r\nthing \u00e9\x00"))
    assert line == b"a BAD bad   thing ??\r\n"
    assert encode(Tagged("a", Status.OK, "")) == b"a OK completed\r\n"


def test_untagged_data() -> None:
    assert encode(Untagged((3, Atom("EXISTS")))) == b"* 3 EXISTS\r\n"
    fetch = Untagged(
        (
            12,
            Atom("FETCH"),
            [Atom("UID"), 40, Atom("FLAGS"), [], Atom("BODY[]"), Literal(b"hi\r\n")],
        )
    )
    assert encode(fetch) == b"* 12 FETCH (UID 40 FLAGS () BODY[] {4}\r\nhi\r\n)\r\n"
    listing = Untagged((Atom("LIST"), [Atom("\\HasNoChildren")], "/", "INBOX"))
    assert encode(listing) == b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
    with pytest.raises(ValueError):
        encode(Untagged(()))


def test_utf8_mode_applies_inside_responses() -> None:
    listing = Untagged((Atom("LIST"), [], "/", "Entw\u00fcrfe"))
    assert encode(listing, utf8=True) == b'* LIST () "/" "Entw\xc3\xbcrfe"\r\n'
    assert encode(listing) == b'* LIST () "/" {9}\r\nEntw\xc3\xbcrfe\r\n'


def test_continuation() -> None:
    assert encode(Continuation()) == b"+ \r\n"
    assert encode(Continuation("Ready for literal")) == b"+ Ready for literal\r\n"
    assert encode(Continuation(data=b"\x00challenge")) == b"+ AGNoYWxsZW5nZQ==\r\n"
    assert encode(Continuation(data=b"")) == b"+ \r\n"


def test_not_a_response() -> None:
    with pytest.raises(TypeError):
        encode("* OK hi")  # type: ignore[arg-type]


def _corpus_header_values(limit: int) -> list[bytes]:
    """Raw Subject/From/Message-ID values of the first real messages."""
    values: list[bytes] = []
    with gzip.open(CORPUS, "rb") as mbox:
        for line in mbox:
            if line.startswith((b"Subject:", b"From:", b"Message-ID:")):
                values.append(line.split(b":", 1)[1].strip())
                if len(values) >= limit:
                    break
    return values


def test_real_header_values_round_trip() -> None:
    values = _corpus_header_values(600)
    assert len(values) == 600
    for value in values:
        for utf8 in (False, True):
            encoded = encode_value([value, value + b"\r\n\tfolded"], utf8=utf8)
            assert decode_all(encoded, utf8) == [value, value + b"\r\n\tfolded"]


def test_adjacent_values_have_no_separator() -> None:
    """RFC 3501 section 9: ``1*body`` and ``"(" 1*address ")"`` are adjacent."""
    from asimap.imap.responses import Adjacent

    bodies = Adjacent((("TEXT", "PLAIN"), ("TEXT", "HTML")))
    assert encode_value([bodies, "ALTERNATIVE"]) == (
        b'(("TEXT" "PLAIN")("TEXT" "HTML") "ALTERNATIVE")'
    )
    addresses = [Adjacent(((None, None, "a", "b"), (None, None, "c", "d")))]
    assert encode_value(addresses) == b'((NIL NIL "a" "b")(NIL NIL "c" "d"))'


# -- big literals are written without copies ------------------------------------


def test_encode_parts_joins_small_and_passes_big_literals_through() -> None:
    from asimap.imap.encoder import SEPARATE_LITERAL, encode_parts
    from asimap.imap.responses import Atom, Literal, Tagged, Untagged

    big = b"x" * SEPARATE_LITERAL + b"\r\nend"
    small = b"y" * 100 + b"\r\n"
    responses = [
        Untagged((1, Atom("FETCH"), (Atom("BODY[]"), Literal(small)))),
        Untagged((2, Atom("FETCH"), (Atom("BODY[]"), Literal(big), Atom("UID"), 7))),
        Untagged((3, Atom("FETCH"), (Atom("BODY[]"), Literal(big)))),
        Tagged("a1", Status.OK, "FETCH completed"),
    ]
    parts = encode_parts(responses)
    assert b"".join(parts) == b"".join(encode(r) for r in responses)
    # The big message data is the caller's object, not a copy; the rest
    # is joined into as few buffers as possible around it.
    assert [part is big for part in parts] == [False, True, False, True, False]
    assert encode(responses[1]) == b"".join(encode_parts(responses[1:2]))
    assert encode_parts([responses[0], responses[3]]) == [
        encode(responses[0]) + encode(responses[3])
    ]
