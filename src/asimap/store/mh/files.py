"""Message files: durable writes that never collide with nmh.

APPEND and delivery write a temporary file in the destination folder,
fsync it, then *claim* a message number with ``os.link(temp, str(n))``:
``link`` fails with EEXIST instead of overwriting, so when nmh's ``inc``
takes number n at the same moment we simply try n+1.  Only then is the
temporary name removed and the directory fsynced, so after a crash the
message is either absent or complete under its number (design.md section 4
rule 1).  The leftover of a crash is a ``.asimap-tmp-*`` file, which no
MH tool and no rescan reads.

Every operation here reaches its folder through directory descriptors
(:func:`folder_fd`): each level of the path, from ``/``, is opened with
``O_NOFOLLOW``, and the final open, link, unlink, rename or mkdir is made
relative to the folder's descriptor (``dir_fd=``).  A check made earlier
by path (``folder_of``, ``folder_path``) cannot be undone by a user who
swaps a folder for a symlink in between: the swap makes the walk fail
(:class:`FolderReplaced`), or the operation lands in the directory the
walk opened, never behind the link (docs/security.md section 2).  The
MH root must be given resolved (the store resolves it once, at open).

Modes: message files get the profile's ``Msg-Protect`` and folders its
``Folder-Protect`` (:class:`asimap.store.mh.profile.Protection`), set
exactly with ``fchmod``/``chmod`` after creation, because the mode given
to ``open``/``mkdir`` is only an upper bound that the process umask
lowers (and the umask is process-wide: changing it from one thread would
race every other thread that creates a file).  Creation with the wanted
mode first means a file is never, even for an instant, more open than
the profile allows.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISLNK

from asimap.store.base import StorageDenied

log = logging.getLogger(__name__)

TEMP_PREFIX = ".asimap-tmp-"

#: nmh's default ``Msg-Protect``, for callers that do not pass a mode.
MESSAGE_MODE = 0o600

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW_DIR = _DIR_FLAGS | os.O_NOFOLLOW
#: The levels on the way: ``O_PATH`` needs only search permission on them
#: (a worker may pass through directories it cannot list, such as a mode
#: 0711 home), and serves as ``dir_fd`` all the same.
#: (Linux; elsewhere a plain read-only open, which needs read permission.)
_PASS_DIR = (
    getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
)


class FolderReplaced(StorageDenied):
    """A level of a folder's path is no longer a directory (a symlink or
    a file was put in its place): nothing is done through it, and the
    command gets ``NO [NOPERM]`` with this reason (no path in it)."""


def open_folder(folder: Path) -> int:
    """A descriptor of directory ``folder`` (absolute), every level opened
    with ``O_NOFOLLOW`` from ``/``; :class:`FolderReplaced` if one is a
    symlink or not a directory, FileNotFoundError if one is missing."""
    if not folder.is_absolute():
        raise ValueError(f"not an absolute path: {folder}")
    parts = folder.parts[1:]
    fd = os.open("/", _DIR_FLAGS if not parts else _PASS_DIR & ~os.O_NOFOLLOW)
    try:
        for depth, part in enumerate(parts, 1):
            flags = _NOFOLLOW_DIR if depth == len(parts) else _PASS_DIR
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _replaced(folder) from None
                raise
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _replaced(path: Path) -> FolderReplaced:
    log.warning("%s: a level is a symbolic link or a file; not followed", path)
    return FolderReplaced("Mailbox path has a symbolic link in it; not followed")


@contextlib.contextmanager
def folder_fd(folder: Path) -> Iterator[int]:
    """:func:`open_folder` for the block, closed after it."""
    fd = open_folder(folder)
    try:
        yield fd
    finally:
        os.close(fd)


def make_folder(path: Path, mode: int) -> bool:
    """Create directory ``path`` and its missing superiors, each with
    exactly ``mode`` (``Folder-Protect``); True if ``path`` was created.

    Directories that already exist keep their mode (the user chose it),
    also when one appears between our check and our ``mkdir`` (nmh's
    ``folder -create`` at the same moment).
    """
    return path in make_folders(path, mode)


def make_folders(path: Path, mode: int) -> list[Path]:
    """:func:`make_folder`, returning the directories it created, top
    first, so that a caller whose later step fails can take them back
    (:func:`remove_folders`).  If a ``mkdir`` fails, those made before
    it are removed: nothing is left half made (a full disk).

    The levels that exist are walked without following symlinks, and
    each missing one is made (and chmodded) relative to its parent's
    descriptor, so a level swapped for a symlink meanwhile is never
    created through (module doc).
    """
    if not path.is_absolute():
        raise ValueError(f"not an absolute path: {path}")
    created: list[Path] = []
    fd = os.open("/", _PASS_DIR & ~os.O_NOFOLLOW)
    current = Path("/")
    try:
        for part in path.parts[1:]:
            current = current / part
            try:
                inner = os.open(part, _PASS_DIR, dir_fd=fd)
            except FileNotFoundError:
                try:
                    os.mkdir(part, mode, dir_fd=fd)
                except FileExistsError:
                    pass  # made meanwhile (nmh folder -create): keep its mode
                else:
                    created.append(current)
                if created and created[-1] == current:
                    # Ours: exactly the profile's mode (not the umask's).
                    inner = os.open(part, _NOFOLLOW_DIR, dir_fd=fd)
                    os.fchmod(inner, mode)
                else:
                    inner = os.open(part, _PASS_DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(part, fd):
                    raise _replaced(current) from None
                raise
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        remove_folders(created)
        raise
    os.close(fd)
    return created


def remove_folders(created: list[Path]) -> None:
    """Undo :func:`make_folders`: remove ``created`` deepest first, each
    only if still empty (someone may have put mail there meanwhile), and
    only through its parent's descriptor."""
    for directory in reversed(created):
        with contextlib.suppress(OSError), folder_fd(directory.parent) as fd:
            os.rmdir(directory.name, dir_fd=fd)


