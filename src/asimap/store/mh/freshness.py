"""Trusting the file watcher: which folders the database already mirrors.

Why: every command used to ask the disk whether an MH folder changed
(stat the folder, stamp ``.mh_sequences``, probe nmh's lock, read every
replaced sequence inode), and because a stamp taken within a clock tick of
a change cannot be trusted, the command right after any write rescanned
the whole folder.  With twenty connections on one INBOX that was most of
the worker's time, and the cost of one APPEND grew with the folder.

The inotify watcher (:mod:`asimap.store.mh.watch`) already sees every
change an MH tool makes.  It hands each event to a :class:`WatchFeed`
(folder, file name, event mask), from whichever thread read it.  The
store's worker thread reads the inotify descriptor itself at the start and
at the end of every job (one non-blocking ``read``, not a listing), so an
nmh ``mark`` that returned before a command was issued is seen by that
command, whatever the watcher's debounce.

:class:`Freshness` keeps, on the worker thread, the folders known to be
*current*: the database was brought in line with the folder (a rescan, or
the stamp check) while the watch existed, and every file named by an event
since then is, on disk, what the database says -- a message number has the
row's identity (inode, size, mtime) or neither exists, and the sequence
file is the text we last wrote or read.  Our own writes raise events too;
they pass that check, so they cost a ``stat`` each and never a rescan.  A
command on a current folder with no event costs no directory listing, no
``.mh_sequences`` read and no lock probe.

Anything the feed cannot vouch for -- no watcher, the poll backend, an
overflowed inotify queue (every folder), a folder removed or moved, a
tool's write into a sequence inode we had replaced -- leaves the folder
not current, and the job falls back to the stamp check and rescan; a
folder that had an event while not current, or whose events did not
match, is rescanned (a message rewritten in place moves no stamp).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from asimap.store.mh import seqfile
from asimap.store.mh.files import TEMP_PREFIX, FileIdentity
from asimap.store.mh.sequences import SEQUENCES_FILE

#: inotify(7): a name moved into a watched directory (``rename``).
IN_MOVED_TO = 0x00000080

#: The pseudo file name for "anything in this folder may have changed".
WHOLE = "\0whole"

#: File names remembered per folder between two jobs; past this (an
#: ``inc`` of thousands of messages into a folder nobody has open) the
#: folder is simply "changed", so memory stays bounded.
MAX_NAMES = 1000


class WatchFeed:
    """Events from the watcher, waiting for the worker thread (thread-safe).

    The watcher :meth:`attach` es itself when it starts reading events
    and :meth:`detach` es when it stops or degrades to polling; a feed that
    is not attached vouches for nothing.  Every attach, detach and queue
    overflow starts a new *epoch*: a folder judged current in an older one
    is judged again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live = False
        self._epoch = 0
        self._events: dict[str, dict[str, int]] = {}
        self._drain: Callable[[], None] | None = None
        self._watch_inode: Callable[[str, int], None] | None = None
        #: Per folder, events reported so far, and how many of them
        #: :meth:`take` has handed over (see :meth:`quiet`).
        self._arrived: dict[str, int] = {}
        self._handed: dict[str, int] = {}

    # -- the watcher's side --------------------------------------------------

    def attach(
        self, drain: Callable[[], None], watch_inode: Callable[[str, int], None]
    ) -> None:
        """The watcher reports from now on; ``drain`` reads its pending
        events synchronously, ``watch_inode(folder, fd)`` watches an open
        file that has no name any more."""
        with self._lock:
            self._live = True
            self._epoch += 1
            self._events.clear()
            self._drain, self._watch_inode = drain, watch_inode

    def detach(self) -> None:
        with self._lock:
            self._live = False
            self._epoch += 1
            self._events.clear()
            self._drain = self._watch_inode = None

    def changed(self, folder: str, name: str, mask: int) -> None:
        """File ``name`` in ``folder`` (relative, ``/``-separated) had an
        event ``mask``."""
        with self._lock:
            self._arrived[folder] = self._arrived.get(folder, 0) + 1
            names = self._events.setdefault(folder, {})
            if WHOLE in names:
                return
            if len(names) >= MAX_NAMES:
                self._events[folder] = {WHOLE: 0}
                return
            names[name] = names.get(name, 0) | mask

    def lost(self, folder: str) -> None:
        """Anything in ``folder`` may have changed."""
        self.changed(folder, WHOLE, 0)

    def overflowed(self) -> None:
        """Events were lost: nothing is vouched for any more."""
        with self._lock:
            self._epoch += 1
            self._events.clear()

    # -- the worker's side -------------------------------------------------------

    @property
    def live(self) -> bool:
        return self._live

    @property
    def epoch(self) -> int:
        return self._epoch

    def take(self) -> tuple[int, dict[str, dict[str, int]]] | None:
        """Read the watcher's pending events, then hand over everything
        reported so far: ``(epoch, {folder: {name: mask}})``, or None when
        no watcher vouches."""
        drain = self._drain
        if drain is not None:
            drain()
        with self._lock:
            if not self._live:
                return None
            events, self._events = self._events, {}
            for folder in events:
                self._handed[folder] = self._arrived.get(folder, 0)
            return self._epoch, events

    def handed(self, folder: str) -> int:
        """How many events of ``folder`` :meth:`take` has handed over."""
        with self._lock:
            return self._handed.get(folder, 0)

    def quiet(self, folder: str, handed: int, epoch: int) -> bool:
        """No event of ``folder`` came since :meth:`handed` said ``handed``
        in ``epoch`` (read from the descriptor now, from any thread): what
        the worker judged of the folder then still holds.  The change
        mirror (:mod:`asimap.store.mh.mirror`) answers from memory on it."""
        drain = self._drain
        if drain is not None:
            drain()
        with self._lock:
            return (
                self._live
                and self._epoch == epoch
                and self._arrived.get(folder, 0) == handed
            )

    def watch_inode(self, folder: str, fd: int) -> bool:
        """Ask the watcher to report writes into ``fd``'s file (a sequence
        inode we replaced); False when no watcher can."""
        watch = self._watch_inode
        if watch is None:
            return False
        try:
            watch(folder, fd)
        except OSError:
            return False
        return True


