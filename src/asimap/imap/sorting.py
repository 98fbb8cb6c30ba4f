"""SORT criteria and base-subject extraction (RFC 5256, RFC 5957), pure.

The session finds messages with SEARCH, hands each as a
:class:`SortItem` built from the store's cached summary, and gets them
back in order; nothing here reads a message file, so SORT over 100,000
messages costs one pass over cached header fields.

Comparisons use the i;unicode-casemap collation (RFC 5051 section 2):
each character is mapped to its titlecase form and the result decomposed
(NFKD) -- so letters compare as capitals, and ``_`` sorts *after* them, as
in Dovecot (``str.casefold`` would put it before).
Messages equal on every criterion stay in ascending sequence order (RFC
5256 section 3, last paragraph), whatever REVERSE says.

Every derived key (sent date, base subject, first address, Message-IDs)
is computed at most once per message: it is kept in the item's ``memo``,
which the session shares between the items it builds for the same UID
across commands, so a repeated SORT or THREAD only sorts (design.md section
8: nothing recomputed on hot paths).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from asimap.message.envelope_addresses import (
    EnvelopeAddress,
    display_name,
    first_wire_address,
    text_of,
)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SortItem:
    """What SORT and THREAD know about one message found by SEARCH."""

    seq: int
    uid: int
    modseq: int
    size: int
    internaldate: datetime
    headers: Mapping[str, tuple[str, ...]]
    #: The ENVELOPE as the summary caches it (wire bytes): the address keys
    #: come from it, so SORT sees the addresses FETCH ENVELOPE reports.
    envelope: bytes = b""
    #: Keys derived from the fields above, by name (see :func:`memoized`);
    #: never part of equality, shared by items of the same UID.
    memo: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def header(self, name: str) -> str:
        """The first value of a (lower-case) summary field, or ""."""
        values = self.headers.get(name, ())
        return values[0] if values else ""


def memoized(item: SortItem, name: str, compute: Callable[[SortItem], _T]) -> _T:
    """``compute(item)``, computed once per message and kept in its memo."""
    try:
        return item.memo[name]  # type: ignore[return-value]
    except KeyError:
        value = item.memo[name] = compute(item)
        return value


# -- base subject (RFC 5256 section 2.1) -------------------------------------

_WSP_RUN = re.compile(r"[ \t\r\n]+")
_TRAILER = re.compile(r"(?:\(fwd\)|[ \t])$", re.IGNORECASE)
_BLOB = r"\[[^\[\]]*\][ \t]*"
# subj-leader = (*subj-blob subj-refwd) / WSP
_REFWD = re.compile(rf"^(?:{_BLOB})*(?:re|fwd?)[ \t]*(?:{_BLOB})?:", re.IGNORECASE)
_LEADING_WSP = re.compile(r"^[ \t]+")
_LEADING_BLOB = re.compile(rf"^{_BLOB}")


def base_subject(subject: str) -> tuple[str, bool]:
    """``(base subject, was it a reply or forward)``, RFC 5256 2.1 steps.

    ``subject`` is already decoded (step 1's encoded-word conversion is
    done by the message model when the summary is built).
    """
    text = _WSP_RUN.sub(" ", subject)  # step 1: whitespace to single spaces
    reply = False
    while True:
        # Step 2: strip trailing "(fwd)" and whitespace, repeatedly.
        while (m := _TRAILER.search(text)) is not None:
            if m.group(0).lower() == "(fwd)":
                reply = True
            text = text[: m.start()]
        # Steps 3-5: strip leaders ("Re:", "[list] Fwd:", WSP) and blobs.
        while True:
            before = text
            while True:
                m = _REFWD.match(text)
                if m is not None:
                    reply = True
                    text = text[m.end() :]
                    continue
                m = _LEADING_WSP.match(text)
                if m is not None:
                    text = text[m.end() :]
                    continue
                break
            m = _LEADING_BLOB.match(text)
            if m is not None and text[m.end() :]:
                text = text[m.end() :]  # step 4: only if something remains
            if text == before:
                break
        # Step 6: "[fwd: subject]" wraps a forwarded subject.
        if text[:5].lower() == "[fwd:" and text.endswith("]"):
            text = text[5:-1]
            reply = True
            continue
        return text, reply


# -- sort keys (RFC 5256 section 3, RFC 5957 section 3) ----------------------


def casemap(text: str) -> str:
    """The i;unicode-casemap key of ``text`` (RFC 5051 section 2 steps
    1-2: simple titlecase mapping per character, then NFKD)."""
    if text.isascii():
        return text.upper()  # titlecase is uppercase in ASCII; NFKD a no-op
    mapped = "".join(
        titled if len(titled := char.title()) == 1 else char for char in text
    )
    return unicodedata.normalize("NFKD", mapped)


def _first_address(item: SortItem, field: str) -> EnvelopeAddress | None:
    """The first address of an envelope field, a group marker included.

    Read from the ENVELOPE (:mod:`~asimap.message.envelope_addresses`),
    never by parsing the decoded header again: an encoded-word display
    name may decode to a comma, and ``email.utils`` drops groups, both of
    which made SORT disagree with ENVELOPE.
    """
    return first_wire_address(item.envelope, field) if item.envelope else None


def _mailbox(item: SortItem, field: str) -> str:
    """FROM/TO/CC (RFC 5256 section 3): the addr-mailbox of the first
    address -- for ``Cc: user2: blah@domain1.org;`` the group marker's,
    ``user2``; empty when there is no address."""
    address = _first_address(item, field)
    return casemap(text_of(address[2])) if address is not None else ""


def _display(item: SortItem, field: str) -> str:
    """DISPLAYFROM/DISPLAYTO (RFC 5957 section 3): the display name with
    RFC 2047 decoded; when it is absent or empty, ``mailbox@host``; for a
    group marker (no host), its addr-mailbox, the group's name; else ""."""
    address = _first_address(item, field)
    if address is None:
        return ""
    name = display_name(address)
    if name:
        return casemap(name)
    _name, _route, mailbox, host = address
    if mailbox is not None and host is not None:
        return casemap(f"{text_of(mailbox)}@{text_of(host)}")
    return casemap(text_of(mailbox))


