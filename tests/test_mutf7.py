"""Tests for modified UTF-7 mailbox names (RFC 3501 section 5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asimap.imap.mutf7 import decode_mutf7, encode_mutf7, is_valid_mutf7

RFC_EXAMPLES = [
    # RFC 3501 section 5.1.3.
    (b"~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"),
    (b"&-", "&"),
    # Well known names from real clients.
    (b"Entw&APw-rfe", "Entw\u00fcrfe"),
    (b"&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-", "Отправленные"),
    (b"A&-B", "A&B"),
    (b"&AAk-", "\t"),
    (b"&AH8-", "\x7f"),
    (b"&2D3eAA-", "\U0001f600"),
    (b"&AOkA6Q-&-", "\u00e9\u00e9&"),
    (b"", ""),
]


@pytest.mark.parametrize(("encoded", "name"), RFC_EXAMPLES)
def test_known_names(encoded: bytes, name: str) -> None:
    assert encode_mutf7(name) == encoded
    assert decode_mutf7(encoded) == name
    assert is_valid_mutf7(encoded)


@pytest.mark.parametrize(
    "bad",
    [
        b"&U,BTFw",  # '&' not closed
        b"&",
        b"caf\xc3\xa9",  # 8-bit
        b"a\x7fb",  # DEL is not printable
        b"tab\there",
        b"&U/BTFw-",  # '/' is not modified BASE64
        b"&U,BTFw=-",  # no padding allowed
        b"&AGE-",  # encodes "a": must be direct
        b"&ACY-",  # encodes "&": must be "&-"
        b"&AOk-&AOk-",  # adjacent shifts must be joined
        b"&AO-",  # 2 characters: not a whole UTF-16 unit
        b"&AOl-",  # non-zero padding bits
        b"&2D0-",  # lone high surrogate
        b"&3gA-",  # lone low surrogate
        b"&A A-",
    ],
)
def test_invalid_is_rejected(bad: bytes) -> None:
    with pytest.raises(ValueError):
        decode_mutf7(bad)
    assert not is_valid_mutf7(bad)


def test_lone_surrogate_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        encode_mutf7("\ud800")


@settings(max_examples=500)
@given(st.text())
def test_round_trip_any_unicode(name: str) -> None:
    encoded = encode_mutf7(name)
    assert all(0x20 <= b <= 0x7E for b in encoded)
    assert decode_mutf7(encoded) == name


@settings(max_examples=500)
@given(st.binary(max_size=40))
def test_decoder_is_total_and_canonical(data: bytes) -> None:
    """Any bytes: ValueError or a name that encodes back to the same bytes."""
    try:
        name = decode_mutf7(data)
    except ValueError:
        assert not is_valid_mutf7(data)
        return
    assert encode_mutf7(name) == data


@settings(max_examples=300)
@given(st.text(alphabet="&-AZaz09+,/ \u00e9\u53f0", max_size=20))
def test_decoder_canonical_on_near_valid_input(text: str) -> None:
    data = text.encode("utf-8")
    if is_valid_mutf7(data):
        assert encode_mutf7(decode_mutf7(data)) == data
