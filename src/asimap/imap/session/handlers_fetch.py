"""FETCH and SEARCH: the read side of the selected state.

FETCH (RFC 3501 6.4.5, 6.4.8; RFC 3516 BINARY).  Items that imply \\Seen
set it first, in one store call for all messages, so the FETCH responses
carry the new FLAGS (6.4.5) and the change feed does not repeat them.  In a
read-only (EXAMINE) session nothing is ever set (6.3.2).

Messages expunged by another connection but not yet announced (see
:mod:`selected`) are skipped, and the command then ends with ``NO
[EXPUNGEISSUED]`` (RFC 5530; the "NO" choice of RFC 2180 4.1.2) after
returning everything that still exists.

SEARCH (RFC 3501 6.4.4) evaluates keys with :mod:`asimap.imap.search`,
loading per message only what the key reads: nothing for flag and
sequence keys, INTERNALDATE/size for date and size keys, the store's cached
summary for the common header keys (FROM, SUBJECT, SENT*...), and the
message itself only for TEXT, BODY and other header fields.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, date, datetime

from asimap.imap import commands as c
from asimap.imap.responses import (
    Atom,
    Code,
    Encoded,
    Literal,
    Literal8,
    Response,
    Status,
    Tagged,
    Untagged,
    Value,
)
from asimap.imap.search import SearchCandidate, matches
from asimap.imap.session import condstore, extensions, fetch
from asimap.imap.session.context import Context
from asimap.imap.session.errors import CommandFailed, bad, no, store_error_response
from asimap.imap.session.handlers_selected import EXPUNGE_ISSUED, resolve
from asimap.imap.session.selected import SelectedMailbox
from asimap.message.dates import parse_sent_date
from asimap.message.model import Message
from asimap.store.base import (
    SUMMARY_HEADERS,
    Mailbox,
    MessageGone,
    MessageSummary,
    StoreError,
    StoreMode,
)

#: SEARCH charsets we understand (RFC 3501 6.4.4 requires US-ASCII; all
#: our text is Unicode internally, so UTF-8 costs nothing).
CHARSETS = ("US-ASCII", "UTF-8")

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
    use_summaries = any(att.kind in fetch.SUMMARY_KINDS for att in cmd.items)
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
                try:
                    found = await view.mailbox.summaries(batch)
                except StoreError as exc:
                    raise store_error_response(exc) from exc
                summaries = {summary.uid: summary for summary in found}
            if uid in view.gone:
                missing = True
                continue
            summary = summaries.get(uid)
            if use_summaries and summary is None:
                missing = True  # expunged meanwhile
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
            await out.add(Untagged((seq, Atom("FETCH"), items)), _weight(items))
    except CommandFailed:
        # What was fetched before the failure still goes out first, as it
        # did when each response was sent on its own.
        await out.flush()
        raise
    await out.flush()
    if missing:
        raise no(EXPUNGE_ISSUED, "EXPUNGEISSUED")
    return Tagged(cmd.tag, Status.OK, "Fetch completed")


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


def _weight(items: list[Value]) -> int:
    """Roughly the bytes a FETCH item list puts on the wire."""
    size = 32
    for value in items:
        if isinstance(value, Literal | Literal8 | Encoded):
            size += len(value.data)
    return size


async def handle_search(ctx: Context, cmd: c.Search) -> Tagged:
    view = ctx.require_selected()
    if cmd.return_options is not None:
        raise bad("SEARCH RETURN requires ESEARCH")
    if cmd.charset is not None and extensions.UTF8_ACCEPT in ctx.enabled:
        # RFC 6855 section 3: no charset label once UTF-8 is enabled.
        raise bad("SEARCH CHARSET is not allowed after ENABLE UTF8=ACCEPT")
    if cmd.charset is not None and cmd.charset.upper() not in CHARSETS:
        # RFC 3501 6.4.4: NO [BADCHARSET (supported charsets)].
        raise _bad_charset()
    if condstore.uses_modseq(cmd.key):
        extensions.enable_condstore(ctx.enabled)  # RFC 7162 section 3.1
    source = _source_for(cmd.key)
    if source is _Source.SUMMARY and not _caches_summaries(view.mailbox):
        # The default summaries() parses each message and encodes its
        # ENVELOPE and BODYSTRUCTURE too: reading the header is cheaper.
        source = _Source.MESSAGE
    max_seq = view.exists
    max_uid = view.uids[-1] if view.uids else 0
    found: list[Value] = []
    highest = 0  # the highest MODSEQ found, for RFC 7162 3.1.5
    live = [(index + 1, uid) for index, uid in enumerate(view.uids)]
    live = [(seq, uid) for seq, uid in live if uid not in view.gone]
    for start in range(0, len(live), SUMMARY_BATCH):
        batch = live[start : start + SUMMARY_BATCH]
        try:
            candidates = await _candidates(view, batch, source)
        except StoreError as exc:
            raise store_error_response(exc) from exc
        for candidate in candidates:
            if matches(cmd.key, candidate, max_seq=max_seq, max_uid=max_uid):
                found.append(candidate.uid if cmd.uid else candidate.seq)
                highest = max(highest, candidate.modseq)
    suffix = condstore.search_suffix(cmd.key, len(found), highest)
    await ctx.io.send(Untagged((Atom("SEARCH"), *found, *suffix)))
    return Tagged(cmd.tag, Status.OK, "Search completed")


class _Source(enum.Enum):
    """What SEARCH must load per message, cheapest first."""

    STATE = "state"  # flags, MODSEQ, sequence numbers: the view has them
    INFO = "info"  # + INTERNALDATE, RFC822.SIZE
    SUMMARY = "summary"  # + the cached header fields of the summary
    MESSAGE = "message"  # + the message itself (TEXT, BODY, other headers)


def _source_for(key: c.SearchKey) -> _Source:
    """The cheapest source that answers ``key`` exactly.

    Header keys on the fields of :data:`SUMMARY_HEADERS` (FROM, TO, CC,
    BCC, SUBJECT, HEADER Message-ID...) and SENT* (the Date: field) are
    answered from the store's summaries, which hold those fields decoded
    exactly as :meth:`Message.header_values` gives them; a store with a
    cache (MH) then parses nothing.  TEXT, BODY and other header fields
    need the message.
    """
    if isinstance(key, c.SearchText):
        return _Source.MESSAGE
    if isinstance(key, c.SearchHeader):
        if key.field.lower() in SUMMARY_HEADERS:
            return _Source.SUMMARY
        return _Source.MESSAGE
    if isinstance(key, c.SearchDate):
        return _Source.SUMMARY if key.sent else _Source.INFO
    if isinstance(key, c.SearchSize):
        return _Source.INFO
    if isinstance(key, c.SearchNot):
        return _source_for(key.key)
    if isinstance(key, c.SearchOr):
        return _costliest((_source_for(key.left), _source_for(key.right)))
    if isinstance(key, c.SearchAnd):
        return _costliest([_source_for(k) for k in key.keys])
    return _Source.STATE


_ORDER = list(_Source)


def _caches_summaries(mailbox: Mailbox) -> bool:
    """Whether the store answers summaries() from a cache (overrides it)."""
    return type(mailbox).summaries is not Mailbox.summaries


def _costliest(sources: Iterable[_Source]) -> _Source:
    return max(sources, key=_ORDER.index, default=_Source.STATE)


#: Stands for INTERNALDATE where the key never reads it (:data:`_Source.STATE`).
_NO_DATE = datetime.fromtimestamp(0, UTC)


async def _candidates(
    view: SelectedMailbox, batch: list[tuple[int, int]], source: _Source
) -> list[SearchCandidate]:
    """Candidates for ``(seq, uid)`` pairs, loading only what ``source``
    says; messages expunged meanwhile are left out."""
    summaries: dict[int, MessageSummary] = {}
    if source is _Source.SUMMARY:
        found = await view.mailbox.summaries([uid for _, uid in batch])
        summaries = {summary.uid: summary for summary in found}
    out: list[SearchCandidate] = []
    for seq, uid in batch:
        flags = view.flags[uid]
        if uid in view.recent:
            flags = flags | {"\\Recent"}
        candidate = SearchCandidate(
            seq=seq,
            uid=uid,
            flags=flags,
            modseq=view.modseqs.get(uid, 0),
            internaldate=_NO_DATE,
            size=0,
        )
        try:
            if source is _Source.SUMMARY:
                summary = summaries.get(uid)
                if summary is None:
                    continue  # expunged meanwhile
                candidate.internaldate = summary.internaldate
                candidate.size = summary.size
                candidate.message = SummaryMessage(summary)
            elif source is not _Source.STATE:
                info = await view.mailbox.info(uid)
                candidate.internaldate = info.internaldate
                candidate.size = info.size
                if source is _Source.MESSAGE:
                    candidate.message = await view.mailbox.message(uid)
        except MessageGone:
            continue
        out.append(candidate)
    return out


class SummaryMessage(Message):
    """A message as header SEARCH sees it, answered from a summary.

    Only what :func:`_source_for` lets through is asked: the decoded values
    of :data:`SUMMARY_HEADERS` fields and the sent date, computed from the
    summary exactly as :class:`Message` computes them from the message
    (``summarize`` stored ``header_values`` itself).  Anything else would
    be a bug in that predicate, so it fails loudly instead of matching
    against an empty message.
    """

    __slots__ = ("_summary",)

    def __init__(self, summary: MessageSummary) -> None:
        super().__init__(b"")
        self._summary = summary

    def header_values(self, name: str) -> list[str]:
        folded = name.lower()
        if folded not in SUMMARY_HEADERS:
            raise LookupError(f"header {name} is not in message summaries")
        return list(self._summary.headers.get(folded, ()))

    def sent_date(self) -> date | None:
        # Message.sent_date: the first Date: field, decoded.
        values = self._summary.headers.get("date", ())
        return parse_sent_date(values[0] if values else None)

    def header_text(self) -> str:
        raise LookupError("SEARCH TEXT needs the message, not its summary")

    def body_text(self) -> str:
        raise LookupError("SEARCH BODY/TEXT needs the message, not its summary")


def _bad_charset() -> CommandFailed:
    """``NO [BADCHARSET (US-ASCII UTF-8)]`` (RFC 3501 6.4.4, 7.1)."""
    names: list[Value] = [Atom(name) for name in CHARSETS]
    return CommandFailed(Status.NO, "Unsupported charset", Code("BADCHARSET", (names,)))