def sent_datetime(item: SortItem) -> datetime:
    """The Date: field in UTC; INTERNALDATE when it is missing or broken
    (RFC 5256 section 3 DATE, and section 2.2 for THREAD)."""
    return memoized(item, "sent", _sent_datetime)


def subject_key(item: SortItem) -> tuple[str, bool]:
    """The folded base subject and whether the subject was a reply or
    forward (RFC 5256 section 2.1; SUBJECT sorts, threads by subject)."""

    def compute(item: SortItem) -> tuple[str, bool]:
        text, reply = base_subject(item.header("subject"))
        return casemap(text), reply

    return memoized(item, "subject", compute)


def _sent_datetime(item: SortItem) -> datetime:
    value = item.header("date")
    if value:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)  # "-0000": unknown zone
            return parsed.astimezone(UTC)
    return item.internaldate.astimezone(UTC)


_KEYS: dict[str, Callable[[SortItem], object]] = {
    "ARRIVAL": lambda item: item.internaldate.astimezone(UTC),
    "CC": lambda item: memoized(item, "cc", lambda i: _mailbox(i, "cc")),
    "DATE": sent_datetime,
    "FROM": lambda item: memoized(item, "from", lambda i: _mailbox(i, "from")),
    "SIZE": lambda item: item.size,
    "SUBJECT": lambda item: subject_key(item)[0],
    "TO": lambda item: memoized(item, "to", lambda i: _mailbox(i, "to")),
    "DISPLAYFROM": lambda item: memoized(
        item, "displayfrom", lambda i: _display(i, "from")
    ),
    "DISPLAYTO": lambda item: memoized(item, "displayto", lambda i: _display(i, "to")),
}

#: Every criterion :func:`sort_items` understands (besides REVERSE).
CRITERIA = frozenset(_KEYS)


def sort_items(items: Sequence[SortItem], criteria: Sequence[str]) -> list[SortItem]:
    """``items`` in the order ``criteria`` asks (RFC 5256 section 3).

    ``criteria`` is the parsed list, ``REVERSE`` standing before the
    criterion it reverses.  Stable sorts from the last criterion to the
    first after a sort by sequence number give each criterion its own
    direction and leave exact ties in ascending sequence order.
    """
    pairs: list[tuple[str, bool]] = []
    reverse = False
    for word in criteria:
        if word == "REVERSE":
            reverse = True
            continue
        pairs.append((word, reverse))
        reverse = False
    ordered = sorted(items, key=lambda item: item.seq)
    for name, descending in reversed(pairs):
        key = _KEYS[name]
        ordered.sort(key=key, reverse=descending)  # type: ignore[arg-type]
    return ordered
