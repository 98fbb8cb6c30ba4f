"""Reading and writing ``.mh_sequences`` while nmh tools run.

What nmh does, observed with ``strace -f -e trace=file,desc,fcntl`` on
nmh 1.8 with its default ``datalocking: fcntl`` (``mh-tailor(5)``):

* ``mark`` and ``rmm``: ``open(O_RDWR)``, ``fcntl(F_SETLK, F_WRLCK)``,
  read, (``rmm``: ``rename("N", ",N")``), ``lseek(0)``, ``ftruncate(0)``,
  ``write``, ``close``.  The file is rewritten *in place*, on the inode it
  locked, and the lock is held from the read to the write.  ``F_SETLK``
  does not wait: when it fails nmh closes, sleeps a second and opens the
  path again (``lkopen_fcntl``, five tries).
* ``inc``: reads the file under ``F_RDLCK`` and releases it, writes its
  message files with ``open(O_WRONLY|O_CREAT|O_TRUNC)`` and no lock, then
  does the same locked in-place read-modify-write as ``mark`` to add the
  new numbers to the unseen sequence -- after clearing every sequence of
  those numbers (``clear_msg_flags`` in nmh's ``uip/inc.c``), so what we
  wrote for them meanwhile is gone (see :func:`sequences.settle_seen`).
  (When the file does not exist it creates it with ``O_CREAT|O_TRUNC``.)
* Read-only tools (``scan``, ``mark -list``) read under ``F_RDLCK``.

So nmh always locks, and never renames the file.  What follows for us:

* With ``ENABLE_MH_FILE_LOCKING`` we speak nmh's protocol exactly
  (:func:`locked` and :func:`write_locked`): lock, read, rewrite in place
  through the same descriptor, fsync, unlock.  Replacing the file by
  rename instead would hand a tool that opened the old inode a lock on a
  file nobody reads any more: its update would vanish, or an older file
  would come back.
* Without it we take no lock, so we replace the file by an atomic rename
  (unlocked readers never see it torn) and must cope with a tool that
  locked and read the old inode just before our rename: its in-place write
  then lands in the unlinked inode.  :class:`OrphanWatch` keeps the old
  inode open for a while and reports such writes, so that the caller can
  merge the tool's change into the current file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import queue
import secrets
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from asimap.store.mh import files
from asimap.store.mh.sequences import SEQUENCES_FILE

__all__ = ["SEQUENCES_FILE", "OrphanWatch", "Snapshot", "locked", "read_text"]

_TEMP_PREFIX = ".asimap-tmp-"

#: How long an unlocked read retries while a tool is half way through a
#: rewrite (nmh itself gives up on a held lock after about five seconds).
READ_LIMIT_S = 2.0


def stamp_of(stat: os.stat_result) -> str:
    """What identifies a file's content cheaply (mtime, size, inode)."""
    return f"{stat.st_mtime_ns}:{stat.st_size}:{stat.st_ino}"


