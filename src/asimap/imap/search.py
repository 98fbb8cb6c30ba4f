"""SEARCH key evaluation (RFC 3501 section 6.4.4, RFC 9051 section 6.4.4).

The session builds a :class:`SearchCandidate` for each message of the
selected mailbox and asks :func:`matches` whether the parsed key accepts
it.  Only keys that look inside the message need the parsed
:class:`~asimap.message.model.Message`; :func:`needs_message` tells the
session whether to load it at all, so flag, size, date and sequence
searches never touch message files.

Semantics chosen where the RFCs leave room (all as Dovecot does):

* Flags and keywords compare case-insensitively.
* BEFORE/ON/SINCE use the date of INTERNALDATE in its own timezone, and
  SENT* the date of the Date: header in the sender's zone ("disregarding
  time and timezone"); a message without a usable Date: never matches SENT*.
* String keys are case-insensitive substring tests on decoded text
  (``casefold``, so that e.g. German sharp s matches "SS").
* SAVEDBEFORE/SAVEDON/SAVEDSINCE (RFC 8514 section 4.3) use the date of
  the save date in UTC.  A message whose save date is unknown (FETCH
  SAVEDATE answers NIL for it) matches none of them, as a message without a
  Date: matches no SENT* key: no date is invented for it.
  SAVEDATESUPPORTED matches every message, because every mailbox of ours
  keeps save dates for the messages it receives.
* EMAILID and THREADID (RFC 8474 section 6) compare the identifier
  exactly (ids are case-sensitive).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from asimap.imap.commands import (
    DateOp,
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
)
from asimap.message.envelope_addresses import (
    EnvelopeAddress,
    display_name,
    text_of,
)
from asimap.message.model import Message


@dataclass
class SearchCandidate:
    """What the session knows about one message.

    ``flags`` includes ``\\Recent`` when the message is recent for this
    session; ``message`` is loaded only when :func:`needs_message` said so.
    ``savedate`` (None: unknown), ``emailid`` and ``threadid`` are filled
    only when the key asks for them.
    """

    seq: int
    uid: int
    flags: frozenset[str]
    modseq: int
    internaldate: datetime
    size: int
    message: Message | None = None
    savedate: datetime | None = None
    emailid: str = ""
    threadid: str = ""


def needs_message(key: SearchKey) -> bool:
    """Whether evaluating ``key`` reads the message itself (headers, body
    or the Date: header) rather than only the mailbox's metadata."""
    if isinstance(key, SearchHeader | SearchText):
        return True
    if isinstance(key, SearchDate):
        return key.sent
    if isinstance(key, SearchNot):
        return needs_message(key.key)
    if isinstance(key, SearchOr):
        return needs_message(key.left) or needs_message(key.right)
    if isinstance(key, SearchAnd):
        return any(needs_message(k) for k in key.keys)
    return False


def uses_recent(key: SearchKey) -> bool:
    """Whether ``key`` tests ``\\Recent`` -- only NEW, OLD and RECENT do
    (KEYWORD takes an atom, which cannot start with a backslash).

    RFC 9051 section 6.4.4 lists no NEW, OLD or RECENT, and appendix E item
    12 deprecates them with the \\Recent flag; the session refuses them
    after ``ENABLE IMAP4rev2``.
    """
    stack: list[SearchKey] = [key]
    while stack:  # iterative: keys may nest as deep as the parser allows
        node = stack.pop()
        if isinstance(node, SearchFlag) and node.flag.casefold() == "\\recent":
            return True
        if isinstance(node, SearchNot):
            stack.append(node.key)
        elif isinstance(node, SearchOr):
            stack += [node.left, node.right]
        elif isinstance(node, SearchAnd):
            stack.extend(node.keys)
    return False


def _message(c: SearchCandidate) -> Message:
    if c.message is None:
        # A session bug, not bad input: needs_message() said to load it.
        raise ValueError(f"search needs the message of UID {c.uid}")
    return c.message


def _has_flag(flags: frozenset[str], flag: str) -> bool:
    wanted = flag.casefold()
    return any(f.casefold() == wanted for f in flags)


def _compare_date(op: DateOp, actual: date, wanted: date) -> bool:
    if op is DateOp.BEFORE:
        return actual < wanted
    if op is DateOp.ON:
        return actual == wanted
    return actual >= wanted  # SINCE: "within or later than"


