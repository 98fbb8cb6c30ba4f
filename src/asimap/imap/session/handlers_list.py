"""Mailbox discovery: LIST, LSUB, STATUS, NAMESPACE.

RFC 3501 sections 6.3.8-6.3.10, RFC 5258 (LIST-EXTENDED: selection and
return options, several patterns, CHILDINFO), RFC 5819 (LIST-STATUS),
RFC 3348 (CHILDREN attributes, supplied by the store), RFC 6154
(SPECIAL-USE attributes and the SPECIAL-USE selection/return options),
RFC 8438 (STATUS=SIZE), RFC 9051 section 6.3.11 (STATUS DELETED),
RFC 2342 (NAMESPACE).  Which names a LIST returns is decided in
:mod:`asimap.imap.session.listing`; this module talks to the client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Status, Tagged, Untagged, Value
from asimap.imap.session import extensions
from asimap.imap.session.context import Context
from asimap.imap.session.errors import bad, store_error_response
from asimap.imap.session.listing import (
    Listed,
    ListRequest,
    order_attributes,
    select_mailboxes,
)
from asimap.imap.session.naming import decode_pattern, mailbox_name, wire_name
from asimap.imap.session.quota import units
from asimap.imap.session.status_items import EXTRA_STATUS_ITEMS, extra_status_values
from asimap.store.base import MailboxEntry, MailboxStatus, StoreError
from asimap.store.names import DELIMITER, ListMatcher, join_reference, parent_of

#: STATUS items we answer, and where each comes from (RFC 3501 section
#: 6.3.10, RFC 8438 SIZE, RFC 9051 DELETED, RFC 7162 3.1.6 HIGHESTMODSEQ,
#: RFC 8474 MAILBOXID).  Items that depend on the connection
#: (APPENDLIMIT) are answered by :mod:`asimap.imap.session.status_items`.
STATUS_VALUES: dict[str, Callable[[MailboxStatus], Value]] = {
    "MESSAGES": lambda s: s.messages,
    "RECENT": lambda s: s.recent,
    "UIDNEXT": lambda s: s.uidnext,
    "UIDVALIDITY": lambda s: s.uidvalidity,
    "UNSEEN": lambda s: s.unseen,
    "SIZE": lambda s: s.size,
    "DELETED": lambda s: s.deleted,
    # RFC 9208 section 4.2.2, in the STORAGE resource's 1024-octet units.
    "DELETED-STORAGE": lambda s: units(s.deleted_storage),
    "HIGHESTMODSEQ": lambda s: s.highestmodseq,
    # RFC 8474 section 4.4: ``MAILBOXID (id)``.
    "MAILBOXID": lambda s: [Atom(s.mailboxid)],
}

#: Kept for callers that only need the names.
STATUS_ITEMS = tuple(STATUS_VALUES)


def _check_status_items(ctx: Context, items: Sequence[str]) -> None:
    known = STATUS_VALUES.keys() | EXTRA_STATUS_ITEMS.keys()
    if not items or any(item not in known for item in items):
        raise bad("Unsupported STATUS item")
    if "RECENT" in items and extensions.rev2(ctx.enabled):
        # RFC 9051 section 9: status-att has no RECENT; appendix E item 12
        # deprecates it, as NEW/OLD/RECENT in SEARCH (refused likewise).
        raise bad("RECENT is not an IMAP4rev2 STATUS item")


def status_values(
    status: MailboxStatus,
    items: Sequence[str],
    extra: Mapping[str, Value] | None = None,
) -> list[Value]:
    """``name value`` pairs in the order asked, each item once; ``extra``
    holds the values of the items STATUS_VALUES does not answer."""
    values: list[Value] = []
    for item in dict.fromkeys(items):
        value = extra[item] if extra and item in extra else STATUS_VALUES[item](status)
        values += [Atom(item), value]
    return values


def _list_line(kind: str, attributes: Sequence[str], name: str) -> Untagged:
    return Untagged(
        (Atom(kind), [Atom(a) for a in attributes], DELIMITER, wire_name(name))
    )


def _listed_line(listed: Listed) -> Untagged:
    """``* LIST (attrs) "/" name [("CHILDINFO" (...))]`` (RFC 5258 s6)."""
    line = _list_line("LIST", listed.attributes, listed.name)
    if not listed.childinfo:
        return line
    extended: list[Value] = ["CHILDINFO", list(listed.childinfo)]
    return Untagged((*line.values, extended))


def _request(cmd: c.List) -> ListRequest:
    """Decode the patterns and options of a (possibly extended) LIST."""
    reference = decode_pattern(cmd.reference)
    patterns = tuple(
        join_reference(reference or "", pattern)
        for pattern in (decode_pattern(raw) for raw in cmd.patterns)
        # RFC 5258 section 3: an empty pattern of an extended LIST is
        # ignored for matching; an invalidly encoded one matches nothing.
        if pattern
    )
    if reference is None:
        patterns = ()
    select = set(cmd.select_options)
    returns = set(cmd.return_options)
    return ListRequest(
        patterns=patterns,
        select_subscribed="SUBSCRIBED" in select,
        select_special_use="SPECIAL-USE" in select,
        recursive_match="RECURSIVEMATCH" in select,
        return_subscribed="SUBSCRIBED" in returns,
        return_children="CHILDREN" in returns,
    )


async def handle_list(ctx: Context, cmd: c.List) -> Tagged:
    """RFC 3501 6.3.8, extended by RFC 5258, RFC 5819 and RFC 6154."""
    if "STATUS" in cmd.return_options:
        # RFC 5819 section 2: the same items as the STATUS command; check
        # them before anything is sent.
        _check_status_items(ctx, cmd.return_status)
    if not cmd.extended and cmd.patterns == (b"",):
        # RFC 3501 6.3.8: the empty pattern asks for the delimiter and the
        # root of the reference's hierarchy (only in the basic form).
        reference = decode_pattern(cmd.reference) or ""
        root = reference.split(DELIMITER, 1)[0] + DELIMITER if reference else ""
        await ctx.io.send(
            Untagged((Atom("LIST"), [Atom("\\Noselect")], DELIMITER, root))
        )
        return Tagged(cmd.tag, Status.OK, "List completed")
    request = _request(cmd)
    listed = select_mailboxes(await _entries(ctx), request) if request.patterns else []
    for item in listed:
        await ctx.hold(_listed_line(item))
        if cmd.return_status and item.selectable:
            await _send_list_status(ctx, item.name, cmd.return_status)
    return Tagged(cmd.tag, Status.OK, "List completed")


async def _send_list_status(ctx: Context, name: str, items: Sequence[str]) -> None:
    """RFC 5819 section 2: ``* STATUS`` right after the mailbox's LIST.

    A mailbox that vanished between LIST and STATUS is skipped: the LIST
    line already went out, and a missing STATUS is what the client sees
    for any mailbox it cannot open.
    """
    try:
        mailbox, status = await ctx.require_store().mailbox_status(name)
    except StoreError:
        return
    values = status_values(status, items, extra_status_values(ctx, mailbox, items))
    await ctx.hold(Untagged((Atom("STATUS"), wire_name(name), values)))


async def _entries(ctx: Context) -> tuple[MailboxEntry, ...]:
    try:
        return await ctx.require_store().list_mailboxes()
    except StoreError as exc:
        raise store_error_response(exc) from exc


async def handle_lsub(ctx: Context, cmd: c.Lsub) -> Tagged:
    """RFC 3501 6.3.9.

    A subscribed name that does not match because of ``%`` still makes its
    matching ancestor appear, flagged ``\\Noselect`` when that ancestor is
    not itself subscribed (the ``news.comp.%`` example of 6.3.9).
    """
    reference = decode_pattern(cmd.reference)
    pattern = decode_pattern(cmd.pattern)
    if reference is None or pattern is None:
        # Not valid modified UTF-7 (or UTF-8): names no mailbox.
        return Tagged(cmd.tag, Status.OK, "Lsub completed")
    matcher = ListMatcher(join_reference(reference, pattern))
    subscribed = {entry.name for entry in await _entries(ctx) if entry.subscribed}
    lines: dict[str, tuple[str, ...]] = {}
    for name in sorted(subscribed):
        if matcher.matches(name):
            lines[name] = ()
            continue
        parent = parent_of(name)
        while parent is not None:
            if matcher.matches(parent):
                if parent not in subscribed:
                    lines.setdefault(parent, order_attributes(["\\Noselect"]))
                break
            parent = parent_of(parent)
    responses = [_list_line("LSUB", lines[n], n) for n in sorted(lines)]
    if responses:
        await ctx.io.send(*responses)
    return Tagged(cmd.tag, Status.OK, "Lsub completed")


async def handle_namespace(ctx: Context, cmd: c.Namespace) -> Tagged:
    """RFC 2342: one personal namespace, the root, with ``/``."""
    await ctx.io.send(Untagged((Atom("NAMESPACE"), [["", DELIMITER]], None, None)))
    return Tagged(cmd.tag, Status.OK, "Namespace completed")


async def handle_status(ctx: Context, cmd: c.Status) -> Tagged:
    """RFC 3501 6.3.10; items answered in the order asked."""
    _check_status_items(ctx, cmd.items)
    if "HIGHESTMODSEQ" in cmd.items:
        extensions.enable_condstore(ctx.enabled)  # RFC 7162 section 3.1
    name = mailbox_name(cmd.mailbox)
    try:
        mailbox, status = await ctx.require_store().mailbox_status(name)
    except StoreError as exc:
        raise store_error_response(exc) from exc
    extra = extra_status_values(ctx, mailbox, cmd.items)
    items = status_values(status, cmd.items, extra)
    await ctx.hold(Untagged((Atom("STATUS"), wire_name(name), items)))
    return Tagged(cmd.tag, Status.OK, "Status completed")
