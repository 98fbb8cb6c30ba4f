"""Typed IMAP commands: what the parser produces and the session consumes.

Every client command of RFC 3501 and RFC 9051 (plus the extensions we speak)
becomes one frozen dataclass below.  The parser never hands the session raw
bytes to interpret, and the session never looks at wire syntax: this module is
the whole contract between the two.

Conventions:

* ``tag`` is the client's tag, kept as ``str`` (tags are ASCII atoms).
* Mailbox names are ``bytes`` exactly as the client sent them (after astring
  decoding).  Whether they are modified UTF-7 (IMAP4rev1) or UTF-8
  (IMAP4rev2 / UTF8=ACCEPT) depends on session state, so the session decodes
  them (``asimap.imap.mutf7``).
* Flags are ``str``: system flags keep their backslash (``"\\Seen"``),
  keywords are atoms.  Case is preserved as sent; the session normalises.
* Sequence sets are :class:`SequenceSet`; whether they name sequence numbers
  or UIDs is given by the command's ``uid`` field.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

# --------------------------------------------------------------------------
# Sequence sets (RFC 3501 section 9 "sequence-set", RFC 5182 "$")
# --------------------------------------------------------------------------

#: ``*`` in a sequence set: "the largest number in use" (RFC 3501 section 9).
STAR = 0


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed sequence set.

    ``ranges`` holds ``(low, high)`` pairs as written; either end may be
    :data:`STAR`.  ``1:4294967295`` stays two integers: nothing is ever
    expanded into a list, so a huge range on an empty mailbox costs nothing.
    ``saved`` is true for ``$`` (SEARCHRES, RFC 5182), in which case
    ``ranges`` is empty and the session substitutes its saved result.
    """

    ranges: tuple[tuple[int, int], ...]
    saved: bool = False

    def bounds(self, largest: int) -> Iterator[tuple[int, int]]:
        """Yield each range as ordered ``(low, high)`` with ``*`` replaced.

        RFC 3501 section 9: ``*`` is the largest number in use; ``a:b`` and
        ``b:a`` are the same range.
        """
        for low, high in self.ranges:
            lo = largest if low == STAR else low
            hi = largest if high == STAR else high
            if lo > hi:
                lo, hi = hi, lo
            yield lo, hi

    def select(self, sorted_values: Sequence[int]) -> list[int]:
        """Return the members of ``sorted_values`` that the set names.

        ``*`` resolves to the last (largest) value.  Uses bisection per range,
        so the cost is proportional to the answer, not to the ranges' width.
        The result is sorted and free of duplicates.
        """
        if not sorted_values:
            return []
        largest = sorted_values[-1]
        picked: set[int] = set()
        for lo, hi in self.bounds(largest):
            start = bisect.bisect_left(sorted_values, lo)
            end = bisect.bisect_right(sorted_values, hi)
            picked.update(sorted_values[start:end])
        return sorted(picked)

    def contains(self, value: int, largest: int) -> bool:
        """Whether ``value`` is named by the set when ``*`` is ``largest``."""
        return any(lo <= value <= hi for lo, hi in self.bounds(largest))

    def max_explicit(self) -> int:
        """The largest number written explicitly (``*`` excluded), or 0."""
        return max((n for r in self.ranges for n in r if n != STAR), default=0)


# --------------------------------------------------------------------------
# FETCH attributes (RFC 3501 section 6.4.5, RFC 9051 section 6.4.5,
# RFC 3516 BINARY, RFC 7162 MODSEQ, RFC 8970 PREVIEW, RFC 8474 OBJECTID)
# --------------------------------------------------------------------------


class SectionText(enum.Enum):
    """The textual part of a section specifier (RFC 3501 ``section-text``)."""

    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"


@dataclass(frozen=True, slots=True)
class Section:
    """A body section: ``BODY[1.2.HEADER.FIELDS (From To)]``.

    ``part`` is the dotted part path (empty for the whole message);
    ``text`` is None for ``BODY[]`` / ``BODY[1.2]``; ``fields`` are the header
    field names for HEADER.FIELDS(.NOT), as sent (case preserved).
    """

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Partial:
    """``<start.length>`` of a FETCH body item (length None only in the echo)."""

    start: int
    length: int


