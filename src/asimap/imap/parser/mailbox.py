"""Commands about mailboxes (RFC 3501 sections 6.3.1-6.3.10, 6.4.7).

SELECT / EXAMINE parameters follow RFC 7162 sections 3.1.8 and 3.2.5
(CONDSTORE, QRESYNC); CREATE's USE parameter follows RFC 6154 section 5.2;
STATUS items include RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE, RFC 7889
APPENDLIMIT, RFC 8474 MAILBOXID and RFC 9051 DELETED.
"""

from __future__ import annotations

import re

from asimap.imap.commands import (
    Copy,
    Create,
    Delete,
    Move,
    QresyncParams,
    Rename,
    Select,
    SequenceSet,
    Status,
    Subscribe,
    Unsubscribe,
)
from asimap.imap.parser.sequence import parse_sequence_set
from asimap.imap.parser.tokens import (
    ATOM_CLASS,
    LPAREN,
    MAX_NUMBER64,
    RPAREN,
    Reader,
    fail,
)

STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "RECENT",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "DELETED-STORAGE",  # RFC 9208 section 4.2.2
        "SIZE",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
        "MAILBOXID",
    }
)

_USE_ATTR_RE = re.compile(rb"\\[" + ATOM_CLASS + rb"]+")


def _single_mailbox(reader: Reader) -> bytes:
    reader.space()
    mailbox = reader.mailbox()
    reader.expect_end()
    return mailbox


def parse_delete(reader: Reader, tag: str, uid: bool) -> Delete:
    return Delete(tag, _single_mailbox(reader))


def parse_subscribe(reader: Reader, tag: str, uid: bool) -> Subscribe:
    return Subscribe(tag, _single_mailbox(reader))


def parse_unsubscribe(reader: Reader, tag: str, uid: bool) -> Unsubscribe:
    return Unsubscribe(tag, _single_mailbox(reader))


def parse_rename(reader: Reader, tag: str, uid: bool) -> Rename:
    reader.space()
    old = reader.mailbox()
    reader.space()
    new = reader.mailbox()
    reader.expect_end()
    return Rename(tag, old, new)


def _qresync(reader: Reader) -> QresyncParams:
    """ "(" uidvalidity SP mod-sequence-value [SP known-uids]
    [SP seq-match-data] ")"  (RFC 7162 section 3.2.5)."""
    reader.open_paren()
    uidvalidity = reader.nz_number("UIDVALIDITY")
    reader.space()
    # mod-sequence-value is positive, but clients with an empty cache send
    # 0; accepting it does no harm (everything is newer than 0).
    modseq = reader.number("MODSEQ", MAX_NUMBER64)
    known: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    if reader.try_space():
        if reader.peek() != LPAREN:
            known = parse_sequence_set(reader)
            if reader.try_space():
                match = _seq_match(reader)
        else:
            match = _seq_match(reader)
    reader.close_paren()
    return QresyncParams(uidvalidity, modseq, known, match)


def _seq_match(reader: Reader) -> tuple[SequenceSet, SequenceSet]:
    reader.open_paren()
    sequences = parse_sequence_set(reader)
    reader.space()
    uids = parse_sequence_set(reader)
    reader.close_paren()
    return sequences, uids


def _select(reader: Reader, tag: str, readonly: bool) -> Select:
    reader.space()
    mailbox = reader.mailbox()
    condstore = False
    qresync: QresyncParams | None = None
    if reader.try_space():
        # select-params = SP "(" select-param *(SP select-param) ")"
        reader.open_paren()
        while True:
            word = reader.keyword("SELECT parameter")
            if word == "CONDSTORE" and not condstore:
                condstore = True
            elif word == "QRESYNC" and qresync is None:
                reader.space()
                qresync = _qresync(reader)
            else:
                fail(f"Unknown or repeated SELECT parameter {word[:40]}")
            if reader.peek() == RPAREN:
                reader.pos += 1
                break
            reader.space()
    reader.expect_end()
    return Select(tag, mailbox, readonly, condstore, qresync)


def parse_select(reader: Reader, tag: str, uid: bool) -> Select:
    return _select(reader, tag, False)


def parse_examine(reader: Reader, tag: str, uid: bool) -> Select:
    return _select(reader, tag, True)


def parse_create(reader: Reader, tag: str, uid: bool) -> Create:
    """create = "CREATE" SP mailbox [SP "(" "USE" SP "(" use-attrs ")" ")"]."""
    reader.space()
    mailbox = reader.mailbox()
    uses: list[str] = []
    if reader.try_space():
        reader.open_paren()
        if reader.keyword("CREATE parameter") != "USE":
            fail("Unknown CREATE parameter")
        reader.space()
        reader.open_paren()
        while reader.peek() != RPAREN:
            if uses:
                reader.space()
            raw = reader.match(_USE_ATTR_RE)
            if raw is None:
                fail("Invalid special-use attribute")
            uses.append(raw.decode("ascii"))
            if len(uses) > reader.limits.max_items:
                fail("Too many special-use attributes")
        reader.pos += 1
        reader.close_paren()
    reader.expect_end()
    return Create(tag, mailbox, tuple(uses))


def parse_status(reader: Reader, tag: str, uid: bool) -> Status:
    """status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"."""
    reader.space()
    mailbox = reader.mailbox()
    reader.space()
    items = parse_status_items(reader)
    reader.expect_end()
    return Status(tag, mailbox, items)


def parse_status_items(reader: Reader) -> tuple[str, ...]:
    reader.open_paren()
    items: list[str] = []
    while True:
        item = reader.keyword("STATUS item")
        if item not in STATUS_ITEMS:
            fail(f"Unknown STATUS item {item[:40]}")
        items.append(item)
        if len(items) > reader.limits.max_items:
            fail("Too many STATUS items")
        if reader.peek() == RPAREN:
            reader.pos += 1
            return tuple(items)
        reader.space()


def _transfer(reader: Reader) -> tuple[SequenceSet, bytes]:
    reader.space()
    sequence = parse_sequence_set(reader)
    reader.space()
    mailbox = reader.mailbox()
    reader.expect_end()
    return sequence, mailbox


def parse_copy(reader: Reader, tag: str, uid: bool) -> Copy:
    sequence, mailbox = _transfer(reader)
    return Copy(tag, sequence, mailbox, uid)


def parse_move(reader: Reader, tag: str, uid: bool) -> Move:
    """RFC 6851 section 3: move = ["UID" SP] "MOVE" SP sequence-set SP mailbox."""
    sequence, mailbox = _transfer(reader)
    return Move(tag, sequence, mailbox, uid)
