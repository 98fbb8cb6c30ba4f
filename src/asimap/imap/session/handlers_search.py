"""SEARCH (RFC 3501 / RFC 9051 section 6.4.4), ESEARCH and SEARCHRES.

Keys are evaluated with :mod:`asimap.imap.search`, loading per message
only what the key reads: nothing for flag and sequence keys,
INTERNALDATE/size for date and size keys, the store's cached summary for
the common header keys (FROM, SUBJECT, SENT*...), and the message itself
only for TEXT, BODY and other header fields.  :func:`find` is shared with
SORT and THREAD, which search first and order what was found.

``RETURN (...)`` (RFC 4731) answers with one ESEARCH response built by
:mod:`esearch`; after ``ENABLE IMAP4rev2`` a plain SEARCH answers the same
way with ALL (RFC 9051 section 6.4.4: rev2 has no SEARCH response).
``RETURN (SAVE)`` (RFC 5182, RFC 9051 section 6.4.4.1) keeps the result
as UIDs in the selected view, so ``$`` stays right across expunges.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Code, Status, Tagged, Untagged, Value
from asimap.imap.search import SearchCandidate, matches, uses_recent
from asimap.imap.session import condstore, esearch, extensions, handlers_context
from asimap.imap.session.context import Context
from asimap.imap.session.errors import CommandFailed, bad, store_error_response
from asimap.imap.session.reading import read_message, read_summary
from asimap.imap.session.selected import SelectedMailbox
from asimap.message.dates import parse_sent_date
from asimap.message.envelope_addresses import (
    EnvelopeAddress,
    may_contain,
    wire_field,
)
from asimap.message.model import Message
from asimap.store import gcpause
from asimap.store.base import (
    SUMMARY_HEADERS,
    Mailbox,
    MessageGone,
    MessageInfo,
    MessageSummary,
    StoreError,
)
from asimap.store.objectid import emailid_of, threadid_of

#: SEARCH charsets we understand (RFC 3501 6.4.4 requires US-ASCII; all
#: our text is Unicode internally, so UTF-8 costs nothing).
CHARSETS = ("US-ASCII", "UTF-8")

#: Messages whose data one store call loads while searching.
SEARCH_BATCH = 256


def check_charset(ctx: Context, charset: str | None) -> None:
    """BAD/NO for a charset SEARCH, SORT or THREAD cannot use."""
    if charset is not None and extensions.UTF8_ACCEPT in ctx.enabled:
        # RFC 6855 section 3: no charset label once UTF-8 is enabled.
        raise bad("SEARCH CHARSET is not allowed after ENABLE UTF8=ACCEPT")
    if charset is not None and charset.upper() not in CHARSETS:
        # RFC 3501 6.4.4: NO [BADCHARSET (supported charsets)].
        raise bad_charset()


def saved_uids(view: SelectedMailbox) -> Collection[int]:
    """The SEARCHRES result ``$`` refers to (empty until saved)."""
    return view.saved


async def find(
    ctx: Context, view: SelectedMailbox, key: c.SearchKey
) -> list[esearch.Found]:
    """Every message ``key`` matches, ascending.

    Messages expunged by others but not yet announced are left out (their
    data is gone), as are messages that vanish while being read.
    """
    if extensions.rev2(ctx.enabled) and uses_recent(key):
        # RFC 9051 section 6.4.4 (search-key in section 9) has no NEW, OLD
        # or RECENT: appendix E item 12 removed them with \Recent.  Under
        # IMAP4rev1 (RFC 3501 6.4.4) they stay.
        raise bad("NEW, OLD and RECENT are not IMAP4rev2 search keys")
    if condstore.uses_modseq(key):
        extensions.enable_condstore(ctx.enabled)  # RFC 7162 section 3.1
    source = _source_for(key)
    if source in _SUMMARIES and not _caches_summaries(view.mailbox):
        # The default summaries() parses each message and encodes its
        # ENVELOPE and BODYSTRUCTURE too: reading the header is cheaper.
        source = _Source.MESSAGE
    max_seq = view.exists
    max_uid = view.uids[-1] if view.uids else 0
    saved = saved_uids(view)
    found: list[esearch.Found] = []
    # Sequences of objects as long as the mailbox, and no cycles: no
    # garbage collection while they are made (asimap.store.gcpause).
    with gcpause.paused():
        live = [(index + 1, uid) for index, uid in enumerate(view.uids)]
        live = [(seq, uid) for seq, uid in live if uid not in view.gone]
        if isinstance(key, c.SearchAll):
            # SORT/THREAD ... ALL over a big mailbox: no candidate to build.
            modseqs = view.modseqs
            return [esearch.Found(seq, uid, modseqs.get(uid, 0)) for seq, uid in live]
    ids = _uses_ids(key)
    for start in range(0, len(live), SEARCH_BATCH):
        batch = live[start : start + SEARCH_BATCH]
        try:
            candidates = await _candidates(view, batch, source, ids)
        except StoreError as exc:
            raise store_error_response(exc) from exc
        with gcpause.paused():
            for cand in candidates:
                if matches(key, cand, max_seq=max_seq, max_uid=max_uid, saved=saved):
                    found.append(esearch.Found(cand.seq, cand.uid, cand.modseq))
    return found


async def judge(
    view: SelectedMailbox,
    keys: Sequence[c.SearchKey],
    pairs: list[tuple[int, int]],
) -> list[dict[int, bool]]:
    """For each key, whether it matches each ``(seq, uid)`` pair, by UID.

    RFC 5267 update contexts re-judge only the messages that changed, for
    every context at once: the candidates are loaded once (with what the
    costliest key reads, as :func:`find` would) and every key is evaluated
    on them.  Messages whose data is gone are left out.  Raises
    :class:`StoreError`.
    """
    source = _costliest(_source_for(key) for key in keys)
    if source in _SUMMARIES and not _caches_summaries(view.mailbox):
        source = _Source.MESSAGE
    ids = any(_uses_ids(key) for key in keys)
    max_seq = view.exists
    max_uid = view.uids[-1] if view.uids else 0
    verdicts: list[dict[int, bool]] = [{} for _ in keys]
    for start in range(0, len(pairs), SEARCH_BATCH):
        batch = pairs[start : start + SEARCH_BATCH]
        for cand in await _candidates(view, batch, source, ids):
            for key, verdict in zip(keys, verdicts, strict=True):
                verdict[cand.uid] = matches(
                    key, cand, max_seq=max_seq, max_uid=max_uid, saved=view.saved
                )
    return verdicts


@dataclass(frozen=True, slots=True)
class ResultForm:
    """How a SEARCH-like command answers: classic or ESEARCH options (with
    the RFC 9394 PARTIAL range when asked)."""

    options: frozenset[str] | None
    partial: c.PartialRange | None = None

    @property
    def save(self) -> bool:
        return self.options is not None and esearch.SAVE in self.options


def result_form(
    ctx: Context,
    return_options: tuple[str, ...] | None,
    partial: c.PartialRange | None = None,
) -> ResultForm:
    """None for the classic response; the ESEARCH options otherwise --
    also for a plain SEARCH once IMAP4rev2 is enabled (RFC 9051 6.4.4)."""
    if return_options is not None:
        return ResultForm(esearch.normalize(return_options), partial)
    if extensions.rev2(ctx.enabled):
        return ResultForm(frozenset({esearch.ALL}))
    return ResultForm(None)


def save_result(
    view: SelectedMailbox,
    found: list[esearch.Found],
    form: ResultForm,
    *,
    ordered: bool,
    uid: bool,
) -> None:
    """Remember what RETURN (SAVE) names (RFC 9051 6.4.4.1 table 4)."""
    if form.options is not None and form.save:
        picked = esearch.selected(
            found, form.options, ordered=ordered, uid=uid, partial=form.partial
        )
        view.saved = frozenset(f.uid for f in picked)


async def handle_search(ctx: Context, cmd: c.Search) -> Tagged:
    view = ctx.require_selected()
    form = result_form(ctx, cmd.return_options, cmd.partial)
    handlers_context.check_update_tag(view, cmd)  # RFC 5267 section 4.3
    try:
        check_charset(ctx, cmd.charset)
        found = await find(ctx, view, cmd.key)
    except CommandFailed as failure:
        if form.save and failure.status is Status.NO:
            # RFC 9051 6.4.4.1: a failed SEARCH (SAVE) empties "$".
            view.saved = frozenset()
        raise
    save_result(view, found, form, ordered=False, uid=cmd.uid)
    if form.options is None:
        numbers: list[Value] = [f.uid if cmd.uid else f.seq for f in found]
        highest = max((f.modseq for f in found), default=0)
        suffix = condstore.search_suffix(cmd.key, len(found), highest)
        await ctx.io.send(Untagged((Atom("SEARCH"), *numbers, *suffix)))
    elif esearch.wanted(form.options):
        await ctx.io.send(
            esearch.response(
                cmd.tag,
                found,
                form.options,
                uid=cmd.uid,
                modseq=condstore.uses_modseq(cmd.key),
                partial=form.partial,
            )
        )
    await handlers_context.start_updates(ctx, view, cmd, found)
    return Tagged(cmd.tag, Status.OK, "Search completed")


class _Source(enum.Enum):
    """What SEARCH must load per message, cheapest first."""

    STATE = "state"  # flags, MODSEQ, sequence numbers: the view has them
    INFO = "info"  # + INTERNALDATE, RFC822.SIZE
    SUMMARY = "summary"  # + the cached header fields of the summary
    IDS = "ids"  # + EMAILID/THREADID (a full summary: the whole message)
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
    if isinstance(key, c.SearchSize | c.SearchSaveDate):
        return _Source.INFO
    if isinstance(key, c.SearchObjectId):
        # RFC 8474 ids are cached with the full summary (content-derived).
        return _Source.IDS
    if isinstance(key, c.SearchNot):
        return _source_for(key.key)
    if isinstance(key, c.SearchOr):
        return _costliest((_source_for(key.left), _source_for(key.right)))
    if isinstance(key, c.SearchAnd):
        return _costliest([_source_for(k) for k in key.keys])
    return _Source.STATE


def _uses_ids(key: c.SearchKey) -> bool:
    """Whether ``key`` tests EMAILID or THREADID (RFC 8474 section 6)."""
    stack: list[c.SearchKey] = [key]
    while stack:  # iterative: keys may nest as deep as the parser allows
        node = stack.pop()
        if isinstance(node, c.SearchObjectId):
            return True
        if isinstance(node, c.SearchNot):
            stack.append(node.key)
        elif isinstance(node, c.SearchOr):
            stack += [node.left, node.right]
        elif isinstance(node, c.SearchAnd):
            stack.extend(node.keys)
    return False


_ORDER = list(_Source)
_SUMMARIES = (_Source.SUMMARY, _Source.IDS)


def _caches_summaries(mailbox: Mailbox) -> bool:
    """Whether the store answers summaries() from a cache (overrides it)."""
    return type(mailbox).summaries is not Mailbox.summaries


def _costliest(sources: Iterable[_Source]) -> _Source:
    return max(sources, key=_ORDER.index, default=_Source.STATE)


#: Stands for INTERNALDATE where the key never reads it (:data:`_Source.STATE`).
_NO_DATE = datetime.fromtimestamp(0, UTC)


async def _candidates(
    view: SelectedMailbox,
    batch: list[tuple[int, int]],
    source: _Source,
    ids: bool = True,
) -> list[SearchCandidate]:
    """Candidates for ``(seq, uid)`` pairs, loading only what ``source``
    says (and, from a loaded message, its RFC 8474 ids only when ``ids``:
    they hash the whole message); messages expunged meanwhile are left
    out -- and only those: a message the batch could not read is asked
    for again on its own (see :mod:`reading`)."""
    summaries: dict[int, MessageSummary] = {}
    loaded: dict[int, tuple[MessageInfo, Message | None]] = {}
    if source is _Source.SUMMARY or source is _Source.IDS:
        found = await view.mailbox.summaries(
            [uid for _, uid in batch], structure=source is _Source.IDS
        )
        summaries = {summary.uid: summary for summary in found}
    elif source is not _Source.STATE:
        # One store call for the batch, not two per message.
        content = source is _Source.MESSAGE
        for info, message in await view.mailbox.load(
            [uid for _, uid in batch], content=content
        ):
            loaded[info.uid] = (info, message)
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
            if source is _Source.SUMMARY or source is _Source.IDS:
                summary = summaries.get(uid)
                if summary is None:
                    # Expunged meanwhile (MessageGone, caught below), or
                    # its file moved while the batch summarised it.
                    summary = await read_summary(
                        view.mailbox, uid, structure=source is _Source.IDS
                    )
                candidate.internaldate = summary.internaldate
                candidate.size = summary.size
                candidate.savedate = summary.savedate
                candidate.emailid = summary.emailid
                candidate.threadid = summary.threadid
                candidate.message = SummaryMessage(summary)
            elif source is not _Source.STATE:
                entry = loaded.get(uid)
                if entry is None:
                    # Expunged meanwhile (MessageGone, caught below), or
                    # its file moved while the batch read it.
                    entry = await _load_one(view.mailbox, uid, source)
                info, message = entry
                candidate.internaldate = info.internaldate
                candidate.size = info.size
                candidate.savedate = info.savedate
                if message is not None:
                    candidate.message = message
                    if ids:
                        candidate.emailid = emailid_of(message.raw)
                        candidate.threadid = threadid_of(
                            message.header_values, candidate.emailid
                        )
        except MessageGone:
            continue
        out.append(candidate)
    return out


async def _load_one(
    mailbox: Mailbox, uid: int, source: _Source
) -> tuple[MessageInfo, Message | None]:
    """What :meth:`Mailbox.load` gives for one message it left out of a
    batch: raises :class:`MessageGone` only if the store no longer has the
    UID (an MH tool renaming the file made the batch miss it,
    :mod:`reading`)."""
    info = await mailbox.info(uid)
    if source is not _Source.MESSAGE:
        return info, None
    return info, await read_message(mailbox, uid)


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

    def addresses(self, field: str) -> tuple[EnvelopeAddress, ...]:
        # Message.addresses, from the envelope the summary caches.
        return wire_field(self._summary.envelope.data, field)

    def may_match_addresses(self, needle: str) -> bool:
        return may_contain(self._summary.envelope.data, needle)

    def sent_date(self) -> date | None:
        # Message.sent_date: the first Date: field, decoded.
        values = self._summary.headers.get("date", ())
        return parse_sent_date(values[0] if values else None)

    def header_text(self) -> str:
        raise LookupError("SEARCH TEXT needs the message, not its summary")

    def body_text(self) -> str:
        raise LookupError("SEARCH BODY/TEXT needs the message, not its summary")

    def mime_header_text(self) -> str:
        raise LookupError("SEARCH TEXT needs the message, not its summary")


def bad_charset() -> CommandFailed:
    """``NO [BADCHARSET (US-ASCII UTF-8)]`` (RFC 3501 6.4.4, 7.1)."""
    names: list[Value] = [Atom(name) for name in CHARSETS]
    return CommandFailed(Status.NO, "Unsupported charset", Code("BADCHARSET", (names,)))