class FetchKind(enum.Enum):
    """Every FETCH data item name (macros are expanded by the parser)."""

    UID = "UID"
    FLAGS = "FLAGS"
    INTERNALDATE = "INTERNALDATE"
    RFC822_SIZE = "RFC822.SIZE"
    ENVELOPE = "ENVELOPE"
    BODY = "BODY"  # non-extensible BODYSTRUCTURE, no section
    BODYSTRUCTURE = "BODYSTRUCTURE"
    BODY_SECTION = "BODY[]"  # BODY[section]<partial> and BODY.PEEK[...]
    BINARY = "BINARY"  # BINARY[section]<partial> and BINARY.PEEK
    BINARY_SIZE = "BINARY.SIZE"
    RFC822 = "RFC822"  # same as BODY[], sets \Seen
    RFC822_HEADER = "RFC822.HEADER"  # same as BODY.PEEK[HEADER]
    RFC822_TEXT = "RFC822.TEXT"  # same as BODY[TEXT], sets \Seen
    MODSEQ = "MODSEQ"  # RFC 7162
    PREVIEW = "PREVIEW"  # RFC 8970
    SAVEDATE = "SAVEDATE"  # RFC 8514
    EMAILID = "EMAILID"  # RFC 8474
    THREADID = "THREADID"  # RFC 8474


@dataclass(frozen=True, slots=True)
class FetchAtt:
    """One FETCH data item.

    ``section`` and ``partial`` apply to BODY_SECTION, BINARY and
    BINARY_SIZE (BINARY uses only ``section.part``).  ``peek`` is true for
    ``BODY.PEEK`` / ``BINARY.PEEK`` (no implicit ``\\Seen``).  ``lazy`` is
    true for ``PREVIEW (LAZY)`` (RFC 8970 section 3.2: the server may answer
    NIL rather than do expensive work).
    """

    kind: FetchKind
    section: Section | None = None
    partial: Partial | None = None
    peek: bool = False
    lazy: bool = False


# --------------------------------------------------------------------------
# SEARCH keys (RFC 3501 section 6.4.4, RFC 9051 section 6.4.4, RFC 7162)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchAll:
    """``ALL``."""


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """A flag test.

    ANSWERED/DELETED/DRAFT/FLAGGED/SEEN/RECENT give ``set=True`` with the
    system flag; the UN- forms give ``set=False``.  KEYWORD/UNKEYWORD give the
    keyword.  NEW is ``SearchAnd((Recent, not Seen))``; OLD is ``not Recent``
    (the parser expands them).
    """

    flag: str
    set: bool = True


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """``HEADER field value``; FROM/TO/CC/BCC/SUBJECT map onto this too.

    Matching is a case-insensitive substring test on the decoded field
    value; an empty ``value`` matches any message that has the field.
    ``envelope`` marks FROM/TO/CC/BCC, which also match the envelope's
    addresses (RFC 3501/9051 section 6.4.4).
    """

    field: str
    value: str
    envelope: bool = False


@dataclass(frozen=True, slots=True)
class SearchText:
    """``BODY value`` (``header=False``) or ``TEXT value`` (``header=True``)."""

    value: str
    header: bool


class DateOp(enum.Enum):
    BEFORE = "BEFORE"
    ON = "ON"
    SINCE = "SINCE"


@dataclass(frozen=True, slots=True)
class SearchDate:
    """BEFORE/ON/SINCE (``sent=False``, INTERNALDATE) and SENT* (Date:)."""

    op: DateOp
    date: date
    sent: bool


@dataclass(frozen=True, slots=True)
class SearchSaveDate:
    """SAVEDBEFORE/SAVEDON/SAVEDSINCE (RFC 8514 section 4.3): the date the
    message was saved into the mailbox, disregarding time and timezone."""

    op: DateOp
    date: date


@dataclass(frozen=True, slots=True)
class SearchSaveDateSupported:
    """``SAVEDATESUPPORTED`` (RFC 8514 section 4.3): every message when the
    mailbox keeps save dates, none otherwise."""


