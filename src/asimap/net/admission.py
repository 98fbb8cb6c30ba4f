"""Who may connect: a separate budget for connections that have not logged in.

With one global connection cap, anyone could lock every user out before
login: a thousand connections that each send a byte now and then held all
the slots, since the idle timer restarts on every byte.  Connections that
have not authenticated are therefore admitted by their own rules, modelled
on Dovecot's login processes:

* at most ``max_prelogin`` of them at once; when that budget (or the global
  cap) is full, the *oldest* connection that has not logged in is dropped to
  make room, so a new client always gets its chance to log in;
* at most ``max_prelogin_per_address`` of them from one address: beyond
  that a new connection from that address is refused, so one host cannot
  fill the budget on its own;
* each must authenticate within ``login_timeout`` seconds of connecting,
  however busy it keeps its connection (enforced by the server with a timer).

Logged-in connections are never dropped for newcomers: they count against
``max_connections`` only, and when that cap is filled by logged-in users
alone a new connection is refused.

This module only decides; the server carries the decision out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

#: Defaults (``Config``): Dovecot gives a client three minutes to log in.
LOGIN_TIMEOUT = 180.0
MAX_PRELOGIN_PER_ADDRESS = 20


class Verdict(Enum):
    """What to do with a new connection."""

    ACCEPT = "accept"
    #: Accept, after dropping the oldest connection that has not logged in.
    ACCEPT_EVICTING_OLDEST = "evict"
    #: Refuse: its address already has its share of pre-login connections.
    REFUSE_ADDRESS = "address"
    #: Refuse: every slot is held by a logged-in connection.
    REFUSE_FULL = "full"


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """The limits a new connection is admitted by (see the module doc)."""

    max_connections: int
    max_prelogin: int
    max_prelogin_per_address: int = MAX_PRELOGIN_PER_ADDRESS


def admit(
    limits: AdmissionLimits, *, total: int, prelogin_peers: Sequence[str], peer: str
) -> Verdict:
    """The verdict for a connection from ``peer``.

    ``total`` counts every open connection, logged in or not;
    ``prelogin_peers`` are the addresses of those not logged in, oldest
    first.
    """
    waiting = len(prelogin_peers)
    from_peer = sum(1 for waiting_peer in prelogin_peers if waiting_peer == peer)
    if from_peer >= limits.max_prelogin_per_address:
        return Verdict.REFUSE_ADDRESS
    if total < limits.max_connections and waiting < limits.max_prelogin:
        return Verdict.ACCEPT
    if waiting > 0:
        return Verdict.ACCEPT_EVICTING_OLDEST
    return Verdict.REFUSE_FULL


def default_max_prelogin(max_connections: int) -> int:
    """A quarter of all connections (at least one) may be waiting to log
    in, so logged-in users always keep most of the room."""
    return max(1, max_connections // 4)


class RefusalLog:
    """Which refusals to log, so that a flood cannot flood the log too.

    The first refusal of each kind for an address is logged; more of the
    same within ``interval`` seconds are only counted, and the next line
    logged for it says how many were left out.  At most ``max_keys``
    addresses are remembered (oldest forgotten first).
    """

    def __init__(
        self,
        interval: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._max_keys = max_keys
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()

    def should_log(self, peer: str, kind: str) -> int | None:
        """None to stay silent; else how many of these went unlogged since
        the last line (0 for the first)."""
        now = self._clock()
        key = (peer, kind)
        last = self._seen.get(key)
        if last is not None and now - last[0] < self._interval:
            self._seen[key] = (last[0], last[1] + 1)
            return None
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        while len(self._seen) > self._max_keys:
            self._seen.popitem(last=False)
        return 0 if last is None else last[1]
