"""The account-wide change feed: what happened anywhere in one store.

:meth:`Mailbox.wait_for_change` lets a session follow *one* mailbox.
NOTIFY (RFC 5465) needs more: news of every mailbox of the account, and of
the account itself (mailboxes created, deleted, renamed, subscriptions,
METADATA).  Every store publishes :class:`FeedEvent` values on its
:class:`ChangeFeed` after each change, whoever caused it -- a connection,
a delivery, or (MH) a rescan after an nmh tool ran.

Why events about messages carry no detail (new, expunged, flags): a store
that learns of changes by rescanning a folder cannot say cheaply which kind
each was, and the subscriber needs fresh counts anyway to build the STATUS
response RFC 5465 section 5 asks for.  So a :attr:`FeedKind.MESSAGES`
event says "this mailbox's messages changed"; the subscriber compares the
mailbox's status with the one it last saw, and the selected-mailbox view
already knows how to turn ``changes_since`` into EXISTS/EXPUNGE/FETCH.

Delivery is synchronous and cheap: :meth:`ChangeFeed.publish` calls each
subscriber's callback at once, on the event loop; a callback only records
the event (bounded, see :mod:`asimap.imap.session.notify`) and wakes its
connection.  Nothing is kept when nobody listens.

The *origin* of an event is whatever :data:`ORIGIN` holds in the task that
made the change: a session sets it to itself while running a command, so
that it can skip news of its own doing (RFC 5465 section 5: "The server
SHOULD omit notifying the client if the event is caused by this client").
"""

from __future__ import annotations

import contextvars
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Who is changing the store in the current task (None: nobody in
#: particular -- a delivery, a file watcher, a test).
ORIGIN: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "asimap_feed_origin", default=None
)


class FeedKind(enum.Enum):
    """What changed (RFC 5423 event families as RFC 5465 section 5 groups
    them)."""

    #: Messages arrived, were expunged or changed flags in ``mailbox``.
    MESSAGES = "messages"
    #: ``mailbox`` was created (also for the new name of a renamed INBOX,
    #: RFC 5465 section 5.4).
    CREATED = "created"
    #: ``mailbox`` was deleted (it may live on as \\Noselect).
    DELETED = "deleted"
    #: ``old_name`` (and its inferiors) became ``mailbox``.
    RENAMED = "renamed"
    #: ``mailbox`` was subscribed or unsubscribed.
    SUBSCRIPTION = "subscription"
    #: METADATA ``entries`` of ``mailbox`` changed; ``mailbox`` is ``""``
    #: for the server's own entries (RFC 5464).
    METADATA = "metadata"


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One change; see :class:`FeedKind` for what each field means."""

    kind: FeedKind
    mailbox: str
    old_name: str | None = None
    entries: tuple[str, ...] = ()
    origin: object | None = None


Subscriber = Callable[[FeedEvent], None]


class ChangeFeed:
    """Publish/subscribe of :class:`FeedEvent` for one account's store."""

    def __init__(self) -> None:
        self._subscribers: dict[int, Subscriber] = {}
        self._next_id = 0

    @property
    def active(self) -> bool:
        """Whether anyone listens (stores may skip work when nobody does)."""
        return bool(self._subscribers)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` for every event from now on; returns the
        function that stops it (safe to call twice)."""
        key = self._next_id
        self._next_id += 1
        self._subscribers[key] = callback

        def unsubscribe() -> None:
            self._subscribers.pop(key, None)

        return unsubscribe

    def publish(
        self,
        kind: FeedKind,
        mailbox: str,
        *,
        old_name: str | None = None,
        entries: tuple[str, ...] = (),
    ) -> None:
        """Tell every subscriber; a failing subscriber never hurts the
        store operation that published."""
        if not self._subscribers:
            return
        event = FeedEvent(kind, mailbox, old_name, entries, ORIGIN.get())
        for callback in list(self._subscribers.values()):
            try:
                callback(event)
            except Exception:
                log.exception("change feed subscriber failed")
