"""``BODY[section]`` extraction (RFC 3501 section 6.4.5, RFC 9051 6.4.5).

Sections are cut from the raw bytes by offset, never re-serialised, so what
the client receives is exactly what was stored.
"""

from __future__ import annotations

from asimap.imap.commands import Section, SectionText
from asimap.message.headers import HeaderField
from asimap.message.mime import Part


def resolve(root: Part, path: tuple[int, ...]) -> Part | None:
    """The part a dotted part number names, or None if there is none.

    RFC 3501 section 6.4.5: the parts of a multipart are numbered from 1; a
    message that is not multipart has only part 1, its body; a part that is
    a MESSAGE/RFC822 is numbered through into the encapsulated message.  The
    root itself is numbered like a multipart or a single part, never through
    an encapsulated message, so ``BODY[1]`` of a top-level message/rfc822 is
    its body and ``BODY[1.1]`` the encapsulated message's first part.
    """
    part = root
    for index, number in enumerate(path):
        if part is root and index == 0:
            options = root.children or [root]
        else:
            options = part.numbered_children()
        if number < 1 or number > len(options):
            return None
        part = options[number - 1]
    return part


def _field_with_line_end(field: HeaderField) -> bytes:
    raw = field.raw
    return raw if raw.endswith(b"\n") else raw + b"\r\n"


def _ends_with_blank_line(header: bytes) -> bool:
    """Whether the header as stored ends with the empty line that
    separates it from a body (an empty header is that line alone)."""
    return header in (b"\r\n", b"\n") or header.endswith((b"\n\r\n", b"\n\n"))


def header_fields(part: Part, names: tuple[str, ...], exclude: bool) -> bytes:
    """``HEADER.FIELDS`` / ``HEADER.FIELDS.NOT``: matching fields verbatim,
    in message order, followed by the empty line - RFC 9051 section 6.4.5:
    "the blank line is included in all header fetches, except in the case
    of a message that has no body and no blank line"."""
    wanted = {name.lower() for name in names}
    chosen = [
        _field_with_line_end(field)
        for field in part.headers.fields
        if (field.name != "" and field.key in wanted) != exclude
    ]
    blank = b"\r\n" if _ends_with_blank_line(part.header_bytes) else b""
    return b"".join(chosen) + blank


def extract(root: Part, section: Section) -> bytes:
    """The bytes of ``BODY[section]``; b"" when the part does not exist.

    HEADER, HEADER.FIELDS(.NOT) and TEXT apply to a message: the whole one
    for an empty part number, otherwise the encapsulated message of a
    MESSAGE/RFC822 part.  MIME is the named part's own header.
    """
    part = resolve(root, section.part)
    if part is None:
        return b""
    text = section.text
    if text is None:
        return root.data if not section.part else part.body
    if text is SectionText.MIME:
        return part.header_bytes if section.part else b""
    message: Part | None = part if not section.part else part.message
    if message is None:
        return b""
    if text is SectionText.HEADER:
        return message.header_bytes
    if text is SectionText.TEXT:
        return message.body
    return header_fields(
        message, section.fields, exclude=text is SectionText.HEADER_FIELDS_NOT
    )
