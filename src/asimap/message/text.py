"""Search text and previews: the message as text rather than bytes.

SEARCH compares decoded text (RFC 3501 section 6.4.4 speaks of strings, not
octets), so text parts are transfer-decoded and charset-decoded here, and
header fields are RFC 2047 decoded.
"""

from __future__ import annotations

import html
import re

from asimap.message.decode import (
    bytes_to_text,
    decode_charset,
    decode_transfer,
    normalise_cte,
)
from asimap.message.mime import Part
from asimap.message.params import parse_disposition

#: RFC 8970 section 3.1: "no more than 256 characters" -- Unicode
#: characters (code points of the ``str``), not octets.
PREVIEW_LENGTH = 256
_SPACE = re.compile(r"\s+")
#: C0 controls other than the whitespace ones (TAB, LF, VT, FF, CR), and
#: DEL: dropped before whitespace is collapsed.  A NUL may not appear in a
#: literal at all (RFC 3501 section 4.3, ``CHAR8``), and none of them is
#: text a preview should show.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_HTML_SKIP = re.compile(r"(?is)<(script|style|head)\b.*?</\1\s*>|<!--.*?-->")
_HTML_TAG = re.compile(r"(?s)<[^>]*>")


def header_text(part: Part) -> str:
    """All header fields of ``part`` as ``Name: decoded value`` lines."""
    return "\n".join(
        f"{field.name}: {field.text()}" if field.name else field.text()
        for field in part.headers.fields
    )


def mime_header_text(root: Part) -> str:
    """The header fields of every body part below ``root``, decoded: RFC
    9051 section 6.4.4 has TEXT match "the header (including MIME header
    fields)", which BODY does not."""
    return "\n".join(
        header_text(part)
        for part in root.walk()
        if part is not root and part.headers.fields
    )


def part_text(part: Part) -> str:
    """A leaf text part's content, transfer- and charset-decoded.

    An unknown transfer encoding leaves the bytes as they are: better to
    search them raw than to find nothing.
    """
    cte = normalise_cte(part.headers.latin1("Content-Transfer-Encoding"))
    data = decode_transfer(part.body, cte)
    if data is None:
        data = part.body
    return decode_charset(data, part.content_type.param("charset"))


def body_text(root: Part) -> str:
    """The text of every text/* part, and the headers of encapsulated
    messages (they are part of the outer message's body).  A leaf made
    opaque by a limit (:mod:`asimap.message.limits`) is read as raw text:
    the structure below it is not interpreted, but its words are still
    the message's."""
    chunks: list[str] = []
    for part in root.walk():
        if part.type == "text" and not part.children and part.message is None:
            chunks.append(part_text(part))
        elif part.message is not None:
            chunks.append(header_text(part.message))
        elif part.is_opaque:
            chunks.append(bytes_to_text(part.body))
    return "\n".join(chunks)


def _is_attachment(part: Part) -> bool:
    disposition = parse_disposition(part.headers.latin1("Content-Disposition"))
    return disposition is not None and disposition.value.lower() == "attachment"


def _html_to_text(markup: str) -> str:
    return html.unescape(_HTML_TAG.sub(" ", _HTML_SKIP.sub(" ", markup)))


def preview(root: Part) -> str:
    """RFC 8970 PREVIEW: the start of the first inline text/plain part
    (or, failing that, text/html with markup removed), whitespace collapsed,
    at most :data:`PREVIEW_LENGTH` characters.  Encapsulated messages are
    not looked into: their text is not this message's."""
    leaves: list[Part] = []
    stack = [root]
    while stack:
        part = stack.pop()
        if part.children:
            stack.extend(reversed(part.children))
        elif part.message is None and part.type == "text" and not _is_attachment(part):
            leaves.append(part)
    chosen = next((p for p in leaves if p.subtype == "plain"), None)
    if chosen is not None:
        text = part_text(chosen)
    else:
        chosen = next((p for p in leaves if p.subtype == "html"), None)
        text = _html_to_text(part_text(chosen)) if chosen is not None else ""
    collapsed = _SPACE.sub(" ", _CONTROL.sub("", text)).strip()
    return collapsed[:PREVIEW_LENGTH]
