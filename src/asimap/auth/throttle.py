"""Login throttling: count recent failures per client address and per user.

Password guessing is bounded in two directions at once: one address trying
many users, and many addresses trying one user.  Within a sliding window
(60 s by default) up to ``max_failures_per_ip`` failures from an address and
``max_failures_per_user`` failures for a username are allowed; past either
limit, further attempts are refused *without verifying the password* until
enough failures age out of the window.  Refusing without verification is
the point: a throttled attacker learns nothing and costs us no hashing.

The throttle only keeps state; the authenticator decides what a throttled
attempt costs (a delay) and keeps the answer identical to a wrong password.
Memory is bounded: each key keeps at most its limit of timestamps, and the
number of keys tracked is capped (oldest evicted first), so a flood of
distinct usernames or addresses cannot grow the tables without limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class _FailureWindow:
    """Timestamps of recent failures per key, pruned to a sliding window."""

    def __init__(self, limit: int, window: float, max_keys: int) -> None:
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and now - times[0] >= self._window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def exceeded(self, key: str, now: float) -> bool:
        times = self._recent(key, now)
        return times is not None and len(times) >= self._limit

    def record(self, key: str, now: float) -> None:
        times = self._recent(key, now)
        if times is None:
            # maxlen: once at the limit, older stamps are irrelevant; keeping
            # the newest ones extends the block while failures continue.
            times = deque(maxlen=max(self._limit, 1))
            self._failures[key] = times
            while len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
        times.append(now)

    def __len__(self) -> int:
        return len(self._failures)


class LoginThrottle:
    """Failure counts per address and per username over a sliding window."""

    def __init__(
        self,
        *,
        max_failures_per_ip: int = 5,
        max_failures_per_user: int = 4,
        window: float = 60.0,
        max_tracked: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._by_ip = _FailureWindow(max_failures_per_ip, window, max_tracked)
        self._by_user = _FailureWindow(max_failures_per_user, window, max_tracked)

    def is_throttled(self, username: str, peer_host: str) -> bool:
        """Whether an attempt must be refused without checking the password."""
        now = self._clock()
        return self._by_ip.exceeded(peer_host, now) or self._by_user.exceeded(
            username, now
        )

    def record_failure(self, username: str, peer_host: str) -> None:
        """Count a failed verification against both the address and the user."""
        now = self._clock()
        self._by_ip.record(peer_host, now)
        self._by_user.record(username, now)

    @property
    def tracked(self) -> tuple[int, int]:
        """How many (addresses, usernames) currently have recent failures."""
        return len(self._by_ip), len(self._by_user)
