"""Putting back an APPEND that nmh ``inc`` overwrote in place.

nmh ``inc`` lists the folder, then writes each new message with
``open(O_WRONLY|O_CREAT|O_TRUNC)`` under the next number it believes
free -- no ``O_EXCL`` (strace, nmh 1.8).  A number we claimed with
``link`` after inc's listing is thus overwritten, in the same inode, by
inc's message: our acknowledged APPEND would be lost, and nothing we do
on the file system can prevent it (inc takes no lock for its messages).

What we can do is notice and repair.  We keep the bytes of every recent
APPEND for a short while (bounded in time and in total size), and a
read-only descriptor on the inode we wrote (bounded in count).  When a
rescan finds our row's file is no longer what we wrote, the descriptor
tells why: if *our inode* changed (inc truncated and rewrote it), our
message is stored again from the kept bytes under a fresh number and keeps
its UID and flags, and inc's message becomes a new message with a UID of
its own.  That holds even when the number is gone by then -- nmh's ``rmm
-unlink N`` of inc's message, picked by its Message-ID, removed the file
that had held our APPEND before any rescan of ours (issue 10 point 13) --
or was renumbered.  If our inode is unchanged, the file was removed or
replaced deliberately by a tool (``rmm`` of our message, ``refile``): not
repaired.

An entry whose inode was overwritten is never dropped unseen: when its
time is up it is kept, and reported by :meth:`FreshAppends.suspect`, until
the rescan that repairs it (:meth:`FreshAppends.forget`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import OrderedDict
from dataclasses import dataclass

from asimap.store.mh.files import FileIdentity

#: How long after an APPEND an inc may still overwrite its number: inc's
#: listing-to-write takes milliseconds, or seconds when it waits for our
#: lock on ``.mh_sequences`` (nmh retries five times a second apart);
#: thirty seconds covers a loaded host.
LIFETIME_S = 30.0

#: Most bytes kept for repairs at once (the oldest are forgotten first).
BUDGET_BYTES = 32 * 1024 * 1024

#: Most descriptors held at once (the oldest are forgotten first).
MAX_ENTRIES = 1024


@dataclass(slots=True)
class Fresh:
    """An APPEND we may have to put back."""

    uid: int
    data: bytes
    mtime_ns: int
    identity: FileIdentity
    expires: float
    #: Read-only descriptor on the inode we wrote; -1 when none.
    fd: int = -1

    def rewritten(self) -> bool | None:
        """True when our inode no longer holds what we wrote (a tool
        truncated and rewrote it); None when we hold no descriptor."""
        if self.fd < 0:
            return None
        try:
            return FileIdentity.of(os.fstat(self.fd)) != self.identity
        except OSError:
            return None

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def hold(path: str | os.PathLike[str], identity: FileIdentity) -> int:
    """A read-only descriptor on the file at ``path`` if it is the inode
    ``identity`` names; -1 otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return -1
    try:
        if os.fstat(fd).st_ino == identity.ino:
            return fd
    except OSError:
        pass
    os.close(fd)
    return -1


class FreshAppends:
    """Recent APPENDs by (mailbox id, MH number), bounded."""

    def __init__(
        self,
        lifetime_s: float = LIFETIME_S,
        budget: int = BUDGET_BYTES,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.lifetime_s = lifetime_s
        self.budget = budget
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, int], Fresh] = OrderedDict()
        #: Entries whose time is up but whose inode a tool rewrote: kept
        #: until a rescan repairs them.
        self._overdue: dict[tuple[int, int], Fresh] = {}
        self._size = 0

    def remember(
        self,
        mailbox_id: int,
        num: int,
        uid: int,
        data: bytes,
        mtime_ns: int,
        identity: FileIdentity,
        fd: int = -1,
    ) -> None:
        """Keep the bytes of an APPEND, and ``fd`` (a descriptor on its
        inode, see :func:`hold`; taken over).  Skipped when larger than
        the whole budget."""
        self._drop((mailbox_id, num))
        if len(data) > self.budget:
            if fd >= 0:
                os.close(fd)
            return
        entry = Fresh(
            uid, data, mtime_ns, identity, time.monotonic() + self.lifetime_s, fd
        )
        self._entries[(mailbox_id, num)] = entry
        self._size += len(data)
        self._expire()

    def overwritten(
        self, mailbox_id: int, num: int, uid: int, now: os.stat_result | None
    ) -> Fresh | None:
        """Our APPEND under ``num`` if a tool wrote another message into our
        inode (``now``: what the number holds now, None when gone); else
        None."""
        self._expire()
        key = (mailbox_id, num)
        entry = self._entries.get(key) or self._overdue.get(key)
        if entry is None or entry.uid != uid:
            return None
        if now is not None and FileIdentity.of(now) == entry.identity:
            return None
        rewritten = entry.rewritten()
        if rewritten is not None:
            return entry if rewritten else None
        # No descriptor: only an overwrite seen in place can be told.
        if now is None or now.st_ino != entry.identity.ino:
            return None
        return entry

    def suspect(self, mailbox_id: int) -> bool:
        """True when an overwritten APPEND of this mailbox waits for the
        rescan that puts it back (cheap: called before every job)."""
        self._expire()
        return any(key[0] == mailbox_id for key in self._overdue)

    def forget(self, mailbox_id: int, num: int) -> None:
        self._drop((mailbox_id, num))

    def forget_missing(self, mailbox_id: int, uids: set[int]) -> None:
        """Drop the entries of ``mailbox_id`` whose UID is not in ``uids``
        (expunged since): nothing left to put back."""
        for key, entry in [*self._entries.items(), *self._overdue.items()]:
            if key[0] == mailbox_id and entry.uid not in uids:
                self._drop(key)

    def close(self) -> None:
        for key in [*self._entries, *self._overdue]:
            self._drop(key)

    def _drop(self, key: tuple[int, int]) -> None:
        entry = self._entries.pop(key, None) or self._overdue.pop(key, None)
        if entry is not None:
            self._size -= len(entry.data)
            entry.close()

    def _expire(self) -> None:
        """Forget entries past their time, or past the budget or count --
        but an entry whose inode a tool rewrote becomes overdue instead."""
        now = time.monotonic()
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            over = self._size > self.budget or len(self._entries) > self.max_entries
            if entry.expires >= now and not over:
                break
            del self._entries[key]
            if entry.rewritten():
                self._overdue[key] = entry
                continue
            self._size -= len(entry.data)
            entry.close()
