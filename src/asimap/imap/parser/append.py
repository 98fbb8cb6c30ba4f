"""APPEND, with MULTIAPPEND (RFC 3501 6.3.11, RFC 3502, RFC 3516, RFC 4469).

RFC 3502 section 6::

    append         = "APPEND" SP mailbox 1*append-message
    append-message = append-opts SP append-data
    append-opts    = [SP flag-list] [SP date-time] *(SP append-ext)
    append-data    = literal / literal8 / append-data-ext

The message data must be a real literal: RFC 3501 section 6.3.11 sends the
message as a literal, and a quoted string is refused.  Two extensions add
forms of append-data::

    append-data  =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")"  ; RFC 4469
    cat-part     = text-literal / url / utf8-literal
    text-literal = "TEXT" SP literal          ; literal8 too with BINARY
    url          = "URL" SP astring
    append-data  =/ utf8-literal                                   ; RFC 6855
    utf8-literal = "UTF8" SP "(" literal8 ")"

Whether UTF8 is allowed (UTF8=ACCEPT enabled) is the session's decision.
"""

from __future__ import annotations

from datetime import datetime

from asimap.imap.commands import (
    STAR,
    Append,
    AppendMessage,
    CatenatePart,
    CatenateText,
    CatenateUrl,
    Replace,
)
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

STAR_BYTE = ord("*")


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
        parts = _catenate_parts(reader)
        return AppendMessage(b"", flags, internaldate, catenate=parts)
    if word is not None and word.upper() == b"UTF8":
        data = _utf8_literal(reader)
        return AppendMessage(data, flags, internaldate, binary=True, utf8=True)
    if word is not None:
        fail("Unknown APPEND extension")
    if reader.at_end():
        fail("Missing argument")
    fail("APPEND message data must be a literal")


def _utf8_literal(reader: Reader) -> bytes:
    """``SP "(" literal8 ")"`` after UTF8 (RFC 6855 section 4)."""
    reader.space()
    reader.open_paren()
    if reader.peek() != TILDE:
        fail("UTF8 message data must be a literal8")
    data, _ = reader.literal(allow_literal8=True)
    reader.close_paren()
    return data


def _catenate_parts(reader: Reader) -> tuple[CatenatePart, ...]:
    """``SP "(" cat-part *(SP cat-part) ")"`` after CATENATE (RFC 4469
    section 5)."""
    reader.space()
    reader.open_paren()
    parts: list[CatenatePart] = []
    while True:
        kind = reader.match(ATOM_RE)
        word = kind.upper() if kind is not None else b""
        if word == b"URL":
            reader.space()
            parts.append(CatenateUrl(reader.astring("URL")))
        elif word == b"TEXT":
            reader.space()
            if reader.peek() not in (LBRACE, TILDE):
                fail("CATENATE TEXT must be a literal")
            data, _ = reader.literal(allow_literal8=True)
            parts.append(CatenateText(data))
        elif word == b"UTF8":
            parts.append(CatenateText(_utf8_literal(reader), utf8=True))
        else:
            fail("CATENATE part must be TEXT, URL or UTF8")
        if len(parts) > reader.limits.max_literals:
            fail("Too many CATENATE parts")
        if not reader.try_space():
            break
    reader.close_paren()
    return tuple(parts)


def parse_replace(reader: Reader, tag: str, uid: bool) -> Replace:
    """RFC 8508 section 6::

        replace = "REPLACE" SP seq-number SP mailbox append-message

    (``UID REPLACE`` takes a UID).  One message only: no MULTIAPPEND.
    """
    reader.space()
    if reader.peek() == STAR_BYTE:
        reader.pos += 1
        number = STAR
    else:
        number = reader.nz_number("message number")
    reader.space()
    mailbox = reader.mailbox()
    reader.space()
    message = _message(reader)
    reader.expect_end()
    return Replace(tag, number, mailbox, message, uid)


def parse_append(reader: Reader, tag: str, uid: bool) -> Append:
    reader.space()
    mailbox = reader.mailbox()
    reader.space()
    messages = [_message(reader)]
    while reader.try_space():
        # RFC 3502 wants exactly one SP between messages, but IMAPClient's
        # multiappend (3.0, ``_raw_command``) sends " " and then " {n+}"
        # after each literal.  A run of SP before the next message cannot
        # be read any other way, so it is accepted rather than refusing a
        # widely used client's whole upload.
        while reader.try_space():
            pass
        messages.append(_message(reader))
        if len(messages) > reader.limits.max_literals:
            fail("Too many messages in APPEND")
    reader.expect_end()
    return Append(tag, mailbox, tuple(messages))
