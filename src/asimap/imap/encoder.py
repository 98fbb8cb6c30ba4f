"""Typed responses → wire bytes, choosing syntax so it is always valid.

The session describes *what* to say (``asimap.imap.responses``); this module
decides *how*: NIL, number, atom, quoted string or literal.  It is the last
line of defence between client- or message-supplied bytes and the wire, so
every choice is checked against the grammar (RFC 3501 section 9, RFC 9051
section 9):

* Strings are quoted only when every byte is a legal QUOTED-CHAR: no CR,
  LF or NUL, 7-bit unless UTF-8 mode is on *and* the bytes are valid UTF-8
  (RFC 6855 section 3, RFC 9051 ``QUOTED-CHAR =/ UTF8-2 / UTF8-3 /
  UTF8-4``), and not longer than :data:`MAX_QUOTED` bytes.  Anything else
  becomes a ``{n}`` literal.  A NUL, which neither form may carry (CHAR8
  excludes it), becomes U+FFFD in a string; message data
  (:class:`Literal`) is sent verbatim, and the session uses
  :class:`Literal8` when it must promise binary.
* Atoms and raw text are validated and raise ValueError when they would
  break syntax: such a value is a bug in our code, never client input.
* Response *text* is human-readable: it is sanitized instead (controls and
  8-bit replaced), because it often quotes client or message bytes in error
  messages and must not fail the response.

Everything here is pure: no I/O, no state.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

from asimap.imap.responses import (
    Adjacent,
    Atom,
    Code,
    Continuation,
    Encoded,
    Literal,
    Literal8,
    Raw,
    Response,
    Status,
    Tagged,
    Untagged,
    UntaggedStatus,
    Value,
)

#: Longest string sent quoted; longer ones are literals (as Dovecot does,
#: which keeps lines short and avoids escaping cost on big values).
MAX_QUOTED = 1000

_CRLF = b"\r\n"

# RFC 3501 section 9: QUOTED-CHAR is any 7-bit TEXT-CHAR (CHAR minus CR
# and LF; CHAR excludes NUL), with '"' and '\' escaped.
_QUOTABLE_7BIT = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]*")
_FORBIDDEN_IN_QUOTED = re.compile(rb"[\x00\r\n]")

# Atom characters: RFC 3501 section 9 ATOM-CHAR, except that "[", "]", "<",
# ">" and "." are allowed for FETCH item names such as BODY[1.2]<0>, and "\"
# may start a flag.  "*" is allowed only as the flag "\*" (RFC 3501 section
# 7.1, PERMANENTFLAGS).
_ATOM_RE = re.compile(r"\\?[!#$&'+,\-./0-9:;<=>?@A-Z\[\]^_`a-z|}~]+")
_CODE_NAME_RE = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|}~]+")
# Raw text: trusted, but still never CR, LF, NUL or 8-bit.
_RAW_RE = re.compile(r"[\x01-\x09\x0b\x0c\x0e-\x7f]*")
# Tags: RFC 3501 section 9, tag = 1*<any ASTRING-CHAR except "+">.
_TAG_RE = re.compile(r"[!#$&',\-./0-9:;<=>?@A-Z\[\]^_`a-z|}~]+")
# Response text: RFC 3501 section 9, text = 1*TEXT-CHAR; we also keep it
# 7-bit and free of other controls, replacing rather than failing.
_TEXT_UNSAFE = re.compile(r"[^\x20-\x7e]")

#: What a response says when the session gave no text (RFC 3501 requires
#: at least one character of text after the status).
_DEFAULT_TEXT = {
    Status.OK: "completed",
    Status.NO: "failed",
    Status.BAD: "invalid command",
    Status.PREAUTH: "logged in",
    Status.BYE: "closing connection",
}


#: Message data at least this long is not copied into the response bytes:
#: :func:`encode_parts` hands it on as a buffer of its own (the socket
#: writes it with writev), which saves two copies of every octet of a big
#: FETCH and keeps one fewer copy of it in memory.
SEPARATE_LITERAL = 64 * 1024


class _Out(bytearray):
    """Response bytes being written, and the big literals split off."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes] = []

    def take(self) -> list[bytes]:
        """Everything written, in order, as few buffers as possible."""
        if self:
            self.parts.append(bytes(self))
            self.clear()
        parts, self.parts = self.parts, []
        return parts


def encode(response: Response, *, utf8: bool = False) -> bytes:
    """Serialise one response, CRLF included."""
    parts = encode_parts((response,), utf8=utf8)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def encode_parts(responses: Sequence[Response], *, utf8: bool = False) -> list[bytes]:
    """Serialise ``responses`` into buffers to write one after the other.

    Small pieces are joined; a literal of :data:`SEPARATE_LITERAL` octets
    or more is its own buffer, the caller's object itself, never copied.
    Joined, the buffers are exactly ``b"".join(map(encode, responses))``.
    """
    out = _Out()
    for response in responses:
        _encode_into(out, response, utf8)
    return out.take()