def remove_tree(folder: Path) -> None:
    """Remove ``folder`` and everything in it (DELETE of a leaf), through
    its parent's descriptor: a level above swapped for a symlink stops
    it, and ``folder`` itself as a symlink is refused by rmtree."""
    with folder_fd(folder.parent) as fd:
        shutil.rmtree(folder.name, dir_fd=fd)


def rename_folder(source: Path, target: Path) -> None:
    """``rename(2)`` of a folder (RENAME), relative to the descriptors of
    both parents (module doc)."""
    with folder_fd(source.parent) as src, folder_fd(target.parent) as dst:
        os.rename(source.name, target.name, src_dir_fd=src, dst_dir_fd=dst)


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What tells one message file from another across renames.

    nmh's ``folder -pack`` and ``sortm`` rename files (same inode, size
    and mtime); a tool that rewrites a message changes at least one.
    """

    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, stat: os.stat_result) -> FileIdentity:
        return cls(stat.st_ino, stat.st_size, stat.st_mtime_ns)


def fsync_dir(folder: Path) -> None:
    """Make a directory entry change (link, unlink, rename) durable."""
    with folder_fd(folder) as fd:
        os.fsync(fd)


def message_numbers(folder: Path) -> dict[int, os.stat_result]:
    """Every message file of a folder: all-digit names of regular files.

    Symlinks are not followed (a link could point outside the root).
    """
    found: dict[int, os.stat_result] = {}
    try:
        fd = open_folder(folder)
    except FileNotFoundError:
        return found
    try:
        entries = os.scandir(fd)
    except BaseException:
        os.close(fd)
        raise
    with entries:
        for entry in entries:
            name = entry.name
            if not name.isdigit() or not name.isascii():
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed under us
            if entry.is_file(follow_symlinks=False):
                found[int(name)] = stat
    os.close(fd)
    return found


def _create_temp(folder: Path, mode: int, dir_fd: int) -> tuple[Path, int]:
    """A new temporary file in ``folder`` (open as ``dir_fd``) with
    exactly ``mode``; its path and an open descriptor for writing."""
    name = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(
        name,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        mode,
        dir_fd=dir_fd,
    )
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
        raise
    return folder / name, fd


def write_temp(
    folder: Path,
    data: bytes,
    mtime_ns: int | None = None,
    mode: int = MESSAGE_MODE,
) -> Path:
    """Write ``data`` to a fresh temporary file in ``folder`` and fsync it."""
    with folder_fd(folder) as dir_fd:
        return _write_temp(folder, data, mtime_ns, mode, dir_fd)


def _write_temp(
    folder: Path, data: bytes, mtime_ns: int | None, mode: int, dir_fd: int
) -> Path:
    temp, fd = _create_temp(folder, mode, dir_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if mtime_ns is not None:
                # The file's mtime carries INTERNALDATE, as in asimap 2.x,
                # so it survives a lost database.
                os.utime(handle.fileno(), ns=(mtime_ns, mtime_ns))
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp.name, dir_fd=dir_fd)
        raise
    return temp


#: Temporary files :func:`write_temps` keeps open at once.
TEMPS_AT_ONCE = 64


def write_temps(
    folder: Path,
    messages: Sequence[tuple[bytes, int | None]],
    mode: int = MESSAGE_MODE,
) -> list[tuple[Path, os.stat_result]]:
    """:func:`write_temp` for several messages (``(data, mtime_ns)``);
    each temporary file's path and stat, every one durable on return.

    All of a batch are written first, then fsynced at the same time from
    a few threads (:func:`fsync_all`).  If anything fails, no temporary
    file is left.
    """
    with folder_fd(folder) as dir_fd:
        return _write_temps(folder, messages, mode, dir_fd)


def _write_temps(
    folder: Path,
    messages: Sequence[tuple[bytes, int | None]],
    mode: int,
    dir_fd: int,
) -> list[tuple[Path, os.stat_result]]:
    done: list[tuple[Path, os.stat_result]] = []
    batch: list[tuple[Path, int]] = []
    try:
        for start in range(0, len(messages), TEMPS_AT_ONCE):
            try:
                for data, mtime_ns in messages[start : start + TEMPS_AT_ONCE]:
                    batch.append(_create_temp(folder, mode, dir_fd))
                    fd = batch[-1][1]
                    _write_all(fd, data)
                    if mtime_ns is not None:
                        # INTERNALDATE, as in write_temp.
                        os.utime(fd, ns=(mtime_ns, mtime_ns))
                fsync_all([fd for _, fd in batch])
                done.extend((temp, os.fstat(fd)) for temp, fd in batch)
            finally:
                for _, fd in batch:
                    os.close(fd)
            batch = []
    except BaseException:
        for temp in [path for path, _ in done] + [path for path, _ in batch]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp.name, dir_fd=dir_fd)
        raise
    return done


#: Threads that fsync a batch of files together.
SYNC_THREADS = 8
_sync_pool: ThreadPoolExecutor | None = None
_sync_pool_pid = 0


def fsync_all(fds: Sequence[int]) -> None:
    """fsync every descriptor of ``fds``, concurrently.

    Why: each file still gets its own fsync (durable by POSIX, whatever
    the file system), but a journaling file system (ext4's jbd2, xfs)
    commits fsyncs that wait at the same moment together, in one journal
    commit, where fsyncs one after another wait for one commit each.
    100 new files on the development machine under load: 0.3-0.45 s one
    by one, about 0.02 s together.  The pool is made on first use, in the
    process that uses it (threads do not survive a fork).
    """
    if len(fds) <= 1:
        for fd in fds:
            os.fsync(fd)
        return
    global _sync_pool, _sync_pool_pid
    if _sync_pool is None or _sync_pool_pid != os.getpid():
        _sync_pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="fsync")
        _sync_pool_pid = os.getpid()
    futures = [_sync_pool.submit(os.fsync, fd) for fd in fds]
    # Every one finished before any error is raised: the caller closes
    # the descriptors next, and a number closed under a running fsync
    # could be reused by another file meanwhile.
    wait(futures)
    for future in futures:
        future.result()


def _write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd`` (a write to a regular file may be short,
    e.g. when interrupted)."""
    with memoryview(data) as view:
        written = 0
        while written < len(view):
            written += os.write(fd, view[written:])


def remove_temporary_files(folder: Path) -> int:
    """Remove our leftover ``.asimap-tmp-*`` files (a crash's only trace);
    returns how many.  Never touches anything else in the folder."""
    removed = 0
    try:
        fd = open_folder(folder)
    except FileNotFoundError:
        return 0
    try:
        with os.scandir(fd) as entries:
            stale = [e.name for e in entries if e.name.startswith(TEMP_PREFIX)]
        for name in stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=fd)
                removed += 1
    finally:
        os.close(fd)
    return removed


