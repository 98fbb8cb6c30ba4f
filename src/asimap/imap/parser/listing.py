"""LIST and LSUB (RFC 3501 6.3.8-6.3.9, RFC 5258, RFC 5819, RFC 6154).

Extended LIST (RFC 5258 section 6)::

    list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
           [SP list-return-opts]
    mbox-or-pat = list-mailbox / patterns
    patterns = "(" list-mailbox *(SP list-mailbox) ")"

Unknown selection or return options get BAD (RFC 5258 section 3).
"""

from __future__ import annotations

from asimap.imap.commands import List, Lsub
from asimap.imap.parser.mailbox import parse_status_items
from asimap.imap.parser.tokens import LPAREN, RPAREN, Reader, fail

SELECT_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})
#: ``list-select-base-opt`` (RFC 5258 section 6): may be used alone.
BASE_SELECT_OPTIONS = frozenset({"SUBSCRIBED"})


def _options(reader: Reader, known: frozenset[str], what: str) -> list[str]:
    reader.open_paren()
    options: list[str] = []
    while reader.peek() != RPAREN:
        if options:
            reader.space()
        option = reader.keyword(what)
        if option not in known:
            fail(f"Unknown {what} {option[:40]}")
        options.append(option)
        if len(options) > reader.limits.max_items:
            fail(f"Too many {what}s")
        if option == "STATUS":
            return options  # the caller reads the STATUS item list
    reader.pos += 1
    return options


def parse_list(reader: Reader, tag: str, uid: bool) -> List:
    reader.space()
    select_options: list[str] = []
    extended = False
    if reader.peek() == LPAREN:
        extended = True
        select_options = _options(reader, SELECT_OPTIONS, "LIST selection option")
        # RFC 5258 sections 3.1 and 6: RECURSIVEMATCH needs a base option
        # (SUBSCRIBED is the only one; REMOTE and SPECIAL-USE are
        # independent options, RFC 6154 section 6); otherwise BAD.
        if "RECURSIVEMATCH" in select_options and not (
            set(select_options) & BASE_SELECT_OPTIONS
        ):
            fail("RECURSIVEMATCH needs the SUBSCRIBED selection option")
        reader.space()
    reference = reader.mailbox()
    reader.space()
    patterns: list[bytes] = []
    if reader.peek() == LPAREN:
        extended = True
        reader.pos += 1
        while True:
            patterns.append(reader.list_mailbox())
            if len(patterns) > reader.limits.max_items:
                fail("Too many LIST patterns")
            if reader.peek() == RPAREN:
                reader.pos += 1
                break
            reader.space()
    else:
        patterns.append(reader.list_mailbox())
    return_options: list[str] = []
    status: tuple[str, ...] = ()
    if reader.try_space():
        extended = True
        if reader.keyword("RETURN") != "RETURN":
            fail("Expected RETURN")
        reader.space()
        return_options = _return_options(reader)
        if "STATUS" in return_options:
            status = _status_tail(reader, return_options)
    reader.expect_end()
    return List(
        tag,
        reference,
        tuple(patterns),
        tuple(select_options),
        tuple(return_options),
        status,
        extended,
    )


def _return_options(reader: Reader) -> list[str]:
    return _options(reader, RETURN_OPTIONS, "LIST return option")


def _status_tail(reader: Reader, options: list[str]) -> tuple[str, ...]:
    """RFC 5819 section 2: ``STATUS (items)`` inside the RETURN list; the
    remaining return options may follow it."""
    reader.space()
    status = parse_status_items(reader)
    while reader.peek() != RPAREN:
        reader.space()
        option = reader.keyword("LIST return option")
        if option not in RETURN_OPTIONS or option == "STATUS":
            fail(f"Unknown or repeated LIST return option {option[:40]}")
        options.append(option)
        if len(options) > reader.limits.max_items:
            fail("Too many LIST return options")
    reader.pos += 1
    return status


def parse_lsub(reader: Reader, tag: str, uid: bool) -> Lsub:
    reader.space()
    reference = reader.mailbox()
    reader.space()
    pattern = reader.list_mailbox()
    reader.expect_end()
    return Lsub(tag, reference, pattern)
