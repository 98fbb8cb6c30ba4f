"""What a NOTIFY SET asked for, compiled for matching (RFC 5465 section 6).

The parsed command (:class:`asimap.imap.commands.Notify`) names mailboxes
as the client sent them; :class:`NotifySpec` holds canonical store names
and answers the one question the notifier asks for every event: *which
events does the client want for this mailbox?*

Filters (section 6):

* ``SELECTED`` / ``SELECTED-DELAYED`` (6.1) apply to the selected mailbox
  only, and to message events only; for that mailbox they override every
  other group (section 3.1: "Message-related notifications returned for
  the currently selected mailbox will be those specified by the
  SELECTED/SELECTED-DELAYED mailbox specifier").
* ``PERSONAL`` (6.2): every mailbox of the account (we have one
  namespace).  ``INBOXES`` (6.3): "If the IMAP server cannot easily compute
  this set, it MUST treat inboxes as equivalent to personal" -- an MH
  account can be delivered to in any folder (``inc +folder``, procmail),
  so we cannot, and do.
* ``SUBSCRIBED`` (6.4): the subscription list, re-read whenever it changes.
* ``SUBTREE`` (6.5): the names and their inferiors; ``MAILBOXES`` (6.6):
  exactly the names, no wildcards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass, field

from asimap.imap import commands as c
from asimap.imap.parser.notify import MESSAGE_EVENTS, SELECTED_FILTERS
from asimap.store.names import is_inferior

MESSAGE_EVENT_NAMES = frozenset(MESSAGE_EVENTS.values())

#: Events we deliver.  AnnotationChange needs ANNOTATE (RFC 5257), which we
#: do not implement: section 3.1 makes asking for it ``NO [BADEVENT]``.
SUPPORTED_EVENTS = (
    "MessageNew",
    "MessageExpunge",
    "FlagChange",
    "MailboxName",
    "SubscriptionChange",
    "MailboxMetadataChange",
    "ServerMetadataChange",
)


@dataclass(frozen=True, slots=True)
class Group:
    """One event group with canonical mailbox names."""

    filter: str
    names: tuple[str, ...]
    events: frozenset[str]

    def covers(self, name: str, subscribed: Set[str]) -> bool:
        """Whether ``name`` is one of this group's mailboxes."""
        if self.filter in ("PERSONAL", "INBOXES"):
            return True
        if self.filter == "SUBSCRIBED":
            return name in subscribed
        if self.filter == "MAILBOXES":
            return name in self.names
        if self.filter == "SUBTREE":
            return any(name == top or is_inferior(name, top) for top in self.names)
        return False  # SELECTED filters never name a mailbox


@dataclass(slots=True)
class NotifySpec:
    """A compiled NOTIFY SET."""

    #: The SELECTED / SELECTED-DELAYED group, if any.
    selected: c.NotifyGroup | None
    groups: tuple[Group, ...]
    #: The subscription list, for SUBSCRIBED (kept current by the notifier).
    subscribed: set[str] = field(default_factory=set)

    @property
    def delayed(self) -> bool:
        """SELECTED-DELAYED: expunges wait for a command that allows them
        (section 6.1.2)."""
        return self.selected is not None and self.selected.filter == "SELECTED-DELAYED"

    def selected_events(self) -> frozenset[str]:
        return frozenset(self.selected.events) if self.selected else frozenset()

    def fetch_atts(self) -> tuple[c.FetchAtt, ...]:
        return self.selected.fetch_atts if self.selected else ()

    def events_for(self, name: str) -> frozenset[str]:
        """Every event the non-selected groups ask for ``name``."""
        wanted: set[str] = set()
        for group in self.groups:
            if group.covers(name, self.subscribed):
                wanted |= group.events
        return frozenset(wanted)

    def wants_message_events(self, name: str) -> bool:
        return bool(self.events_for(name) & MESSAGE_EVENT_NAMES)

    def any_group_wants(self, event: str) -> bool:
        """For events tied to no mailbox (ServerMetadataChange)."""
        return any(event in group.events for group in self.groups)

    def uses_subscriptions(self) -> bool:
        return any(group.filter == "SUBSCRIBED" for group in self.groups)


def unsupported_events(groups: Iterable[c.NotifyGroup]) -> list[str]:
    """Events asked for that we do not deliver (section 3.1: NO
    [BADEVENT])."""
    return [
        event
        for group in groups
        for event in group.events
        if event not in SUPPORTED_EVENTS
    ]


def compile_spec(
    command: c.Notify, decode: Callable[[bytes], str | None]
) -> NotifySpec:
    """Build the spec; ``decode`` turns a wire name into a store name, or
    None for a name that cannot exist (section 3.1: "If the name does not
    refer to an existing mailbox, the server MUST ignore it")."""
    selected: c.NotifyGroup | None = None
    groups: list[Group] = []
    for group in command.groups or ():
        if group.filter in SELECTED_FILTERS:
            selected = group
            continue
        names = tuple(n for n in (decode(raw) for raw in group.mailboxes) if n)
        groups.append(Group(group.filter, names, frozenset(group.events)))
    return NotifySpec(selected, tuple(groups))
