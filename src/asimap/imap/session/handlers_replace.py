"""REPLACE and UID REPLACE (RFC 8508).

``REPLACE seq mailbox [flags] [date] message`` appends a new message to
``mailbox`` and expunges message ``seq`` of the selected mailbox, as one
operation (RFC 8508 section 3): the client sees an untagged
``OK [APPENDUID ...]`` for the new message (RFC 8508 section 3.2, RFC 4315),
then the EXPUNGE (or VANISHED, with QRESYNC enabled) of the old one -- sent
by the dispatcher's refresh like any expunge -- and the tagged OK.

Order of work, so that nothing is lost: everything that can fail before a
write is checked first (message exists, mailbox writable, target exists,
message data, quota); then the new message is stored; only then is the old
one expunged.  If the append fails -- ``[TRYCREATE]``, ``[OVERQUOTA]``,
``[TOOBIG]`` -- the original stays untouched (RFC 8508 section 3).  If the
expunge fails after the append, the new message is removed again and the
command fails, so the client never ends up with both.

The message data is APPEND's (RFC 8508 section 6 reuses ``append-message``),
so CATENATE (RFC 4469) and ``UTF8 (~{n}...)`` (RFC 6855) work as they do
for APPEND; MULTIAPPEND does not apply (one message replaces one message).
The quota is checked as for that APPEND: the new message must fit before
the old one goes, so a REPLACE at the very edge of the quota is refused
rather than risking the original.
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import Status, Tagged, UntaggedStatus
from asimap.imap.session.context import Context
from asimap.imap.session.errors import no, store_error_response
from asimap.imap.session.handlers_append import (
    appenduid,
    check_room,
    open_for_append,
    prepare,
    store_checked,
)
from asimap.imap.session.handlers_selected import EXPUNGE_ISSUED, resolve
from asimap.store.base import StoreError, StoreMode


async def handle_replace(ctx: Context, cmd: c.Replace) -> Tagged:
    """RFC 8508 section 3 (see the module docstring)."""
    view = ctx.require_selected()
    number = c.SequenceSet(((cmd.number, cmd.number),))
    pairs = resolve(view, number, cmd.uid)  # BAD for a bad sequence number
    if not pairs:
        # UID REPLACE of a UID that does not exist: nothing to replace.
        raise no("No such message", "NONEXISTENT")
    _, uid = pairs[0]
    if view.readonly:
        # RFC 8508 section 3: the expunge is part of REPLACE, and EXAMINE
        # forbids it; nothing is appended either.
        raise no("Mailbox is read-only")
    if uid in view.gone:
        raise no(EXPUNGE_ISSUED, "EXPUNGEISSUED")
    target = await open_for_append(ctx, cmd.mailbox)
    prepared = await prepare(ctx, [cmd.message])
    await check_room(ctx, prepared)
    target, new_uids = await store_checked(ctx, cmd.mailbox, target, prepared)
    source = view.mailbox
    try:
        await source.store([uid], StoreMode.ADD, ["\\Deleted"])
        expunged = await source.expunge([uid])
    except StoreError as exc:
        await target.take_back(new_uids)
        raise store_error_response(exc) from exc
    # If another connection expunged the original meanwhile, ``expunged``
    # is empty: the outcome the client asked for holds all the same (new
    # message stored, old one gone), and the refresh reports the expunge.
    # RFC 8508 section 3.2: APPENDUID in an untagged OK, before the EXPUNGE
    # (or VANISHED) that the dispatcher's refresh sends next.
    await ctx.io.send(
        UntaggedStatus(
            Status.OK, "Replacement Message ready", appenduid(target, new_uids)
        )
    )
    view.note_expunged(expunged)
    return Tagged(cmd.tag, Status.OK, "Replace completed")
