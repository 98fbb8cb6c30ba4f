"""Putting back an APPEND that nmh ``inc`` overwrote in place.

nmh ``inc`` lists the folder, then writes each new message with
``open(O_WRONLY|O_CREAT|O_TRUNC)`` under the next number it believes
free -- no ``O_EXCL`` (strace, nmh 1.8).  A number we claimed with
``link`` after inc's listing is thus overwritten, in the same inode, by
inc's message: our acknowledged APPEND would be lost, and nothing we do
on the file system can prevent it (inc takes no lock for its messages).

What we can do is notice and repair.  We keep the bytes of every recent
APPEND for a short while (bounded in time and in total size); when a
rescan finds that the file under such a number is another file in the
*same inode* (inc truncated and rewrote it), our message is stored again
under a fresh number and keeps its UID and flags, and inc's message
becomes a new message with a UID of its own.  Nothing is lost and no UID
names two messages.  A file that is gone (``rmm``) or replaced by
another inode (a tool that writes a new file and renames) is not
repaired: that is a deliberate change by a tool.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass

from asimap.store.mh.files import FileIdentity

#: How long after an APPEND an inc may still overwrite its number: inc's
#: listing-to-write takes milliseconds; ten seconds covers a loaded host.
LIFETIME_S = 10.0

#: Most bytes kept for repairs at once (the oldest are forgotten first).
BUDGET_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Fresh:
    """An APPEND we may have to put back."""

    uid: int
    data: bytes
    mtime_ns: int
    identity: FileIdentity
    expires: float


class FreshAppends:
    """Recent APPENDs by (mailbox id, MH number), bounded."""

    def __init__(
        self, lifetime_s: float = LIFETIME_S, budget: int = BUDGET_BYTES
    ) -> None:
        self.lifetime_s = lifetime_s
        self.budget = budget
        self._entries: OrderedDict[tuple[int, int], Fresh] = OrderedDict()
        self._size = 0

    def remember(
        self,
        mailbox_id: int,
        num: int,
        uid: int,
        data: bytes,
        mtime_ns: int,
        identity: FileIdentity,
    ) -> None:
        """Keep the bytes of an APPEND (skipped when larger than the
        whole budget)."""
        self._drop((mailbox_id, num))
        if len(data) > self.budget:
            return
        entry = Fresh(uid, data, mtime_ns, identity, time.monotonic() + self.lifetime_s)
        self._entries[(mailbox_id, num)] = entry
        self._size += len(data)
        self._expire()

    def overwritten(
        self, mailbox_id: int, num: int, uid: int, now: os.stat_result | None
    ) -> Fresh | None:
        """Our APPEND under ``num`` if the file there (``now``) is another
        message written into our inode; else None."""
        self._expire()
        entry = self._entries.get((mailbox_id, num))
        if entry is None or entry.uid != uid or now is None:
            return None
        if now.st_ino != entry.identity.ino:
            return None
        if FileIdentity.of(now) == entry.identity:
            return None
        return entry

    def forget(self, mailbox_id: int, num: int) -> None:
        self._drop((mailbox_id, num))

    def _drop(self, key: tuple[int, int]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._size -= len(entry.data)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.expires >= now and self._size <= self.budget:
                break
            self._drop(key)
