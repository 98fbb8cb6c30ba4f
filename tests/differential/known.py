"""Every known difference between asimap and Dovecot, with its reason.

Each entry is explicit data: which commands it may apply to (``where``, a
regular expression over ``"<session> #<n> <command>"``), what it accepts
(a pattern per side over whole lines, or a rule over the single field that
differs), its verdict and the RFC text that decides it:

``defect``
    ours is wrong and issue 10 point ``point`` fixes it; the fast test
    marks those commands as a strict expected failure, so it turns red
    the day the fix lands until the entry is removed.
``open``
    ours is wrong (or likely wrong) and nobody fixes it yet; listed in
    docs/compliance.md, also a strict expected failure.
``ours-right``
    the RFC decides for asimap.
``both-allowed``
    the RFC allows both; why asimap keeps its choice.

There is no wildcard: an entry that stops matching anything fails the
fast test too (``test_every_known_difference_still_occurs``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .tokens import Atom, Group, Node, String

if TYPE_CHECKING:
    from .normalise import Exchange


@dataclass(frozen=True)
class FieldDiff:
    """One place where two parsed lines differ: the enclosing groups of
    asimap's line (outermost first), the index in the last one, and the
    two values there (``index == -1``: the groups differ in length)."""

    path: tuple[Group, ...]
    index: int
    ours: Node
    theirs: Node

    @property
    def item(self) -> bytes:
        """The FETCH item the difference is in (``BODYSTRUCTURE``, ...)."""
        if self.path and self.path[0].items and isinstance(self.path[0].items[0], Atom):
            return self.path[0].items[0].value.upper()
        return b""

    @property
    def parent(self) -> Group | None:
        return self.path[-1] if self.path else None


LineCheck = Callable[["Exchange", str, str], bool]


@dataclass(frozen=True)
class Known:
    key: str
    verdict: str  # defect | open | ours-right | both-allowed
    summary: str
    reason: str
    where: str
    point: int | None = None
    #: Whole lines this entry accepts, per side (None: none on that side).
    ours: str | None = None
    theirs: str | None = None
    check: LineCheck | None = None
    field_rule: Callable[[FieldDiff], bool] | None = None
    _where: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_where", re.compile(self.where))

    @property
    def expected_failure(self) -> bool:
        return self.verdict in ("defect", "open")

    def applies_to(self, label: str) -> bool:
        return self._where.search(label) is not None

    def accepts_line(self, exchange: Exchange, side: str, line: str) -> bool:
        pattern = self.ours if side == "asimap" else self.theirs
        if pattern is None or re.search(pattern, line, re.S) is None:
            return False
        return self.check is None or self.check(exchange, side, line)


# -- rules over one field -------------------------------------------------------


def _number(node: Node) -> int | None:
    if isinstance(node, Atom) and node.value.isdigit():
        return int(node.value)
    return None


def _media(group: Group | None) -> tuple[bytes, bytes]:
    if group is None or len(group.items) < 2:
        return b"", b""
    first, second = group.items[0], group.items[1]
    if isinstance(first, String) and isinstance(second, String):
        return first.value.lower(), second.value.lower()
    return b"", b""


def _unterminated_last_line(diff: FieldDiff) -> bool:
    """body-fld-lines of a text part (index 7) or message part (index 9):
    asimap one more than Dovecot."""
    if diff.item not in (b"BODY", b"BODYSTRUCTURE"):
        return False
    kind = _media(diff.parent)
    position = 9 if kind in ((b"message", b"rfc822"), (b"message", b"global")) else 7
    if kind[0] != b"text" and position == 7:
        return False
    mine, other = _number(diff.ours), _number(diff.theirs)
    return diff.index == position and mine is not None and other == mine - 1


def _encapsulated_size(diff: FieldDiff) -> bool:
    """body-fld-octets of a message/rfc822 part: asimap two fewer (the
    CRLF before the next boundary)."""
    if diff.item not in (b"BODY", b"BODYSTRUCTURE"):
        return False
    mine, other = _number(diff.ours), _number(diff.theirs)
    return (
        _media(diff.parent) == (b"message", b"rfc822")
        and diff.index == 6
        and mine is not None
        and other == mine + 2
    )


def _continuations(diff: FieldDiff) -> bool:
    """A parameter list where asimap keeps RFC 2231 ``name*0``/``name*1``
    continuations and Dovecot joined them into ``name``."""
    if diff.item != b"BODYSTRUCTURE":
        return False
    mine, other = diff.ours, diff.theirs
    if not (isinstance(mine, Group) and isinstance(other, Group)):
        return False
    names = [n.value for n in mine.items[::2] if isinstance(n, String)]
    joined = [n.value for n in other.items[::2] if isinstance(n, String)]
    split = {
        re.sub(rb"\*\d+\*?$", b"", name)
        for name in names
        if re.search(rb"\*\d+\*?$", name)
    }
    return bool(split) and split <= set(joined)


_WHITESPACE = re.compile(rb"[ \t]+")


def _whitespace_kept(diff: FieldDiff) -> bool:
    """ENVELOPE strings: asimap keeps the whitespace of folded lines as it
    is (tabs, runs of spaces), Dovecot makes each run one space."""
    if not (
        diff.item == b"ENVELOPE"
        and isinstance(diff.ours, String)
        and isinstance(diff.theirs, String)
    ):
        return False
    mine, other = diff.ours.value, diff.theirs.value
    return mine != other and _WHITESPACE.sub(b" ", mine) == other


def _empty_group_member(diff: FieldDiff) -> bool:
    """Issue 10 point 5: an address list where asimap has one more
    member, an invented ``("foo" NIL "" "")`` from a comment."""
    if diff.item != b"ENVELOPE":
        return False
    mine, other = diff.ours, diff.theirs
    if not (isinstance(mine, Group) and isinstance(other, Group)):
        return False
    extra = [m for m in mine.items if m not in other.items]
    return len(mine.items) == len(other.items) + 1 and all(
        isinstance(m, Group) and m.items[2:] == (String(b""), String(b""))
        for m in extra
    )


# -- rules over lines ------------------------------------------------------------

_SIZE = re.compile(r"^    BINARY\.SIZE\[([\d.]*)\] (\d+)$")


def _literal_length(lines: list[str], section: str) -> int | None:
    prefix = f"    BINARY[{section}] "
    for line in lines:
        if line.startswith(prefix):
            match = re.match(r"~?\{(\d+)\}", line[len(prefix) :])
            if match:
                return int(match[1])
            return None
    return None


def _size_matches_own_binary(exchange: Exchange, side: str, line: str) -> bool:
    """asimap's BINARY.SIZE equals the length of its BINARY of the same
    section; Dovecot's does not equal its own."""
    match = _SIZE.match(line)
    if match is None:
        return False
    size = int(match[2])
    ours = _literal_length(exchange.ours, match[1])
    theirs = _literal_length(exchange.theirs, match[1])
    if ours is None or theirs is None or ours != theirs:
        return False
    return size == ours if side == "asimap" else size != theirs


