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

from asimap.imap.encoder import MAX_QUOTED, NUL_REPLACEMENT, encode_value
from asimap.imap.responses import Adjacent, Value
from asimap.message.limits import MAX_MEMO_TEXT

#: RFC 3501 section 9: a quoted string holds ``TEXT-CHAR`` (any 7-bit CHAR
#: but NUL, CR and LF); without UTF8=ACCEPT nothing else may be quoted and
#: the general encoder writes a literal instead.  Kept identical to its rule.
_QUOTABLE_7BIT = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]*")


#: Encoded forms of short strings and of address lists, memoised: the same
#: ``"TEXT" "PLAIN" ("CHARSET" "US-ASCII")`` and the same From:/To: lists
#: recur in every message of a folder.  Bounded: once full, nothing more is
#: added (what is in there stays correct forever -- encoding is pure), and
#: only short lists are kept (a hostile To: of 10,000 addresses is neither
#: repeated nor worth a megabyte held for the life of the process).
_MEMO_LIMIT = 4096
_SHORT = 32
_MEMO_ITEMS = 16
_strings: dict[bytes, bytes] = {}
_lists: dict[Adjacent, bytes] = {}


def _string(data: bytes) -> bytes:
    """A string as quoted (RFC 3501 section 4.3) or as a literal."""
    if len(data) <= MAX_QUOTED and _QUOTABLE_7BIT.fullmatch(data):
        if b"\\" in data or b'"' in data:
            # RFC 3501 section 9: quoted-specials are backslash-escaped.
            data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + data + b'"'
    if b"\x00" in data:
        # No string may carry NUL (RFC 3501 section 4.3): as the general
        # encoder, U+FFFD instead.
        data = data.replace(b"\x00", NUL_REPLACEMENT)
    return b"{%d}\r\n" % len(data) + data


def _write(out: list[bytes], value: Value) -> None:
    if isinstance(value, tuple | list):
        out.append(b"(")
        first = True
        for item in value:
            if not first:
                out.append(b" ")
            first = False
            # The two most frequent members inline, the rest recursively.
            if item is None:
                out.append(b"NIL")
            elif isinstance(item, bytes) and len(item) <= _SHORT:
                encoded = _strings.get(item)
                if encoded is None:
                    encoded = _string(item)
                    if len(_strings) < _MEMO_LIMIT:
                        _strings[item] = encoded
                out.append(encoded)
            else:
                _write(out, item)
        out.append(b")")
    elif isinstance(value, bytes):
        out.append(_string(value))
    elif value is None:
        out.append(b"NIL")
    elif type(value) is int and value >= 0:  # not bool, never negative
        out.append(b"%d" % value)
    elif isinstance(value, Adjacent):
        # Address lists are tuples of tuples (hashable, memoised); the
        # parts of a multipart are lists (not hashable, written each time).
        hashable = 0 < len(value.values) <= _MEMO_ITEMS and isinstance(
            value.values[0], tuple
        )
        try:
            encoded = _lists.get(value) if hashable else None
        except TypeError:  # a list somewhere inside after all
            hashable, encoded = False, None
        if encoded is None:
            inner: list[bytes] = []
            for item in value.values:
                _write(inner, item)
            encoded = b"".join(inner)
            if hashable and len(_lists) < _MEMO_LIMIT and len(encoded) <= MAX_MEMO_TEXT:
                _lists[value] = encoded
        out.append(encoded)
    else:
        out.append(encode_value(value, utf8=False))


def clear_memos() -> None:
    """Forget the memoised encodings (benchmarks measure a cold start)."""
    _strings.clear()
    _lists.clear()


def encode_summary_value(value: Value) -> bytes:
    """``encode_value(value, utf8=False)``, faster on message-model trees."""
    out: list[bytes] = []
    _write(out, value)
    return b"".join(out)
