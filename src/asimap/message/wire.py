"""Encoding ENVELOPE and BODYSTRUCTURE values for the summary cache, fast.

The general encoder (:func:`asimap.imap.encoder.encode_value`) walks any
response value through a chain of ``isinstance`` tests; building a summary
encodes three trees of a few dozen nodes per message, and that chain was a
quarter of the cost of a cold summary.  The trees the message model builds
hold only ``None``, non-negative ``int``, ``bytes``, ``tuple``/``list`` and
:class:`Adjacent`, so this encoder dispatches on the exact type of those and
hands anything else to the general encoder -- the output is the same bytes
either way (``tests/test_summary_fast.py`` checks it on the whole corpus).

Only the ``utf8=False`` form is produced: that is what summaries store,
because it is valid whether or not a client enabled UTF8=ACCEPT.
"""

from __future__ import annotations

import re

from asimap.imap.encoder import MAX_QUOTED, encode_value
from asimap.imap.responses import Adjacent, Value

#: RFC 3501 section 9: a quoted string holds ``TEXT-CHAR`` (any 7-bit CHAR
#: but NUL, CR and LF); without UTF8=ACCEPT nothing else may be quoted and
#: the general encoder writes a literal instead.  Kept identical to its rule.
_QUOTABLE_7BIT = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]*")


def _write(out: list[bytes], value: Value) -> None:
    # Most frequent first: strings, then NIL, lists, numbers.
    if isinstance(value, bytes):
        if len(value) <= MAX_QUOTED and _QUOTABLE_7BIT.fullmatch(value):
            if b"\\" in value or b'"' in value:
                # RFC 3501 section 9: quoted-specials are backslash-escaped.
                value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
            out.append(b'"' + value + b'"')
        else:
            out.append(b"{%d}\r\n" % len(value))
            out.append(value)
    elif value is None:
        out.append(b"NIL")
    elif isinstance(value, tuple | list):
        out.append(b"(")
        first = True
        for item in value:
            if not first:
                out.append(b" ")
            first = False
            _write(out, item)
        out.append(b")")
    elif type(value) is int and value >= 0:  # not bool, never negative
        out.append(b"%d" % value)
    elif isinstance(value, Adjacent):
        for item in value.values:
            _write(out, item)
    else:
        out.append(encode_value(value, utf8=False))


def encode_summary_value(value: Value) -> bytes:
    """``encode_value(value, utf8=False)``, faster on message-model trees."""
    out: list[bytes] = []
    _write(out, value)
    return b"".join(out)
