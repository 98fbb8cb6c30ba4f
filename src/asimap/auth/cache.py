"""A short-lived memory of successful password verifications.

Mail clients log in often (every poll, every extra connection), and a
proper password hash costs a good fraction of a CPU second by design.
Remembering "this user just proved this password" for a minute keeps
repeated logins cheap without weakening the hash for an attacker: only
*successful* verifications are remembered, so guessing still pays full
price.

The plain password is never stored.  Keys are an HMAC-SHA256 of the
password under a random per-process secret, so even a memory dump does not
give an offline-guessable digest that outlives the process.  Each entry
also remembers which stored hash it was verified against: if the password
file changes the user's hash, the entry no longer matches.  The
authenticator additionally clears the cache whenever the password file is
re-read.  Size is bounded (least recently used evicted first).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Verified:
    password_hash: str
    expires: float


class VerificationCache:
    """(username, password) pairs recently verified against a stored hash."""

    def __init__(
        self,
        *,
        ttl: float = 60.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[str, bytes], _Verified] = OrderedDict()

    def _key(self, username: str, password: str) -> tuple[str, bytes]:
        digest = hmac.new(self._secret, password.encode(), hashlib.sha256).digest()
        return (username, digest)

    def contains(self, username: str, password: str, password_hash: str) -> bool:
        """Whether this password was verified against ``password_hash``
        for ``username`` within the last ``ttl`` seconds."""
        key = self._key(username, password)
        entry = self._entries.get(key)
        if entry is None:
            return False
        if entry.expires <= self._clock() or not hmac.compare_digest(
            entry.password_hash.encode(), password_hash.encode()
        ):
            del self._entries[key]
            return False
        self._entries.move_to_end(key)
        return True

    def add(self, username: str, password: str, password_hash: str) -> None:
        """Remember a successful verification."""
        key = self._key(username, password)
        self._entries[key] = _Verified(password_hash, self._clock() + self._ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (the password file changed)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