#: Called with (number, inode) before each attempt to link that inode as
#: that number: a multi-message write records it durably first
#: (:mod:`asimap.store.mh.pending`).
Claim = Callable[[int, int], None]


def claim_number(
    folder: Path, source: Path, start: int, claim: Claim | None = None
) -> int:
    """Hard-link ``source`` as the first free number >= ``start``.

    ``os.link`` is atomic and never replaces an existing name, so racing
    with ``inc`` or another process costs a retry, never a message.
    """
    with folder_fd(folder) as dst:
        if source.parent == folder:
            return _claim_number(dst, source.name, dst, start, claim)
        with folder_fd(source.parent) as src:
            return _claim_number(src, source.name, dst, start, claim)


def _claim_number(
    src_fd: int, name: str, dst_fd: int, start: int, claim: Claim | None
) -> int:
    """:func:`claim_number` between open folders; the source file itself
    is never followed if it is a symlink."""
    number = max(start, 1)
    ino = os.stat(name, dir_fd=src_fd, follow_symlinks=False).st_ino if claim else 0
    while True:
        if claim is not None:
            claim(number, ino)
        try:
            os.link(
                name,
                str(number),
                src_dir_fd=src_fd,
                dst_dir_fd=dst_fd,
                follow_symlinks=False,
            )
        except FileExistsError:
            number += 1
            continue
        return number


