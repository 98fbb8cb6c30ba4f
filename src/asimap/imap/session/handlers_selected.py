"""Selected state: CHECK, CLOSE, UNSELECT, EXPUNGE, STORE, COPY, MOVE.

(FETCH lives in :mod:`handlers_fetch`, SEARCH in :mod:`handlers_search`.)
Messages that another connection expunged but that this client has not
been told about yet keep their sequence numbers (RFC 3501 7.4.1); a
command naming them does what it can for the others and ends with ``NO
[EXPUNGEISSUED]`` (RFC 5530, the "fail" option of RFC 2180 sections
4.1-4.4), except COPY/MOVE, which fail
as a whole so that nothing is half copied, and UID STORE, which ends with
``OK [EXPUNGEISSUED]`` (:func:`uid_command_met_expunged`).

With CONDSTORE (RFC 7162 section 3.1.3) STORE takes ``(UNCHANGEDSINCE
n)``: messages changed after n are left alone and listed in ``OK
[MODIFIED set]``, and every FETCH response STORE sends carries UID and
MODSEQ -- even for .SILENT, since the client needs the new MODSEQ.  An
EXPUNGE that removed something reports the new ``[HIGHESTMODSEQ n]`` in
its tagged OK (RFC 7162 section 3.2.10).
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import Code, Raw, Response, Status, Tagged, UntaggedStatus
from asimap.imap.session import extensions
from asimap.imap.session.context import Context
from asimap.imap.session.errors import bad, no, store_error_response
from asimap.imap.session.flags import normalize_flags
from asimap.imap.session.handlers_mailbox import open_for_append
from asimap.imap.session.selected import InvalidSequence, SelectedMailbox
from asimap.imap.session.state import SessionState
from asimap.imap.session.uidset import format_uid_list
from asimap.store.base import StoreError, StoreMode

_MODES = {
    c.StoreMode.REPLACE: StoreMode.REPLACE,
    c.StoreMode.ADD: StoreMode.ADD,
    c.StoreMode.REMOVE: StoreMode.REMOVE,
}

EXPUNGE_ISSUED = "Some messages were expunged"


def uid_command_met_expunged(tag: str) -> Tagged:
    """The end of a UID FETCH or UID STORE that named messages another
    connection expunged: RFC 3501 6.4.8 has a UID that no longer exists
    ignored without error, so the answer is OK, with the RFC 5530 code
    that tells the client why some were left out; the EXPUNGE itself may
    go out with a UID command (RFC 3501 7.4.1).  Dovecot answers the same
    (``OK [EXPUNGEISSUED] Some messages were already expunged``), and a
    NO here made clients and load tests count a routine race as a
    failure.  Sequence-number commands keep the tagged NO of RFC 2180
    4.1.2, since the client named a message it still believes exists."""
    return Tagged(
        tag,
        Status.OK,
        "Some messages were already expunged",
        Code("EXPUNGEISSUED"),
    )


def resolve(
    view: SelectedMailbox, sequence: c.SequenceSet, uid: bool
) -> list[tuple[int, int]]:
    """``(seq, uid)`` pairs, or BAD for an out-of-range sequence number;
    ``$`` is the saved SEARCH result (RFC 5182, see the view)."""
    try:
        return view.resolve(sequence, uid=uid)
    except InvalidSequence:
        raise bad("Invalid message sequence number") from None


def _require_writable(view: SelectedMailbox) -> None:
    if view.readonly:
        raise no("Mailbox is read-only")


async def handle_check(ctx: Context, cmd: c.Check) -> Tagged:
    """RFC 3501 6.4.1: our stores are always durable; just report changes."""
    del ctx
    return Tagged(cmd.tag, Status.OK, "Check completed")


async def handle_close(ctx: Context, cmd: c.Close) -> Tagged:
    """RFC 3501 6.4.2: expunge silently (not when read-only), deselect."""
    view = ctx.require_selected()
    ctx.selected = None
    ctx.state = SessionState.AUTHENTICATED
    if not view.readonly:
        try:
            await view.mailbox.expunge()
        except StoreError as exc:
            raise store_error_response(exc) from exc
    return Tagged(cmd.tag, Status.OK, "Close completed")


async def handle_unselect(ctx: Context, cmd: c.Unselect) -> Tagged:
    """RFC 3691: like CLOSE without the expunge."""
    ctx.selected = None
    ctx.state = SessionState.AUTHENTICATED
    return Tagged(cmd.tag, Status.OK, "Unselect completed")


async def handle_expunge(ctx: Context, cmd: c.Expunge) -> Tagged:
    """EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315 2.1).

    The EXPUNGE responses themselves come from the view's refresh, which
    the dispatcher runs before the tagged OK, so expunges by others are
    announced in the same breath and numbering stays consistent.
    """
    view = ctx.require_selected()
    _require_writable(view)
    uids: list[int] | None = None
    if cmd.uids is not None:
        uids = [u for _, u in resolve(view, cmd.uids, True)]
        if not uids:
            return Tagged(cmd.tag, Status.OK, "Expunge completed")
    try:
        expunged = await view.mailbox.expunge(uids)
        status = await view.mailbox.status() if expunged else None
    except StoreError as exc:
        raise store_error_response(exc) from exc
    view.note_expunged(expunged)
    if status is not None and extensions.condstore(ctx.enabled):
        code = Code("HIGHESTMODSEQ", (status.highestmodseq,))
        return Tagged(cmd.tag, Status.OK, "Expunge completed", code)
    return Tagged(cmd.tag, Status.OK, "Expunge completed")


async def handle_store(ctx: Context, cmd: c.Store) -> Tagged:
    """RFC 3501 6.4.6: change flags, answer with the new FLAGS unless SILENT.

    The new flags are written into the view, so the change feed does not
    report this connection's own change again.
    """
    view = ctx.require_selected()
    if cmd.unchanged_since is not None:
        extensions.enable_condstore(ctx.enabled)  # RFC 7162 section 3.1
    flags = normalize_flags(cmd.flags)
    pairs = resolve(view, cmd.sequence, cmd.uid)
    _require_writable(view)
    live = [uid for _, uid in pairs if uid not in view.gone]
    conflicts: set[int] = set()
    if live:
        try:
            result = await view.mailbox.store(
                live, _MODES[cmd.mode], flags, cmd.unchanged_since
            )
        except StoreError as exc:
            raise store_error_response(exc) from exc
        conflicts = set(result.conflicts)
        flag_updates = view.note_states(result.updated)
        if flag_updates:
            await ctx.io.send(*flag_updates)
    done = [uid for uid in live if uid not in conflicts]
    condstore = extensions.condstore(ctx.enabled)
    if done and (not cmd.silent or condstore):
        await ctx.io.send(
            *(
                view.fetch_flags_response(
                    uid, with_uid=cmd.uid, with_flags=not cmd.silent
                )
                for uid in done
            )
        )
    if conflicts:
        # RFC 7162 3.1.3: sequence numbers for STORE, UIDs for UID STORE.
        failed = sorted(
            uid if cmd.uid else (view.seq_of(uid) or 0) for uid in conflicts
        )
        code = Code("MODIFIED", (Raw(format_uid_list(failed)),))
        return Tagged(cmd.tag, Status.OK, "Conditional STORE failed", code)
    if len(live) != len(pairs):
        if cmd.uid:
            return uid_command_met_expunged(cmd.tag)
        raise no(EXPUNGE_ISSUED, "EXPUNGEISSUED")
    return Tagged(cmd.tag, Status.OK, "Store completed")


async def _copy_or_move(ctx: Context, cmd: c.Copy | c.Move, move: bool) -> Tagged:
    view = ctx.require_selected()
    pairs = resolve(view, cmd.sequence, cmd.uid)
    if move:
        _require_writable(view)
    destination = await open_for_append(ctx, cmd.mailbox)
    uids = [uid for _, uid in pairs]
    if any(uid in view.gone for uid in uids):
        raise no(EXPUNGE_ISSUED, "EXPUNGEISSUED")
    verb = "Move" if move else "Copy"
    if not uids:
        return Tagged(cmd.tag, Status.OK, f"{verb} completed")
    try:
        if move:
            mapping = await view.mailbox.move_to(uids, destination)
        else:
            mapping = await view.mailbox.copy_to(uids, destination)
    except StoreError as exc:
        raise store_error_response(exc, trycreate=True) from exc
    code = Code(
        "COPYUID",
        (
            destination.uidvalidity,
            Raw(format_uid_list([s for s, _ in mapping])),
            Raw(format_uid_list([d for _, d in mapping])),
        ),
    )
    if not move:
        return Tagged(cmd.tag, Status.OK, "Copy completed", code)
    # RFC 6851 section 4.3: COPYUID goes in an untagged OK *before* the
    # EXPUNGE responses (which the dispatcher's refresh sends).
    responses: list[Response] = [UntaggedStatus(Status.OK, "Moved", code)]
    await ctx.io.send(*responses)
    view.note_expunged(s for s, _ in mapping)
    return Tagged(cmd.tag, Status.OK, "Move completed")


async def handle_copy(ctx: Context, cmd: c.Copy) -> Tagged:
    """RFC 3501 6.4.7 with RFC 4315 COPYUID."""
    return await _copy_or_move(ctx, cmd, move=False)


async def handle_move(ctx: Context, cmd: c.Move) -> Tagged:
    """RFC 6851."""
    return await _copy_or_move(ctx, cmd, move=True)
