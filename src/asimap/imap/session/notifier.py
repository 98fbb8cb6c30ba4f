"""The per-connection notifier of NOTIFY (RFC 5465): store events in,
untagged responses out, at any time no command is in progress.

It subscribes to the account's change feed (:mod:`asimap.store.feed`),
keeps what arrives in a *bounded* queue, and wakes whoever waits on
:meth:`Notifier.wait` -- the connection driver between commands, or IDLE.
:meth:`Notifier.collect` then turns the queue into responses:

* messages changed in a mailbox other than the selected one: a STATUS
  response whose items depend on what changed and on what was asked
  (sections 5.1-5.3); what changed is found by comparing the mailbox's
  status with the one this connection last knew (see :mod:`feed` for why
  events carry no detail), so several changes make one STATUS;
* messages changed in the selected mailbox (SELECTED / SELECTED-DELAYED,
  section 6.1): the selected view's own EXISTS / EXPUNGE / FETCH, plus the
  MessageNew fetch attributes (section 5.2), expunges only with SELECTED;
* mailbox created / deleted / renamed (5.4) and subscriptions (5.5):
  LIST responses with accurate attributes, OLDNAME for a rename;
* METADATA of a mailbox (5.6) or of the server (5.7): ``* METADATA
  mailbox entry...`` naming the changed entries.

Events this connection caused are not reported (section 5: "The server
SHOULD omit notifying the client if the event is caused by this client");
the selected mailbox's own changes reach the client with the tagged
response as always.

Bounded: at most :data:`MAX_PENDING` distinct pending items.  Beyond that
(a client that does not read, a storm of changes) the notifier gives up
as section 5.8 prescribes: ``* OK [NOTIFICATIONOVERFLOW]`` and then
behaves as after NOTIFY NONE.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from asimap.imap.responses import (
    Atom,
    Code,
    Response,
    Status,
    Untagged,
    UntaggedStatus,
    Value,
)
from asimap.imap.session import extensions, fetch
from asimap.imap.session.listing import order_attributes
from asimap.imap.session.naming import names_in_utf8, wire_name
from asimap.imap.session.notify_spec import MESSAGE_EVENT_NAMES, NotifySpec
from asimap.imap.session.state import SessionState
from asimap.store.base import MailboxEntry, MailboxStatus, MessageGone, StoreError
from asimap.store.feed import FeedEvent, FeedKind
from asimap.store.names import DELIMITER, parent_of

if TYPE_CHECKING:
    from asimap.imap.session.context import Context

log = logging.getLogger(__name__)

#: Distinct pending items (mailboxes with changed messages, LIST and
#: METADATA news) a connection may accumulate before notifications are
#: turned off with NOTIFICATIONOVERFLOW (RFC 5465 section 5.8).
MAX_PENDING = 1000

_NONEXISTENT = "\\NonExistent"
_SUBSCRIBED = "\\Subscribed"


def initial_status_items(events: frozenset[str], condstore: bool) -> list[str]:
    """The items of the STATUS responses of ``NOTIFY SET STATUS`` (section
    3.1): "If MessageNew is enabled, the STATUS response MUST contain
    MESSAGES, UIDNEXT, and UIDVALIDITY.  If MessageExpunge is enabled, the
    STATUS response MUST contain MESSAGES.  If either AnnotationChange or
    FlagChange are included and the server also supports the CONDSTORE
    [...] extensions, the STATUS response MUST contain UIDVALIDITY and
    HIGHESTMODSEQ."  The condition is that the *server* supports CONDSTORE,
    which we always do, so FlagChange brings them whether or not the client
    enabled CONDSTORE (Dovecot 2.3 answers the same).  Once the client
    enabled it we send HIGHESTMODSEQ for every message event, as the later
    STATUS responses carry it too (sections 5.2, 5.3)."""
    items: list[str] = []
    if "MessageNew" in events:
        items += ["UIDVALIDITY", "UIDNEXT", "MESSAGES"]
    if "MessageExpunge" in events:
        items.append("MESSAGES")
    if "FlagChange" in events or (condstore and events & MESSAGE_EVENT_NAMES):
        items += ["UIDVALIDITY", "HIGHESTMODSEQ"]
    return list(dict.fromkeys(items))


def status_response(name: str, status: MailboxStatus, items: Sequence[str]) -> Response:
    values: dict[str, int] = {
        "MESSAGES": status.messages,
        "UIDNEXT": status.uidnext,
        "UIDVALIDITY": status.uidvalidity,
        "UNSEEN": status.unseen,
        "HIGHESTMODSEQ": status.highestmodseq,
    }
    flat: list[Value] = []
    for item in dict.fromkeys(items):
        flat += [Atom(item), values[item]]
    return Untagged((Atom("STATUS"), wire_name(name), flat))


class Notifier:
    """One connection's NOTIFY state (see the module docstring)."""

    def __init__(self, ctx: Context, spec: NotifySpec) -> None:
        self._ctx = ctx
        self.spec = spec
        self._stop: Callable[[], None] | None = None
        self._wakeup = asyncio.Event()
        #: Mailbox name -> whether anyone else changed it (False: only we
        #: did, so the baseline is refreshed silently).
        self._messages: dict[str, bool] = {}
        self._other: deque[FeedEvent] = deque()
        self._selected_dirty = False
        self._baseline: dict[str, MailboxStatus] = {}
        self.overflowed = False
        self.active = True

    # -- life cycle ------------------------------------------------------------

    async def start(self, send_status: bool) -> list[Response]:
        """Subscribe, learn the current status of every watched mailbox
        and return the initial STATUS responses (section 3.1) if asked."""
        store = self._ctx.require_store()
        await store.prepare_feed()
        entries = await store.list_mailboxes()
        self.spec.subscribed = {e.name for e in entries if e.subscribed}
        self._stop = store.feed.subscribe(self._on_event)
        condstore = extensions.condstore(self._ctx.enabled)
        responses: list[Response] = []
        selected = self._selected_name()
        for entry in entries:
            if not _selectable(entry) or entry.name == selected:
                continue
            events = self.spec.events_for(entry.name)
            if not events & MESSAGE_EVENT_NAMES:
                continue
            status = await self._status(entry.name)
            if status is None:
                continue
            self._baseline[entry.name] = status
            if send_status:
                items = initial_status_items(events, condstore)
                responses.append(status_response(entry.name, status, items))
        return responses

    def stop(self) -> None:
        """Stop listening (NOTIFY NONE, a new NOTIFY SET, logout)."""
        self.active = False
        if self._stop is not None:
            self._stop()
            self._stop = None
        self._messages.clear()
        self._other.clear()
        self._wakeup.set()  # let a waiter find out

    # -- input -----------------------------------------------------------------

    def _on_event(self, event: FeedEvent) -> None:
        """Feed callback: record, bounded, and wake.  Never awaits."""
        if not self.active:
            return
        mine = event.origin is self._ctx
        if event.kind is FeedKind.MESSAGES:
            if event.mailbox == self._selected_name():
                if not mine and self.spec.selected_events():
                    self._selected_dirty = True
                    self._wakeup.set()
                return
            if event.mailbox not in self._messages:
                self._messages[event.mailbox] = not mine
            elif not mine:
                self._messages[event.mailbox] = True
        else:
            if event.kind is FeedKind.SUBSCRIPTION and self.spec.uses_subscriptions():
                # Section 6.4: "If the subscription list changes, the server
                # MUST reevaluate the list" -- even for our own change.
                self._other.append(event)
            elif not mine:
                self._other.append(event)
            else:
                return
        if len(self._messages) + len(self._other) > MAX_PENDING:
            self._overflow()
            return
        self._wakeup.set()

    def _overflow(self) -> None:
        self.overflowed = True
        self.stop()

    # -- output ----------------------------------------------------------------

    async def wait(self) -> None:
        """Return once :meth:`collect` has something to do."""
        await self._wakeup.wait()

    def poke_selected(self) -> None:
        """IDLE begins: with SELECTED-DELAYED, expunges held back so far may
        go out now (section 6.1.2: "till a NOOP or an IDLE command has been
        issued")."""
        if self.active and self.spec.selected_events():
            self._selected_dirty = True
            self._wakeup.set()

    async def collect(self, *, idle: bool = False) -> list[Response]:
        """The responses for everything recorded so far (may be empty);
        ``idle`` while IDLE runs, when expunges are always allowed."""
        self._wakeup.clear()
        if self.overflowed:
            self.overflowed = False
            self._ctx.notifier = None
            # Section 5.8: say so, then behave as after NOTIFY NONE.
            return [
                UntaggedStatus(
                    Status.OK,
                    "Too many notifications, NOTIFY is off",
                    Code("NOTIFICATIONOVERFLOW"),
                )
            ]
        if not self.active:
            return []
        with names_in_utf8(extensions.utf8(self._ctx.enabled)):
            await self._reread_subscriptions()
            responses = await self._selected_responses(idle)
            responses += await self._message_responses()
            responses += await self._other_responses()
        return responses

    async def _reread_subscriptions(self) -> None:
        """Section 6.4: a subscription change re-evaluates SUBSCRIBED before
        the message events noticed with it are filtered, so that news of a
        mailbox subscribed a moment before its new message is not lost."""
        if not self.spec.uses_subscriptions() or not any(
            event.kind is FeedKind.SUBSCRIPTION for event in self._other
        ):
            return
        listed = await self._ctx.require_store().list_mailboxes()
        self.spec.subscribed = {e.name for e in listed if e.subscribed}

    async def _selected_responses(self, idle: bool) -> list[Response]:
        if not self._selected_dirty:
            return []
        self._selected_dirty = False
        ctx = self._ctx
        if ctx.selected is None or ctx.state is not SessionState.SELECTED:
            return []
        try:
            return await refresh_selected(
                ctx,
                allow_expunge=idle or not self.spec.delayed,
                with_uid=False,
                unsolicited=True,
            )
        except StoreError as exc:
            log.debug("selected mailbox notification failed: %r", exc)
            return []

    async def _message_responses(self) -> list[Response]:
        pending, self._messages = self._messages, {}
        condstore = extensions.condstore(self._ctx.enabled)
        responses: list[Response] = []
        for name, report in pending.items():
            if name == self._selected_name():
                continue
            events = self.spec.events_for(name) & MESSAGE_EVENT_NAMES
            if not events:
                continue
            status = await self._status(name)
            if status is None:
                self._baseline.pop(name, None)
                continue
            old = self._baseline.get(name)
            self._baseline[name] = status
            if report:
                items = _changed_items(old, status, events, condstore)
                if items:
                    responses.append(status_response(name, status, items))
        return responses

    async def _other_responses(self) -> list[Response]:
        pending = list(self._other)
        self._other.clear()
        if not pending:
            return []
        store = self._ctx.require_store()
        responses: list[Response] = []
        entries: dict[str, MailboxEntry] | None = None
        for event in pending:
            if event.kind is FeedKind.METADATA:
                responses += self._metadata_response(event)
                continue
            if entries is None:
                listed = await store.list_mailboxes()
                entries = {entry.name: entry for entry in listed}
                self.spec.subscribed = {e.name for e in listed if e.subscribed}
            # A mailbox that just came into view (subscribed, created,
            # renamed): know its counts now, so that its next change is
            # reported by what changed.
            await self._ensure_baseline(event.mailbox)
            if event.origin is self._ctx:
                continue  # only re-read the subscriptions (section 6.4)
            responses += self._list_responses(event, entries)
        return responses

    async def _ensure_baseline(self, name: str) -> None:
        if name in self._baseline or name == self._selected_name():
            return
        if not self.spec.wants_message_events(name):
            return
        status = await self._status(name)
        # A message event for it that arrived while this status was read is
        # already counted in it: a baseline now would hide that change, so
        # the mailbox stays without one and the event reports its counts.
        if status is not None and name not in self._messages:
            self._baseline[name] = status

    def _metadata_response(self, event: FeedEvent) -> list[Response]:
        if event.origin is self._ctx or not event.entries:
            return []
        if event.mailbox == "":
            wanted = self.spec.any_group_wants("ServerMetadataChange")
        else:
            wanted = "MailboxMetadataChange" in self.spec.events_for(event.mailbox)
        if not wanted:
            return []
        # RFC 5464 section 4.4.2 unsolicited form: entry names only.
        entries: list[Value] = list(sorted(event.entries))
        return [Untagged((Atom("METADATA"), wire_name(event.mailbox), *entries))]

    def _list_responses(
        self, event: FeedEvent, entries: dict[str, MailboxEntry]
    ) -> list[Response]:
        spec = self.spec
        if event.kind is FeedKind.SUBSCRIPTION:
            if "SubscriptionChange" not in spec.events_for(event.mailbox):
                return []
            return [_list_line(event.mailbox, entries)]
        names = [event.mailbox] + ([event.old_name] if event.old_name else [])
        if not any("MailboxName" in spec.events_for(n) for n in names):
            return []
        if event.kind is FeedKind.RENAMED and event.old_name is not None:
            # Section 5.4: extended LIST with OLDNAME; children implied.
            self._baseline.pop(event.old_name, None)
            line = _list_line(event.mailbox, entries)
            oldname: list[Value] = ["OLDNAME", [wire_name(event.old_name)]]
            return [Untagged((*line.values, oldname))]
        # Section 5.4: "the mailbox itself and its direct parent".
        responses: list[Response] = [_list_line(event.mailbox, entries)]
        parent = parent_of(event.mailbox)
        if parent:
            responses.append(_list_line(parent, entries))
        return responses

    # -- helpers ---------------------------------------------------------------

    def _selected_name(self) -> str | None:
        view = self._ctx.selected
        return view.mailbox.name if view is not None else None

    async def _status(self, name: str) -> MailboxStatus | None:
        try:
            # Opening and counting in one job of the store's thread.
            return (await self._ctx.require_store().mailbox_status(name))[1]
        except StoreError:
            return None  # deleted meanwhile, or never selectable


