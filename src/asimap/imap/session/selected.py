"""The selected-mailbox view: what *this* client believes the mailbox holds.

The store knows the truth; the client knows only what it has been told.
IMAP sequence numbers are positions in the client's picture, so the session
keeps that picture here and moves it towards the truth only at the moments
the RFCs allow:

* new messages and flag changes may be announced at any time a command is
  in progress (``* n EXISTS``, ``* n FETCH (FLAGS ...)``);
* expunges may NOT be announced while a FETCH, STORE or SEARCH by sequence
  number is running (RFC 3501 section 7.4.1, RFC 9051 section 7.5.1), nor
  during COPY by sequence number (it names messages by position too).  Until
  announced, an expunged message keeps its sequence number; the session
  treats it as "present but its data is gone".

The view holds, in sequence order, the UIDs the client knows (a plain list,
ascending: UIDs only ever grow, so position == sequence number - 1), the
flags last reported for each, their MODSEQ, and which UIDs are \\Recent for
this session.  :meth:`SelectedMailbox.refresh` asks the store for
``changes_since`` the last MODSEQ seen and returns the untagged responses to
send.  Flag changes made by this very connection (STORE, FETCH setting
\\Seen) update the cached flags when they happen, so the change feed,
comparing against the cache, does not report them a second time.

The shape of those responses depends on what the client enabled (the
view shares the session's ``enabled`` set, see :mod:`extensions`): with
CONDSTORE every flag update carries UID and MODSEQ (RFC 7162 section 3.1),
with QRESYNC expunges are ``* VANISHED uids`` instead of EXPUNGE (RFC 7162
section 3.2.10), and after ``ENABLE IMAP4rev2`` there is no RECENT
response and no ``\\Recent`` flag (RFC 9051 appendix E items 12 and 21).

A :class:`ResultWatcher` (the RFC 5267 update contexts of
:mod:`update_contexts`) hears of every change the refresh applies, at the
two moments RFC 5267 sections 4.3.3-4.3.4 require: expunged messages
before any EXPUNGE response (so their sequence numbers are still valid),
new and changed messages after the EXISTS and FETCH responses (so new
sequence numbers are already valid).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Protocol

from asimap.imap.commands import SequenceSet
from asimap.imap.responses import (
    Atom,
    Code,
    Raw,
    Response,
    Status,
    Untagged,
    UntaggedStatus,
    Value,
)
from asimap.imap.session import extensions
from asimap.imap.session.uidset import format_uid_list
from asimap.store.base import Mailbox, MessageState

#: Order in which system flags are listed (RFC 3501 section 2.3.2).
SYSTEM_FLAG_ORDER = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def flag_atoms(flags: Iterable[str], recent: bool = False) -> list[Value]:
    """Flags as response atoms: system flags first in a fixed order, then
    keywords sorted, then ``\\Recent`` (stable output makes transcripts and
    client caches happy)."""
    present = set(flags)
    ordered: list[Value] = [Atom(f) for f in SYSTEM_FLAG_ORDER if f in present]
    ordered.extend(Atom(f) for f in sorted(present - set(SYSTEM_FLAG_ORDER)))
    if recent:
        ordered.append(Atom("\\Recent"))
    return ordered


def _keywords(flags: Iterable[str]) -> set[str]:
    return {f for f in flags if not f.startswith("\\")}


class ResultWatcher(Protocol):
    """Told of the changes a refresh applies (see the module docstring)."""

    async def removed(self, view: SelectedMailbox) -> list[Response]:
        """``view.gone`` holds expunged UIDs, not yet announced."""
        ...

    async def changed(
        self, view: SelectedMailbox, uids: Sequence[int]
    ) -> list[Response]:
        """``uids`` (ascending) are new or changed, and present."""
        ...


#: Distinct flag sets, shared by every view of the process: a mailbox has
#: few (\Seen, \Seen \Answered, ...), but each message's state comes with
#: its own frozenset, and each connection's view would keep one per message
#: (an IDLE connection on a 10,000-message INBOX held 2 MB of them).
_FLAG_SETS: dict[frozenset[str], frozenset[str]] = {}
#: Bound on the table: keywords can make many distinct sets.
_FLAG_SETS_MAX = 4096


def shared_flags(flags: frozenset[str]) -> frozenset[str]:
    """The process-wide instance equal to ``flags`` (memory, not meaning)."""
    shared = _FLAG_SETS.get(flags)
    if shared is None:
        if len(_FLAG_SETS) >= _FLAG_SETS_MAX:
            _FLAG_SETS.clear()
        shared = _FLAG_SETS[flags] = flags
    return shared


class InvalidSequence(Exception):
    """A sequence-number set names a message the client cannot know."""


class SelectedMailbox:
    """The client's picture of one selected mailbox."""

    def __init__(
        self,
        mailbox: Mailbox,
        states: Sequence[MessageState],
        modseq: int,
        *,
        readonly: bool,
        recent: Iterable[int] = (),
        keywords: Iterable[str] = (),
        enabled: set[str] | None = None,
    ) -> None:
        self.mailbox = mailbox
        #: The session's enabled extensions (shared, so that an enabling
        #: command run while selected takes effect at once).
        self.enabled: set[str] = enabled if enabled is not None else set()
        self.readonly = readonly
        self.modseq = modseq
        self.uids: list[int] = [s.uid for s in states]
        self.flags: dict[int, frozenset[str]] = {
            s.uid: shared_flags(s.flags) for s in states
        }
        self.modseqs: dict[int, int] = {s.uid: s.modseq for s in states}
        self.recent: set[int] = set(recent)
        #: UIDs expunged in the store but not yet announced to the client.
        self.gone: set[int] = set()
        self._announced_recent = len(self.recent)
        #: The SEARCHRES result ``$`` as UIDs (RFC 9051 section 6.4.4.1):
        #: a new view starts empty (SELECT/EXAMINE reset it, CLOSE and
        #: UNSELECT drop the view), and expunged UIDs simply stop
        #: resolving, so "$" loses them exactly when the client is told.
        self.saved: frozenset[int] = frozenset()
        #: The RFC 5267 update contexts of this selection, if any (they
        #: end with it: section 4.3).
        self.watcher: ResultWatcher | None = None
        #: Keywords announced in the last FLAGS response.
        self.keywords: set[str] = set(keywords)
        for state in states:
            self.keywords.update(_keywords(state.flags))

    # -- FLAGS and PERMANENTFLAGS -------------------------------------------

    def flags_responses(self) -> list[Response]:
        """``* FLAGS`` and ``* OK [PERMANENTFLAGS]`` (RFC 3501 7.2.6, 6.3.1).

        A read-only session may change nothing: PERMANENTFLAGS is empty.
        """
        flags: list[Value] = [Atom(f) for f in SYSTEM_FLAG_ORDER]
        flags.extend(Atom(k) for k in sorted(self.keywords))
        permanent: list[Value] = [] if self.readonly else [*flags, Atom("\\*")]
        code = Code("PERMANENTFLAGS", (permanent,))
        return [
            Untagged((Atom("FLAGS"), flags)),
            UntaggedStatus(Status.OK, "Flags permitted", code),
        ]

    def _keyword_update(self, flag_sets: Iterable[frozenset[str]]) -> list[Response]:
        """FLAGS again when a keyword appears that the client was not told
        about (RFC 3501 7.2.6: FLAGS reports the flags defined in the
        mailbox, so it is re-sent when that set grows)."""
        new: set[str] = set()
        for flags in flag_sets:
            new.update(_keywords(flags))
        new -= self.keywords
        if not new:
            return []
        self.keywords |= new
        return self.flags_responses()

    # -- lookups -------------------------------------------------------------

    @property
    def exists(self) -> int:
        """The message count the client believes in."""
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        """The sequence number of ``uid``, or None if the client lacks it."""
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def resolve(self, sequence: SequenceSet, *, uid: bool) -> list[tuple[int, int]]:
        """``(seq, uid)`` pairs named by a sequence set, ascending.

        UID sets quietly skip UIDs that do not exist (RFC 3501 section 6.4.8,
        so ``UID FETCH 1:4294967295`` on an empty mailbox is fine).  A
        sequence-number set naming a number above EXISTS -- or any number,
        including ``*``, on an empty mailbox -- is invalid (RFC 9051
        section 9 "seq-number": "*" and numbers beyond EXISTS are errors),
        and raises :class:`InvalidSequence`.  ``$`` names the saved
        result in either form and is never invalid, even when empty (RFC
        9051 section 6.4.4.1).
        """
        if sequence.saved:
            known = ((self.seq_of(u), u) for u in sorted(self.saved))
            return [(seq, u) for seq, u in known if seq is not None]
        if uid:
            picked = sequence.select(self.uids)
            return [(self.seq_of(u) or 0, u) for u in picked]
        count = len(self.uids)
        if count == 0 or sequence.max_explicit() > count:
            raise InvalidSequence
        seqs = sequence.select(range(1, count + 1))
        return [(s, self.uids[s - 1]) for s in seqs]

    # -- own changes ----------------------------------------------------------

    def note_states(self, states: Sequence[MessageState]) -> list[Response]:
        """Record flag states this connection caused (STORE, implicit \\Seen)
        so that the change feed does not announce them again.

        Returns the FLAGS responses to send first if a new keyword appeared.
        """
        for state in states:
            if state.uid in self.flags:
                self.flags[state.uid] = shared_flags(state.flags)
                self.modseqs[state.uid] = state.modseq
        return self._keyword_update(state.flags for state in states)

    def note_expunged(self, uids: Iterable[int]) -> None:
        """Record expunges this connection caused (EXPUNGE, MOVE); they are
        announced by the next :meth:`refresh` that allows expunges."""
        self.gone.update(u for u in uids if u in self.flags)

    # -- the change feed ------------------------------------------------------

    async def refresh(self, *, allow_expunge: bool, with_uid: bool) -> list[Response]:
        """Catch up with the store and return the untagged responses to send.

        ``allow_expunge`` is False during FETCH/STORE/SEARCH/COPY by sequence
        number (RFC 3501 7.4.1).  ``with_uid`` adds ``UID`` to unsolicited
        FETCH responses sent during UID commands (RFC 3501 section 7.4.2:
        UID is required in FETCH responses of UID commands).
        """
        changes = await self.mailbox.changes_since(self.modseq)
        responses: list[Response] = []
        expunged = set(changes.expunged)
        if not changes.expunged_complete:
            # The store forgot old expunges: compare the UID lists instead.
            current = {s.uid for s in await self.mailbox.states()}
            expunged |= {u for u in self.uids if u not in current}
        self.gone.update(u for u in expunged if u in self.flags)

        new_states: list[MessageState] = []
        flag_changes: list[int] = []
        last_uid = self.uids[-1] if self.uids else 0
        for state in changes.changed:
            if state.uid in self.flags:
                if state.uid in self.gone:
                    continue
                self.modseqs[state.uid] = state.modseq
                if self.flags[state.uid] != state.flags:
                    self.flags[state.uid] = shared_flags(state.flags)
                    flag_changes.append(state.uid)
            elif state.uid > last_uid and state.uid not in expunged:
                new_states.append(state)

        responses.extend(self._keyword_update(s.flags for s in changes.changed))
        if self.watcher is not None and self.gone:
            # RFC 5267 section 4.3.4: REMOVEFROM before the EXPUNGE, even
            # when the EXPUNGE itself must wait (appendix A.3).
            responses.extend(await self.watcher.removed(self))
        if allow_expunge and self.gone:
            responses.extend(self._take_expunges())

        if new_states:
            for state in new_states:
                self.uids.append(state.uid)
                self.flags[state.uid] = shared_flags(state.flags)
                self.modseqs[state.uid] = state.modseq
            responses.append(Untagged((len(self.uids), Atom("EXISTS"))))
            if self.readonly:
                # RFC 3501 6.3.2: read-only sessions see \Recent, never take it.
                claimed = await self.mailbox.peek_recent()
            else:
                claimed = await self.mailbox.claim_recent()
            self.recent.update(u for u in claimed if u in self.flags)
            if len(self.recent) != self._announced_recent:
                self._announced_recent = len(self.recent)
                if not extensions.rev2(self.enabled):
                    responses.append(Untagged((len(self.recent), Atom("RECENT"))))

        for uid in flag_changes:
            responses.append(self.fetch_flags_response(uid, with_uid=with_uid))
        self.modseq = max(self.modseq, changes.highestmodseq)
        if self.watcher is not None and changes.changed:
            # Every change counts, this connection's own STORE too (its
            # flags are already in the cache, so it is not in flag_changes).
            # RFC 5267 section 4.3.3: ADDTO after the EXISTS.
            touched = {s.uid for s in changes.changed} - self.gone
            present = sorted(u for u in touched if u in self.flags)
            if present:
                responses.extend(await self.watcher.changed(self, present))
        return responses

    def _take_expunges(self) -> list[Response]:
        """Announce every pending expunge.

        With QRESYNC this is one ``* VANISHED uid-set`` (RFC 7162 section
        3.2.10: the server MUST NOT send EXPUNGE then).  Otherwise EXPUNGE
        responses go out highest sequence number first: each number is then
        correct at the moment it is sent, with no renumbering arithmetic on
        either side (RFC 3501 section 7.4.1 example uses the shifting form;
        both are equivalent).
        """
        responses: list[Response] = []
        vanished: list[int] = []
        for uid in sorted(self.gone, reverse=True):
            seq = self.seq_of(uid)
            if seq is None:
                continue
            vanished.append(uid)
            if not extensions.qresync(self.enabled):
                responses.append(Untagged((seq, Atom("EXPUNGE"))))
            del self.uids[seq - 1]
            del self.flags[uid]
            self.modseqs.pop(uid, None)
            if uid in self.recent:
                self.recent.discard(uid)
                self._announced_recent -= 1
        self.gone.clear()
        if vanished and extensions.qresync(self.enabled):
            uids = Raw(format_uid_list(sorted(vanished)))
            responses.append(Untagged((Atom("VANISHED"), uids)))
        return responses

    def fetch_flags_response(
        self, uid: int, *, with_uid: bool, with_flags: bool = True
    ) -> Response:
        """``* seq FETCH ([UID u ]FLAGS (...)[ MODSEQ (m)])`` from the cache.

        UID is always there with CONDSTORE (RFC 7162 section 3.1) and with
        IMAP4rev2 (RFC 9051 appendix E item 21), MODSEQ with CONDSTORE.
        ``with_flags=False`` is for STORE .SILENT under CONDSTORE, which
        still owes the client the new MODSEQ (RFC 7162 section 3.1.3).
        """
        seq = self.seq_of(uid) or 0
        condstore = extensions.condstore(self.enabled)
        items: list[Value] = []
        if with_uid or condstore or extensions.rev2(self.enabled):
            items += [Atom("UID"), uid]
        if with_flags:
            items += [Atom("FLAGS"), self.flag_list(uid)]
        if condstore:
            items += self.modseq_item(uid)
        return Untagged((seq, Atom("FETCH"), items))

    def modseq_item(self, uid: int) -> list[Value]:
        """``MODSEQ (m)`` as the client should see it (RFC 7162 3.1.4.1)."""
        return [Atom("MODSEQ"), [self.modseqs.get(uid, self.modseq)]]

    def flag_list(self, uid: int) -> list[Value]:
        """The flags of ``uid`` as the client should see them (no
        ``\\Recent`` for an IMAP4rev2 client, RFC 9051 appendix E item 12)."""
        return flag_atoms(self.flags.get(uid, frozenset()), self.shows_recent(uid))

    def shows_recent(self, uid: int) -> bool:
        """Whether ``uid`` is listed with ``\\Recent`` (never for IMAP4rev2)."""
        return uid in self.recent and not extensions.rev2(self.enabled)
