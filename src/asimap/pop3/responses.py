"""POP3 status lines and multi-line responses as bytes (pure).

RFC 1939 section 3: a response is ``+OK`` or ``-ERR``, optionally
followed by text; multi-line responses end with a line holding a single
``.``, and every line starting with ``.`` is "byte-stuffed" with one more.
RFC 2449 section 8 puts an optional response code in brackets right
after the status; the codes we use are RFC 2449's ``IN-USE`` and
``LOGIN-DELAY``, RFC 3206's ``SYS/TEMP``, ``SYS/PERM`` and ``AUTH``.

Text is ASCII by construction (our own messages); anything else is
replaced so that a status line can never carry a CR or LF.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable


class Code(enum.Enum):
    """Response codes (RFC 2449 section 8, RFC 3206)."""

    IN_USE = "IN-USE"
    LOGIN_DELAY = "LOGIN-DELAY"
    SYS_TEMP = "SYS/TEMP"
    SYS_PERM = "SYS/PERM"
    AUTH = "AUTH"


#: The last line of every multi-line response.
TERMINATOR = b".\r\n"


def _clean(text: str) -> bytes:
    data = text.encode("ascii", "replace")
    return data.replace(b"\r", b" ").replace(b"\n", b" ")


def ok(text: str = "") -> bytes:
    """``+OK text``."""
    return b"+OK " + _clean(text) + b"\r\n" if text else b"+OK\r\n"


def err(text: str, code: Code | None = None) -> bytes:
    """``-ERR [CODE] text``."""
    prefix = f"[{code.value}] " if code is not None else ""
    return b"-ERR " + _clean(prefix + text) + b"\r\n"


def continuation(challenge: bytes) -> bytes:
    """``+ base64`` for a SASL challenge (RFC 5034 section 4)."""
    return b"+ " + base64.b64encode(challenge) + b"\r\n"


def multiline(first: bytes, lines: Iterable[bytes]) -> bytes:
    """A status line, then ``lines`` (each without CRLF, byte-stuffed),
    then the terminator.  For short listings (CAPA, LIST, UIDL); message
    contents go through :mod:`asimap.pop3.transfer` instead."""
    body = b"".join(
        (b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines
    )
    return first + body + TERMINATOR