def next_free_number(folder: Path) -> int:
    """One past the highest message number on disk (nmh's rule)."""
    numbers = message_numbers(folder)
    return max(numbers, default=0) + 1


def store_new(
    folder: Path,
    data: bytes,
    start: int,
    mtime_ns: int | None = None,
    mode: int = MESSAGE_MODE,
    *,
    sync_dir: bool = True,
    claim: Claim | None = None,
) -> tuple[int, os.stat_result]:
    """Write a new message durably; return its number and the stat of
    the file *we* wrote.  With ``sync_dir`` False the caller fsyncs the
    folder itself before the message counts as stored (several at once).

    The stat is taken from the temporary file before the link, not from
    the number after it: nmh ``inc`` opens its message files with
    ``O_CREAT|O_TRUNC`` and no ``O_EXCL`` (strace, nmh 1.8), so an inc
    that listed the folder before our link may overwrite the number we
    just claimed -- in the same inode.  A stat taken after the link could
    then describe inc's message, and the UID we give ours would name it.
    With our own identity recorded, the next rescan sees the overwrite
    and gives inc's message a UID of its own.  ``claim``: see
    :func:`claim_number`.
    """
    with folder_fd(folder) as fd:
        temp = _write_temp(folder, data, mtime_ns, mode, fd)
        try:
            stat = os.stat(temp.name, dir_fd=fd, follow_symlinks=False)
            number = _claim_number(fd, temp.name, fd, start, claim)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp.name, dir_fd=fd)
        if sync_dir:
            os.fsync(fd)
    return number, stat


#: A message file changed this recently may still be overwritten in place
#: by an ``inc`` that listed its folder before the file existed.
YOUNG_NS = 10_000_000_000