def _selectable(entry: MailboxEntry) -> bool:
    return not entry.attributes & {"\\Noselect", _NONEXISTENT}


def _changed_items(
    old: MailboxStatus | None,
    new: MailboxStatus,
    events: frozenset[str],
    condstore: bool,
) -> list[str]:
    """The STATUS items to send after a change, or none (sections 5.1-5.3).

    MessageNew / MessageExpunge: ``STATUS (UIDNEXT MESSAGES)``, with
    HIGHESTMODSEQ under CONDSTORE/QRESYNC.  FlagChange: with CONDSTORE
    ``HIGHESTMODSEQ UIDVALIDITY`` (5.1), without it UNSEEN when the number
    of unseen messages moved ("the server MAY also include the UNSEEN data
    item"), else nothing.  A UIDVALIDITY change is always reported (5.1).
    """
    if old is None:
        # No earlier counts (the mailbox just came into view, e.g. its
        # subscription and a new message were noticed together): report
        # what the subscribed events call for, without a difference.
        items = []
        if events & {"MessageNew", "MessageExpunge"}:
            items += ["UIDNEXT", "MESSAGES"]
        if "FlagChange" in events:
            items += ["HIGHESTMODSEQ", "UIDVALIDITY"] if condstore else ["UNSEEN"]
        if items and condstore:
            items.append("HIGHESTMODSEQ")
        return list(dict.fromkeys(items))
    items = []
    if old.uidvalidity != new.uidvalidity:
        items.append("UIDVALIDITY")
    messages_moved = (old.messages, old.uidnext) != (new.messages, new.uidnext)
    if messages_moved and events & {"MessageNew", "MessageExpunge"}:
        items += ["UIDNEXT", "MESSAGES"]
    if "FlagChange" in events:
        if condstore and old.highestmodseq != new.highestmodseq:
            items += ["HIGHESTMODSEQ", "UIDVALIDITY"]
        if old.unseen != new.unseen:
            items.append("UNSEEN")
    if items and condstore:
        items.append("HIGHESTMODSEQ")
    return list(dict.fromkeys(items))


