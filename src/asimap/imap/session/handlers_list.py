"""Mailbox discovery: LIST, LSUB, STATUS, NAMESPACE.

RFC 3501 sections 6.3.8-6.3.10, RFC 3348 (CHILDREN attributes, supplied by
the store), RFC 6154 (special-use attributes), RFC 2342 (NAMESPACE).
The extended LIST forms (RFC 5258 selection/return options, several
patterns) are refused with BAD: LIST-EXTENDED is not advertised yet.
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Status, Tagged, Untagged, Value
from asimap.imap.session.context import Context
from asimap.imap.session.errors import bad, store_error_response
from asimap.imap.session.naming import decode_name, mailbox_name, wire_name
from asimap.store.base import MailboxEntry, StoreError
from asimap.store.names import DELIMITER, ListMatcher, join_reference, parent_of

#: Attributes listed first, in this order, when present (stable output).
_ATTRIBUTE_ORDER = ("\\Noselect", "\\NonExistent", "\\HasChildren", "\\HasNoChildren")

#: STATUS items we answer (RFC 3501 section 6.3.10).  The others (SIZE,
#: DELETED, HIGHESTMODSEQ, APPENDLIMIT...) belong to capabilities not
#: advertised yet and get BAD.
STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN")


def _attributes(attributes: frozenset[str]) -> list[Value]:
    first = [a for a in _ATTRIBUTE_ORDER if a in attributes]
    rest = sorted(attributes - set(_ATTRIBUTE_ORDER))
    return [Atom(a) for a in first + rest]


def _list_line(kind: str, attributes: list[Value], name: str) -> Untagged:
    return Untagged((Atom(kind), attributes, DELIMITER, wire_name(name)))


async def handle_list(ctx: Context, cmd: c.List) -> Tagged:
    if cmd.select_options or cmd.return_options or len(cmd.patterns) != 1:
        raise bad("Extended LIST is not supported")
    reference = decode_name(cmd.reference)
    pattern = decode_name(cmd.patterns[0])
    if not pattern:
        # RFC 3501 6.3.8: the empty pattern asks for the delimiter and the
        # root of the reference's hierarchy.
        root = reference.split(DELIMITER, 1)[0] + DELIMITER if reference else ""
        await ctx.io.send(
            Untagged((Atom("LIST"), [Atom("\\Noselect")], DELIMITER, root))
        )
        return Tagged(cmd.tag, Status.OK, "List completed")
    matcher = ListMatcher(join_reference(reference, pattern))
    entries = await _entries(ctx)
    responses = [
        _list_line("LIST", _attributes(entry.attributes), entry.name)
        for entry in entries
        if matcher.matches(entry.name)
    ]
    if responses:
        await ctx.io.send(*responses)
    return Tagged(cmd.tag, Status.OK, "List completed")


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
    reference = decode_name(cmd.reference)
    pattern = decode_name(cmd.pattern)
    matcher = ListMatcher(join_reference(reference, pattern))
    subscribed = {entry.name for entry in await _entries(ctx) if entry.subscribed}
    lines: dict[str, list[Value]] = {}
    for name in sorted(subscribed):
        if matcher.matches(name):
            lines[name] = []
            continue
        parent = parent_of(name)
        while parent is not None:
            if matcher.matches(parent):
                if parent not in subscribed:
                    lines.setdefault(parent, [Atom("\\Noselect")])
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
    unknown = [item for item in cmd.items if item not in STATUS_ITEMS]
    if unknown or not cmd.items:
        raise bad("Unsupported STATUS item")
    name = mailbox_name(cmd.mailbox)
    try:
        mailbox = await ctx.require_store().mailbox(name)
        status = await mailbox.status()
    except StoreError as exc:
        raise store_error_response(exc) from exc
    values = {
        "MESSAGES": status.messages,
        "RECENT": status.recent,
        "UIDNEXT": status.uidnext,
        "UIDVALIDITY": status.uidvalidity,
        "UNSEEN": status.unseen,
    }
    items: list[Value] = []
    for item in dict.fromkeys(cmd.items):
        items += [Atom(item), values[item]]
    await ctx.io.send(Untagged((Atom("STATUS"), wire_name(name), items)))
    return Tagged(cmd.tag, Status.OK, "Status completed")
