"""Fast paths of the message model's scans give what the plain ones gave.

:func:`split_header` searches for the other kind of empty line only up to
the first one it found, instead of through the whole entity
(an LF message from nmh was scanned to its end for a CRLF empty line, for
every part), and :func:`decode_quoted_printable` skips its trailing-space
regex when no line can end in a space or tab.  Both must answer exactly
as the plain versions, which are kept here as the reference.
"""

from __future__ import annotations

import binascii
import random
import re

import pytest

from asimap.message import decode
from asimap.message.decode import decode_quoted_printable
from asimap.message.headers import split_header
from store_conformance import corpus_messages


def _split_header_plain(data: bytes, start: int, end: int) -> tuple[int, int]:
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


_WSP = re.compile(rb"[ \t]+(?=\r\n|\n|\r|\Z)")


def _qp_plain(data: bytes) -> bytes:
    if b" " in data or b"\t" in data:
        data = _WSP.sub(b"", data)
    return binascii.a2b_qp(data)


def _random_blobs(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    alphabet = [b"\n", b"\r", b"\r\n", b" ", b"\t", b"a", b"=", b"=\n", b"b: c"]
    return [
        b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        for _ in range(count)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_split_header_equals_the_plain_search(seed: int) -> None:
    blobs = _random_blobs(seed, 5000)
    blobs += list(corpus_messages(50))
    blobs += [raw.replace(b"\n", b"\r\n") for raw in corpus_messages(50)]
    for blob in blobs:
        for start in range(0, min(len(blob), 6)):
            for end in {len(blob), max(start, len(blob) - 3), start}:
                assert split_header(blob, start, end) == _split_header_plain(
                    blob, start, end
                ), (blob, start, end)


def test_quoted_printable_equals_the_plain_decoder() -> None:
    for blob in _random_blobs(7, 20000):
        assert decode_quoted_printable(blob) == _qp_plain(blob), blob
    assert decode._ends_a_line_with_wsp(b"a \r\nb")
    assert not decode._ends_a_line_with_wsp(b"a b\r\nc\td")
