"""SELECT/EXAMINE and IDLE: the commands that open or watch a view.

SELECT and EXAMINE (RFC 3501 6.3.1-6.3.2, RFC 9051 6.3.2-6.3.3) build a
fresh :class:`SelectedMailbox`.  Selecting while selected first closes the
old mailbox -- without expunging -- and says so with ``* OK [CLOSED]``
(RFC 9051 section 7.1, RFC 7162 section 3.2.11); a failed SELECT leaves
the session authenticated with nothing selected (RFC 3501 6.3.1).

What SELECT reports: ``[HIGHESTMODSEQ n]`` always (RFC 7162 3.1.2.1;
``(CONDSTORE)`` enables CONDSTORE, 3.1.8), and the QRESYNC parameter adds
``* VANISHED (EARLIER)`` and the FETCH of every flag change since the
client's MODSEQ (RFC 7162 3.2.5).  An IMAP4rev2 client gets no RECENT and
no UNSEEN code but a LIST response (RFC 9051 6.3.2, appendix E items 10-12).
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
    Raw,
    Response,
    Status,
    Tagged,
    Untagged,
    UntaggedStatus,
    Value,
)
from asimap.imap.session import extensions, qresync
from asimap.imap.session.context import Context
from asimap.imap.session.errors import bad, store_error_response
from asimap.imap.session.naming import mailbox_name, wire_name
from asimap.imap.session.selected import SelectedMailbox
from asimap.imap.session.state import SessionState
from asimap.store.base import MailboxStatus, MessageState, StoreError
from asimap.store.names import DELIMITER

#: FETCH responses per write when QRESYNC reports many flag changes.
SEND_BATCH = 256


async def handle_select(ctx: Context, cmd: c.Select) -> Tagged:
    if cmd.qresync is not None and not extensions.qresync(ctx.enabled):
        # RFC 7162 section 3.2.5: BAD unless ENABLE QRESYNC came first.
        raise bad("QRESYNC parameter requires ENABLE QRESYNC")
    if ctx.selected is not None:
        ctx.selected = None
        ctx.state = SessionState.AUTHENTICATED
        await ctx.io.send(
            UntaggedStatus(Status.OK, "Previous mailbox closed", Code("CLOSED"))
        )
    name = mailbox_name(cmd.mailbox)
    try:
        mailbox = await ctx.require_store().mailbox(name)
        # RFC 3501 6.3.2: EXAMINE reports RECENT like SELECT but leaves the
        # messages \Recent for the next session that selects read-write.
        status, states, keywords, recent = await mailbox.opening(claim=not cmd.readonly)
        attributes = await _list_attributes(ctx, name) if _rev2(ctx) else None
    except StoreError as exc:
        raise store_error_response(exc) from exc
    if cmd.condstore:
        extensions.enable_condstore(ctx.enabled)  # RFC 7162 section 3.1.8
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
        enabled=ctx.enabled,
    )
    responses = _select_responses(ctx, view, status, states)
    if attributes is not None:
        responses.append(
            Untagged((Atom("LIST"), attributes, DELIMITER, wire_name(name)))
        )
    if cmd.qresync is None:
        await ctx.hold(*responses)  # with the tagged OK, in one write
    else:
        await ctx.io.send(*responses)  # _resync's VANISHED come after them
    ctx.selected = view
    ctx.state = SessionState.SELECTED
    if cmd.qresync is not None and cmd.qresync.uidvalidity == status.uidvalidity:
        # RFC 7162 3.2.5: a UIDVALIDITY mismatch means a plain SELECT.
        await _resync(ctx, view, cmd.qresync, status)
    if cmd.readonly:
        return Tagged(cmd.tag, Status.OK, "Examine completed", Code("READ-ONLY"))
    return Tagged(cmd.tag, Status.OK, "Select completed", Code("READ-WRITE"))


def _rev2(ctx: Context) -> bool:
    return extensions.rev2(ctx.enabled)


def _select_responses(
    ctx: Context,
    view: SelectedMailbox,
    status: MailboxStatus,
    states: tuple[MessageState, ...],
) -> list[Response]:
    responses: list[Response] = [
        *view.flags_responses(),
        Untagged((view.exists, Atom("EXISTS"))),
    ]
    if not _rev2(ctx):
        # RFC 9051 appendix E item 12: RECENT is gone in IMAP4rev2.
        responses.append(Untagged((len(view.recent), Atom("RECENT"))))
        first_unseen = next(
            (i + 1 for i, s in enumerate(states) if "\\Seen" not in s.flags), None
        )
        if first_unseen is not None:
            # RFC 3501 6.3.1 (deprecated by RFC 9051 appendix E item 11).
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
        # RFC 8474 section 4.3: SELECT and EXAMINE report the MAILBOXID.
        UntaggedStatus(Status.OK, "Ok", Code("MAILBOXID", ([Atom(status.mailboxid)],))),
    ]
    # RFC 7162 3.1.2.1: a server that keeps MODSEQs persistently (every
    # store here does, so never NOMODSEQ) "MUST send the OK untagged
    # response including HIGHESTMODSEQ response code with every successful
    # SELECT or EXAMINE command" -- whether or not CONDSTORE was enabled,
    # as Dovecot does; a client may use it to see that nothing changed.
    code = Code("HIGHESTMODSEQ", (status.highestmodseq,))
    responses.append(UntaggedStatus(Status.OK, "Highest", code))
    return responses


async def _list_attributes(ctx: Context, name: str) -> list[Value]:
    """The mailbox's LIST attributes, for the LIST response that RFC 9051
    section 6.3.2 requires at SELECT ("MUST be accurate")."""
    for entry in await ctx.require_store().list_mailboxes():
        if entry.name == name:
            return [Atom(a) for a in sorted(entry.attributes)]
    return []


async def _resync(
    ctx: Context,
    view: SelectedMailbox,
    params: c.QresyncParams,
    status: MailboxStatus,
) -> None:
    """RFC 7162 3.2.5: VANISHED (EARLIER) then the FETCH of every message
    of known-uids whose MODSEQ exceeds the client's, with UID, FLAGS and
    MODSEQ (the equivalent of ``UID FETCH known-uids (FLAGS) (CHANGEDSINCE
    modseq VANISHED)``)."""
    vanished = await qresync.vanished_since(
        view.mailbox,
        params.modseq,
        params.known_uids,
        uidnext=status.uidnext,
        current=view.uids,
        seq_match=params.seq_match,
    )
    if vanished:
        text = Raw(qresync.format_ranges(vanished))
        await ctx.io.send(Untagged((Atom("VANISHED"), [Atom("EARLIER")], text)))
    known = params.known_uids
    largest = view.uids[-1] if view.uids else 0
    batch: list[Response] = []
    for uid in view.uids:
        if view.modseqs.get(uid, 0) <= params.modseq:
            continue
        if known is not None and not known.contains(uid, largest):
            continue
        batch.append(view.fetch_flags_response(uid, with_uid=True))
        if len(batch) >= SEND_BATCH:
            await ctx.io.send(*batch)
            batch = []
    if batch:
        await ctx.io.send(*batch)


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
    if ctx.notifier is not None:
        ctx.notifier.poke_selected()
    reader = asyncio.ensure_future(ctx.io.read_line())
    try:
        while True:
            waiter: asyncio.Future[None] | None = None
            view = ctx.selected
            # RFC 5465 section 4: under NOTIFY, IDLE sends "exactly the same
            # events as instructed by the client using the NOTIFY command".
            notifier = ctx.notifier
            if notifier is not None:
                waiter = asyncio.ensure_future(notifier.wait())
            elif view is not None:
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
            if waiter is not None:
                waiter.result()
                updates: list[Response] = []
                if notifier is not None:
                    updates = await notifier.collect(idle=True)
                elif view is not None:
                    updates = await view.refresh(
                        allow_expunge=True, with_uid=False, shared=True
                    )
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
