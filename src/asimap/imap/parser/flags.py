"""Flags and flag lists of STORE and APPEND (RFC 3501 section 9 ``flag``).

``\\Recent`` is a server-maintained flag: RFC 3501 section 9 excludes it from
``flag`` (it is only in ``flag-fetch``), so a client may not STORE or APPEND
it.  Any other ``\\atom`` is a ``flag-extension`` and is accepted.
"""

from __future__ import annotations

import re

from asimap.imap.parser.tokens import ATOM_CLASS, LPAREN, RPAREN, Reader, fail

_FLAG_RE = re.compile(rb"\\?[" + ATOM_CLASS + rb"]+")


def parse_flag(reader: Reader) -> str:
    raw = reader.match(_FLAG_RE)
    if raw is None:
        if reader.at_end():
            fail("Missing argument")
        fail("Invalid flag")
    if raw.upper() == b"\\RECENT":
        fail("\\Recent cannot be set by the client")
    return raw.decode("ascii")


def parse_flag_list(reader: Reader) -> tuple[str, ...]:
    """``"(" [flag *(SP flag)] ")"``."""
    reader.open_paren()
    flags: list[str] = []
    if reader.peek() == RPAREN:
        reader.pos += 1
        return ()
    while True:
        flags.append(parse_flag(reader))
        if len(flags) > reader.limits.max_items:
            fail("Too many flags")
        if reader.peek() == RPAREN:
            reader.pos += 1
            return tuple(flags)
        reader.space()


def parse_flags(reader: Reader) -> tuple[str, ...]:
    """A flag list, or bare flags separated by SP up to the end of the line.

    RFC 3501 section 9 ``store-att-flags`` allows ``+FLAGS \\Seen \\Draft``
    without parentheses.
    """
    if reader.peek() == LPAREN:
        return parse_flag_list(reader)
    flags = [parse_flag(reader)]
    while reader.try_space():
        flags.append(parse_flag(reader))
        if len(flags) > reader.limits.max_items:
            fail("Too many flags")
    return tuple(flags)