@dataclass(frozen=True, slots=True)
class SearchObjectId:
    """``EMAILID objectid`` / ``THREADID objectid`` (RFC 8474 section 6);
    ``item`` is ``"EMAILID"`` or ``"THREADID"``."""

    item: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchSize:
    """``LARGER n`` (``larger=True``) or ``SMALLER n``."""

    size: int
    larger: bool


@dataclass(frozen=True, slots=True)
class SearchSequence:
    """A bare sequence set (``uid=False``) or ``UID set`` (``uid=True``)."""

    sequence: SequenceSet
    uid: bool


@dataclass(frozen=True, slots=True)
class SearchModseq:
    """``MODSEQ [entry type] n`` (RFC 7162 section 3.1.5): modseq >= n."""

    modseq: int
    entry: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class SearchNot:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """A parenthesised list, or the implicit AND of the top-level keys."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    SearchAll
    | SearchFlag
    | SearchHeader
    | SearchText
    | SearchDate
    | SearchSaveDate
    | SearchSaveDateSupported
    | SearchObjectId
    | SearchSize
    | SearchSequence
    | SearchModseq
    | SearchNot
    | SearchOr
    | SearchAnd
)


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command: the client's tag."""

    tag: str


# Any state (RFC 3501 section 6.1)


@dataclass(frozen=True, slots=True)
class Capability(Command):
    pass


@dataclass(frozen=True, slots=True)
class Noop(Command):
    pass


@dataclass(frozen=True, slots=True)
class Logout(Command):
    pass


@dataclass(frozen=True, slots=True)
class Id(Command):
    """RFC 2971 ID: ``None`` for ``ID NIL``; values may be None (NIL)."""

    parameters: tuple[tuple[str, str | None], ...] | None


# Not authenticated state (RFC 3501 section 6.2)


@dataclass(frozen=True, slots=True)
class StartTLS(Command):
    pass


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """AUTHENTICATE mechanism [initial-response] (RFC 4959 SASL-IR).

    ``initial_response`` is the still base64-encoded response as sent
    (``b"="`` means an empty response); None when absent.
    """

    mechanism: str
    initial_response: bytes | None = None


@dataclass(frozen=True, slots=True)
class Login(Command):
    username: bytes
    password: bytes


# Authenticated state (RFC 3501 section 6.3)


@dataclass(frozen=True, slots=True)
class Enable(Command):
    """RFC 5161 ENABLE: capability names, upper-cased by the parser."""

    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Select(Command):
    """SELECT, or EXAMINE when ``readonly``.

    ``condstore`` is the ``(CONDSTORE)`` parameter (RFC 7162 section 3.1.8);
    ``qresync`` is ``(uidvalidity modseq [known-uids [seq-match]])``
    (RFC 7162 section 3.2.5) as given.
    """

    mailbox: bytes
    readonly: bool = False
    condstore: bool = False
    qresync: QresyncParams | None = None


@dataclass(frozen=True, slots=True)
class QresyncParams:
    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class Create(Command):
    """CREATE, with RFC 6154 ``(USE (\\Sent ...))`` when given."""

    mailbox: bytes
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete(Command):
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class Rename(Command):
    old: bytes
    new: bytes


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class Unsubscribe(Command):
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class List(Command):
    """LIST, plain or extended (RFC 5258, RFC 5819, RFC 6154).

    ``patterns`` has one element for the basic form.  Options are
    upper-cased atoms; ``return_status`` holds the STATUS items of
    ``RETURN (STATUS (...))``.
    """

    reference: bytes
    patterns: tuple[bytes, ...]
    select_options: tuple[str, ...] = ()
    return_options: tuple[str, ...] = ()
    return_status: tuple[str, ...] = ()
    #: True for any extended form (options, even empty ones, or a
    #: parenthesised pattern list): RFC 5258 section 3 then forbids the
    #: empty-pattern "return the delimiter" special case.  Not compared, so
    #: ``List(tag, ref, pats)`` still equals a parsed basic LIST.
    extended: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class Lsub(Command):
    reference: bytes
    pattern: bytes


