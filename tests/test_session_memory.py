"""What a selected view keeps per connection (issue 11: cheap IDLE connections).

Every connection that selects a mailbox holds a view with the flags of each
message.  The store hands out a new frozenset per message per SELECT; views
keep one shared instance per distinct flag set instead, so a thousand IDLE
connections on one INBOX do not hold a thousand copies of "\\Seen".
"""

from __future__ import annotations

from unittest.mock import Mock

from asimap.imap.session.selected import SelectedMailbox, shared_flags
from asimap.store.base import Mailbox, MessageState


def _states(count: int) -> list[MessageState]:
    # A fresh frozenset per message, as a store builds them.
    return [
        MessageState(uid, frozenset(["\\Seen", "\\Flagged"][: uid % 3]), uid)
        for uid in range(1, count + 1)
    ]


def test_views_share_one_instance_per_distinct_flag_set() -> None:
    mailbox = Mock(spec=Mailbox)
    first = SelectedMailbox(mailbox, _states(300), 300, readonly=False)
    second = SelectedMailbox(mailbox, _states(300), 300, readonly=False)
    assert first.flags == second.flags
    assert {id(flags) for flags in first.flags.values()} == {
        id(flags) for flags in second.flags.values()
    }
    assert len({id(flags) for flags in first.flags.values()}) == 3
    assert first.flags[4] is second.flags[7]


def test_shared_flags_equal_and_bounded() -> None:
    made = [shared_flags(frozenset({f"kw{i}"})) for i in range(10_000)]
    assert made[-1] == frozenset({"kw9999"})
    assert shared_flags(frozenset({"kw9999"})) is made[-1]