def _list_line(name: str, entries: dict[str, MailboxEntry]) -> Untagged:
    """``* LIST (attributes) "/" name`` as the mailbox is now (sections
    5.4, 5.5): ``\\NonExistent`` when it is gone, ``\\Subscribed`` iff it is
    subscribed."""
    entry = entries.get(name)
    if entry is None:
        attributes = {_NONEXISTENT}
    else:
        attributes = set(entry.attributes)
        if entry.subscribed:
            attributes.add(_SUBSCRIBED)
        if _NONEXISTENT in attributes:
            attributes.discard("\\Noselect")
    ordered = _order(attributes)
    return Untagged(
        (Atom("LIST"), [Atom(a) for a in ordered], DELIMITER, wire_name(name))
    )


def _order(attributes: set[str]) -> list[str]:
    return list(order_attributes(attributes))


async def refresh_selected(
    ctx: Context,
    *,
    allow_expunge: bool,
    with_uid: bool,
    unsolicited: bool,
    fetch_new: bool = True,
) -> list[Response]:
    """The selected view's updates, plus NOTIFY's MessageNew FETCH.

    Used after every command (``unsolicited`` False) and by the notifier
    between commands.  Section 5.2: a new message in the selected mailbox
    is announced by EXISTS "followed by an unsolicited FETCH response
    containing the information requested by the client".  Between
    commands, a change that is only a flag change is left for the next
    command when the client did not ask for FlagChange.  ``fetch_new``
    False skips that FETCH after APPEND/COPY/MOVE: "A FETCH response SHOULD
    NOT be generated for a new message created by the client on this
    particular connection" (section 5.2).
    """
    view = ctx.selected
    if view is None:
        return []
    notifier = ctx.notifier
    spec = notifier.spec if notifier is not None and notifier.active else None
    if unsolicited and spec is not None and "FlagChange" not in spec.selected_events():
        changes = await view.mailbox.changes_since(view.modseq)
        last = view.uids[-1] if view.uids else 0
        news = any(state.uid > last for state in changes.changed)
        gone = view.gone or any(uid in view.flags for uid in changes.expunged)
        if not news and not (gone and allow_expunge):
            return []
    last = view.uids[-1] if view.uids else 0
    responses = await view.refresh(allow_expunge=allow_expunge, with_uid=with_uid)
    atts = spec.fetch_atts() if spec is not None and fetch_new else ()
    if not atts:
        return responses
    # The client's picture is ascending by UID: the new ones are at the end.
    for seq in range(bisect.bisect_right(view.uids, last) + 1, view.exists + 1):
        uid = view.uids[seq - 1]
        try:
            items = await fetch.fetch_message(
                view, uid, atts, with_uid=False, with_flags=False
            )
        except MessageGone:
            continue
        responses.append(Untagged((seq, Atom("FETCH"), items)))
    return responses