def _open(path: Path, flags: int) -> int:
    """Open the sequence file, never through a symlink.

    A ``.mh_sequences`` that is a symlink was put there by someone who can
    write the folder, and may point anywhere the worker's uid can reach
    (design.md section 4, rule 3: no path leaves the mail root): it is
    treated as no file, so its target is neither read nor written, and our
    next write replaces the link itself (:func:`write_atomically`).
    """
    try:
        # Relative to the folder's descriptor: a folder swapped for a
        # symlink since it was checked is not opened through either.
        return files.open_in(path.parent, path.name, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileNotFoundError(
                errno.ENOENT, "sequence file is a symlink", str(path)
            ) from None
        raise


def _read_fd(fd: int) -> str:
    chunks: list[bytes] = []
    offset = 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    # Undecodable bytes (never written by nmh) are replaced rather than
    # failing the folder.
    return b"".join(chunks).decode("utf-8", "replace")


# -- nmh's lock ----------------------------------------------------------------

#: Descriptors through which this thread holds nmh's lock, by folder.
_held = threading.local()


def _held_fds() -> dict[Path, int]:
    fds: dict[Path, int] | None = getattr(_held, "fds", None)
    if fds is None:
        fds = _held.fds = {}
    return fds


#: ``struct flock`` on Linux (short, short, off_t, off_t, pid_t, padding).
_FLOCK = struct.Struct("hhqqi4x")


def lock_held_on(fd: int) -> bool:
    """True while another process holds a write lock on ``fd``'s file.

    ``F_GETLK`` only asks and takes no lock.  Linux-only layout; elsewhere
    (or on error) we assume no holder.
    """
    if sys.platform != "linux":
        return False
    try:
        query = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError:
        return False
    return bool(_FLOCK.unpack(answer)[0] != fcntl.F_UNLCK)


def held_by_other(folder: Path) -> bool:
    """True while another process (an nmh tool between its read and its
    in-place write) holds a write lock on the folder's sequence file."""
    try:
        fd = _open(folder / SEQUENCES_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        return lock_held_on(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(folder: Path, enabled: bool) -> Iterator[None]:
    """Hold nmh's data lock on ``.mh_sequences`` for a read-modify-write.

    nmh's ``datalocking: fcntl`` is a POSIX record lock on the whole file;
    ``lockf`` takes the same lock, so while we hold it nmh's ``F_SETLK``
    fails and it retries a second later, and the reverse.  Inside, every
    read (:func:`read_text`) and write (:func:`write_locked`) goes through
    the locked descriptor: the file is never replaced, so the lock always
    covers the file everybody opens.  Re-entrant: a nested call reuses the
    outer descriptor (opening and closing a second descriptor of the same
    file would silently drop the lock -- POSIX record locks belong to the
    process and the file, and *any* close releases them).

    With ``enabled`` False (the default, ``ENABLE_MH_FILE_LOCKING`` off)
    this does nothing.
    """
    fds = _held_fds()
    if not enabled or folder in fds:
        yield
        return
    target = folder / SEQUENCES_FILE
    while True:
        try:
            fd = _open(target, os.O_RDWR)
        except FileNotFoundError:
            if target.is_symlink():
                # Not a file of this folder (see _open): nothing to lock,
                # and the write replaces the link.
                yield
                return
            # Nothing to lock yet: create it empty (nmh reads that as "no
            # sequences").
            with contextlib.suppress(FileExistsError):
                os.close(
                    files.open_in(
                        folder, target.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                    )
                )
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(target)
            except FileNotFoundError:
                continue  # removed while we waited (nmh unlinks an empty one)
            if current.st_ino != os.fstat(fd).st_ino:
                continue  # replaced while we waited: lock the new one
            fds[folder] = fd
            try:
                yield
            finally:
                del fds[folder]
            return
        finally:
            os.close(fd)  # closing drops the lock


def _locked_fd(folder: Path) -> int | None:
    """The descriptor we hold the lock through, if it still is the file."""
    fd = _held_fds().get(folder)
    if fd is None:
        return None
    try:
        same = os.fstat(fd).st_ino == os.stat(folder / SEQUENCES_FILE).st_ino
    except FileNotFoundError:
        same = False
    return fd if same else None


def read_text(folder: Path) -> str:
    """The file's text, "" when it does not exist; through the locked
    descriptor while :func:`locked` holds the lock."""
    fd = _locked_fd(folder)
    if fd is not None:
        return _read_fd(fd)
    try:
        fd = _open(folder / SEQUENCES_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return ""
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


def write_locked(folder: Path, text: str) -> None:
    """Rewrite the file in place under the lock :func:`locked` holds, as
    nmh's ``seq_save`` does; without it (no lock held, or the file was
    replaced by a tool that does not lock) fall back to
    :func:`write_atomically`.

    The new text is written before the file is cut to length, so even a
    reader that ignores the lock never sees an empty file.  An empty
    result leaves an empty file: unlinking a file others may be waiting
    to lock would break the lock protocol.
    """
    fd = _locked_fd(folder)
    if fd is None:
        write_atomically(folder, text)
        return
    data = text.encode("utf-8")
    size = os.fstat(fd).st_size
    if len(data) > size:
        # The room first: on a full disk this fails before any old byte
        # changes, and the file is cut back to what it was.  Written the
        # other way round, the new text stopped half-way and the file
        # held its head without its tail -- sequences lost, flags changed
        # by a STORE that answered NO.
        try:
            _pwrite_all(fd, data[size:], size)
        except BaseException:
            os.ftruncate(fd, size)
            raise
    _pwrite_all(fd, data[:size], 0)
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    written = 0
    while written < len(data):
        written += os.pwrite(fd, data[written:], offset + written)


def write_atomically(folder: Path, text: str) -> None:
    """Replace ``.mh_sequences``: temp file in the folder, fsync, rename.

    An empty result removes the file, as nmh does for a folder without
    sequences.  The directory is fsynced after the rename (or removal).
    """
    target = folder / SEQUENCES_FILE
    if not text:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        files.fsync_dir(folder)
        return
    temp = write_temp(folder, text)
    try:
        files.replace_in(folder, temp.name, target.name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    # The rename itself durable too: until the directory is synced, a
    # power failure may bring the old file back under an acknowledged
    # change (the data alone was fsynced by write_temp).
    files.fsync_dir(folder)


def write_temp(folder: Path, text: str) -> Path:
    """``text`` in a new temporary file in ``folder``, fsynced."""
    temp = folder / f"{_TEMP_PREFIX}seq-{secrets.token_hex(8)}"
    fd = files.open_in(folder, temp.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return temp


#: :func:`swap_locked` outcomes.
REPLACED, MOVED, BUSY = "replaced", "moved", "busy"


def _swap_unwritable(target: Path, temp: Path, stamp: str) -> tuple[str, int]:
    """:func:`swap_locked` for a sequence file we may read but not write
    (another owner, mode 0444): nmh's lock needs a descriptor open for
    writing, so it cannot be taken -- and it is not needed, since no tool
    running as the mail's owner can write that file either, so no write
    can be orphaned.  The folder is ours to write, so the file is still
    replaced by rename, as before locks were taken here (a read-only
    ``.mh_sequences`` must never stop every flag change and APPEND)."""
    try:
        fd = _open(target, os.O_RDONLY)
    except FileNotFoundError:
        return MOVED, -1
    except PermissionError:
        return BUSY, -1  # not even readable: the caller's last try writes
    try:
        if (
            stamp_of(os.fstat(fd)) != stamp
            or os.stat(target).st_ino != os.fstat(fd).st_ino
        ):
            os.close(fd)
            return MOVED, -1
        files.replace_in(target.parent, temp.name, target.name)
    except FileNotFoundError:
        os.close(fd)
        return MOVED, -1
    except BaseException:
        os.close(fd)
        raise
    return REPLACED, fd


def swap_locked(
    folder: Path, temp: Path, stamp: str, limit_s: float = READ_LIMIT_S
) -> tuple[str, int]:
    """Rename ``temp`` over ``.mh_sequences`` while holding nmh's lock on
    the file it replaces, provided that file is still the one we read
    (``stamp``); without ``ENABLE_MH_FILE_LOCKING``.

    A bare rename orphaned the write of an nmh tool that had opened the
    old file just before: we fold such a write back in later
    (:class:`OrphanWatch`), but until then the file lacks the tool's
    change, and a tool that reads it meanwhile acts on that stale view
    (issue 10 point 12: ``inc``'s addition to ``unseen`` went into an
    orphan, the ``mark -sequence unseen -delete`` that followed read the
    file without it and changed nothing, and the message stayed unread).
    Here the old file is locked before the rename and *stays* locked: the
    descriptor is returned, and the caller keeps it open (the orphan
    watch) until the old file can matter no more.  A tool that opened the
    old file fails its ``F_SETLK``, and nmh then reopens the path a second
    later (``lkopen_fcntl``) and gets the new file.  The lock is taken
    without waiting and held for a ``fstat`` and a ``rename``, so a tool
    working on the current file is never kept waiting by it; and the file
    is still replaced by rename, so readers that take no lock never see it
    torn.

    Returns ``(REPLACED, fd)``; ``(MOVED, -1)`` when the file changed (or
    went) since it was read; ``(BUSY, -1)`` when a tool held the lock for
    ``limit_s`` (it is between its read and its write) or the file system
    has no locks.  ``temp`` is left in place unless replaced.
    """
    target = folder / SEQUENCES_FILE
    deadline = time.monotonic() + limit_s
    while True:
        try:
            fd = _open(target, os.O_RDWR)
        except FileNotFoundError:
            return MOVED, -1
        except PermissionError:
            return _swap_unwritable(target, temp, stamp)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                return BUSY, -1  # no locks here (ENOLCK)
            if time.monotonic() > deadline:
                return BUSY, -1
            time.sleep(0.001)
            continue
        try:
            now = os.fstat(fd)
            same = os.stat(target).st_ino == now.st_ino
        except FileNotFoundError:
            same = False
        if not same or stamp_of(now) != stamp:
            os.close(fd)
            return MOVED, -1
        try:
            files.replace_in(folder, temp.name, target.name)
        except BaseException:
            os.close(fd)
            raise
        return REPLACED, fd


# -- without our lock ------------------------------------------------------------


@dataclass(slots=True)
class Snapshot:
    """The file's text, read through ``fd`` (still open, on that inode)."""

    text: str
    fd: int
    stamp: str

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def read_unlocked(folder: Path, limit_s: float = READ_LIMIT_S) -> Snapshot | None:
    """Read the file without locking it, but never in the middle of an
    nmh rewrite; ``None`` when there is no file.

    nmh truncates and then writes while holding its lock, so a read is
    believed only if, after it, nobody holds the lock and the inode's
    stamp did not move during it; otherwise it is retried (bounded by
    ``limit_s``, after which the last read is returned).  The descriptor
    stays open so that the caller can watch the inode it read
    (:class:`OrphanWatch`).
    """
    path = folder / SEQUENCES_FILE
    deadline = time.monotonic() + limit_s
    while True:
        try:
            fd = _open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        before = stamp_of(os.fstat(fd))
        text = _read_fd(fd)
        busy = lock_held_on(fd)
        after = os.fstat(fd)
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = -1
        settled = before == stamp_of(after) and current == after.st_ino
        if (settled and not busy) or time.monotonic() > deadline:
            return Snapshot(text, fd, stamp_of(after))
        os.close(fd)
        time.sleep(0.002)


@dataclass(slots=True)
class _Orphan:
    fd: int
    #: What the inode held when we replaced it, or since our last report.
    text: str
    expires: float


class _Closer:
    """Closes descriptors on a thread of its own.

    Why: the last descriptor of a replaced sequence inode frees the inode
    (its blocks, nmh's lock on it, its inotify watch), which waits for the
    file system's journal; with writes syncing all the time that took
    about a millisecond -- on every APPEND once :attr:`OrphanWatch.limit`
    inodes were kept, on the store's only thread.  The thread is started
    on first use in the process that uses it (threads do not survive a
    fork).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._pid = 0

    def close(self, fd: int) -> None:
        """Close ``fd`` soon; the caller must not use it any more."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._queue = queue.SimpleQueue()
            threading.Thread(
                target=self._run, args=(self._queue,), name="close", daemon=True
            ).start()
        self._queue.put(fd)

    @staticmethod
    def _run(fds: queue.SimpleQueue[int]) -> None:
        while True:
            fd = fds.get()
            with contextlib.suppress(OSError):
                os.close(fd)


_closer = _Closer()


class OrphanWatch:
    """Old ``.mh_sequences`` inodes we replaced, kept open for a while.

    An nmh tool that opened and locked the file just before our rename
    reads the old inode and writes its change back into it, where nobody
    would ever see it.  Keeping the old inode open lets us read that
    change and merge it (the tool's delta is exactly "now" against what
    the inode held when we replaced it).  A tool opens and locks within
    microseconds, so a few seconds of watching covers even a loaded
    machine; an inode still locked by a tool is kept until released.
    Bounded in count per folder (the oldest is dropped first).
    """

    def __init__(self, lifetime_s: float = 5.0, limit: int = 256) -> None:
        self.lifetime_s = lifetime_s
        self.limit = limit
        self._orphans: dict[Path, list[_Orphan]] = {}

    def add(self, folder: Path, snapshot: Snapshot) -> None:
        """Watch the inode ``snapshot`` was read from (we just replaced it);
        takes over its descriptor."""
        orphans = self._orphans.setdefault(folder, [])
        orphans.append(
            _Orphan(snapshot.fd, snapshot.text, time.monotonic() + self.lifetime_s)
        )
        snapshot.fd = -1
        while len(orphans) > self.limit:
            _closer.close(orphans.pop(0).fd)

    def watched(self) -> bool:
        """True while any replaced inode is kept (cheap: the store's ticker
        asks this from the event loop before it bothers the worker)."""
        return any(self._orphans.values())

    def changed_folders(self) -> list[Path]:
        """Folders where a tool wrote (or is writing) into an old inode."""
        return [folder for folder in list(self._orphans) if self.pending(folder)]

    def pending(self, folder: Path) -> bool:
        """True when a tool wrote (or is writing) into an old inode."""
        self._expire(folder)
        return any(
            lock_held_on(o.fd) or _read_fd(o.fd) != o.text
            for o in self._orphans.get(folder, ())
        )

    def take(
        self, folder: Path, limit_s: float = READ_LIMIT_S
    ) -> list[tuple[str, str]]:
        """``(before, after)`` texts of every old inode a tool changed since
        we replaced it (or since the last call); waits, bounded, for a tool
        still holding its lock on one."""
        changes: list[tuple[str, str]] = []
        deadline = time.monotonic() + limit_s
        for orphan in self._orphans.get(folder, ()):
            while lock_held_on(orphan.fd) and time.monotonic() < deadline:
                time.sleep(0.002)
            now = _read_fd(orphan.fd)
            if now != orphan.text:
                changes.append((orphan.text, now))
                orphan.text = now
        self._expire(folder)
        return changes

    def _expire(self, folder: Path) -> None:
        orphans = self._orphans.get(folder)
        if not orphans:
            return
        now = time.monotonic()
        keep: list[_Orphan] = []
        for orphan in orphans:
            quiet = orphan.expires < now and not lock_held_on(orphan.fd)
            if quiet and _read_fd(orphan.fd) == orphan.text:
                _closer.close(orphan.fd)
                continue
            keep.append(orphan)
        self._orphans[folder] = keep

    def close(self) -> None:
        for orphans in self._orphans.values():
            for orphan in orphans:
                os.close(orphan.fd)
        self._orphans.clear()