class Freshness:
    """The folders whose database state is current (worker thread only)."""

    def __init__(self, root: Path, feed: WatchFeed | None) -> None:
        self.root = root
        self.feed = feed
        self._epoch = -1
        #: Current folders, with their mailbox id.
        self._current: dict[Path, int] = {}
        #: Events on current folders not checked yet.
        self._pending: dict[Path, dict[str, int]] = {}
        #: Folders that had an event while not current, or whose events
        #: did not match: the stamp check cannot be trusted to see what
        #: changed (a message rewritten in place moves no stamp), so the
        #: next check rescans.
        self._stale: set[Path] = set()

    @property
    def trusted(self) -> bool:
        return self.feed is not None and self.feed.live

    @property
    def epoch(self) -> int:
        """The feed's epoch as of the last :meth:`update`."""
        return self._epoch

    def relpath(self, folder: Path) -> str:
        return folder.relative_to(self.root).as_posix()

    def update(self) -> None:
        """Take the watcher's events (reading its descriptor first)."""
        taken = None if self.feed is None else self.feed.take()
        if taken is None:
            self._current.clear()
            self._pending.clear()
            return
        epoch, events = taken
        if epoch != self._epoch:
            self._epoch = epoch
            self._current.clear()
            self._pending.clear()
        for rel, names in events.items():
            folder = self.root / rel if rel else self.root
            if folder not in self._current:
                self._stale.add(folder)
                continue
            pending = self._pending.setdefault(folder, {})
            for name, mask in names.items():
                pending[name] = pending.get(name, 0) | mask
            if len(pending) > MAX_NAMES:
                self._pending[folder] = {WHOLE: 0}

    def is_current(self, folder: Path) -> bool:
        """Current with no event since (call :meth:`update` first)."""
        return folder in self._current and folder not in self._pending

    def to_check(self) -> list[tuple[Path, int, dict[str, int]]]:
        """Current folders that had events: (folder, mailbox id, names)."""
        return [
            (folder, self._current[folder], names)
            for folder, names in self._pending.items()
        ]

    def pending(self, folder: Path) -> dict[str, int] | None:
        """The events to check on a current folder; None when the folder
        is not current (it needs the full check)."""
        if folder not in self._current:
            return None
        return self._pending.get(folder, {})

    def is_stale(self, folder: Path) -> bool:
        """An event came that no check has accounted for: rescan."""
        return folder in self._stale

    def rescanned(self, folder: Path) -> None:
        """A rescan began after the last :meth:`update`."""
        self._stale.discard(folder)

    def mark_current(self, folder: Path, mailbox_id: int) -> None:
        """The database mirrors ``folder`` as of the last :meth:`update`
        (later changes arrive as events)."""
        feed = self.feed
        if feed is not None and feed.live and feed.epoch == self._epoch:
            self._current[folder] = mailbox_id
            self._pending.pop(folder, None)

    def forget(self, folder: Path) -> None:
        """``folder`` differs from the database (or may): rescan it."""
        self._current.pop(folder, None)
        self._pending.pop(folder, None)
        self._stale.add(folder)

    def forget_all(self) -> None:
        self._current.clear()
        self._pending.clear()

    def watch_inode(self, folder: Path, fd: int) -> bool:
        return self.feed is not None and self.feed.watch_inode(self.relpath(folder), fd)


