"""Every size limit of the IMAP protocol engine, in one place.

Each limit is explicit so that memory per connection stays bounded whatever
a client sends (design.md section 3).  Defaults follow Dovecot where it has an
equivalent (``imap_max_line_length`` = 64 KiB) and are generous elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    #: Longest single line (without literals), CRLF included.
    max_line: int = 64 * 1024
    #: Largest literal accepted (APPEND message size; APPENDLIMIT advertises it).
    max_literal: int = 64 * 1024 * 1024
    #: Largest literal accepted in anything that is not APPEND (strings in
    #: SEARCH, LOGIN, mailbox names...).
    max_small_literal: int = 64 * 1024
    #: Whole command: all lines plus all literals.
    max_command: int = 128 * 1024 * 1024
    #: Number of literals in one command (MULTIAPPEND, CATENATE).
    max_literals: int = 1000
    #: Parenthesis nesting depth (SEARCH keys, FETCH lists, BODYSTRUCTURE).
    max_depth: int = 64
    #: Items in one list (FETCH items, header field names, search keys...).
    max_items: int = 10_000
    #: Non-synchronising literals (LITERAL+) larger than this are refused
    #: under LITERAL- (RFC 7888 section 5); with LITERAL+ we accept up to
    #: ``max_literal`` but discard the bytes of a refused one unread.
    max_nonsync_literal: int = 4096
    #: Advertise LITERAL- instead of LITERAL+ and enforce
    #: ``max_nonsync_literal`` (``--literal-minus``; RFC 7888 section 5: a
    #: server advertises one of the two, never both).
    literal_minus: bool = False
    #: Longest tag.
    max_tag: int = 256


DEFAULT_LIMITS = Limits()
