"""Per-user trace files written by a user's worker, rotated like asimap 2.x.

In worker mode the main process traces each connection up to its login
(:class:`~asimap.ops.trace.TraceDirectory`, one file per connection in
``trace_dir``); the rest of the conversation happens in the user's
worker, which runs as the owner of the mail root and could not write
into the root-owned ``trace_dir`` (mode 0700).  So, while the worker is
still root -- after the zygote forked it, before it drops privileges --
:func:`open_user_trace_dir` makes ``trace_dir/<user>/`` owned by the
user, mode 0700, and keeps it open as a directory descriptor.  After the
drop the worker creates and renames its files relative to that
descriptor (``openat``/``renameat``), which needs no access to
``trace_dir`` itself; nobody else can read the traces (they hold mail).

All of a user's connections share one file, ``trace.jsonl``; each record
carries ``conn``, the connection's number in the worker, so one
conversation is ``grep '"conn": 3'`` away.  Like asimap 2.x's trace, the
file rotates at :data:`MAX_BYTES` (20 MB), keeping :data:`BACKUPS` (5)
older files ``trace.jsonl.1`` (newest) to ``trace.jsonl.5``: a busy
user's traces never fill the disk.  Failures are logged once and tracing
stops; serving never does.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import stat
from pathlib import Path

from asimap.ops.trace import NULL_TRACER, FileTracer, Tracer

log = logging.getLogger(__name__)

#: Size at which the per-user trace file rotates (asimap 2.x: 20 MB).
MAX_BYTES = 20 * 1024 * 1024
#: Rotated files kept (asimap 2.x: 5).
BACKUPS = 5
#: The per-user file's name in the user's trace folder.
FILE_NAME = "trace.jsonl"


def user_folder_name(username: str) -> str:
    """A file-system-safe, never-hidden name for a user's trace folder."""
    safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", username)[:128] or "_"
    return "_" + safe if safe.startswith(".") else safe


def open_user_trace_dir(
    trace_dir: Path, username: str, owner: tuple[int, int] | None
) -> int:
    """Make ``trace_dir/<user>/`` (0700, owned by ``owner`` = (uid, gid)
    when given) and return a descriptor of it.  Call before dropping
    privileges.  Raises OSError when it cannot be made safely (a symbolic
    link or a non-directory in its place is refused, never followed)."""
    trace_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = trace_dir / user_folder_name(username)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise NotADirectoryError(path)
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, 0o700)  # mkdir's mode went through the umask
    except BaseException:
        os.close(fd)
        raise
    return fd


class UserTraceFile:
    """The worker's tracer factory: one rotating file for every connection
    of its user (module docstring)."""

    def __init__(self, dir_fd: int) -> None:
        self._dir_fd = dir_fd
        self._fd: int | None = None
        self._size = 0
        self._conns = itertools.count(1)
        self._broken = False

    def new_tracer(self, peer: str, protocol: str = "imap") -> Tracer:
        if self._broken:
            return NULL_TRACER
        conn = next(self._conns)
        return FileTracer(
            _Share(self), protocol=protocol, fields={"conn": conn, "peer": peer}
        )

    def write(self, text: str) -> None:
        """Append one record (a whole line), rotating first if it is due."""
        if self._broken:
            return
        data = text.encode("utf-8", "backslashreplace")
        try:
            if self._fd is None:
                self._open()
            elif self._size + len(data) > MAX_BYTES:
                self._rotate()
            assert self._fd is not None
            os.write(self._fd, data)
            self._size += len(data)
        except OSError as exc:
            log.warning("per-user protocol trace stopped: %s", exc)
            self._broken = True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> None:
        self._fd = os.open(
            FILE_NAME,
            os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=self._dir_fd,
        )
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        self.close()
        fd = self._dir_fd
        for n in range(BACKUPS - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.rename(
                    f"{FILE_NAME}.{n}",
                    f"{FILE_NAME}.{n + 1}",
                    src_dir_fd=fd,
                    dst_dir_fd=fd,
                )
        os.rename(FILE_NAME, f"{FILE_NAME}.1", src_dir_fd=fd, dst_dir_fd=fd)
        self._open()


class _Share:
    """One connection's view of the shared file, for :class:`FileTracer`.

    Records are written whole, one ``write`` each (so lines of different
    connections never mix); closing a connection's trace leaves the file
    open for the others.
    """

    def __init__(self, file: UserTraceFile) -> None:
        self._file = file

    def write(self, text: str, /) -> int:
        self._file.write(text)
        return len(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
