"""NOTIFY (RFC 5465 section 8, formal syntax)::

    notify          = "NOTIFY" SP (notify-set / notify-none)
    notify-set      = "SET" [status-indicator] SP event-groups
    notify-none     = "NONE"
    status-indicator = SP "STATUS"
    event-groups    = event-group *(SP event-group)
    event-group     = "(" filter-mailboxes SP events ")"
    filter-mailboxes = filter-mailboxes-selected / filter-mailboxes-other
    filter-mailboxes-other = "inboxes" / "personal" / "subscribed" /
                    ( "subtree" SP one-or-more-mailbox ) /
                    ( "mailboxes" SP one-or-more-mailbox )
    filter-mailboxes-selected = "selected" / "selected-delayed"
    one-or-more-mailbox = mailbox / many-mailboxes
    events          = ( "(" event *(SP event) ")" ) / "NONE"
    event           = message-event / mailbox-event / user-event / event-ext
    message-event   = ( "MessageNew" [SP "(" fetch-att *(SP fetch-att) ")" ] )
                    / "MessageExpunge" / "FlagChange" / "AnnotationChange"

The rules the RFC makes BAD are checked here too, since they are about the
command alone: a fetch-att list only for the SELECTED filters (section 8
comments), only message events with SELECTED/SELECTED-DELAYED (section
6.1), at most one of those two
(section 6.1), MessageNew and MessageExpunge together, FlagChange and
AnnotationChange only with both (section 5).  Unknown event names
(``event-ext``) are syntactically fine; the session refuses them with
``NO [BADEVENT]`` (section 3.1).
"""

from __future__ import annotations

from asimap.imap.commands import FetchAtt, Notify, NotifyGroup
from asimap.imap.parser.fetch import parse_fetch_att
from asimap.imap.parser.tokens import LPAREN, RPAREN, Reader, fail

#: Upper-cased event name -> the RFC's spelling (section 8).
MESSAGE_EVENTS = {
    "MESSAGENEW": "MessageNew",
    "MESSAGEEXPUNGE": "MessageExpunge",
    "FLAGCHANGE": "FlagChange",
    "ANNOTATIONCHANGE": "AnnotationChange",
}
OTHER_EVENTS = {
    "MAILBOXNAME": "MailboxName",
    "SUBSCRIPTIONCHANGE": "SubscriptionChange",
    "MAILBOXMETADATACHANGE": "MailboxMetadataChange",
    "SERVERMETADATACHANGE": "ServerMetadataChange",
}
KNOWN_EVENTS = MESSAGE_EVENTS | OTHER_EVENTS

SELECTED_FILTERS = frozenset({"SELECTED", "SELECTED-DELAYED"})
_PLAIN_FILTERS = frozenset({"INBOXES", "PERSONAL", "SUBSCRIBED"}) | SELECTED_FILTERS
_NAMED_FILTERS = frozenset({"SUBTREE", "MAILBOXES"})


def _mailboxes(reader: Reader) -> tuple[bytes, ...]:
    """``one-or-more-mailbox``."""
    if reader.peek() != LPAREN:
        return (reader.mailbox(),)
    reader.pos += 1
    names: list[bytes] = []
    while True:
        names.append(reader.mailbox())
        if len(names) > reader.limits.max_items:
            fail("Too many mailboxes")
        if reader.peek() == RPAREN:
            reader.pos += 1
            return tuple(names)
        reader.space()


def _fetch_atts(reader: Reader) -> tuple[FetchAtt, ...]:
    reader.open_paren()
    atts: list[FetchAtt] = []
    while True:
        atts.append(parse_fetch_att(reader))
        if len(atts) > reader.limits.max_items:
            fail("Too many FETCH items")
        if reader.peek() == RPAREN:
            reader.pos += 1
            return tuple(atts)
        reader.space()


def _events(reader: Reader) -> tuple[tuple[str, ...], tuple[FetchAtt, ...]]:
    if reader.peek() != LPAREN:
        if reader.keyword("events") != "NONE":
            fail("Events must be a list or NONE")
        return (), ()
    reader.pos += 1
    events: list[str] = []
    atts: tuple[FetchAtt, ...] = ()
    while True:
        raw = reader.atom("event")
        name = KNOWN_EVENTS.get(raw.decode("ascii").upper(), raw.decode("ascii"))
        if name in events:
            fail(f"Event {name[:40]} given twice")
        events.append(name)
        if len(events) > reader.limits.max_items:
            fail("Too many events")
        if name == "MessageNew" and reader.startswith(b" ("):
            reader.pos += 1
            atts = _fetch_atts(reader)
        if reader.peek() == RPAREN:
            reader.pos += 1
            return tuple(events), atts
        reader.space()


def _group(reader: Reader) -> NotifyGroup:
    reader.open_paren()
    kind = reader.keyword("mailbox filter")
    mailboxes: tuple[bytes, ...] = ()
    if kind in _NAMED_FILTERS:
        reader.space()
        mailboxes = _mailboxes(reader)
    elif kind not in _PLAIN_FILTERS:
        fail(f"Unknown NOTIFY mailbox filter {kind[:40]}")
    reader.space()
    events, atts = _events(reader)
    reader.close_paren()
    group = NotifyGroup(kind, mailboxes, events, atts)
    _check_group(group)
    return group


def _check_group(group: NotifyGroup) -> None:
    """The per-group rules RFC 5465 makes BAD."""
    events = set(group.events)
    if group.filter in SELECTED_FILTERS:
        # Section 6.1: "It is an error to specify other types of events
        # with either the SELECTED or the SELECTED-DELAYED selector."
        if any(event not in MESSAGE_EVENTS.values() for event in events):
            fail(f"Only message events apply to {group.filter}")
    elif group.fetch_atts:
        # Section 8: the fetch-att list only with the SELECTED filters.
        fail("MessageNew attributes are only allowed for SELECTED")
    # Section 5: "If one of MessageNew or MessageExpunge is specified, then
    # both events MUST be specified", and FlagChange/AnnotationChange need
    # both; "Otherwise, the server MUST respond with the tagged BAD".
    if ("MessageNew" in events) != ("MessageExpunge" in events):
        fail("MessageNew and MessageExpunge must be given together")
    if events & {"FlagChange", "AnnotationChange"} and "MessageNew" not in events:
        fail("FlagChange and AnnotationChange need MessageNew and MessageExpunge")


def parse_notify(reader: Reader, tag: str, uid: bool) -> Notify:
    reader.space()
    verb = reader.keyword("NOTIFY SET or NONE")
    if verb == "NONE":
        reader.expect_end()
        return Notify(tag, None)
    if verb != "SET":
        fail("NOTIFY takes SET or NONE")
    reader.space()
    status = False
    if reader.peek() != LPAREN:
        if reader.keyword("STATUS") != "STATUS":
            fail("Expected STATUS or an event group")
        status = True
        reader.space()
    groups: list[NotifyGroup] = []
    while True:
        groups.append(_group(reader))
        if len(groups) > reader.limits.max_items:
            fail("Too many event groups")
        if reader.at_end():
            break
        reader.space()
    selected = [g for g in groups if g.filter in SELECTED_FILTERS]
    if len(selected) > 1:
        # Section 6.1: "Only one of the mailbox specifiers affecting the
        # currently selected mailbox can be specified in any NOTIFY command."
        fail("Only one SELECTED or SELECTED-DELAYED group is allowed")
    return Notify(tag, tuple(groups), status)
