"""APPEND, with MULTIAPPEND (RFC 3501 6.3.11, RFC 3502, RFC 3516, RFC 4469).

RFC 3502 section 6::

    append         = "APPEND" SP mailbox 1*append-message
    append-message = append-opts SP append-data
    append-opts    = [SP flag-list] [SP date-time] *(SP append-ext)
    append-data    = literal / literal8 / append-data-ext

The message data must be a real literal: RFC 3501 section 6.3.11 sends the
message as a literal, and a quoted string is refused.  CATENATE (RFC 4469)
is not in the command contract yet, so it is refused with a clear message.
"""

from __future__ import annotations

from datetime import datetime

from asimap.imap.commands import Append, AppendMessage
from asimap.imap.parser.dates import parse_date_time
from asimap.imap.parser.flags import parse_flag_list
from asimap.imap.parser.tokens import (
    ATOM_RE,
    DQUOTE,
    LBRACE,
    LPAREN,
    QUOTED_RE,
    TILDE,
    Reader,
    fail,
)


def _message(reader: Reader) -> AppendMessage:
    """append-opts SP append-data, the leading SP already consumed."""
    flags: tuple[str, ...] = ()
    internaldate: datetime | None = None
    if reader.peek() == LPAREN:
        flags = parse_flag_list(reader)
        reader.space()
    if reader.peek() == DQUOTE:
        if QUOTED_RE.fullmatch(reader.line, reader.pos) is not None:
            # A quoted string ending the command is message data, not a
            # date-time: RFC 3501 section 6.3.11 requires a literal.
            fail("APPEND message data must be a literal")
        internaldate = parse_date_time(reader)
        reader.space()
    c = reader.peek()
    if c in (LBRACE, TILDE):
        data, binary = reader.literal(allow_literal8=True)
        return AppendMessage(data, flags, internaldate, binary)
    word = reader.match(ATOM_RE)
    if word is not None and word.upper() == b"CATENATE":
        fail("CATENATE not supported")
    if word is not None:
        fail("Unknown APPEND extension")
    if reader.at_end():
        fail("Missing argument")
    fail("APPEND message data must be a literal")


def parse_append(reader: Reader, tag: str, uid: bool) -> Append:
    reader.space()
    mailbox = reader.mailbox()
    reader.space()
    messages = [_message(reader)]
    while reader.try_space():
        messages.append(_message(reader))
        if len(messages) > reader.limits.max_literals:
            fail("Too many messages in APPEND")
    reader.expect_end()
    return Append(tag, mailbox, tuple(messages))
