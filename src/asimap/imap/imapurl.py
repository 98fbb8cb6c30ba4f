"""IMAP URLs (RFC 5092) naming a message or a part of one on this server.

CATENATE (RFC 4469 section 5) takes message parts by URL.  We accept only
the forms that cannot point anywhere but the logged-in user's own mail:
RFC 5092 *absolute paths* (section 7, "relative" to this server and
user), for example ``/INBOX;UIDVALIDITY=785799047/;UID=113330/;SECTION=1.5.9``::

    imessagepart = "/" enc-mailbox [uidvalidity] iuid [isection] [ipartial]
    uidvalidity  = ";UIDVALIDITY=" nz-number
    iuid         = "/;UID=" nz-number
    isection     = "/;SECTION=" enc-section
    ipartial     = "/;PARTIAL=" number ["." nz-number]

A URL with a scheme and host (``imap://user@host/...``) could name another
server or user, and URLAUTH (RFC 4467) is not offered, so both are refused;
the caller answers ``NO [BADURL url]``.  Keys are case-insensitive; the
mailbox and section are percent-decoded (section 3.2 of RFC 5092).

Pure: text in, :class:`MessageUrl` out, :class:`BadUrl` on anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from asimap.imap import commands as c
from asimap.imap.parser import parse_command


class BadUrl(ValueError):
    """The URL is not one we can resolve (RFC 4469: ``NO [BADURL url]``)."""


@dataclass(frozen=True, slots=True)
class MessageUrl:
    mailbox: bytes  # as it would appear in an IMAP command (modified UTF-7)
    uidvalidity: int | None
    uid: int
    section: c.Section | None
    partial: tuple[int, int | None] | None  # offset, length


_NZ = r"[1-9][0-9]{0,9}"
_URL_RE = re.compile(
    rf"/(?P<mailbox>[^;/?#][^;?#]*?)"
    rf"(?:;UIDVALIDITY=(?P<uidvalidity>{_NZ}))?"
    rf"/;UID=(?P<uid>{_NZ})"
    rf"(?:/;SECTION=(?P<section>[^/;?#]+))?"
    rf"(?:/;PARTIAL=(?P<offset>[0-9]{{1,10}})(?:\.(?P<length>{_NZ}))?)?",
    re.IGNORECASE,
)

_MAX_NUMBER = 2**32 - 1


def _number(text: str) -> int:
    value = int(text)
    if value > _MAX_NUMBER:
        raise BadUrl("number out of range")
    return value


def _section(encoded: str) -> c.Section:
    """Parse a section spec with the FETCH parser, so that URL sections and
    ``BODY[...]`` sections mean exactly the same thing."""
    spec = unquote_to_bytes(encoded)
    if any(b < 0x20 or b > 0x7E for b in spec) or b"]" in spec:
        raise BadUrl("invalid section")
    parsed = parse_command((b"u FETCH 1 BODY.PEEK[" + spec + b"]",), ())
    if not isinstance(parsed, c.Fetch) or len(parsed.items) != 1:
        raise BadUrl("invalid section")
    section = parsed.items[0].section
    if section is None:
        raise BadUrl("invalid section")
    return section


def parse_message_url(url: bytes) -> MessageUrl:
    """Parse a same-server, same-user IMAP URL naming a message or part."""
    try:
        text = url.decode("ascii")
    except UnicodeDecodeError:
        raise BadUrl("URL is not ASCII") from None
    match = _URL_RE.fullmatch(text)
    if match is None:
        raise BadUrl("not a message URL on this server")
    mailbox = unquote_to_bytes(match["mailbox"])
    if not mailbox or any(b < 0x20 or b == 0x7F for b in mailbox):
        raise BadUrl("invalid mailbox")
    uidvalidity = match["uidvalidity"]
    section = match["section"]
    offset = match["offset"]
    length = match["length"]
    return MessageUrl(
        mailbox=mailbox,
        uidvalidity=_number(uidvalidity) if uidvalidity else None,
        uid=_number(match["uid"]),
        section=_section(section) if section else None,
        partial=(
            (_number(offset), _number(length) if length else None)
            if offset is not None
            else None
        ),
    )
