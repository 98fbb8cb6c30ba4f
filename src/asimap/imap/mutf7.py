"""Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3).

IMAP4rev1 clients that have not enabled UTF-8 name mailboxes in this
encoding: printable US-ASCII (0x20-0x7e) stands for itself except ``&``,
which is written ``&-``; every other run of characters is UTF-16BE in
*modified* BASE64 (``,`` instead of ``/``, no ``=`` padding) between ``&``
and ``-``.

The decoder is strict on purpose: it accepts exactly the encodings our
encoder produces, so that ``encode_mutf7(decode_mutf7(b)) == b`` for every
valid ``b``.  Two different byte strings can therefore never name the same
mailbox, which keeps the mapping between client names and store names
one-to-one.  In particular it rejects, with ValueError:

* any byte outside 0x20-0x7e (8-bit, controls);
* ``&`` without its closing ``-``, or characters outside the modified
  BASE64 alphabet inside a shift;
* base64 whose length or trailing bits do not form whole UTF-16 units
  (non-zero padding bits);
* a shift that encodes printable US-ASCII, which must represent itself
  (RFC 3501 section 5.1.3: "MUST NOT be used to represent" them);
* two shifts back to back (``&AGE-&AGI-``): the encoder joins them;
* unpaired UTF-16 surrogates.
"""

from __future__ import annotations

import base64
import binascii
import re

_B64_ALPHABET = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"
)
_SHIFT_RE = re.compile(rb"&([^-]*)-")


def _is_direct(char: str) -> bool:
    """True if ``char`` represents itself (printable US-ASCII but ``&``)."""
    return " " <= char <= "~" and char != "&"


def _encode_run(run: str) -> bytes:
    """Encode a run of non-direct characters as ``&...-``."""
    utf16 = run.encode("utf-16-be")  # lone surrogates raise ValueError here
    b64 = base64.b64encode(utf16).rstrip(b"=").replace(b"/", b",")
    return b"&" + b64 + b"-"


def encode_mutf7(name: str) -> bytes:
    """Encode a mailbox name; raises ValueError on lone surrogates."""
    out = bytearray()
    run_start: int | None = None
    for index, char in enumerate(name):
        if _is_direct(char):
            if run_start is not None:
                out += _encode_run(name[run_start:index])
                run_start = None
            out += char.encode("ascii")
        elif char == "&":
            if run_start is not None:
                out += _encode_run(name[run_start:index])
                run_start = None
            out += b"&-"
        elif run_start is None:
            run_start = index
    if run_start is not None:
        out += _encode_run(name[run_start:])
    return bytes(out)


def _decode_shift(b64: bytes) -> str:
    """Decode the modified BASE64 inside one ``&...-`` shift."""
    if any(byte not in _B64_ALPHABET for byte in b64):
        raise ValueError("invalid character in modified BASE64")
    # 6 bits per character; the tail must be whole 16-bit units with the
    # remaining (< 6) padding bits zero, i.e. lengths 3, 6, 8 mod 8.
    if len(b64) % 8 not in (0, 3, 6):
        raise ValueError("modified BASE64 does not end on a UTF-16 unit")
    padded = b64.replace(b",", b"/") + b"=" * (-len(b64) % 4)
    try:
        utf16 = base64.b64decode(padded, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid modified BASE64: {exc}") from None
    if base64.b64encode(utf16).rstrip(b"=") != padded.rstrip(b"="):
        raise ValueError("non-zero padding bits in modified BASE64")
    try:
        text = utf16.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError("invalid UTF-16 in modified BASE64") from None
    if any(" " <= char <= "~" for char in text):
        raise ValueError("printable US-ASCII must not be BASE64-encoded")
    return text


def decode_mutf7(data: bytes) -> str:
    """Decode a modified UTF-7 mailbox name, strictly (see module doc)."""
    out: list[str] = []
    pos = 0
    last_shift_end = -1
    while pos < len(data):
        byte = data[pos]
        if byte < 0x20 or byte > 0x7E:
            raise ValueError(f"byte 0x{byte:02x} is not allowed in modified UTF-7")
        if byte != ord("&"):
            out.append(chr(byte))
            pos += 1
            continue
        match = _SHIFT_RE.match(data, pos)
        if match is None:
            raise ValueError("'&' is not closed with '-'")
        b64 = match.group(1)
        if not b64:
            out.append("&")
        else:
            if last_shift_end == pos:
                raise ValueError("adjacent BASE64 shifts must be joined")
            out.append(_decode_shift(b64))
            last_shift_end = match.end()
        pos = match.end()
    return "".join(out)


def is_valid_mutf7(data: bytes) -> bool:
    """True if ``data`` is valid (canonical) modified UTF-7."""
    try:
        decode_mutf7(data)
    except ValueError:
        return False
    return True
