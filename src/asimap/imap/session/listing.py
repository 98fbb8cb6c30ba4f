"""Which mailboxes a LIST returns, with which attributes (pure logic).

Kept apart from the handler so that the rules of RFC 5258 (LIST-EXTENDED)
can be read, and tested, without a session or a store: the input is the
store's :class:`~asimap.store.base.MailboxEntry` tuple, the output the
lines to send.

The rules, in the words of RFC 5258:

* A name is *matched* when it matches at least one of the canonical LIST
  patterns (section 3); each name is listed at most once (section 3.3.1).
* It is *selected* when it also satisfies every selection option
  (section 3): none -- the mailbox exists; ``SUBSCRIBED`` -- the name is
  subscribed, existing or not (section 3.1); ``SPECIAL-USE`` -- the
  mailbox has a special-use attribute (RFC 6154 section 2); ``REMOTE`` --
  no effect, we have no remote mailboxes.
* With ``RECURSIVEMATCH`` (section 3.1) a matched name is also listed when
  some descendant is selected but does not match the patterns; it then
  carries the CHILDINFO extended data item (section 3.5).  A selected name
  with any selected descendant carries CHILDINFO too (example 9 of
  section 5).  A matched, unselected name whose selected descendants are
  all listed anyway is left out: "servers SHOULD suppress redundant
  CHILDINFO responses" (section 3.5).
* ``\\NonExistent`` marks names that do not exist (section 3); it implies
  ``\\Noselect``, which we then leave out, as the RFC's examples do.
  ``\\Subscribed`` is added when the SUBSCRIBED selection or return option
  was given (sections 3.1, 3.2).  ``\\HasChildren``/``\\HasNoChildren``
  (RFC 3348, RFC 5258 section 4) come from the store for existing names;
  a non-existent name has no existing children, so RETURN (CHILDREN) gives
  it ``\\HasNoChildren``.  Special-use attributes are always returned
  (RFC 6154 section 2), which satisfies RETURN (SPECIAL-USE).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from asimap.store.base import MailboxEntry
from asimap.store.names import ListMatcher, ancestors_of

#: RFC 6154 section 2 (and its ``use-attr`` rule): the special-use attributes.
SPECIAL_USE_ATTRIBUTES = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
)

NONEXISTENT = "\\NonExistent"
NOSELECT = "\\Noselect"
SUBSCRIBED = "\\Subscribed"
HAS_CHILDREN = "\\HasChildren"
HAS_NO_CHILDREN = "\\HasNoChildren"

#: Attributes listed first, in this order, when present (stable output).
_ATTRIBUTE_ORDER = (NOSELECT, NONEXISTENT, HAS_CHILDREN, HAS_NO_CHILDREN)


@dataclass(frozen=True, slots=True)
class ListRequest:
    """A LIST command reduced to what selection needs.

    ``patterns`` are canonical LIST patterns (reference already joined,
    empty patterns already dropped, RFC 5258 section 3).
    """

    patterns: tuple[str, ...]
    select_subscribed: bool = False
    select_special_use: bool = False
    recursive_match: bool = False
    return_subscribed: bool = False
    return_children: bool = False

    @property
    def childinfo(self) -> tuple[str, ...]:
        """The CHILDINFO data: the *base* selection options given
        (``list-select-base-opt-quoted``, RFC 5258 section 6).  SUBSCRIBED
        is the only base option; SPECIAL-USE is an independent one
        (RFC 6154 section 6)."""
        return ("SUBSCRIBED",) if self.select_subscribed else ()


@dataclass(frozen=True, slots=True)
class Listed:
    """One ``* LIST`` line to send."""

    name: str
    attributes: tuple[str, ...]
    #: CHILDINFO selection criteria; empty when the item is not sent.
    childinfo: tuple[str, ...] = ()

    @property
    def selectable(self) -> bool:
        """Whether a STATUS may follow (RFC 5819 section 2)."""
        return NOSELECT not in self.attributes and NONEXISTENT not in self.attributes


def order_attributes(attributes: Iterable[str]) -> tuple[str, ...]:
    """Attributes in a stable order: the structural ones first."""
    given = set(attributes)
    first = [a for a in _ATTRIBUTE_ORDER if a in given]
    return tuple(first + sorted(given - set(_ATTRIBUTE_ORDER)))


class _Selection:
    """The selection criteria of one request over one account's names."""

    def __init__(self, entries: Sequence[MailboxEntry], request: ListRequest) -> None:
        self.request = request
        self.entries = {entry.name: entry for entry in entries}
        self.subscribed = {e.name for e in entries if e.subscribed}

    def exists(self, name: str) -> bool:
        entry = self.entries.get(name)
        return entry is not None and NONEXISTENT not in entry.attributes

    def selected(self, name: str) -> bool:
        """RFC 5258 section 3: every selection option must hold."""
        request = self.request
        if request.select_subscribed and name not in self.subscribed:
            return False
        if request.select_special_use:
            entry = self.entries.get(name)
            if entry is None or not entry.attributes & SPECIAL_USE_ATTRIBUTES:
                return False
        if not (request.select_subscribed or request.select_special_use):
            return self.exists(name)
        return True

    def attributes(self, name: str) -> tuple[str, ...]:
        entry = self.entries.get(name)
        attributes = set(entry.attributes) if entry is not None else {NONEXISTENT}
        if NONEXISTENT in attributes:
            # \NonExistent implies \Noselect (RFC 5258 section 3.4).
            attributes.discard(NOSELECT)
            if self.request.return_children and not attributes & {
                HAS_CHILDREN,
                HAS_NO_CHILDREN,
            }:
                attributes.add(HAS_NO_CHILDREN)
        request = self.request
        if (
            request.select_subscribed or request.return_subscribed
        ) and name in self.subscribed:
            attributes.add(SUBSCRIBED)
        return order_attributes(attributes)


def select_mailboxes(
    entries: Sequence[MailboxEntry], request: ListRequest
) -> list[Listed]:
    """The LIST lines for ``request``, sorted by name (see module doc)."""
    matchers = [ListMatcher(pattern) for pattern in request.patterns]

    def matches(name: str) -> bool:
        return any(matcher.matches(name) for matcher in matchers)

    selection = _Selection(entries, request)
    universe = set(selection.entries)
    # RECURSIVEMATCH may list a parent for a selected descendant: for each
    # ancestor, whether it has one at all and one the patterns miss.  One
    # pass over the selected names, so the cost grows with names x depth.
    has_selected_child: set[str] = set()
    has_unlisted_child: set[str] = set()
    if request.recursive_match:
        for name in list(universe):
            if not selection.selected(name):
                continue
            unlisted = not matches(name)
            for ancestor in ancestors_of(name):
                universe.add(ancestor)
                has_selected_child.add(ancestor)
                if unlisted:
                    has_unlisted_child.add(ancestor)
    listed: list[Listed] = []
    for name in sorted(universe):
        if not matches(name):
            continue
        if selection.selected(name):
            childinfo = name in has_selected_child
        elif name in has_unlisted_child:
            childinfo = True
        else:
            continue
        listed.append(
            Listed(
                name,
                selection.attributes(name),
                request.childinfo if childinfo else (),
            )
        )
    return listed
