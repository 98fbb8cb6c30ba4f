"""STATUS items that are not counts of the mailbox's messages.

:data:`asimap.imap.session.handlers_list.STATUS_VALUES` answers the items
that come from :class:`~asimap.store.base.MailboxStatus`; the items here
depend on the connection or on the mailbox object itself, and are asked
for by STATUS and by LIST-STATUS (RFC 5819) alike:

* ``APPENDLIMIT`` (RFC 7889 section 3): the largest message APPEND takes
  into this mailbox (we have one limit for all mailboxes, never NIL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from asimap.imap.responses import Value
from asimap.imap.session.context import Context
from asimap.imap.session.literal_limits import append_limit
from asimap.store.base import Mailbox


def _appendlimit(ctx: Context, mailbox: Mailbox) -> Value:
    del mailbox
    return append_limit(ctx)


#: Item name -> its value for a connection and a mailbox.
EXTRA_STATUS_ITEMS: dict[str, Callable[[Context, Mailbox], Value]] = {
    "APPENDLIMIT": _appendlimit,
}


def extra_status_values(
    ctx: Context, mailbox: Mailbox, items: Sequence[str]
) -> dict[str, Value]:
    """The values of the items of ``items`` that :data:`EXTRA_STATUS_ITEMS`
    answers."""
    return {
        item: EXTRA_STATUS_ITEMS[item](ctx, mailbox)
        for item in items
        if item in EXTRA_STATUS_ITEMS
    }
