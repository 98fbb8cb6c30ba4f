"""STORE and UID STORE (RFC 3501 section 6.4.6, RFC 7162 section 3.1.3).

::

    store           = "STORE" SP sequence-set [store-modifiers] SP
                      store-att-flags
    store-modifiers = SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"
    store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
                      (flag-list / (flag *(SP flag)))
"""

from __future__ import annotations

import re

from asimap.imap.commands import Store, StoreMode
from asimap.imap.parser.flags import parse_flags
from asimap.imap.parser.sequence import parse_sequence_set
from asimap.imap.parser.tokens import LPAREN, MAX_NUMBER64, Reader, fail

_ITEM_RE = re.compile(rb"([+-]?)(FLAGS)(\.SILENT)?(?= |$)", re.IGNORECASE)
_MODES = {b"": StoreMode.REPLACE, b"+": StoreMode.ADD, b"-": StoreMode.REMOVE}


def parse_store(reader: Reader, tag: str, uid: bool) -> Store:
    reader.space()
    sequence = parse_sequence_set(reader)
    reader.space()
    unchanged_since: int | None = None
    if reader.peek() == LPAREN:
        reader.pos += 1
        if reader.keyword("STORE modifier") != "UNCHANGEDSINCE":
            fail("Unknown STORE modifier")
        reader.space()
        unchanged_since = reader.number("UNCHANGEDSINCE", MAX_NUMBER64)
        reader.close_paren()
        reader.space()
    m = _ITEM_RE.match(reader.line, reader.pos)
    if m is None:
        if reader.at_end():
            fail("Missing argument")
        fail("Invalid STORE item")
    reader.pos = m.end()
    reader.space()
    flags = parse_flags(reader)
    reader.expect_end()
    return Store(
        tag,
        sequence,
        _MODES[m.group(1)],
        flags,
        m.group(3) is not None,
        uid,
        unchanged_since,
    )
