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
repaired -- except when our inode lost its last name in a rescan that
found other messages renumbered, none older than ours now above its
number: nmh ``sortm`` swaps two files through a temporary number one past
the highest it listed, with ``rename``, which silently replaced an APPEND
that claimed that number after sortm's listing (strace, nmh 1.8;
``tests/test_mh_sortm.py``).

An entry whose inode was overwritten is never dropped unseen: when its
time is up it is kept, and reported by :meth:`FreshAppends.suspect`, until
the rescan that repairs it (:meth:`FreshAppends.forget`).

A big APPEND (:data:`SPILL_BYTES` or more) is kept in an unnamed file in
its folder (``O_TMPFILE``: no name, so no tool and no rescan sees it, and
a crash leaves nothing behind) rather than in the worker's memory: a
25 MB message otherwise stayed resident for the whole lifetime of its
entry, after the APPEND was long answered.  The copy is never synced and
lives at most as long as the entry, so it usually never reaches the disk.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from asimap.store.base import StoreError
from asimap.store.mh import files
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

#: APPENDs at least this large are kept in an unnamed file, not in memory.
SPILL_BYTES = 1024 * 1024

#: Most bytes kept in such files at once (the oldest are forgotten first).
SPILL_BUDGET = 256 * 1024 * 1024


@dataclass(slots=True)
class Fresh:
    """An APPEND we may have to put back."""

    uid: int
    #: The message, or b"" when it is kept in ``spill``.
    kept: bytes
    mtime_ns: int
    identity: FileIdentity
    expires: float
    #: Read-only descriptor on the inode we wrote; -1 when none.
    fd: int = -1
    #: An unnamed file holding the message (big APPENDs); -1 when none.
    spill: int = -1
    #: The message's size.
    size: int = 0

    @property
    def data(self) -> bytes:
        """The message as we wrote it."""
        if self.spill < 0:
            return self.kept
        chunks: list[bytes] = []
        offset = 0
        while offset < self.size:
            chunk = os.pread(self.spill, self.size - offset, offset)
            if not chunk:
                raise OSError("kept copy of an APPEND is short")
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def rewritten(self) -> bool | None:
        """True when our inode no longer holds what we wrote (a tool
        truncated and rewrote it); None when we hold no descriptor."""
        if self.fd < 0:
            return None
        try:
            return FileIdentity.of(os.fstat(self.fd)) != self.identity
        except OSError:
            return None

    def unlinked(self) -> bool:
        """True when our inode has no name left anywhere (``rename`` of
        another file over it, or an unlink); False when unknown."""
        if self.fd < 0:
            return False
        try:
            return os.fstat(self.fd).st_nlink == 0
        except OSError:
            return False

    def close(self) -> None:
        for fd in (self.fd, self.spill):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fd = self.spill = -1


def spill(directory: Path, data: bytes) -> int:
    """A descriptor on a new unnamed file in ``directory`` (reached as
    every write of the store reaches its folder, :func:`files.folder_fd`)
    holding ``data``; -1 when the file system cannot make one (no
    ``O_TMPFILE``, a full disk, a level of the path replaced)."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return -1
    try:
        with files.folder_fd(directory) as dir_fd:
            fd = os.open(".", flag | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except (OSError, StoreError):
        return -1
    try:
        with memoryview(data) as view:
            written = 0
            while written < len(view):
                written += os.write(fd, view[written:])
    except OSError:
        os.close(fd)
        return -1
    return fd


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
        #: Bytes kept in memory, and in unnamed files.
        self._size = 0
        self._spilled = 0

    def remember(
        self,
        mailbox_id: int,
        num: int,
        uid: int,
        data: bytes,
        mtime_ns: int,
        identity: FileIdentity,
        fd: int = -1,
        folder: Path | None = None,
    ) -> None:
        """Keep the bytes of an APPEND, and ``fd`` (a descriptor on its
        inode, see :func:`hold`; taken over).  A big one is kept in an
        unnamed file in ``folder`` when given (module doc).  Skipped when
        larger than the whole budget."""
        self._drop((mailbox_id, num))
        kept = -1
        if folder is not None and SPILL_BYTES <= len(data) <= SPILL_BUDGET:
            kept = spill(folder, data)
        if kept < 0 and len(data) > self.budget:
            if fd >= 0:
                os.close(fd)
            return
        entry = Fresh(
            uid,
            b"" if kept >= 0 else data,
            mtime_ns,
            identity,
            time.monotonic() + self.lifetime_s,
            fd,
            kept,
            len(data),
        )
        self._entries[(mailbox_id, num)] = entry
        self._count(entry, 1)
        self._expire()

    @property
    def in_memory(self) -> int:
        """Bytes of kept APPENDs held in this process's memory."""
        return self._size

    def _count(self, entry: Fresh, sign: int) -> None:
        if entry.spill >= 0:
            self._spilled += sign * entry.size
        else:
            self._size += sign * entry.size

    def overwritten(
        self,
        mailbox_id: int,
        num: int,
        uid: int,
        now: os.stat_result | None,
        renamed_over: bool = False,
    ) -> Fresh | None:
        """Our APPEND under ``num`` if a tool wrote another message into our
        inode (``now``: what the number holds now, None when gone), or
        renamed another file over it (``renamed_over``: the rescan found
        messages renumbered and our file under no number; module doc,
        sortm) and our inode has no name left; else None."""
        self._expire()
        key = (mailbox_id, num)
        entry = self._entries.get(key) or self._overdue.get(key)
        if entry is None or entry.uid != uid:
            return None
        if now is not None and FileIdentity.of(now) == entry.identity:
            return None
        rewritten = entry.rewritten()
        if renamed_over and (entry.fd < 0 or entry.unlinked()):
            # No descriptor: sortm replaced the file before we could take
            # one, right after our link.
            return entry
        if rewritten is not None:
            return entry if rewritten else None
        # No descriptor: only an overwrite seen in place can be told.
        if now is None or now.st_ino != entry.identity.ino:
            return None
        return entry

    def rewritten_numbers(self, mailbox_id: int) -> set[int]:
        """Numbers of this mailbox's recent APPENDs whose inode a tool
        rewrote (inc's message now, until a rescan puts ours back): what
        the sequence file says of them is the tool's, not our row's."""
        return {
            key[1]
            for key, entry in [*self._entries.items(), *self._overdue.items()]
            if key[0] == mailbox_id and entry.rewritten()
        }

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
            self._count(entry, -1)
            entry.close()

    def _expire(self) -> None:
        """Forget entries past their time, or past the budget or count --
        but an entry whose inode a tool rewrote becomes overdue instead."""
        now = time.monotonic()
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            over = (
                self._size > self.budget
                or self._spilled > SPILL_BUDGET
                or len(self._entries) > self.max_entries
            )
            if entry.expires >= now and not over:
                break
            del self._entries[key]
            if entry.rewritten():
                self._overdue[key] = entry
                continue
            self._count(entry, -1)
            entry.close()
