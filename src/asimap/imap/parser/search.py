"""SEARCH keys and the SEARCH, SORT and THREAD commands.

RFC 3501 / RFC 9051 section 6.4.4, RFC 4731 and RFC 5182 (RETURN options),
RFC 7162 section 3.1.5 (MODSEQ), RFC 5256 (SORT, THREAD), RFC 5267 (ESORT).

``search-key`` is recursive (NOT, OR, parenthesised lists), and a client
may nest it arbitrarily deep.  The parser below is a shift-reduce loop over
an explicit stack whose height is bounded by ``limits.max_depth``: 10,000
nested parentheses give a clean ParseError, never a RecursionError.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from asimap.imap.commands import (
    DateOp,
    PartialRange,
    Search,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchObjectId,
    SearchOr,
    SearchSaveDate,
    SearchSaveDateSupported,
    SearchSequence,
    SearchSize,
    SearchText,
    Sort,
    Thread,
)
from asimap.imap.parser.dates import parse_date
from asimap.imap.parser.sequence import parse_sequence_set
from asimap.imap.parser.tokens import (
    LPAREN,
    MAX_NUMBER64,
    RPAREN,
    Reader,
    decode_text,
    fail,
)

_KEY_NAME_RE = re.compile(rb"[A-Za-z]+")
_SEQUENCE_START = frozenset(b"0123456789*$")

# Keys with no argument (RFC 3501 section 6.4.4).  NEW and OLD are expanded
# as the contract asks: NEW = RECENT UNSEEN, OLD = NOT RECENT.
_NO_ARG: dict[bytes, SearchKey] = {
    b"ALL": SearchAll(),
    b"ANSWERED": SearchFlag("\\Answered"),
    b"DELETED": SearchFlag("\\Deleted"),
    b"DRAFT": SearchFlag("\\Draft"),
    b"FLAGGED": SearchFlag("\\Flagged"),
    b"SEEN": SearchFlag("\\Seen"),
    b"RECENT": SearchFlag("\\Recent"),
    b"UNANSWERED": SearchFlag("\\Answered", set=False),
    b"UNDELETED": SearchFlag("\\Deleted", set=False),
    b"UNDRAFT": SearchFlag("\\Draft", set=False),
    b"UNFLAGGED": SearchFlag("\\Flagged", set=False),
    b"UNSEEN": SearchFlag("\\Seen", set=False),
    b"NEW": SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", set=False))),
    b"OLD": SearchNot(SearchFlag("\\Recent")),
    b"SAVEDATESUPPORTED": SearchSaveDateSupported(),  # RFC 8514 section 4.3
}

_HEADER_KEYS = {
    b"FROM": "From",
    b"TO": "To",
    b"CC": "Cc",
    b"BCC": "Bcc",
    b"SUBJECT": "Subject",
}

# RFC 8514 section 4.3.
_SAVED_KEYS = {
    b"SAVEDBEFORE": DateOp.BEFORE,
    b"SAVEDON": DateOp.ON,
    b"SAVEDSINCE": DateOp.SINCE,
}

# RFC 8474 section 3: objectid = 1*255(ALPHA / DIGIT / "_" / "-").
_OBJECTID_RE = re.compile(rb"[A-Za-z0-9_-]{1,255}(?=[ )]|$)")

_DATE_KEYS = {
    b"BEFORE": (DateOp.BEFORE, False),
    b"ON": (DateOp.ON, False),
    b"SINCE": (DateOp.SINCE, False),
    b"SENTBEFORE": (DateOp.BEFORE, True),
    b"SENTON": (DateOp.ON, True),
    b"SENTSINCE": (DateOp.SINCE, True),
}

# RFC 4731 section 3.1, RFC 5182 section 2.1, RFC 9394 section 4.
RETURN_OPTIONS = frozenset(
    {"MIN", "MAX", "ALL", "COUNT", "SAVE", "PARTIAL"}
    # RFC 5267 section 4: CONTEXT (a hint, ignored) and UPDATE.
    | {"CONTEXT", "UPDATE"}
)

# partial-range-first / partial-range-last (RFC 9394 section 4).
_PARTIAL_RANGE_RE = re.compile(rb"(-?)([1-9][0-9]{0,9}):(-?)([1-9][0-9]{0,9})")

# RFC 7162 section 3.1.5: entry-name is "/flags/<flag>", entry-type-req.
_MODSEQ_ENTRY_RE = re.compile(rb'"(/flags/\\?[\x21-\x7e]+)" (priv|shared|all) ', re.I)

_AND, _OR, _NOT = 0, 1, 2


def _text_value(reader: Reader) -> str:
    reader.space()
    return decode_text(reader.astring("search string"))


def _modseq(reader: Reader) -> SearchModseq:
    reader.space()
    m = _MODSEQ_ENTRY_RE.match(reader.line, reader.pos)
    entry: str | None = None
    entry_type: str | None = None
    if m is not None:
        entry = m.group(1).decode("ascii")
        entry_type = m.group(2).decode("ascii").lower()
        reader.pos = m.end()
    return SearchModseq(reader.number("MODSEQ", MAX_NUMBER64), entry, entry_type)


def _simple_key(reader: Reader, name: bytes) -> SearchKey:
    """A key that is neither NOT, OR nor a list; its name is consumed."""
    fixed = _NO_ARG.get(name)
    if fixed is not None:
        return fixed
    header = _HEADER_KEYS.get(name)
    if header is not None:
        # RFC 3501/9051 6.4.4: FROM/TO/CC/BCC match the envelope's field.
        return SearchHeader(header, _text_value(reader), header != "Subject")
    dated = _DATE_KEYS.get(name)
    if dated is not None:
        reader.space()
        return SearchDate(dated[0], parse_date(reader), dated[1])
    saved = _SAVED_KEYS.get(name)
    if saved is not None:
        reader.space()
        return SearchSaveDate(saved, parse_date(reader))
    handler = _ARG_KEYS.get(name)
    if handler is None:
        fail(f"Unknown search key {name.decode('ascii')[:40]}")
    return handler(reader)


def _header(reader: Reader) -> SearchKey:
    reader.space()
    field = decode_text(reader.astring("header field name"))
    return SearchHeader(field, _text_value(reader))


def _keyword(reader: Reader, is_set: bool) -> SearchKey:
    reader.space()
    return SearchFlag(reader.atom("keyword").decode("ascii"), set=is_set)


def _size(reader: Reader, larger: bool) -> SearchKey:
    reader.space()
    return SearchSize(reader.number("size", MAX_NUMBER64), larger)


def _objectid(reader: Reader, item: str) -> SearchKey:
    """``EMAILID objectid`` / ``THREADID objectid`` (RFC 8474 section 6)."""
    reader.space()
    raw = reader.match(_OBJECTID_RE)
    if raw is None:
        fail(f"Invalid {item} (1 to 255 letters, digits, '_' or '-')")
    return SearchObjectId(item, raw.decode("ascii"))


def _uid(reader: Reader) -> SearchKey:
    reader.space()
    return SearchSequence(parse_sequence_set(reader), uid=True)


_ARG_KEYS: dict[bytes, Callable[[Reader], SearchKey]] = {
    b"BODY": lambda r: SearchText(_text_value(r), header=False),
    b"TEXT": lambda r: SearchText(_text_value(r), header=True),
    b"HEADER": _header,
    b"KEYWORD": lambda r: _keyword(r, True),
    b"UNKEYWORD": lambda r: _keyword(r, False),
    b"LARGER": lambda r: _size(r, True),
    b"SMALLER": lambda r: _size(r, False),
    b"UID": _uid,
    b"MODSEQ": _modseq,
    b"EMAILID": lambda r: _objectid(r, "EMAILID"),
    b"THREADID": lambda r: _objectid(r, "THREADID"),
}


def _combine(keys: list[SearchKey]) -> SearchKey:
    return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def parse_search_keys(reader: Reader) -> SearchKey:
    """Read ``search-key *(SP search-key)`` up to the end of the command.

    Frames on the stack are ``[kind, keys]``: an AND list (the bottom frame
    is the implicit top-level list), an OR waiting for two keys, a NOT
    waiting for one.
    """
    limits = reader.limits
    stack: list[tuple[int, list[SearchKey]]] = [(_AND, [])]
    while True:
        # Shift: read the start of a key.
        c = reader.peek()
        if c == LPAREN:
            reader.pos += 1
            stack.append((_AND, []))
            if len(stack) > limits.max_depth:
                fail("Search keys nested too deeply")
            continue
        if c in _SEQUENCE_START:
            key: SearchKey = SearchSequence(parse_sequence_set(reader), uid=False)
        else:
            raw = reader.match(_KEY_NAME_RE)
            if raw is None:
                if reader.at_end():
                    fail("Missing argument")
                fail("Invalid search key")
            name = raw.upper()
            if name == b"NOT" or name == b"OR":
                reader.space()
                stack.append((_NOT if name == b"NOT" else _OR, []))
                if len(stack) > limits.max_depth:
                    fail("Search keys nested too deeply")
                continue
            key = _simple_key(reader, name)
        # Reduce: attach the finished key to the frames waiting for it.
        while True:
            kind, keys = stack[-1]
            keys.append(key)
            if len(keys) > limits.max_items:
                fail("Too many search keys")
            if kind == _NOT:
                stack.pop()
                key = SearchNot(key)
                continue
            if kind == _OR:
                if len(keys) == 2:
                    stack.pop()
                    key = SearchOr(keys[0], keys[1])
                    continue
                reader.space()
                break
            # An AND list: a SP means another key, ")" closes a nested list.
            if reader.try_space():
                break
            if len(stack) == 1:
                reader.expect_end()
                return _combine(keys)
            reader.close_paren()
            stack.pop()
            key = _combine(keys)


def parse_partial_range(reader: Reader) -> PartialRange:
    """partial-range = nz-number ":" nz-number / "-" nz-number ":" "-"
    nz-number (RFC 9394 section 4): both ends on the same side."""
    m = _PARTIAL_RANGE_RE.match(reader.line, reader.pos)
    if m is None or m.group(1) != m.group(3):
        fail("Invalid PARTIAL range")
    first, last = int(m.group(2)), int(m.group(4))
    if max(first, last) > 0xFFFFFFFF:
        fail("PARTIAL range out of bounds")
    reader.pos = m.end()
    sign = -1 if m.group(1) else 1
    return PartialRange(sign * first, sign * last)


def _return_options(
    reader: Reader,
) -> tuple[tuple[str, ...] | None, PartialRange | None]:
    """search-return-opts = SP "RETURN" SP "(" [opt *(SP opt)] ")".

    RFC 9394 section 3.1: at most one PARTIAL, and never PARTIAL and ALL
    together.
    """
    if reader.line[reader.pos : reader.pos + 7].upper() != b"RETURN ":
        return None, None
    reader.pos += 7
    reader.open_paren()
    options: list[str] = []
    partial: PartialRange | None = None
    if reader.peek() == RPAREN:
        reader.pos += 1
        reader.space()
        return (), None
    while True:
        option = reader.keyword("RETURN option")
        if option not in RETURN_OPTIONS:
            fail(f"Unknown RETURN option {option[:40]}")
        if option == "PARTIAL":
            if partial is not None:
                fail("Only one PARTIAL is allowed")
            reader.space()
            partial = parse_partial_range(reader)
        if option not in options:
            options.append(option)
        if reader.peek() == RPAREN:
            reader.pos += 1
            break
        reader.space()
    if partial is not None and "ALL" in options:
        fail("PARTIAL and ALL cannot be used together")
    reader.space()
    return tuple(options), partial


def _charset(reader: Reader) -> str:
    """charset = atom / quoted."""
    if reader.peek() == 0x22:
        return reader.quoted().decode("ascii", "replace").upper()
    return reader.keyword("charset")


def parse_search(reader: Reader, tag: str, uid: bool) -> Search:
    """search = "SEARCH" [search-return-opts] SP search-program."""
    reader.space()
    return_options, partial = _return_options(reader)
    charset: str | None = None
    word = reader.line[reader.pos : reader.pos + 8].upper()
    if word in (b"CHARSET", b"CHARSET "):
        reader.pos += 7
        reader.space()
        charset = _charset(reader)
        reader.space()
    key = parse_search_keys(reader)
    return Search(tag, key, uid, charset, return_options, partial)


# RFC 5256 section 5 sort-key, plus RFC 5957 DISPLAYFROM / DISPLAYTO.
SORT_KEYS = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO"}
    | {"DISPLAYFROM", "DISPLAYTO"}
)


def parse_sort(reader: Reader, tag: str, uid: bool) -> Sort:
    """sort = "SORT" [search-return-opts] SP sort-criteria SP charset
    1*(SP search-key)  (RFC 5256 section 5, RFC 5267 section 3)."""
    reader.space()
    return_options, partial = _return_options(reader)
    reader.open_paren()
    criteria: list[str] = []
    while True:
        word = reader.keyword("sort criterion")
        if word == "REVERSE":
            criteria.append(word)
            reader.space()
            word = reader.keyword("sort criterion")
        if word not in SORT_KEYS:
            fail(f"Unknown sort criterion {word[:40]}")
        criteria.append(word)
        if len(criteria) > reader.limits.max_items:
            fail("Too many sort criteria")
        if reader.peek() == RPAREN:
            reader.pos += 1
            break
        reader.space()
    reader.space()
    charset = _charset(reader)
    reader.space()
    key = parse_search_keys(reader)
    return Sort(tag, tuple(criteria), charset, key, uid, return_options, partial)


def parse_thread(reader: Reader, tag: str, uid: bool) -> Thread:
    """thread = "THREAD" SP thread-alg SP search-criteria (RFC 5256 s5)."""
    reader.space()
    algorithm = reader.keyword("thread algorithm")
    reader.space()
    charset = _charset(reader)
    reader.space()
    return Thread(tag, algorithm, charset, parse_search_keys(reader), uid)
