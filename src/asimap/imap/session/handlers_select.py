"""SELECT/EXAMINE, ENABLE and IDLE: the commands that open or watch a view.

SELECT and EXAMINE (RFC 3501 6.3.1-6.3.2, RFC 9051 6.3.2-6.3.3) build a
fresh :class:`SelectedMailbox`.  Selecting while selected first closes the
old mailbox -- without expunging -- and says so with ``* OK [CLOSED]``
(RFC 9051 section 7.1); a failed SELECT leaves the session authenticated
with nothing selected (RFC 3501 6.3.1).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from asimap.imap import commands as c
from asimap.imap.responses import (
    Atom,
    Code,
    Continuation,
    Response,
    Status,
    Tagged,
    Untagged,
    UntaggedStatus,
    Value,
)
from asimap.imap.session.context import Context
from asimap.imap.session.errors import bad, store_error_response
from asimap.imap.session.naming import mailbox_name
from asimap.imap.session.selected import SelectedMailbox
from asimap.imap.session.state import SessionState
from asimap.store.base import StoreError

#: Capabilities ENABLE can turn on (RFC 5161).  None yet: CONDSTORE,
#: QRESYNC, UTF8=ACCEPT and IMAP4rev2 come with their handlers.
ENABLEABLE: frozenset[str] = frozenset()


async def handle_select(ctx: Context, cmd: c.Select) -> Tagged:
    if cmd.condstore or cmd.qresync is not None:
        raise bad("CONDSTORE/QRESYNC are not supported")
    if ctx.selected is not None:
        ctx.selected = None
        ctx.state = SessionState.AUTHENTICATED
        await ctx.io.send(
            UntaggedStatus(Status.OK, "Previous mailbox closed", Code("CLOSED"))
        )
    name = mailbox_name(cmd.mailbox)
    try:
        mailbox = await ctx.require_store().mailbox(name)
        status = await mailbox.status()
        states = await mailbox.states()
        keywords = await mailbox.keywords()
        recent = frozenset() if cmd.readonly else await mailbox.claim_recent()
    except StoreError as exc:
        raise store_error_response(exc) from exc
    # The baseline MODSEQ is taken *before* the states: a change racing in
    # between is reported again by the first refresh, and the view compares
    # against what it holds, so nothing is lost or doubled.
    view = SelectedMailbox(
        mailbox,
        states,
        status.highestmodseq,
        readonly=cmd.readonly,
        recent=recent,
        keywords=keywords,
    )
    responses: list[Response] = [
        *view.flags_responses(),
        Untagged((view.exists, Atom("EXISTS"))),
        Untagged((len(view.recent), Atom("RECENT"))),
    ]
    first_unseen = next(
        (i + 1 for i, s in enumerate(states) if "\\Seen" not in s.flags), None
    )
    if first_unseen is not None:
        # RFC 3501 6.3.1: the first unseen message's sequence number.
        responses.append(
            UntaggedStatus(
                Status.OK,
                f"Message {first_unseen} is first unseen",
                Code("UNSEEN", (first_unseen,)),
            )
        )
    responses += [
        UntaggedStatus(
            Status.OK, "UIDs valid", Code("UIDVALIDITY", (status.uidvalidity,))
        ),
        UntaggedStatus(
            Status.OK, "Predicted next UID", Code("UIDNEXT", (status.uidnext,))
        ),
    ]
    await ctx.io.send(*responses)
    ctx.selected = view
    ctx.state = SessionState.SELECTED
    if cmd.readonly:
        return Tagged(cmd.tag, Status.OK, "Examine completed", Code("READ-ONLY"))
    return Tagged(cmd.tag, Status.OK, "Select completed", Code("READ-WRITE"))


async def handle_enable(ctx: Context, cmd: c.Enable) -> Tagged:
    """RFC 5161 3.1: enable what we can, ignore the rest, list what changed."""
    newly = [
        cap for cap in cmd.capabilities if cap in ENABLEABLE and cap not in ctx.enabled
    ]
    ctx.enabled.update(newly)
    values: list[Value] = [Atom("ENABLED")]
    values.extend(Atom(cap) for cap in newly)
    await ctx.io.send(Untagged(tuple(values)))
    return Tagged(cmd.tag, Status.OK, "Enable completed")


async def handle_idle(ctx: Context, cmd: c.Idle) -> Tagged | None:
    """RFC 2177: stream mailbox changes until the client says DONE.

    Two things are awaited together: the client's next line and, when a
    mailbox is selected, the store's "something changed" signal.  Changes
    are reported with expunges allowed (IDLE is not a sequence-number
    command).  A line other than DONE ends IDLE with BAD; the client going
    away (or the driver's idle timeout, which also returns None) ends the
    session.
    """
    await ctx.io.send(Continuation("idling"))
    reader = asyncio.ensure_future(ctx.io.read_line())
    try:
        while True:
            waiter: asyncio.Future[None] | None = None
            view = ctx.selected
            if view is not None:
                waiter = asyncio.ensure_future(
                    view.mailbox.wait_for_change(view.modseq)
                )
            waiting: set[asyncio.Future[Any]] = {reader}
            if waiter is not None:
                waiting.add(waiter)
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                if waiter is not None:
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter
                break
            if view is not None and waiter is not None:
                waiter.result()
                updates = await view.refresh(allow_expunge=True, with_uid=False)
                if updates:
                    await ctx.io.send(*updates)
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    line = reader.result()
    if line is None:
        ctx.state = SessionState.LOGOUT
        return None
    if line.strip().upper() != b"DONE":
        raise bad("Expected DONE")
    return Tagged(cmd.tag, Status.OK, "Idle completed")
