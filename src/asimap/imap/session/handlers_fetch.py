"""FETCH: the read side of the selected state (SEARCH is in
:mod:`handlers_search`).

FETCH (RFC 3501 6.4.5, 6.4.8; RFC 3516 BINARY).  Items that imply \\Seen
set it first, in one store call for all messages, so the FETCH responses
carry the new FLAGS (6.4.5) and the change feed does not repeat them.  In a
read-only (EXAMINE) session nothing is ever set (6.3.2).

Messages expunged by another connection but not yet announced (see
:mod:`selected`) are skipped, and the command then ends with ``NO
[EXPUNGEISSUED]`` (RFC 5530; the "NO" choice of RFC 2180 4.1.2) after
returning everything that still exists -- except UID FETCH, which ends
with ``OK [EXPUNGEISSUED]``: a UID that no longer exists is ignored
without error (RFC 3501 6.4.8), and the EXPUNGE follows at once.  A
message whose content the store cannot read (an unreadable file) is
skipped the same way and the command ends with ``NO [UNAVAILABLE]``
naming it and the reason.
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import (
    Atom,
    Encoded,
    Literal,
    Literal8,
    Response,
    Status,
    Tagged,
    Untagged,
    Value,
)
from asimap.imap.session import condstore, extensions, fetch
from asimap.imap.session.context import Context
from asimap.imap.session.errors import CommandFailed, bad, no, store_error_response
from asimap.imap.session.esearch import partial_window
from asimap.imap.session.handlers_selected import (
    EXPUNGE_ISSUED,
    resolve,
    uid_command_met_expunged,
)
from asimap.imap.session.reading import read_summary
from asimap.store.base import (
    Mailbox,
    MessageGone,
    MessageSummary,
    MessageUnreadable,
    StoreError,
    StoreMode,
)

#: Summary items a header-only summary cannot answer: with none of them
#: (ENVELOPE, INTERNALDATE, RFC822.SIZE, SAVEDATE) a store parses only
#: each message's header block (``Mailbox.summaries(structure=False)``).
_STRUCTURE_KINDS = frozenset(
    {
        c.FetchKind.BODY,
        c.FetchKind.BODYSTRUCTURE,
        c.FetchKind.EMAILID,
        c.FetchKind.THREADID,
    }
)

#: Messages whose summaries FETCH loads in one store call.
SUMMARY_BATCH = 256

#: FETCH responses per write, and the message data a write may hold.
SEND_BATCH = 256
SEND_BATCH_BYTES = 256 * 1024


async def handle_fetch(ctx: Context, cmd: c.Fetch) -> Tagged:
    view = ctx.require_selected()
    if cmd.vanished and not extensions.qresync(ctx.enabled):
        raise bad("VANISHED requires ENABLE QRESYNC")  # RFC 7162 3.2.6
    fetch.validate(cmd.items)
    if cmd.changed_since is not None or fetch.asks_modseq(cmd.items):
        extensions.enable_condstore(ctx.enabled)  # RFC 7162 section 3.1
    pairs = resolve(view, cmd.sequence, cmd.uid)
    if cmd.partial is not None:
        # RFC 9394 section 3.3: only the messages at those positions of the
        # UID range (expunged-but-unannounced ones hold no position), and
        # the window is taken before CHANGEDSINCE filters (section 3.4).
        live = [pair for pair in pairs if pair[1] not in view.gone]
        pairs = partial_window(live, cmd.partial)
    if cmd.changed_since is not None:
        # RFC 7162 3.1.4.2: only messages changed after the given MODSEQ.
        since = cmd.changed_since
        pairs = [(seq, uid) for seq, uid in pairs if view.modseqs.get(uid, 0) > since]
        if cmd.vanished:
            await condstore.send_vanished_earlier(ctx, view, cmd.sequence, since)
    condstore_on = extensions.condstore(ctx.enabled)

    seen_now: set[int] = set()
    if not view.readonly and any(fetch.sets_seen(att) for att in cmd.items):
        unseen = [
            uid
            for _, uid in pairs
            if uid not in view.gone and "\\Seen" not in view.flags.get(uid, ())
        ]
        if unseen:
            try:
                result = await view.mailbox.store(unseen, StoreMode.ADD, ["\\Seen"])
            except StoreError as exc:
                raise store_error_response(exc) from exc
            # \Seen is a system flag: no FLAGS re-announcement can follow.
            view.note_states(result.updated)
            seen_now = {state.uid for state in result.updated}

    missing = False
    unreadable: MessageUnreadable | None = None
    failed: dict[int, MessageUnreadable] = {}
    use_summaries = any(att.kind in fetch.SUMMARY_KINDS for att in cmd.items)
    structure = any(att.kind in _STRUCTURE_KINDS for att in cmd.items)
    summaries: dict[int, MessageSummary] = {}
    out = _Batch(ctx)
    try:
        for index, (seq, uid) in enumerate(pairs):
            if use_summaries and index % SUMMARY_BATCH == 0:
                # One store call per batch (a cache lookup for the MH store)
                # instead of one per message; batches keep memory bounded.
                batch = [
                    u
                    for _, u in pairs[index : index + SUMMARY_BATCH]
                    if u not in view.gone
                ]
                found, failed = await _summaries(view.mailbox, batch, structure)
                if failed and unreadable is None:
                    unreadable = next(iter(failed.values()))
                summaries = {summary.uid: summary for summary in found}
            if uid in view.gone:
                missing = True
                continue
            summary = summaries.get(uid)
            if use_summaries and summary is None:
                if uid in failed:
                    continue
                try:
                    # Expunged meanwhile, or its file moved (reading.py).
                    summary = await read_summary(view.mailbox, uid, structure=structure)
                except MessageGone:
                    missing = True
                    continue
                except MessageUnreadable as exc:
                    unreadable = unreadable or exc
                    continue
            # With CONDSTORE a FETCH that set \Seen reports UID and MODSEQ
            # too (RFC 7162 3.1); CHANGEDSINCE implies MODSEQ (3.1.4.2).
            seen = uid in seen_now
            with_uid = cmd.uid or (seen and condstore_on)
            with_modseq = cmd.changed_since is not None or (seen and condstore_on)
            fast = None
            if not with_modseq:
                fast = fetch.fast_items(
                    view, uid, cmd.items, with_uid=with_uid, with_flags=seen
                )
            if fast is not None:
                await out.add(Untagged((seq, Atom("FETCH"), fast)), 32)
                continue
            try:
                items = await fetch.fetch_message(
                    view,
                    uid,
                    cmd.items,
                    with_uid=with_uid,
                    with_flags=seen,
                    with_modseq=with_modseq,
                    summary=summary,
                )
            except MessageGone:
                missing = True
                continue
            except MessageUnreadable as exc:
                unreadable = unreadable or exc
                continue
            await out.add(Untagged((seq, Atom("FETCH"), items)), _weight(items))
    except CommandFailed:
        # What was fetched before the failure still goes out first, as it
        # did when each response was sent on its own.
        await out.finish()
        raise
    await out.finish()
    if unreadable is not None:
        raise store_error_response(unreadable)
    if missing:
        if cmd.uid:
            return uid_command_met_expunged(cmd.tag)
        raise no(EXPUNGE_ISSUED, "EXPUNGEISSUED")
    return Tagged(cmd.tag, Status.OK, "Fetch completed")


async def _summaries(
    mailbox: Mailbox, uids: list[int], structure: bool
) -> tuple[list[MessageSummary], dict[int, MessageUnreadable]]:
    """The summaries of ``uids`` (with BODYSTRUCTURE and ids when
    ``structure``); when a message cannot be read, the others one by one,
    so that only the unreadable ones are left out (and returned, by UID)."""
    try:
        return list(await mailbox.summaries(uids, structure=structure)), {}
    except MessageUnreadable:
        pass
    except StoreError as exc:
        raise store_error_response(exc) from exc
    found: list[MessageSummary] = []
    failed: dict[int, MessageUnreadable] = {}
    for uid in uids:
        try:
            found += await mailbox.summaries([uid], structure=structure)
        except MessageUnreadable as exc:
            failed[uid] = exc
        except StoreError as exc:
            raise store_error_response(exc) from exc
    return found, failed


class _Batch:
    """FETCH responses sent a batch at a time.

    Each send is a TLS record, a write and a drain; for ``UID FETCH 1:*
    (UID FLAGS)`` over 100,000 messages that per-response cost was most of
    the command's time.  A batch is flushed at :data:`SEND_BATCH` responses
    or :data:`SEND_BATCH_BYTES` of message data, so memory stays bounded
    whatever is fetched.
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._pending: list[Response] = []
        self._bytes = 0

    async def add(self, response: Response, weight: int) -> None:
        self._pending.append(response)
        self._bytes += weight
        if len(self._pending) >= SEND_BATCH or self._bytes >= SEND_BATCH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._pending:
            pending, self._pending, self._bytes = self._pending, [], 0
            await self._ctx.io.send(*pending)

    async def finish(self) -> None:
        """The last batch goes out with the tagged response (one write)."""
        pending, self._pending, self._bytes = self._pending, [], 0
        await self._ctx.hold(*pending)


def _weight(items: list[Value]) -> int:
    """Roughly the bytes a FETCH item list puts on the wire."""
    size = 32
    for value in items:
        if isinstance(value, Literal | Literal8 | Encoded):
            size += len(value.data)
    return size
