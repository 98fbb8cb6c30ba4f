"""Mailbox management: CREATE, DELETE, RENAME, (UN)SUBSCRIBE.

RFC 3501 sections 6.3.3-6.3.7, RFC 6154 section 3 (CREATE-SPECIAL-USE).
APPEND lives in :mod:`asimap.imap.session.handlers_append` (re-exported
here, where the dispatch table and COPY/MOVE look for it).  Names are
decoded and validated by :mod:`asimap.imap.session.naming`; store
errors become NO with RFC 5530 codes
(:func:`asimap.imap.session.errors.store_error_response`).
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Code, Status, Tagged
from asimap.imap.session.context import Context
from asimap.imap.session.errors import no, store_error_response
from asimap.imap.session.handlers_append import handle_append as handle_append
from asimap.imap.session.handlers_append import open_for_append as open_for_append
from asimap.imap.session.listing import SPECIAL_USE_ATTRIBUTES
from asimap.imap.session.naming import mailbox_name
from asimap.store.base import StoreError
from asimap.store.names import INBOX

#: RFC 6154 section 2 attributes by case-folded spelling (atoms compare
#: case-insensitively).
SPECIAL_USE_BY_FOLDED = {use.lower(): use for use in SPECIAL_USE_ATTRIBUTES}


#: Special uses of RFC 6154 section 2 that name *virtual* mailboxes
#: ("all messages", "all flagged messages").  A plain folder marked so
#: would mislead clients that trust it to hold every message, so CREATE
#: refuses them, as RFC 6154 section 5.3's example does for \All.
_VIRTUAL_USES = frozenset({"\\all", "\\flagged"})


def _check_special_use(uses: tuple[str, ...]) -> None:
    """RFC 6154 section 3: a use we cannot honour is ``NO [USEATTR]`` and
    the mailbox is not created."""
    for use in uses:
        canonical = SPECIAL_USE_BY_FOLDED.get(use.lower())
        if canonical is None:
            raise no(f"{use[:40]} is not a special use", "USEATTR")
        if use.lower() in _VIRTUAL_USES:
            raise no(f"{canonical} not supported", "USEATTR")


async def handle_create(ctx: Context, cmd: c.Create) -> Tagged:
    """RFC 3501 6.3.3 (a trailing delimiter is dropped; INBOX exists) and
    RFC 6154 section 3 (CREATE-SPECIAL-USE: ``(USE (\\Sent))``)."""
    name = mailbox_name(cmd.mailbox, create=True)
    if name == INBOX:
        raise no("Mailbox already exists", "ALREADYEXISTS")
    _check_special_use(cmd.special_use)
    store = ctx.require_store()
    try:
        await store.create(name, cmd.special_use)
    except StoreError as exc:
        raise store_error_response(exc) from exc
    try:
        # RFC 8474 section 4.1: the tagged OK carries the new MAILBOXID.
        status = await (await store.mailbox(name)).status()
    except StoreError:
        # Created, then removed by someone else at once: still created.
        return Tagged(cmd.tag, Status.OK, "Create completed")
    code = Code("MAILBOXID", ([Atom(status.mailboxid)],))
    return Tagged(cmd.tag, Status.OK, "Create completed", code)


async def handle_delete(ctx: Context, cmd: c.Delete) -> Tagged:
    """RFC 3501 6.3.4: INBOX cannot be deleted."""
    name = mailbox_name(cmd.mailbox)
    if name == INBOX:
        raise no("INBOX cannot be deleted", "CANNOT")
    if ctx.selected is not None and ctx.selected.mailbox.name == name:
        # RFC 9051 6.3.4 lets a server refuse; Dovecot does the same, and it
        # spares us a session whose mailbox vanished under it.
        raise no("Cannot delete the selected mailbox", "INUSE")
    try:
        await ctx.require_store().delete(name)
    except StoreError as exc:
        raise store_error_response(exc) from exc
    return Tagged(cmd.tag, Status.OK, "Delete completed")


async def handle_rename(ctx: Context, cmd: c.Rename) -> Tagged:
    """RFC 3501 6.3.5 (renaming INBOX moves its messages: the store's job)."""
    old = mailbox_name(cmd.old)
    new = mailbox_name(cmd.new)
    if new == INBOX:
        raise no("Mailbox already exists", "ALREADYEXISTS")
    try:
        await ctx.require_store().rename(old, new)
    except StoreError as exc:
        raise store_error_response(exc) from exc
    return Tagged(cmd.tag, Status.OK, "Rename completed")


async def handle_subscribe(ctx: Context, cmd: c.Subscribe) -> Tagged:
    name = mailbox_name(cmd.mailbox)
    try:
        await ctx.require_store().subscribe(name)
    except StoreError as exc:
        raise store_error_response(exc) from exc
    return Tagged(cmd.tag, Status.OK, "Subscribe completed")


async def handle_unsubscribe(ctx: Context, cmd: c.Unsubscribe) -> Tagged:
    name = mailbox_name(cmd.mailbox)
    try:
        await ctx.require_store().unsubscribe(name)
    except StoreError as exc:
        raise store_error_response(exc) from exc
    return Tagged(cmd.tag, Status.OK, "Unsubscribe completed")
