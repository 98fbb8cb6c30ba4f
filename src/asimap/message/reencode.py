"""Re-encoding binary body parts of an appended message as base64.

A client may APPEND a message in a ``~{n}`` literal8 (RFC 3516 section 4.4)
whose parts carry ``Content-Transfer-Encoding: binary`` and NUL bytes.
Stored as they are, those bytes would come back in ``BODY[]``, ``RFC822``
and ``BODY[n]``, which are sent as plain ``{n}`` literals where NUL is not
allowed (RFC 3501/9051 section 4.3: CHAR8 excludes NUL; only literal8 may
carry it).  RFC 3516 section 4.3 leaves the server two answers: refuse with
``NO [UNKNOWN-CTE]``, or store the message in an encoding it can serve.

We take the second, as Dovecot does: every leaf part whose transfer
encoding is ``binary``, and every identity-encoded leaf part (7bit, 8bit,
none) whose body holds a NUL, is stored base64-encoded with its
``Content-Transfer-Encoding`` field rewritten.  Nothing is lost:
``BINARY[n]`` decodes the part back to the exact octets the client sent.
Everything else of the message stays byte for byte as sent.
"""

from __future__ import annotations

import base64
import re

from asimap.message.decode import IDENTITY_ENCODINGS, normalise_cte
from asimap.message.mime import Part

#: A Content-Transfer-Encoding field with its continuation lines.
_CTE_FIELD = re.compile(
    rb"^content-transfer-encoding[ \t]*:[^\n]*\n(?:[ \t][^\n]*\n)*",
    re.IGNORECASE | re.MULTILINE,
)

#: RFC 2045 section 6.8: encoded lines are at most 76 characters.
_LINE = 76


def needs_reencoding(part: Part) -> bool:
    """Whether ``part`` is a leaf we store base64-encoded (see module)."""
    if part.children or part.message is not None:
        return False  # RFC 2045 6.4: containers are never encoded
    cte = normalise_cte(part.headers.latin1("Content-Transfer-Encoding"))
    if cte not in IDENTITY_ENCODINGS:
        return False
    return cte == "binary" or b"\x00" in part.body


def _new_header(part: Part, eol: bytes) -> bytes:
    """The part's header fields with the transfer encoding set to base64."""
    block = part.data[part.start : part.header_end]
    if block and not block.endswith(b"\n"):
        block += eol  # a header that ends the data without a line break
    return _CTE_FIELD.sub(b"", block) + b"Content-Transfer-Encoding: base64" + eol


def _new_body(part: Part, eol: bytes) -> bytes:
    encoded = base64.b64encode(part.body)
    lines = [encoded[i : i + _LINE] for i in range(0, len(encoded), _LINE)]
    body = eol.join(lines)
    if part.end == len(part.data) and lines:
        body += eol  # the message's last line keeps its line break
    return body


def reencode_binary_parts(raw: bytes) -> bytes:
    """``raw`` with its binary leaf parts base64-encoded (see module).

    Returns ``raw`` itself when no part needs it.
    """
    root = Part(raw, 0, len(raw))
    parts = [part for part in root.walk() if needs_reencoding(part)]
    if not parts:
        return raw
    eol = b"\r\n" if b"\r\n" in raw[: root.body_start or len(raw)] else b"\n"
    out: list[bytes] = []
    pos = 0
    for part in sorted(parts, key=lambda p: p.start):
        out.append(raw[pos : part.start])
        out.append(_new_header(part, eol))
        # The empty separator line; one is written when the part had none.
        separator = raw[part.header_end : part.body_start]
        out.append(separator if separator.strip(b"\r\n") == b"" and separator else eol)
        out.append(_new_body(part, eol))
        pos = part.end
    out.append(raw[pos:])
    return b"".join(out)
