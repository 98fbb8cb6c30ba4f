"""Turning message bytes into text: transfer encodings, charsets, RFC 2047.

Everything here is total: any input gives a result, never an exception.
Mail in the wild mislabels charsets, breaks base64 lines and leaves 8-bit
bytes in headers, and a search or a FETCH must still work on it.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from email.header import decode_header

#: Transfer encodings that leave the bytes as they are (RFC 2045 section 6.1).
IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})

_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def normalise_cte(value: str | None) -> str:
    """The Content-Transfer-Encoding token, lower-cased, comments dropped.

    RFC 2045 section 6.1: the mechanism is case-insensitive; absent means
    7bit.
    """
    if not value:
        return ""
    token = re.sub(r"\([^)]*\)", " ", value).strip().lower()
    return token.split()[0] if token else ""


def decode_base64(data: bytes) -> bytes:
    """Lenient base64: ignore characters outside the alphabet (RFC 2045
    section 6.8 says decoders must), stop at the first padding, and drop a
    dangling sixth bit group instead of failing."""
    end = data.find(b"=")
    if end >= 0:
        data = data[:end]
    clean = _BASE64_JUNK.sub(b"", data)
    usable = len(clean) - (len(clean) % 4)
    tail = clean[usable:]
    out = base64.b64decode(clean[:usable]) if usable else b""
    if len(tail) >= 2:
        out += base64.b64decode(tail + b"=" * (4 - len(tail)))
    return out


def decode_transfer(data: bytes, cte: str) -> bytes | None:
    """Undo a transfer encoding; None when ``cte`` is one we do not know.

    ``cte`` must already be normalised (:func:`normalise_cte`).
    """
    if cte in IDENTITY_ENCODINGS:
        return data
    if cte == "base64":
        return decode_base64(data)
    if cte == "quoted-printable":
        return decode_quoted_printable(data)
    return None


#: Spaces and tabs that end a line (or the data).
_TRAILING_WSP = re.compile(rb"[ \t]+(?=\r\n|\n|\r|\Z)")


def decode_quoted_printable(data: bytes) -> bytes:
    """Undo quoted-printable (RFC 2045 section 6.7).

    Rule 3: whitespace at the end of an encoded line was added in transport
    and must be deleted, so it goes first; that also turns ``= `` before a
    line end into ``=``, a soft line break (rule 5).  binascii then joins
    soft breaks (``=\r\n``, ``=\n``) and keeps invalid ``=XY`` sequences
    as they are, as section 6.7 recommends.  Hard line breaks keep the
    form they have in the message.
    """
    if _ends_a_line_with_wsp(data):
        data = _TRAILING_WSP.sub(b"", data)
    return binascii.a2b_qp(data)


def _ends_a_line_with_wsp(data: bytes) -> bool:
    """Whether :data:`_TRAILING_WSP` can match at all: a space or tab
    before a line end or at the end.  Four scans in C are far cheaper
    than the regex trying its lookahead after every run of spaces of a
    text (most of SEARCH BODY's time on quoted-printable mail)."""
    return (
        b" \n" in data
        or b" \r" in data
        or b"\t\n" in data
        or b"\t\r" in data
        or data.endswith((b" ", b"\t"))
    )


def _codec_for(charset: str | None) -> str | None:
    """The Python codec name for a MIME charset, or None if unknown."""
    if not charset:
        return None
    name = charset.strip().strip('"').split("*", 1)[0]  # RFC 2231 "utf-8*en"
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def bytes_to_text(data: bytes) -> str:
    """Unlabelled bytes: UTF-8 if they are valid UTF-8, otherwise latin-1.

    Used for 8-bit header bytes (RFC 6532 allows UTF-8 there; old mailers
    wrote latin-1) and for text parts with no or a bogus charset.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_charset(data: bytes, charset: str | None) -> str:
    """Decode a text body in its declared charset.

    US-ASCII labels are very often wrong (8-bit text under the RFC 2045
    default), so ASCII and unknown charsets go through :func:`bytes_to_text`;
    a known charset decodes with replacement characters for bad bytes.
    """
    codec = _codec_for(charset)
    if codec is None or codec == "ascii":
        return bytes_to_text(data)
    try:
        return data.decode(codec, errors="replace")
    except Exception:  # exotic codecs may raise anything on bad input
        return bytes_to_text(data)


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded-words in an (unfolded) header value.

    Uses :func:`email.header.decode_header`, which joins adjacent encoded
    words as RFC 2047 section 6.2 requires, and decodes each chunk ourselves
    so that unknown charsets degrade instead of raising.
    """
    if "=?" not in text:
        return text
    try:
        chunks = decode_header(text)
    except Exception:
        return text
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            # decode_header hands back the unencoded stretches of a str input
            # as raw-unicode-escape bytes.
            try:
                out.append(chunk.decode("raw-unicode-escape"))
            except UnicodeDecodeError:
                out.append(chunk.decode("latin-1"))
        else:
            out.append(decode_charset(chunk, charset))
    return "".join(out)
