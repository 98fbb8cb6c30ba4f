"""CANCELUPDATE (RFC 5267 section 4.3.5)::

    command-select =/ "CANCELUPDATE" 1*(SP quoted)

The arguments are the tags of earlier searching commands that asked for
``RETURN (UPDATE)``.  The grammar says *quoted*, so an atom or a literal
is a syntax error (BAD), as is an empty list.
"""

from __future__ import annotations

from asimap.imap.commands import CancelUpdate
from asimap.imap.parser.tokens import Reader, fail

_DQUOTE = 0x22


def parse_cancelupdate(reader: Reader, tag: str, uid: bool) -> CancelUpdate:
    """``CANCELUPDATE "t1" "t2" ...``; at most ``max_items`` tags."""
    tags: list[str] = []
    while reader.try_space():
        if reader.peek() != _DQUOTE:
            fail("CANCELUPDATE takes quoted tags")
        tags.append(reader.quoted().decode("ascii", "replace"))
        if len(tags) > reader.limits.max_items:
            fail("Too many tags")
    if not tags:
        fail("CANCELUPDATE needs at least one tag")
    reader.expect_end()
    return CancelUpdate(tag, tuple(dict.fromkeys(tags)))
