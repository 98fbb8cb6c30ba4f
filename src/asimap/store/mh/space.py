"""A full or refusing file system: clean errors, and room left to delete.

When the disk holding an MH root fills up, every write fails: the message
file of an APPEND, the ``.mh_sequences`` that a STORE rewrites through a
temporary file and a rename, and the SQLite write-ahead log that every
change appends to (UIDs, flags, tombstones).  Left alone, that means a
user can no longer *delete* mail to make room, since flagging
``\\Deleted`` and expunging need those same writes.

So each account keeps a **reserve**: a file ``.asimap-reserve`` of
:data:`RESERVE_BYTES` at the root, allocated (``posix_fallocate``, real
blocks, not a sparse file) while there is room.  Jobs are of two kinds:

* jobs that *add* mail (APPEND, COPY, CREATE, SETMETADATA...) never touch
  the reserve.  A full disk fails them with
  :class:`DiskFull` (``NO [OVERQUOTA]``), and while the reserve is not in
  place they are refused before they start, so that they cannot eat the
  room that deletion needs;
* every other job (STORE, EXPUNGE, MOVE, DELETE, and the reads, which
  may write cache rows) that fails on a full disk gives back one
  :data:`RELEASE_STEP` of the reserve and runs once more, step after step
  until it succeeds or the reserve is used up.

The reserve shrinks by steps, not all at once, because a small job that
met the full disk first (the ``\\Recent`` bookkeeping after a SELECT, a
cache row) would otherwise free the whole reserve for a few pages, and
whatever else writes on that file system (another account, an MH tool,
the logs) could take the rest before the user's STORE and EXPUNGE come.

After a successful job, a shrunk reserve is grown back to its full size
as soon as the room exists again (freed by the expunge itself, or by the
administrator).  Jobs that add mail wait for the full reserve.

The errors: ENOSPC and EDQUOT (and SQLite's SQLITE_FULL, which is how it
reports ENOSPC on its files) become :class:`DiskFull`, a kind of
:class:`~asimap.store.base.OverQuota`: RFC 5530 section 3 defines
OVERQUOTA as "the user would be over quota after the operation", which is
what a filesystem quota (EDQUOT) says, and what a full disk means to the
user (delete something); SERVERBUG is "a bug in itself", which a full
disk is not.  Dovecot's errno mapping makes the same choice (ENOSPC and
EDQUOT are its "no quota" error) though its Maildir save path answers a
full disk with ``NO [SERVERBUG]``; the RFC wins.  EACCES, EPERM and EROFS
on a write become :class:`~asimap.store.base.StorageDenied`
(``NO [NOPERM]``), as Dovecot answers a read-only folder.  Each cause is
logged once, when it starts, not at every retry of every client.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from stat import S_ISREG
from typing import TypeVar

from asimap.store.base import OverQuota, StorageDenied

log = logging.getLogger(__name__)

T = TypeVar("T")
E = TypeVar("E", bound=Exception)

#: How many causes are remembered as logged.
_REMEMBERED = 256

#: The reserve's name at the MH root (hidden: no MH tool lists it).
RESERVE_NAME = ".asimap-reserve"

#: How much room is kept for deletions.  A STORE or EXPUNGE rewrites some
#: database pages (4 KiB frames in the write-ahead log) and one
#: ``.mh_sequences``; 1 MiB covers flag changes on tens of thousands of
#: messages.  An EXPUNGE also frees its message files *before* it writes
#: the database, so it gains room as it goes.
RESERVE_BYTES = 1024 * 1024

#: How much of the reserve one retry of a job frees (module doc): enough
#: for a STORE's few WAL frames and ``.mh_sequences``, an eighth of it.
RELEASE_STEP = 128 * 1024

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_DENIED_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
#: sqlite3's error codes for "database or disk is full" and "disk I/O
#: error" (the primary code, in the low byte of an extended one).
_SQLITE_FULL = 13
_SQLITE_IOERR = 10
#: Less free room than this is "no room" (SQLite's ``-shm`` takes 32 KiB).
_NO_ROOM = 64 * 1024


def _no_room(root: Path | None) -> bool:
    if root is None:
        return False
    try:
        stat = os.statvfs(root)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < _NO_ROOM


class DiskFull(OverQuota):
    """The file system holding the mail is full (ENOSPC) or the user's
    file system quota is used up (EDQUOT): ``NO [OVERQUOTA]``."""


def classify(
    exc: BaseException, root: Path | None = None
) -> OverQuota | StorageDenied | None:
    """The store error a low-level write failure stands for, or None when
    ``exc`` is something else (left to propagate as it is).

    SQLite reports ENOSPC on its database and log as SQLITE_FULL, but on
    the shared-memory index (``-shm``, made when the database is opened)
    as an I/O error: one met while the file system under ``root`` has no
    room left is the full disk too.
    """
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code == _SQLITE_FULL:
            return DiskFull("Not enough disk space")
        if code is not None and code & 0xFF == _SQLITE_IOERR and _no_room(root):
            return DiskFull("Not enough disk space")
        return None
    if not isinstance(exc, OSError) or isinstance(exc, FileNotFoundError):
        return None
    if exc.errno == errno.EDQUOT:
        return DiskFull("Not enough disk quota")
    if exc.errno == errno.ENOSPC:
        return DiskFull("Not enough disk space")
    if exc.errno in _DENIED_ERRNOS:
        # "Permission denied", "Operation not permitted", "Read-only file
        # system": the reason, without the path.
        return StorageDenied(os.strerror(exc.errno or 0))
    return None


class Space:
    """The reserve of one account and the rule of module doc.

    Used from the store's worker thread only (jobs run one at a time);
    the lock only guards against a caller on another thread.
    """

    def __init__(
        self, root: Path, size: int = RESERVE_BYTES, mode: int = 0o600
    ) -> None:
        self.root = root
        self.size = size
        #: The profile's ``Msg-Protect``, as every file we make at the root.
        self.mode = mode
        self.path = root / RESERVE_NAME
        self._lock = threading.Lock()
        #: The causes already logged (until the disk recovers), bounded.
        self._reported: set[tuple[str, str]] = set()
        #: The reserve's size now (0: none); ``held`` when it is whole.
        self.left = self._present()
        #: True when the reserve cannot exist here for a reason other than
        #: room (a read-only root): then adding jobs are not held back.
        self.unsupported = False

    @property
    def held(self) -> bool:
        """The reserve is in place, whole."""
        return self.left >= self.size

    def _present(self) -> int:
        try:
            stat = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return 0
        return stat.st_size if S_ISREG(stat.st_mode) else 0

    # -- the reserve ---------------------------------------------------------

    def restore(self) -> bool:
        """Put the whole reserve in place if the room exists; True if it is.

        What is left of a shrunk reserve grows in place (a failed attempt
        gives back only what it took); a missing one is allocated in full
        under a temporary name and renamed, so that it is never half made.
        """
        with self._lock:
            if self.held:
                return True
            try:
                if self.left:
                    try:
                        self._grow()
                    except FileNotFoundError:
                        self.left = 0  # removed by someone else
                        self._make()
                else:
                    self._make()
            except OSError as exc:
                self.unsupported = exc.errno not in _FULL_ERRNOS
                return False
            self.left = self.size
            self.unsupported = False
            if self._reported:
                log.info("%s: disk space available again, reserve restored", self.root)
                self._reported.clear()
            return True

    def _grow(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            try:
                _allocate(fd, self.size)
            except OSError:
                os.ftruncate(fd, self.left)
                raise
        finally:
            os.close(fd)

    def _make(self) -> None:
        temp = self.root / f"{RESERVE_NAME}.new"
        try:
            # A leftover of a crash goes, and so does a symlink planted
            # under this name: opening through it would truncate and fill
            # a file outside the mail root.
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            fd = os.open(
                temp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                self.mode,
            )
            try:
                os.fchmod(fd, self.mode)
                _allocate(fd, self.size)
            finally:
                os.close(fd)
            os.replace(temp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise

    def release(self, step: int | None = None) -> bool:
        """Free ``step`` bytes of the reserve (all of it by default) for a
        deletion; True if any room was freed."""
        with self._lock:
            if self.left <= 0:
                return False
            keep = 0 if step is None else max(0, self.left - step)
            try:
                if keep:
                    # Not through a symlink planted under this name.
                    fd = os.open(self.path, os.O_WRONLY | os.O_NOFOLLOW)
                    try:
                        os.ftruncate(fd, keep)
                    finally:
                        os.close(fd)
                else:
                    self.path.unlink()
            except OSError:
                self.left = 0
                return False
            self.left = keep
            return True

    # -- running jobs --------------------------------------------------------

    def run(self, fn: Callable[[], T], *, adds: bool = False) -> T:
        """Run job ``fn`` under the rule of the module doc (worker thread)."""
        if adds and not self.held and not self.restore() and not self.unsupported:
            # Not even the reserve could be put back: no room to add.
            raise self._report(DiskFull("Not enough disk space"), ("ENOSPC", ""))
        try:
            result = fn()
        except Exception as exc:
            error = classify(exc, self.root)
            if error is None:
                raise
            self._report(error, _cause(exc))
            if adds or not isinstance(error, DiskFull):
                raise error from exc
            result = self._run_on_reserve(fn, error, exc)
        if not self.held:
            self.restore()
        return result

    def _run_on_reserve(
        self, fn: Callable[[], T], error: Exception, exc: Exception
    ) -> T:
        """Run ``fn`` again after each step of the reserve it frees, until
        it succeeds or the reserve is gone (module doc)."""
        while self.release(RELEASE_STEP):
            log.warning(
                "%s: reserve released in part (%d bytes left) so that "
                "deletions can proceed",
                self.root,
                self.left,
            )
            try:
                return fn()
            except Exception as again:
                error_again = classify(again, self.root)
                if error_again is None:
                    raise
                if not isinstance(error_again, DiskFull):
                    raise error_again from again
                error, exc = error_again, again
        raise error from exc

    def _report(self, error: E, cause: tuple[str, str]) -> E:
        """Log ``error`` the first time its cause is seen (module doc)."""
        if cause not in self._reported:
            if len(self._reported) >= _REMEMBERED:
                self._reported.clear()
            self._reported.add(cause)
            name, where = cause
            log.warning(
                "%s: %s (%s)%s", self.root, error, name, f" in {where}" if where else ""
            )
        return error


def _cause(exc: BaseException) -> tuple[str, str]:
    """What to log once: a full disk is one cause however it shows
    (ENOSPC on a message file, SQLITE_FULL on the database); a refused
    write is one per errno and directory."""
    if isinstance(exc, OSError) and exc.errno in _DENIED_ERRNOS:
        where = os.path.dirname(os.fsdecode(exc.filename)) if exc.filename else ""
        return errno.errorcode.get(exc.errno or 0, "?"), where
    if isinstance(exc, OSError) and exc.errno == errno.EDQUOT:
        return "EDQUOT", ""
    return "ENOSPC", ""


def _allocate(fd: int, size: int) -> None:
    """Give ``fd`` ``size`` bytes of real blocks (not a sparse file).

    Where the file system offers no ``fallocate``, zeros are written.
    """
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
    chunk = bytes(64 * 1024)
    for _ in range(0, size, len(chunk)):
        os.write(fd, chunk)
    os.fsync(fd)