def link_or_copy(
    source: Path,
    folder: Path,
    start: int,
    expected: FileIdentity | None = None,
    mode: int = MESSAGE_MODE,
    claim: Claim | None = None,
) -> tuple[int, os.stat_result]:
    """COPY of a message file into another folder (``claim``: see
    :func:`claim_number`).

    A hard link costs no space and keeps the bytes identical (refile does
    the same, and a link keeps the source's mode, as refile's does); across
    file systems, or where links are refused, fall back to a durable copy
    with ``mode``.

    A *young* source (changed less than :data:`YOUNG_NS` ago) is copied,
    not linked: nmh ``inc`` overwrites a number it thinks free with
    ``O_TRUNC`` in the same inode (see :func:`store_new`), and a hard link
    would carry that overwrite into the copy.  ``expected`` is the
    identity the caller knows the source by; a source that is no longer
    that file raises FileNotFoundError (it is gone, as far as the caller's
    message is concerned).
    """
    with folder_fd(source.parent) as src, folder_fd(folder) as dst:
        return _link_or_copy(src, source, dst, folder, start, expected, mode, claim)


def read_message(dir_fd: int, name: str, expected: FileIdentity | None) -> bytes:
    """The bytes of message file ``name`` of an open folder, never through
    a symlink; FileNotFoundError when it is not the ``expected`` file."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as handle:
        if expected is not None and (
            FileIdentity.of(os.fstat(handle.fileno())) != expected
        ):
            raise FileNotFoundError(name)
        return handle.read()


def _link_or_copy(
    src: int,
    source: Path,
    dst: int,
    folder: Path,
    start: int,
    expected: FileIdentity | None,
    mode: int,
    claim: Claim | None,
) -> tuple[int, os.stat_result]:
    name = source.name
    stat = os.stat(name, dir_fd=src, follow_symlinks=False)
    if expected is not None and FileIdentity.of(stat) != expected:
        raise FileNotFoundError(source)
    young = time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) < YOUNG_NS
    if young:
        data = read_message(src, name, expected)
        temp = _write_temp(folder, data, stat.st_mtime_ns, mode, dst)
        try:
            ours = os.stat(temp.name, dir_fd=dst, follow_symlinks=False)
            number = _claim_number(dst, temp.name, dst, start, claim)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp.name, dir_fd=dst)
        os.fsync(dst)
        return number, ours
    try:
        number = _claim_number(src, name, dst, start, claim)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        temp, fd = _create_temp(folder, mode, dst)
        try:
            original = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src
            )
            with os.fdopen(fd, "wb") as handle, os.fdopen(original, "rb") as reader:
                shutil.copyfileobj(reader, handle)
                handle.flush()
                os.utime(handle.fileno(), ns=(stat.st_atime_ns, stat.st_mtime_ns))
                os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp.name, dir_fd=dst)
            raise
        try:
            number = _claim_number(dst, temp.name, dst, start, claim)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp.name, dir_fd=dst)
    os.fsync(dst)
    return number, os.stat(str(number), dir_fd=dst, follow_symlinks=False)


def open_in(folder: Path, name: str, flags: int, mode: int = 0o600) -> int:
    """``os.open`` of entry ``name`` of ``folder`` relative to the folder's
    descriptor, never through a symlink (module doc)."""
    with folder_fd(folder) as fd:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)


def replace_in(folder: Path, source: str, target: str) -> None:
    """``rename(2)`` of one entry of ``folder`` over another, relative to
    the folder's descriptor (module doc)."""
    with folder_fd(folder) as fd:
        os.replace(source, target, src_dir_fd=fd, dst_dir_fd=fd)


def unlink_in(folder: Path, name: str, ino: int | None = None) -> bool:
    """Remove entry ``name`` of ``folder`` through the folder's descriptor
    (never behind a swapped level, module doc) -- only while it is inode
    ``ino`` when given; True if it went.  Gone already (or the folder) is
    fine."""
    try:
        with folder_fd(folder) as fd:
            if ino is not None and (
                os.stat(name, dir_fd=fd, follow_symlinks=False).st_ino != ino
            ):
                return False
            os.unlink(name, dir_fd=fd)
    except (FileNotFoundError, FolderReplaced):
        return False
    return True


def remove_messages(folder: Path, numbers: list[int]) -> None:
    """Unlink message files (expunge); already gone is fine."""
    if not numbers:
        return
    with folder_fd(folder) as fd:
        for number in numbers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(number), dir_fd=fd)
        os.fsync(fd)