def _encode_into(out: bytearray, response: Response, utf8: bool) -> None:
    if isinstance(response, Tagged):
        if not _TAG_RE.fullmatch(response.tag):
            raise ValueError(f"invalid tag {response.tag!r}")
        if response.status not in (Status.OK, Status.NO, Status.BAD):
            # RFC 3501 section 7.1: only OK, NO and BAD can be tagged.
            raise ValueError(f"{response.status.value} cannot be tagged")
        out += response.tag.encode("ascii")
        out += b" "
        _write_status(out, response.status, response.code, response.text, utf8)
    elif isinstance(response, UntaggedStatus):
        out += b"* "
        _write_status(out, response.status, response.code, response.text, utf8)
    elif isinstance(response, Untagged):
        if not response.values:
            raise ValueError("untagged response without data")
        out += b"*"
        for value in response.values:
            out += b" "
            _write_value(out, value, utf8)
    elif isinstance(response, Continuation):
        # RFC 3501 section 7.5: continue-req = "+" SP (resp-text / base64).
        out += b"+ "
        if response.data is not None:
            out += base64.b64encode(response.data)
        else:
            out += _sanitize_text(response.text).encode("ascii")
    else:
        raise TypeError(f"not a response: {response!r}")
    out += _CRLF


def encode_value(value: Value, *, utf8: bool = False) -> bytes:
    """Serialise one value (see ``asimap.imap.responses`` for semantics)."""
    out = bytearray()
    _write_value(out, value, utf8)
    return bytes(out)


def _write_status(
    out: bytearray, status: Status, code: Code | None, text: str, utf8: bool
) -> None:
    """Write ``STATUS [code] text`` (RFC 3501 section 7.1 resp-text)."""
    out += status.value.encode("ascii")
    out += b" "
    if code is not None:
        if not _CODE_NAME_RE.fullmatch(code.name):
            raise ValueError(f"invalid response code name {code.name!r}")
        out += b"["
        out += code.name.encode("ascii")
        for arg in code.args:
            out += b" "
            _write_value(out, arg, utf8)
        out += b"] "
    out += _sanitize_text(text or _DEFAULT_TEXT[status]).encode("ascii")


def _sanitize_text(text: str) -> str:
    """Make human-readable text safe for one response line."""
    return _TEXT_UNSAFE.sub(lambda m: " " if m.group() in "\r\n\t" else "?", text)


def _write_value(out: bytearray, value: Value, utf8: bool) -> None:
    # Order matters: str and bytes are Sequences, bool is an int.
    if value is None:
        out += b"NIL"
    elif isinstance(value, bool):
        raise ValueError("bool is not an IMAP value")
    elif isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative number {value}")
        out += str(value).encode("ascii")
    elif isinstance(value, str):
        _write_string(out, _str_bytes(value), utf8)
    elif isinstance(value, bytes | bytearray | memoryview):
        _write_string(out, bytes(value), utf8)
    elif isinstance(value, Atom):
        if not _valid_atom(value.text):
            raise ValueError(f"invalid atom {value.text!r}")
        out += value.text.encode("ascii")
    elif isinstance(value, Raw):
        if not _RAW_RE.fullmatch(value.text):
            raise ValueError(f"invalid raw text {value.text!r}")
        out += value.text.encode("ascii")
    elif isinstance(value, Literal):
        _write_literal(out, value.data, b"")
    elif isinstance(value, Literal8):
        # RFC 3516 section 4.2: literal8 = "~{" number "}" CRLF *OCTET.
        _write_literal(out, value.data, b"~")
    elif isinstance(value, Encoded):
        # Our own encoder's output (cached): already valid syntax.
        out += value.data
    elif isinstance(value, Adjacent):
        for item in value.values:
            _write_value(out, item, utf8)
    elif isinstance(value, Sequence):
        out += b"("
        for index, item in enumerate(value):
            if index:
                out += b" "
            _write_value(out, item, utf8)
        out += b")"
    else:
        raise TypeError(f"not an IMAP value: {value!r}")


def _str_bytes(text: str) -> bytes:
    """UTF-8 bytes of ``text``; surrogate-escaped bytes come back as-is."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _valid_atom(text: str) -> bool:
    return text == "\\*" or _ATOM_RE.fullmatch(text) is not None


def _quotable(data: bytes, utf8: bool) -> bool:
    if len(data) > MAX_QUOTED:
        return False
    if _QUOTABLE_7BIT.fullmatch(data):
        return True
    if not utf8 or _FORBIDDEN_IN_QUOTED.search(data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


#: What a NUL inside a string becomes: U+FFFD REPLACEMENT CHARACTER.
NUL_REPLACEMENT = "\ufffd".encode()


def _write_string(out: bytearray, data: bytes, utf8: bool) -> None:
    """Write a string as quoted (RFC 3501 section 4.3) or as a literal.

    No string can carry NUL: QUOTED-CHAR and CHAR8 (the octets of a
    literal) both exclude it (RFC 3501 and RFC 9051 sections 4.3 and 9).
    Strings come from header fields (ENVELOPE, BODYSTRUCTURE) of messages
    that nmh or a delivery agent stored as they were, so a NUL is replaced
    by U+FFFD (as UTF-8, so a UTF-8 string stays one) instead of breaking
    the response; message data goes out as Literal or Literal8.
    """
    if b"\x00" in data:
        data = data.replace(b"\x00", NUL_REPLACEMENT)
    if _quotable(data, utf8):
        out += b'"'
        out += data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        out += b'"'
    else:
        _write_literal(out, data, b"")


def _write_literal(out: bytearray, data: bytes, prefix: bytes) -> None:
    out += prefix
    out += b"{%d}\r\n" % len(data)
    if (
        isinstance(out, _Out)
        and len(data) >= SEPARATE_LITERAL
        and type(data) is bytes  # immutable: safe to write later
    ):
        out.parts.append(bytes(out))
        out.clear()
        out.parts.append(data)
    else:
        out += data