def _only_reordered(exchange: Exchange, side: str, line: str) -> bool:
    """Both servers sent the same responses, in another order."""
    del side, line
    return sorted(exchange.ours) == sorted(exchange.theirs)


# -- the list ----------------------------------------------------------------------

KNOWN: tuple[Known, ...] = (
    # Defects that engineer protocol-fixes is fixing (issue 10 points 1-9).
    # Ours wrong or doubtful, not fixed here.
    Known(
        key="highestmodseq-on-select",
        verdict="ours-right",
        summary="OK [HIGHESTMODSEQ] with every SELECT/EXAMINE",
        reason="RFC 7162 section 3.1.2.1 (RFC 4551 section 3.1.1): a server "
        "that stores mod-sequences persistently MUST send OK [HIGHESTMODSEQ] "
        "with every successful SELECT/EXAMINE, as asimap does.  Dovecot sends "
        "it only once the mailbox has mod-sequence tracking on (after any "
        "CONDSTORE use)",
        where=r"^[\w-]+ #\d+ (SELECT|EXAMINE) ",
        ours=r"^\* OK \[HIGHESTMODSEQ <highestmodseq>\]$",
    ),
    # The RFC decides for asimap.
    Known(
        key="binary-size-consistent",
        verdict="ours-right",
        summary="Dovecot's BINARY.SIZE differs from the length of its own BINARY",
        reason="RFC 3516 section 4.2: BINARY.SIZE is the size of the section "
        "after decoding, i.e. of what BINARY returns; asimap's equals it",
        where=r" UID FETCH \d+ \(BODY\.PEEK\[[\d.]+\] ",
        ours=_SIZE.pattern,
        theirs=_SIZE.pattern,
        check=_size_matches_own_binary,
    ),
    Known(
        key="multipart-without-boundary",
        verdict="ours-right",
        summary="a multipart without boundary is served as text/plain",
        reason="RFC 2046 section 5.1.1 requires the boundary parameter; "
        "without it no part can be found, and RFC 2045 section 5.2 makes an "
        "unusable Content-Type text/plain, so the text stays readable.  "
        "Dovecot shows one empty part",
        where=r"^fetch-edge #\d+ UID FETCH 7 (\(BODYSTRUCTURE|FULL|\(BODY\.PEEK\[1\])",
        ours=r"^    (BODY|BODYSTRUCTURE|BINARY(\.SIZE)?)[\[ ]",
        theirs=r"^    (BODY|BODYSTRUCTURE|BINARY(\.SIZE)?)[\[ ]",
    ),
    Known(
        key="encapsulated-message-size",
        verdict="ours-right",
        summary="a message/rfc822 part ends before the CRLF of the next boundary",
        reason="RFC 2046 section 5.1.1: the CRLF preceding a boundary "
        "delimiter belongs to the delimiter, not to the part (Dovecot applies "
        "this to other parts but counts it into a message/rfc822 part)",
        where=r"^fetch-edge #\d+ UID FETCH 10 (\(BODYSTRUCTURE|FULL|\(BODY\.PEEK\[2\])",
        ours=r"^    (BODY\[2(\.TEXT)?\]|BINARY\[2\]|BINARY\.SIZE\[2\]) ",
        theirs=r"^    (BODY\[2(\.TEXT)?\]|BINARY\[2\]|BINARY\.SIZE\[2\]) ",
        field_rule=_encapsulated_size,
    ),
    Known(
        key="unknown-cte-only-for-its-part",
        verdict="ours-right",
        summary="BINARY of a 7bit part is refused by Dovecot because another "
        "part has an unknown encoding",
        reason="RFC 3516 section 4.3: UNKNOWN-CTE is for a section whose "
        "encoding the server cannot decode; part 1 is 7bit",
        where=r"^fetch-edge #\d+ UID FETCH 6 \(BODY\.PEEK\[1\] ",
        ours=r"^(    BINARY(\.SIZE)?\[1\]|d\d+ OK$)",
        theirs=r"^d\d+ NO \[UNKNOWN-CTE\]$",
    ),
    Known(
        key="unknown-cte-other-items",
        verdict="both-allowed",
        summary="on UNKNOWN-CTE Dovecot still sends the other items",
        reason="RFC 3516 section 4.3 requires NO [UNKNOWN-CTE]; whether data "
        "for the other items comes first is not said.  asimap fails the "
        "whole FETCH before sending anything, as for any failed FETCH",
        where=r"^fetch-edge #\d+ UID FETCH 6 \(BODY\.PEEK\[2\] ",
        theirs=r"^(\* 6 FETCH|    BODY\[2.*|    UID 6)$",
    ),
    Known(
        key="header-fields-no-blank-line",
        verdict="ours-right",
        summary="HEADER.FIELDS of a message without body and blank line",
        reason="RFC 9051 section 6.4.5: the blank line is included in all "
        "header fetches except for a message that has no body and no blank "
        "line (Dovecot adds one for HEADER.FIELDS, not for .NOT)",
        where=r"^fetch-edge #\d+ UID FETCH 13 \(BODY\.PEEK\[HEADER\.FIELDS ",
        ours=r"^    BODY\[HEADER\.FIELDS ",
        theirs=r"^    BODY\[HEADER\.FIELDS ",
    ),
    Known(
        key="unfolding-keeps-whitespace",
        verdict="ours-right",
        summary="ENVELOPE keeps the whitespace of folded lines (tabs, runs)",
        reason="RFC 5322 section 2.2.3: unfolding removes only the CRLF; "
        "the whitespace that follows stays (Dovecot makes each run one space)",
        where=r" UID FETCH \d+ (\(FLAGS|ALL|FULL)",
        field_rule=_whitespace_kept,
    ),
    Known(
        key="status-nonexistent-code",
        verdict="ours-right",
        summary="STATUS of a missing mailbox says NONEXISTENT",
        reason="RFC 5530 section 3: NONEXISTENT is the response code for an "
        "operation on a mailbox that does not exist",
        where=r'^list-status #\d+ STATUS "nosuch" ',
        ours=r"^d\d+ NO \[NONEXISTENT\]$",
        theirs=r"^d\d+ NO$",
    ),
    Known(
        key="sentbefore-without-date",
        verdict="ours-right",
        summary="SENTBEFORE does not match a message without Date:",
        reason="RFC 9051 section 6.4.4: SENTBEFORE matches messages whose "
        "Date: header is earlier; a message without one has no such date "
        "(Dovecot takes it as 1970)",
        where=r"^search-edge #\d+ (UID )?SEARCH SENTBEFORE ",
        ours=r"^\* SEARCH",
        theirs=r"^\* SEARCH",
    ),
    # The RFC allows both.
    Known(
        key="binary-whole-message",
        verdict="both-allowed",
        summary="BINARY[] of a whole message: asimap sends it as stored, "
        "Dovecot decodes every part and rewrites their headers",
        reason="RFC 3516 section 4.2 defines decoding of a section's content "
        "transfer encoding; a message's header is no such content and RFC "
        "2045 section 6.4 allows only identity encodings on multiparts, so "
        "asimap applies none (BINARY[] = BODY[]); Dovecot re-encodes each "
        "part as binary, and fails the whole with UNKNOWN-CTE",
        where=r" UID FETCH \d+ \(BINARY\.SIZE\[\] BINARY\.PEEK\[\] ",
        ours=r"^(    BINARY(\.SIZE)?\[\]|d\d+ OK$)",
        theirs=r"^(    BINARY(\.SIZE)?\[\]|d\d+ NO \[UNKNOWN-CTE\]$)",
    ),
    Known(
        key="lines-of-unterminated-last-line",
        verdict="both-allowed",
        summary="a last line without CRLF counts as a line",
        reason="RFC 9051 section 7.5.2 body-fld-lines is 'the size of the "
        "body in text lines'; Dovecot counts line ends, asimap counts lines, "
        "so text that does not end in CRLF (before a boundary, whose CRLF "
        "belongs to the delimiter) is one line more",
        where=r" FETCH \d+ (\(BODYSTRUCTURE|FULL)",
        field_rule=_unterminated_last_line,
    ),
    Known(
        key="rfc2231-continuations",
        verdict="both-allowed",
        summary="RFC 2231 parameter continuations kept as sent",
        reason="RFC 9051 section 7.5.2 body-fld-param lists the parameters; "
        "joining RFC 2231 continuations is not required.  Dovecot joins "
        "'filename*0'/'filename*1' (not 'name*' with a charset); a candidate "
        "to align",
        where=r"^fetch-edge #\d+ UID FETCH 12 (\(BODYSTRUCTURE|FULL)",
        field_rule=_continuations,
    ),
    Known(
        key="search-date-in-message-zone",
        verdict="both-allowed",
        summary="ON/BEFORE/SINCE compare the date in the zone APPEND gave",
        reason="RFC 9051 section 6.4.4: the internal date 'disregarding time "
        "and timezone'; asimap keeps the zone the client gave, Dovecot "
        "shows the instant in its own zone, so the calendar date differs",
        where=r"^search-(corpus|edge) #\d+ (UID )?SEARCH (ON|BEFORE|SINCE) ",
        ours=r"^\* SEARCH",
        theirs=r"^\* SEARCH",
    ),
    Known(
        key="flags-announced-by-search",
        verdict="both-allowed",
        summary="Dovecot adds a searched-for keyword to FLAGS",
        reason="RFC 9051 section 7.3.5: FLAGS may be sent at any time; a "
        "keyword no message has need not be announced",
        where=r"^search-(corpus|edge) #\d+ SEARCH KEYWORD ",
        theirs=r"^\* (FLAGS \(.*\)|OK \[PERMANENTFLAGS \(\)\])$",
    ),
    Known(
        key="highestmodseq-after-data",
        verdict="both-allowed",
        summary="HIGHESTMODSEQ of a CONDSTORE-enabling command comes last",
        reason="RFC 7162 section 3.1 asks for OK [HIGHESTMODSEQ] before the "
        "tagged reply of the first CONDSTORE-enabling command, not before "
        "its other responses; asimap sends it just before the tagged reply, "
        "Dovecot first (issue 10 point 4, fixed: only the order differs)",
        where=r"^(condstore-implicit #2 FETCH 1 \(MODSEQ\)"
        r"|search-(corpus|edge) #\d+ SEARCH MODSEQ 1)$",
        ours=r".",
        theirs=r".",
        check=_only_reordered,
    ),
    Known(
        key="subscribe-nonexistent",
        verdict="both-allowed",
        summary="SUBSCRIBE of a mailbox that does not exist",
        reason="RFC 9051 section 6.3.7: the server MAY validate that it "
        "exists; asimap accepts it like a subscription that outlived its "
        "mailbox",
        where=r'^list-status #\d+ SUBSCRIBE "never-created"$',
        ours=r"^d\d+ OK$",
        theirs=r"^d\d+ NO$",
    ),
    Known(
        key="store-fetch-under-condstore",
        verdict="both-allowed",
        summary="STORE answers carry UID, and MODSEQ even for .SILENT",
        reason="RFC 9051 section 7.5.2 lets FETCH carry more items; RFC 7162 "
        "section 3.1.3 sends MODSEQ for a .SILENT conditional STORE, asimap "
        "does it for every STORE once CONDSTORE is on, so a client's "
        "mod-sequence cache stays exact",
        where=r"^condstore #\d+ STORE ",
        ours=r"^(\* \d+ FETCH|    UID \d+|    MODSEQ \(<modseq>\))$",
    ),
)

BY_KEY = {entry.key: entry for entry in KNOWN}
assert len(BY_KEY) == len(KNOWN), "duplicate key in KNOWN"