@dataclass(frozen=True, slots=True)
class Namespace(Command):
    pass


@dataclass(frozen=True, slots=True)
class Status(Command):
    """STATUS mailbox (items); items upper-cased (MESSAGES, UIDNEXT, ...)."""

    mailbox: bytes
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CatenateUrl:
    """A CATENATE ``URL`` part (RFC 4469 section 5): an IMAP URL, as sent."""

    url: bytes


@dataclass(frozen=True, slots=True)
class CatenateText:
    """A CATENATE ``TEXT`` part: literal bytes (RFC 4469 section 5), or
    ``UTF8 (~{n}...)`` with UTF8=ACCEPT (RFC 6855 section 4)."""

    data: bytes
    utf8: bool = False


CatenatePart = CatenateUrl | CatenateText


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of APPEND (several with MULTIAPPEND, RFC 3502).

    ``data`` is the literal's bytes exactly as received.  ``binary`` is true
    for a ``~{n}`` literal8 (RFC 3516).  ``utf8`` marks RFC 6855 section
    4's ``UTF8 (~{n}...)`` form.  ``catenate`` holds the parts of RFC
    4469's ``CATENATE (...)`` form (``data`` is then empty: the message is
    assembled by the session).
    """

    data: bytes
    flags: tuple[str, ...] = ()
    internaldate: datetime | None = None
    binary: bool = False
    utf8: bool = False
    catenate: tuple[CatenatePart, ...] | None = None


@dataclass(frozen=True, slots=True)
class Append(Command):
    mailbox: bytes
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Idle(Command):
    """RFC 2177 IDLE; the driver reads ``DONE`` as a raw line."""


# Selected state (RFC 3501 section 6.4)


@dataclass(frozen=True, slots=True)
class Check(Command):
    pass


@dataclass(frozen=True, slots=True)
class Close(Command):
    pass


@dataclass(frozen=True, slots=True)
class Unselect(Command):
    pass


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """EXPUNGE, or ``UID EXPUNGE set`` (RFC 4315) when ``uids`` is given."""

    uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class PartialRange:
    """``PARTIAL first:last`` (RFC 9394 section 4, partial-range).

    Both positive (positions counted from the first result, 1-based) or
    both negative (``-1`` is the last result).  Kept as the client wrote
    it, because the ESEARCH answer echoes the requested range; ``500:400``
    means the same as ``400:500``.
    """

    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Search(Command):
    """SEARCH / UID SEARCH.

    ``charset`` is upper-cased or None.  ``return_options`` is None for the
    classic form and a tuple (possibly empty) for ``RETURN (...)`` (RFC 4731
    ESEARCH, RFC 5182 SAVE); ``partial`` is the range of ``RETURN (PARTIAL
    range)`` (RFC 9394), whose name is then among the options.
    """

    key: SearchKey
    uid: bool = False
    charset: str | None = None
    return_options: tuple[str, ...] | None = None
    partial: PartialRange | None = None


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    """FETCH / UID FETCH.

    ``changed_since`` and ``vanished`` are the RFC 7162 modifiers, and
    ``partial`` the RFC 9394 one (UID FETCH only).  ``macro`` names the
    macro used (ALL / FAST / FULL), for logging only; ``items`` is already
    expanded.
    """

    sequence: SequenceSet
    items: tuple[FetchAtt, ...]
    uid: bool = False
    changed_since: int | None = None
    vanished: bool = False
    macro: str | None = None
    partial: PartialRange | None = None


class StoreMode(enum.Enum):
    REPLACE = ""  # FLAGS
    ADD = "+"  # +FLAGS
    REMOVE = "-"  # -FLAGS


@dataclass(frozen=True, slots=True)
class Store(Command):
    """STORE / UID STORE, with ``(UNCHANGEDSINCE n)`` (RFC 7162)."""

    sequence: SequenceSet
    mode: StoreMode
    flags: tuple[str, ...]
    silent: bool = False
    uid: bool = False
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True)
class Copy(Command):
    sequence: SequenceSet
    mailbox: bytes
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Move(Command):
    """RFC 6851 MOVE / UID MOVE."""

    sequence: SequenceSet
    mailbox: bytes
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Sort(Command):
    """RFC 5256 SORT; criteria upper-cased, ``REVERSE`` kept as its own item."""

    criteria: tuple[str, ...]
    charset: str
    key: SearchKey
    uid: bool = False
    return_options: tuple[str, ...] | None = None
    partial: PartialRange | None = None  # RFC 9394, in sort order


@dataclass(frozen=True, slots=True)
class Thread(Command):
    """RFC 5256 THREAD."""

    algorithm: str
    charset: str
    key: SearchKey
    uid: bool = False


@dataclass(frozen=True, slots=True)
class CancelUpdate(Command):
    """RFC 5267 section 4.3.5: stop the updates of the searching commands
    tagged ``tags`` (unique, in the order given)."""

    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unauthenticate(Command):
    """RFC 8437 UNAUTHENTICATE."""


@dataclass(frozen=True, slots=True)
class Compress(Command):
    """RFC 4978 COMPRESS mechanism."""

    mechanism: str


@dataclass(frozen=True, slots=True)
class GetMetadata(Command):
    """RFC 5464 section 4.2: GETMETADATA [options] mailbox entries.

    ``entries`` are the entry names as sent (ASCII, validated by the
    parser); ``maxsize`` is the MAXSIZE option, ``depth`` the DEPTH option
    (``0``, ``1`` or ``-1`` for ``infinity``).
    """

    mailbox: bytes
    entries: tuple[str, ...]
    maxsize: int | None = None
    depth: int = 0


@dataclass(frozen=True, slots=True)
class SetMetadata(Command):
    """RFC 5464 section 4.3: SETMETADATA mailbox (entry value ...).

    A value of None (NIL) removes the entry.
    """

    mailbox: bytes
    values: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """One ``(filter-mailboxes events)`` of NOTIFY SET (RFC 5465 section 8).

    ``filter`` is upper-case (``SELECTED``, ``SELECTED-DELAYED``,
    ``INBOXES``, ``PERSONAL``, ``SUBSCRIBED``, ``SUBTREE``, ``MAILBOXES``);
    ``mailboxes`` are the names given to SUBTREE and MAILBOXES; ``events``
    use the RFC's spelling for known events (``MessageNew``...) and the
    client's for unknown ones (answered ``NO [BADEVENT]``), empty for
    ``NONE``; ``fetch_atts`` are MessageNew's attributes (SELECTED only).
    """

    filter: str
    mailboxes: tuple[bytes, ...]
    events: tuple[str, ...]
    fetch_atts: tuple[FetchAtt, ...] = ()


@dataclass(frozen=True, slots=True)
class Notify(Command):
    """RFC 5465 section 3.1: ``NOTIFY NONE`` (``groups`` None) or
    ``NOTIFY SET [STATUS] groups``."""

    groups: tuple[NotifyGroup, ...] | None
    status: bool = False


@dataclass(frozen=True, slots=True)
class GetQuota(Command):
    """RFC 9208 section 4.1.1: GETQUOTA quota-root-name."""

    root: bytes


@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Command):
    """RFC 9208 section 4.1.2: GETQUOTAROOT mailbox."""

    mailbox: bytes


@dataclass(frozen=True, slots=True)
class SetQuota(Command):
    """RFC 9208 section 4.1.3: SETQUOTA quota-root-name (resource limit ...).

    ``limits`` are ``(resource name upper-cased, limit)`` pairs.
    """

    root: bytes
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Replace(Command):
    """RFC 8508 section 6: [UID] REPLACE seq-number mailbox append-message.

    ``number`` is a sequence number (a UID with ``uid``), :data:`STAR`
    for ``*``.
    """

    number: int
    mailbox: bytes
    message: AppendMessage
    uid: bool = False


@dataclass(frozen=True, slots=True)
class ParseError:
    """A command that could not be parsed: answered with a tagged BAD.

    ``tag`` is None when not even a tag could be read (answered with an
    untagged ``* BAD``).  ``message`` is safe to echo (ASCII, no CR/LF).
    """

    tag: str | None
    message: str
    command: str | None = None