def _header_matches(message: Message, key: SearchHeader) -> bool:
    values = message.header_values(key.field)
    if not key.value:
        # RFC 3501 6.4.4 HEADER: an empty string matches every message that
        # has the field.
        return bool(values)
    needle = key.value.casefold()
    if any(needle in v.casefold() for v in values):
        return True
    if key.envelope and message.may_match_addresses(needle):
        # RFC 3501/9051 6.4.4: FROM/TO/CC/BCC match "the envelope
        # structure's" field: ``name <mailbox@host>`` of each address, so
        # ``<user (comment)@ (comment) domain.org>`` is found by
        # ``user@domain.org`` as its ENVELOPE shows it.
        addresses = message.addresses(key.field.lower())
        return any(needle in text.casefold() for text in address_texts(addresses))
    return False


def address_texts(addresses: Iterable[EnvelopeAddress]) -> list[str]:
    """``name <mailbox@host>`` (``<mailbox@host>`` without a name) of each
    envelope address; a group's name for its start marker."""
    texts: list[str] = []
    for address in addresses:
        _name, _route, mailbox, host = address
        if mailbox is None:
            continue  # a group's end marker
        name = display_name(address)
        if host is None:
            texts.append(name or text_of(mailbox))  # group start: its name
            continue
        spec = f"<{text_of(mailbox)}@{text_of(host)}>"
        texts.append(f"{name} {spec}" if name else spec)
    return texts


def _text_matches(message: Message, value: str, header: bool) -> bool:
    needle = value.casefold()
    if header and needle in message.header_text().casefold():
        return True
    if needle in message.body_text().casefold():
        return True
    # RFC 9051 6.4.4: TEXT also matches the MIME header fields of parts.
    return header and needle in message.mime_header_text().casefold()


def _sequence_matches(
    key: SearchSequence,
    c: SearchCandidate,
    max_seq: int,
    max_uid: int,
    saved: Collection[int],
) -> bool:
    if key.sequence.saved:
        # RFC 5182: "$" is the saved result, kept as UIDs by the session.
        return c.uid in saved
    if key.uid:
        return key.sequence.contains(c.uid, max_uid)
    return key.sequence.contains(c.seq, max_seq)


def matches(
    key: SearchKey,
    c: SearchCandidate,
    *,
    max_seq: int,
    max_uid: int,
    saved: Collection[int] = (),
) -> bool:
    """Whether message ``c`` satisfies ``key``.

    ``max_seq`` / ``max_uid`` are what ``*`` means in sequence sets (the
    highest sequence number and UID of the mailbox, RFC 3501 section 9);
    ``saved`` holds the UIDs of the SEARCHRES saved result (RFC 5182).
    """
    if isinstance(key, SearchAll):
        return True
    if isinstance(key, SearchFlag):
        return _has_flag(c.flags, key.flag) == key.set
    if isinstance(key, SearchSize):
        # LARGER / SMALLER are strict: "larger than", "smaller than".
        return c.size > key.size if key.larger else c.size < key.size
    if isinstance(key, SearchDate):
        if key.sent:
            sent = _message(c).sent_date()
            return sent is not None and _compare_date(key.op, sent, key.date)
        return _compare_date(key.op, c.internaldate.date(), key.date)
    if isinstance(key, SearchSaveDate):
        stamp = c.savedate
        return stamp is not None and _compare_date(key.op, stamp.date(), key.date)
    if isinstance(key, SearchSaveDateSupported):
        return True
    if isinstance(key, SearchObjectId):
        actual = c.emailid if key.item == "EMAILID" else c.threadid
        return actual == key.value
    if isinstance(key, SearchHeader):
        return _header_matches(_message(c), key)
    if isinstance(key, SearchText):
        return _text_matches(_message(c), key.value, key.header)
    if isinstance(key, SearchSequence):
        return _sequence_matches(key, c, max_seq, max_uid, saved)
    if isinstance(key, SearchModseq):
        # RFC 7162 3.1.5: messages whose mod-sequence is >= the value.
        return c.modseq >= key.modseq
    if isinstance(key, SearchNot):
        return not matches(key.key, c, max_seq=max_seq, max_uid=max_uid, saved=saved)
    if isinstance(key, SearchOr):
        return matches(
            key.left, c, max_seq=max_seq, max_uid=max_uid, saved=saved
        ) or matches(key.right, c, max_seq=max_seq, max_uid=max_uid, saved=saved)
    return all(
        matches(k, c, max_seq=max_seq, max_uid=max_uid, saved=saved) for k in key.keys
    )