def names_match(
    conn: sqlite3.Connection,
    mailbox_id: int,
    folder: Path,
    names: dict[str, int],
    synced: str | None,
    written: str | None,
) -> bool:
    """True when every file in ``names`` (events since the folder was
    current) is, on disk, what the database says: the check that replaces
    a rescan after events (module docstring).

    ``synced`` is the sequence file's text as we last wrote or read it
    (None: unknown), ``written`` the stamp of our last rename of it.
    """
    for name, mask in names.items():
        if name == WHOLE:
            return False
        if name.startswith(TEMP_PREFIX):
            continue  # ours, never a message
        if name == SEQUENCES_FILE:
            if not _sequences_match(folder, mask, synced, written):
                return False
        elif name.isdigit() and name.isascii():
            if str(int(name)) != name:
                return False  # "007": let a rescan decide
            if not _message_matches(conn, mailbox_id, folder, int(name)):
                return False
        # Any other name is neither a message nor the sequence file: a
        # rescan would ignore it too.
    return True


def _sequences_match(
    folder: Path, mask: int, synced: str | None, written: str | None
) -> bool:
    """The sequence file is the one we last wrote or read.

    Renames only (``IN_MOVED_TO``: ours; nmh rewrites in place) and the
    inode, size and mtime of our own last rename: it is our file and no
    one wrote into it (that would be ``IN_CLOSE_WRITE``).  Otherwise the
    text decides.
    """
    if synced is None:
        return False
    path = folder / SEQUENCES_FILE
    if written is not None and not mask & ~IN_MOVED_TO:
        try:
            if seqfile.stamp_of(os.stat(path)) == written:
                return True
        except FileNotFoundError:
            pass
    return seqfile.read_text(folder) == synced


def _message_matches(
    conn: sqlite3.Connection, mailbox_id: int, folder: Path, num: int
) -> bool:
    """Message file ``num`` is the row's file, or neither exists."""
    rows = conn.execute(
        "SELECT ino, size, mtime_ns FROM messages WHERE mailbox_id=? AND num=?",
        (mailbox_id, num),
    ).fetchall()
    try:
        st = os.stat(folder / str(num), follow_symlinks=False)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        st = None  # message_numbers() skips it too
    if not rows:
        return st is None
    if len(rows) > 1 or st is None:
        return False
    return FileIdentity.of(st) == FileIdentity(*rows[0])


def read_fd(fd: int) -> str:
    """The whole text of an open file (as :mod:`seqfile` reads it)."""
    chunks: list[bytes] = []
    offset = 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")
