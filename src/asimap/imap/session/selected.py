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

import asyncio
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
from asimap.imap.session.selected_table import (
    Flight,
    Shelf,
    ViewTable,
    shared_flags,
    shelf_for,
)
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


#: The empty sets every view starts with (see ``SelectedMailbox.recent``).
_NO_UIDS: frozenset[int] = frozenset()
_NO_KEYWORDS: frozenset[str] = frozenset()


class InvalidSequence(Exception):
    """A sequence-number set names a message the client cannot know."""


class SelectedMailbox:
    """The client's picture of one selected mailbox."""

    __slots__ = (
        "__weakref__",  # per-view caches (handlers_sort) key on the view
        "_announced_recent",
        "_private",
        "_shelf",
        "_table",
        "enabled",
        "gone",
        "keywords",
        "mailbox",
        "modseq",
        "readonly",
        "recent",
        "saved",
        "watcher",
    )

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
        #: UIDs, flags and MODSEQs, shared with other views of the mailbox
        #: that hold the same (:mod:`selected_table`); ``_private`` once
        #: this view made its own copy to change.
        self._shelf: Shelf | None = shelf_for(mailbox)
        table = ViewTable.of(states)
        if self._shelf is not None:
            table = self._shelf.intern_selected(modseq, table)
        self._table = table
        self._private = False
        #: Sets are replaced, never changed: most views keep the shared
        #: empty one for good (an empty ``set`` is 216 bytes).
        self.recent: frozenset[int] = frozenset(recent) or _NO_UIDS
        #: UIDs expunged in the store but not yet announced to the client.
        self.gone: frozenset[int] = _NO_UIDS
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
        found = set(keywords)
        for flags in set(table.flags.values()):
            found.update(_keywords(flags))
        self.keywords: frozenset[str] = frozenset(found) if found else _NO_KEYWORDS

    # -- the table (read-only outside this class) ------------------------------

    @property
    def uids(self) -> list[int]:
        """The UIDs the client knows, ascending: position == sequence - 1."""
        return self._table.uids

    @property
    def flags(self) -> dict[int, frozenset[str]]:
        """UID -> the flags last reported to the client."""
        return self._table.flags

    @property
    def modseqs(self) -> dict[int, int]:
        """UID -> its MODSEQ as last known."""
        return self._table.modseqs

    @property
    def table(self) -> ViewTable:
        """The table itself (shared with other views while neither changes
        it; tests check the sharing by identity)."""
        return self._table

    def _own(self) -> ViewTable:
        """The table, copied first if other views may read it."""
        if not self._private:
            self._table = self._table.copy()
            self._private = True
        return self._table

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
        self.keywords = self.keywords | new
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
        known = [state for state in states if state.uid in self.flags]
        if known:
            table = self._own()
            for state in known:
                table.flags[state.uid] = shared_flags(state.flags)
                table.modseqs[state.uid] = state.modseq
        return self._keyword_update(state.flags for state in states)

    def note_expunged(self, uids: Iterable[int]) -> None:
        """Record expunges this connection caused (EXPUNGE, MOVE); they are
        announced by the next :meth:`refresh` that allows expunges."""
        self._add_gone(uids)

    # -- the change feed ------------------------------------------------------

    async def refresh(
        self, *, allow_expunge: bool, with_uid: bool, shared: bool = False
    ) -> list[Response]:
        """Catch up with the store and return the untagged responses to send.

        ``allow_expunge`` is False during FETCH/STORE/SEARCH/COPY by sequence
        number (RFC 3501 7.4.1).  ``with_uid`` adds ``UID`` to unsolicited
        FETCH responses sent during UID commands (RFC 3501 section 7.4.2:
        UID is required in FETCH responses of UID commands).  ``shared``
        is for IDLE, where no change of this connection's own waits to be
        seen: it asks the store together with the other views that woke
        at the same MODSEQ (:class:`~selected_table.Flight`).

        The responses are worked out from the table as the client knows
        it; only then does the table change -- to the mailbox's state at
        the new HIGHESTMODSEQ another view already built, when this view
        has caught up completely (:mod:`selected_table`), or else by
        changing its own copy.
        """
        flight: Flight | None = None
        if shared and self._shelf is not None:
            # IDLE: ask together with the views that woke with this one.
            flight = self._shelf.join(self.modseq, self.mailbox.changes_since)
            changes = await asyncio.shield(flight.changes)
        else:
            changes = await self.mailbox.changes_since(self.modseq)
        responses: list[Response] = []
        table = self._table
        expunged = set(changes.expunged)
        if not changes.expunged_complete:
            # The store forgot old expunges: compare the UID lists instead.
            current = {s.uid for s in await self.mailbox.states()}
            expunged |= {u for u in table.uids if u not in current}
        self._add_gone(expunged)

        updated: list[MessageState] = []
        new_states: list[MessageState] = []
        flag_changes: list[int] = []
        last_uid = table.uids[-1] if table.uids else 0
        for state in changes.changed:
            known = table.flags.get(state.uid)
            if known is not None:
                if state.uid in self.gone:
                    continue
                if known != state.flags:
                    flag_changes.append(state.uid)
                    updated.append(state)
                elif table.modseqs.get(state.uid) != state.modseq:
                    updated.append(state)
            elif state.uid > last_uid and state.uid not in expunged:
                new_states.append(state)

        responses.extend(self._keyword_update(s.flags for s in changes.changed))
        if self.watcher is not None and self.gone:
            # RFC 5267 section 4.3.4: REMOVEFROM before the EXPUNGE, even
            # when the EXPUNGE itself must wait (appendix A.3).
            responses.extend(await self.watcher.removed(self))
        removed: list[int] = []
        if allow_expunge and self.gone:
            removed = self._expunge_responses(responses)
        self._apply(
            removed,
            updated,
            flag_changes,
            new_states,
            settled=not self.gone,
            highest=changes.highestmodseq,
        )

        if new_states:
            responses.append(Untagged((len(self.uids), Atom("EXISTS"))))
            if self.readonly:
                # RFC 3501 6.3.2: read-only sessions see \Recent, never take it.
                claimed = await self.mailbox.peek_recent()
            elif flight is not None and flight.recent_claimed:
                claimed = frozenset()  # another view of the flight took them
            else:
                if flight is not None:
                    flight.recent_claimed = True
                claimed = await self.mailbox.claim_recent()
            mine = {u for u in claimed if u in self.flags}
            if mine - self.recent:
                self.recent = self.recent | mine
            if len(self.recent) != self._announced_recent:
                self._announced_recent = len(self.recent)
                if not extensions.rev2(self.enabled):
                    responses.append(Untagged((len(self.recent), Atom("RECENT"))))

        for uid in flag_changes:
            responses.append(self.fetch_flags_response(uid, with_uid=with_uid))
        if self.watcher is not None and changes.changed:
            # Every change counts, this connection's own STORE too (its
            # flags are already in the cache, so it is not in flag_changes).
            # RFC 5267 section 4.3.3: ADDTO after the EXISTS.
            touched = {s.uid for s in changes.changed} - self.gone
            present = sorted(u for u in touched if u in self.flags)
            if present:
                responses.extend(await self.watcher.changed(self, present))
        return responses

    def _add_gone(self, uids: Iterable[int]) -> None:
        flags = self._table.flags
        new = {u for u in uids if u in flags}
        if new - self.gone:
            self.gone = self.gone | new

    def _expunge_responses(self, responses: list[Response]) -> list[int]:
        """Announce every pending expunge; returns the UIDs announced (the
        table still holds them: :meth:`_apply` removes them).

        With QRESYNC this is one ``* VANISHED uid-set`` (RFC 7162 section
        3.2.10: the server MUST NOT send EXPUNGE then).  Otherwise EXPUNGE
        responses go out highest sequence number first: each number is then
        correct at the moment it is sent, with no renumbering arithmetic on
        either side (RFC 3501 section 7.4.1 example uses the shifting form;
        both are equivalent).  So every number is the one the table holds
        before any is removed.
        """
        vanished: list[int] = []
        for uid in sorted(self.gone, reverse=True):
            seq = self.seq_of(uid)
            if seq is None:
                continue
            vanished.append(uid)
            if not extensions.qresync(self.enabled):
                responses.append(Untagged((seq, Atom("EXPUNGE"))))
            if uid in self.recent:
                self.recent = self.recent - {uid}
                self._announced_recent -= 1
        self.gone = _NO_UIDS
        if vanished and extensions.qresync(self.enabled):
            uids = Raw(format_uid_list(sorted(vanished)))
            responses.append(Untagged((Atom("VANISHED"), uids)))
        return vanished

    def _apply(
        self,
        removed: list[int],
        updated: Sequence[MessageState],
        flag_changes: Sequence[int],
        new_states: Sequence[MessageState],
        *,
        settled: bool,
        highest: int,
    ) -> None:
        """Bring the table up to date after a refresh (see :meth:`refresh`).

        ``settled``: no expunge is left to announce, so the table is now
        the mailbox's state at ``highest`` -- shared through the shelf.
        """
        old = self._table
        shelf = self._shelf if settled and highest >= self.modseq else None
        self.modseq = max(self.modseq, highest)
        changed = bool(removed or updated or new_states)
        if shelf is not None:
            known = shelf.exact.get(highest)
            if known is old and not changed:
                return
            expected = len(old.uids) - len(removed) + len(new_states)
            last = new_states[-1].uid if new_states else None
            if (
                known is not None
                and len(known.uids) == expected
                and (last is None or known.uids[-1] == last)
            ):
                self._table = known
                self._private = False
                return
            if not changed and not self._private and known is not None:
                return  # a shared table that another view left as it is
        if changed:
            table = self._own()
            if removed:
                gone = set(removed)
                table.uids[:] = [u for u in table.uids if u not in gone]
                for uid in removed:
                    del table.flags[uid]
                    table.modseqs.pop(uid, None)
            changing = set(flag_changes)
            for state in updated:
                table.modseqs[state.uid] = state.modseq
                if state.uid in changing:
                    table.flags[state.uid] = shared_flags(state.flags)
            for state in new_states:
                table.uids.append(state.uid)
                table.flags[state.uid] = shared_flags(state.flags)
                table.modseqs[state.uid] = state.modseq
        if shelf is not None and shelf.exact.get(highest) is None:
            shelf.exact[highest] = self._table
            self._private = False

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
