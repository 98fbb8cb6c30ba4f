"""CATENATE (RFC 4469): build an APPENDed message from text and URL parts.

Each ``URL`` part names a message or a section of one in the user's own
mailboxes (:mod:`asimap.imap.imapurl`); its bytes are what ``BODY.PEEK
[section]<partial>`` would return (RFC 4469 section 5, RFC 5092 section
5).  Every URL that cannot be resolved -- another server, a mailbox that
does not exist, a wrong UIDVALIDITY, an expunged message, a part that is
not there -- is ``NO [BADURL url]`` (RFC 4469 section 6), and nothing is
appended.  A result larger than APPENDLIMIT is ``NO [TOOBIG]``, checked
as the parts are added so the assembly stays bounded.
"""

from __future__ import annotations

from collections.abc import Sequence

from asimap.imap import commands as c
from asimap.imap.imapurl import BadUrl, MessageUrl, parse_message_url
from asimap.imap.responses import Code, Raw, Status
from asimap.imap.session import extensions
from asimap.imap.session.context import Context
from asimap.imap.session.errors import CommandFailed, bad, no
from asimap.imap.session.literal_limits import append_limit
from asimap.imap.session.naming import mailbox_name
from asimap.message import sections
from asimap.store.base import StoreError


def _badurl(url: bytes) -> CommandFailed:
    # RFC 4469 section 6: the code carries the URL (url-resp-text: printable
    # ASCII without "]", so anything else is dropped rather than sent).
    text = "".join(chr(b) for b in url[:1024] if 0x21 <= b <= 0x7E and b != 0x5D)
    return CommandFailed(Status.NO, "Bad URL", Code("BADURL", (Raw(text),)))


async def _url_bytes(ctx: Context, url: MessageUrl) -> bytes:
    """The bytes a resolved URL names; raises StoreError / BadUrl."""
    try:
        name = mailbox_name(url.mailbox)
    except CommandFailed:
        raise BadUrl("bad mailbox name") from None
    mailbox = await ctx.require_store().mailbox(name)
    if url.uidvalidity is not None and url.uidvalidity != mailbox.uidvalidity:
        raise BadUrl("UIDVALIDITY changed")
    message = await mailbox.message(url.uid)
    section = url.section
    part = section.part if section is not None else ()
    if part and sections.resolve(message.root, part) is None:
        raise BadUrl("no such part")
    data = message.section(section)
    if url.partial is not None:
        offset, length = url.partial
        data = data[offset:] if length is None else data[offset : offset + length]
    return data


async def assemble(ctx: Context, parts: Sequence[c.CatenatePart]) -> bytes:
    """The message the parts make, in order."""
    limit = append_limit(ctx)
    chunks: list[bytes] = []
    size = 0
    for part in parts:
        if isinstance(part, c.CatenateText):
            if part.utf8 and not extensions.utf8(ctx.enabled):
                raise bad("CATENATE UTF8 requires ENABLE UTF8=ACCEPT")
            data = part.data
        else:
            try:
                data = await _url_bytes(ctx, parse_message_url(part.url))
            except (BadUrl, StoreError):
                raise _badurl(part.url) from None
        size += len(data)
        if size > limit:
            raise no("Message too large", "TOOBIG")
        chunks.append(data)
    return b"".join(chunks)
