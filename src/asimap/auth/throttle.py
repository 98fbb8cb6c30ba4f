"""Login penalty: slow password guessing down without locking owners out.

An earlier design refused every attempt -- the right password included --
once a username had four recent failures from anywhere, or an address five.
That let anyone who knew a username keep its owner out with four bad
guesses a minute, and the refusal looked exactly like a wrong password.

The penalty instead *delays* an attempt before its password is checked,
and the delay only depends on failures that came from the attempt's own
address (as Dovecot's ``auth_penalty`` does):

* per address and user pair: every recent failure doubles the delay
  (1, 2, 4, 8 s ... up to :data:`MAX_DELAY`), so guessing one user's
  password from one address quickly slows to one try per ``MAX_DELAY``;
* per address: the first :data:`FREE_ADDRESS_FAILURES` failures over all
  users cost nothing (many users behind one NAT mistype too), after that
  the delay doubles every two failures, up to the same cap, so guessing
  across many usernames from one address slows down as well.

A correct password is always accepted once its delay has passed, and an
address with no recent failures has no delay at all: an attacker elsewhere
can never keep the owner out.  Attempts from a penalised address are also
taken one at a time (:meth:`LoginPenalty.turn`), so opening many
connections does not multiply the guessing rate.

Failures are forgotten :data:`FORGET_AFTER` seconds after they happened, and
a success forgets the pair's failures.  Memory is bounded: each key keeps
at most the timestamps that still change its delay, and the number of keys
is capped (oldest first out), so a flood of addresses or usernames cannot
grow the tables without limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

#: Longest delay, in seconds, that failures can impose on an attempt
#: (Dovecot caps its auth penalty at 15 s as well).
MAX_DELAY = 15.0

#: Failures from one address, over all users, that cost no delay.
FREE_ADDRESS_FAILURES = 3

#: Seconds after which a failure no longer counts.
FORGET_AFTER = 900.0

#: Most addresses (and, separately, address+user pairs) tracked at once.
MAX_TRACKED = 100_000


def pair_delay(failures: int, cap: float = MAX_DELAY) -> float:
    """1, 2, 4, 8 ... seconds for 1, 2, 3, 4 ... failures of one user from
    one address; nothing without failures."""
    if failures <= 0:
        return 0.0
    return min(cap, float(2 ** min(failures - 1, 16)))


def address_delay(failures: int, cap: float = MAX_DELAY) -> float:
    """Nothing for the first few failures of an address; then 1, 1, 2, 2,
    4, 4 ... seconds."""
    excess = failures - FREE_ADDRESS_FAILURES
    if excess <= 0:
        return 0.0
    return min(cap, float(2 ** min((excess - 1) // 2, 16)))


@dataclass(frozen=True, slots=True)
class Penalty:
    """What the recent failures of an attempt's address ask for."""

    delay: float
    address_failures: int
    pair_failures: int

    def describe(self) -> str:
        """For the log: why this attempt waits."""
        return (
            f"{self.address_failures} recent failure(s) from the address, "
            f"{self.pair_failures} for this user from it"
        )


class _FailureLog:
    """Timestamps of recent failures per key, oldest key evicted first."""

    def __init__(self, keep: int, forget_after: float, max_keys: int) -> None:
        self._keep = keep
        self._forget_after = forget_after
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def count(self, key: str, now: float) -> int:
        times = self._failures.get(key)
        if times is None:
            return 0
        while times and now - times[0] >= self._forget_after:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        return len(times)

    def record(self, key: str, now: float) -> None:
        self.count(key, now)  # prune first
        times = self._failures.get(key)
        if times is None:
            # Beyond ``keep`` stamps the delay is at its cap anyway; keeping
            # the newest ones keeps the cap while failures continue.
            times = deque(maxlen=self._keep)
            self._failures[key] = times
            while len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
        times.append(now)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)


class LoginPenalty:
    """Recent failures per address and per address+user pair, turned into
    a delay before the next attempt's password is checked."""

    def __init__(
        self,
        *,
        max_delay: float = MAX_DELAY,
        forget_after: float = FORGET_AFTER,
        max_tracked: int = MAX_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_delay = max_delay
        self._clock = clock
        # Enough stamps to reach the cap, whatever the cap is.
        keep = FREE_ADDRESS_FAILURES + 2 * 18
        self._by_address = _FailureLog(keep, forget_after, max_tracked)
        self._by_pair = _FailureLog(18, forget_after, max_tracked)
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}

    def penalty(self, username: str, peer_host: str) -> Penalty:
        """The delay owed by an attempt for ``username`` from ``peer_host``."""
        now = self._clock()
        by_address = self._by_address.count(peer_host, now)
        by_pair = self._by_pair.count(_pair(username, peer_host), now)
        delay = max(
            pair_delay(by_pair, self._max_delay),
            address_delay(by_address, self._max_delay),
        )
        return Penalty(delay, by_address, by_pair)

    def record_failure(self, username: str, peer_host: str) -> None:
        """Count a failed verification against the address and the pair."""
        now = self._clock()
        self._by_address.record(peer_host, now)
        self._by_pair.record(_pair(username, peer_host), now)

    def record_success(self, username: str, peer_host: str) -> None:
        """The owner got in: their own earlier typos stop costing them.
        The address keeps its count, so a guesser sharing it gains nothing
        by also holding one valid account."""
        self._by_pair.forget(_pair(username, peer_host))

    @asynccontextmanager
    async def turn(self, peer_host: str) -> AsyncIterator[None]:
        """Run attempts from one penalised address one at a time, so that
        parallel connections cannot multiply its guessing rate.  An address
        without failures is never made to wait for this."""
        if self._by_address.count(peer_host, self._clock()) == 0:
            yield
            return
        lock, users = self._turns.get(peer_host, (asyncio.Lock(), 0))
        self._turns[peer_host] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[peer_host]
            if users == 1:
                del self._turns[peer_host]
            else:
                self._turns[peer_host] = (lock, users - 1)

    @property
    def tracked(self) -> tuple[int, int]:
        """How many (addresses, address+user pairs) have recent failures."""
        return len(self._by_address), len(self._by_pair)


def _pair(username: str, peer_host: str) -> str:
    # NUL cannot occur in an address, so the key is unambiguous.
    return f"{peer_host}\0{username}"
