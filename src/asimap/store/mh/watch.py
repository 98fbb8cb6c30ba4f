"""Notice changes that MH tools make to an account's folders, without polling.

Why: nmh's ``inc``, ``rmm``, ``refile``, ``mark``, ``folder -pack`` and
``sortm`` change folders behind our back while clients are connected, and
those clients must see the change within a second (IDLE, NOOP).  Stat-ing
every folder of a 2,000-folder account each second costs real CPU for every
idle user, so on Linux the kernel tells us instead.

Backend choice -- a direct ``inotify`` binding through :mod:`ctypes`, not
``watchfiles``:

* One ``inotify_init1(IN_NONBLOCK | IN_CLOEXEC)`` descriptor per account,
  read through :meth:`asyncio.AbstractEventLoop.add_reader`: no thread and
  no timer, so an idle account costs exactly zero wake-ups.  ``watchfiles``
  (Rust ``notify``) was measured here on 2,000 folders: also one inotify
  descriptor and ~1 ms of CPU a second, but it adds a thread, an epoll and
  an eventfd descriptor, and wakes every ``step`` (50 ms) to check its stop
  event.
* We decide what is watched: hidden directories (``.git``, ``.cache``, ...)
  are not MH folders and get no watch, symbolic links are never followed
  (design.md section 4 rule 3: nothing outside the mail root), and the watch set tracks
  folder renames exactly.  ``watchfiles`` watches everything recursively and
  only filters events afterwards.
* We can handle the two failure modes the brief requires: ``IN_Q_OVERFLOW``
  (events were lost: report every folder and rebuild the watch set) and the
  ``fs.inotify.max_user_watches`` limit (``ENOSPC``: log a warning and fall
  back to polling, at start-up or when a new folder crosses the limit).
* No new dependency.

Watch descriptors are not file descriptors: 2,000 folders cost 2,000
watches (kernel memory, ~1 KiB each) and one open file.

The poll backend (non-Linux, or when inotify is unavailable or exhausted)
stats each folder directory and its ``.mh_sequences`` every
``poll_interval`` and lists a directory only when its mtime moved.  It sees
everything the MH tools do (they create, unlink and rename files, which
moves the directory's mtime, or rewrite ``.mh_sequences``) but not a message
rewritten in place, which only inotify's ``IN_CLOSE_WRITE`` reveals.

What is reported: folder paths relative to the root, ``/``-separated
(``"inbox"``, ``"lists/usrp"``).  :data:`ROOT` (``""``) stands for the mail
root itself and appears when the set of top-level folders changed.  A
created, removed or renamed folder reports itself, its descendants and its
parent.  Our own temporary files are reported too; the store decides what
a change means (re-reading a directory is cheap).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import select
import stat
import struct
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from asimap.store.mh.freshness import WatchFeed

log = logging.getLogger(__name__)

#: The mail root in a batch: the set of top-level folders changed.
ROOT = ""

#: A batch is yielded at the latest this long after its first change, even
#: if changes keep coming (a long ``inc``), so clients see mail within 1 s.
MAX_BATCH_DELAY = 0.5

SEQUENCES_FILE = ".mh_sequences"

Report = Callable[[Iterable[str]], None]


class FolderWatcher(Protocol):
    """What the MH store needs: batches of changed folders, and a way out.

    ``changes`` is an async generator method (``async for batch in
    watcher.changes()``), so the protocol declares it with ``def``: calling
    it returns the iterator.  Meant for one consumer: concurrent consumers
    would each get some of the batches.  ``backend`` is ``"inotify"`` or
    ``"poll"`` and may turn from the first into the second at run time.
    """

    @property
    def backend(self) -> str: ...

    def changes(self) -> AsyncIterator[set[str]]: ...

    async def close(self) -> None: ...


class InotifyUnavailable(OSError):
    """inotify cannot be used here (not Linux, no libc symbol, no instance)."""


class WatchLimitReached(OSError):
    """``fs.inotify.max_user_watches`` is exhausted (``inotify_add_watch``
    failed with ``ENOSPC``)."""


def make_watcher(
    root: Path,
    *,
    debounce: float = 0.05,
    poll_interval: float = 1.0,
    feed: WatchFeed | None = None,
) -> FolderWatcher:
    """The best watcher for ``root``: inotify, else polling (with a warning).

    Sets up the watches (or the poll baseline) at once, so a change made
    after this returns is reported even if ``changes()`` is iterated later.
    That walks the tree synchronously (tens of milliseconds for 2,000
    folders), so a caller on a busy event loop may run it with
    :func:`asyncio.to_thread`: nothing here needs the loop until
    ``changes()`` is first iterated.

    ``feed`` (inotify only) also receives every file event, so that the
    store can trust the watcher instead of checking folders itself
    (:mod:`asimap.store.mh.freshness`).
    """
    try:
        return make_inotify_watcher(
            root, debounce=debounce, poll_interval=poll_interval, feed=feed
        )
    except (InotifyUnavailable, WatchLimitReached) as exc:
        if sys.platform.startswith("linux"):
            log.warning("MH watcher for %s falls back to polling: %s", root, exc)
        return make_poll_watcher(root, debounce=debounce, poll_interval=poll_interval)


def make_inotify_watcher(
    root: Path,
    *,
    debounce: float = 0.05,
    poll_interval: float = 1.0,
    feed: WatchFeed | None = None,
) -> FolderWatcher:
    """An inotify watcher; raises :class:`InotifyUnavailable` or
    :class:`WatchLimitReached`.  ``poll_interval`` is used only if the watch
    limit is hit later and the watcher degrades to polling."""
    _require_directory(root)
    return _Watcher(root, _InotifySource(root, feed), debounce, poll_interval)


def make_poll_watcher(
    root: Path, *, debounce: float = 0.05, poll_interval: float = 1.0
) -> FolderWatcher:
    """A watcher that stats every folder each ``poll_interval`` seconds."""
    _require_directory(root)
    return _Watcher(root, _PollSource(root, poll_interval), debounce, poll_interval)


def _require_directory(root: Path) -> None:
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, "mail root is not a directory", str(root))


def parent_of(path: str) -> str:
    """``"a/b"`` -> ``"a"``, ``"a"`` -> :data:`ROOT`."""
    return path.rpartition("/")[0]


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _is_within(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


# -- the watcher: debouncing and life cycle, shared by both backends ---------


class _Source(Protocol):
    backend: str
    #: True when each report is already a whole batch (one poll), so
    #: waiting for quiet would only add latency.
    coalesced: bool

    def folders(self) -> list[str]: ...

    def start(self, report: Report, on_limit: Callable[[], None]) -> None: ...

    async def stop(self) -> None: ...


class _Watcher:
    """Collects changed folders from a source and yields debounced batches.

    The pending set is bounded by the number of folders, so a consumer that
    falls behind costs no more memory than one that keeps up.
    """

    def __init__(
        self, root: Path, source: _Source, debounce: float, poll_interval: float
    ) -> None:
        self._root = root
        self._source = source
        self._debounce = debounce
        self._poll_interval = poll_interval
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._started = False
        self._closed = False
        self._stopping: asyncio.Task[None] | None = None

    @property
    def backend(self) -> str:
        return self._source.backend

    def _report(self, paths: Iterable[str]) -> None:
        """Add to the pending batch.  Every report wakes the debouncer, even
        for folders already pending, so that the quiet period restarts while
        an ``inc`` keeps writing to the same folder."""
        changed = set(paths)
        if changed:
            self._pending |= changed
            self._wake.set()

    def _degrade(self) -> None:
        """The watch limit was hit after start-up: switch to polling, and
        report everything, since changes may have gone unseen meanwhile."""
        log.warning(
            "MH watcher for %s: fs.inotify.max_user_watches reached; "
            "falling back to polling every %s s",
            self._root,
            self._poll_interval,
        )
        old = self._source
        poller = _PollSource(self._root, self._poll_interval)
        self._source = poller
        poller.start(self._report, self._degrade)
        self._report([ROOT, *poller.folders()])
        self._stopping = asyncio.get_running_loop().create_task(old.stop())

    async def changes(self) -> AsyncIterator[set[str]]:
        """Debounced batches: a batch goes out once no change arrived for
        ``debounce`` seconds, or :data:`MAX_BATCH_DELAY` after its first
        change, whichever is sooner; so one ``inc`` of 500 messages is a
        handful of batches and none waits longer than half a second.  The
        poll backend's batches go out as soon as a poll finds them: a
        change is seen at most ``poll_interval`` plus one scan later."""
        if not self._started and not self._closed:
            self._source.start(self._report, self._degrade)
            self._started = True
        loop = asyncio.get_running_loop()
        while not self._closed:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            deadline = loop.time() + max(MAX_BATCH_DELAY, self._debounce)
            while not self._closed and not self._source.coalesced:
                quiet = min(self._debounce, deadline - loop.time())
                if quiet <= 0:
                    break
                self._wake.clear()
                try:
                    async with asyncio.timeout(quiet):
                        await self._wake.wait()
                except TimeoutError:
                    break
            if self._closed:
                return
            batch, self._pending = self._pending, set()
            yield batch

    async def close(self) -> None:
        """Stop watching and release the inotify descriptor; a pending
        ``changes()`` iteration ends."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._stopping is not None:
            await self._stopping
        await self._source.stop()


# -- inotify backend ----------------------------------------------------------

# <sys/inotify.h>; inotify(7).
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)

#: No IN_MODIFY: it fires on every write(); IN_CLOSE_WRITE is once a file.
WATCH_MASK = (
    IN_CREATE
    | IN_DELETE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CLOSE_WRITE
    | IN_ATTRIB
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
)

#: A sequence-file inode we replaced but keep open: an nmh tool that had
#: opened it before our rename writes its change into it.  Only
#: ``IN_MODIFY`` (every ``write`` and ``ftruncate`` raises it): the
#: descriptor we keep is the one that held nmh's lock, open for writing,
#: so closing it when the orphan expires raised ``IN_CLOSE_WRITE`` with
#: nothing written -- and made the folder "changed", so a run of APPENDs
#: (a new orphan each, the oldest closed past the count limit) rescanned
#: the whole folder on every one.
ORPHAN_MASK = IN_MODIFY

#: struct inotify_event { int wd; uint32_t mask, cookie, len; char name[]; }
_EVENT = struct.Struct("iIII")
_READ_SIZE = 256 * 1024


class _Libc:
    """The three inotify calls, loaded lazily so other platforms import us."""

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise InotifyUnavailable(errno.ENOSYS, "inotify is Linux only")
        lib = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        try:
            self.init1 = lib.inotify_init1
            self.add_watch = lib.inotify_add_watch
            self.rm_watch = lib.inotify_rm_watch
        except AttributeError as exc:
            raise InotifyUnavailable(errno.ENOSYS, str(exc)) from exc
        self.init1.argtypes = [ctypes.c_int]
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]


_libc: _Libc | None = None


def _get_libc() -> _Libc:
    global _libc
    if _libc is None:
        _libc = _Libc()
    return _libc


def inotify_add_watch(fd: int, path: Path, mask: int) -> int:
    """``inotify_add_watch``; an ``OSError`` on failure.  Adding a watch to
    an already watched directory returns its existing descriptor."""
    wd: int = _get_libc().add_watch(fd, os.fsencode(path), mask)
    if wd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(path))
    return wd


def inotify_rm_watch(fd: int, wd: int) -> None:
    """``inotify_rm_watch``, ignoring ``EINVAL`` (already gone)."""
    _get_libc().rm_watch(fd, wd)


class _InotifySource:
    """One inotify descriptor; one watch per folder directory (and the root).

    ``_paths`` maps each watch descriptor to its folder path; it is the whole
    state.  A directory renamed inside the tree is treated as removed from
    its old path and created at the new one (watches dropped, then added
    again), which keeps paths right without pairing move cookies.

    The descriptor is read by the event loop and, through :meth:`drain`, by
    the store's worker thread at the start and end of each job (so a job
    sees a change made just before it, whatever the debounce); a lock keeps
    the two readers from interleaving, and reports made on the worker
    thread reach the loop through ``call_soon_threadsafe``.
    """

    backend = "inotify"
    coalesced = False

    def __init__(self, root: Path, feed: WatchFeed | None = None) -> None:
        libc = _get_libc()
        fd = libc.init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()  # EMFILE: max_user_instances reached
            raise InotifyUnavailable(err, f"inotify_init1: {os.strerror(err)}")
        self._fd: int | None = fd
        #: Asks whether an event is queued (see :meth:`drain`).
        self._queued = select.poll()
        self._queued.register(fd, select.POLLIN)
        self._root = root
        self._feed = feed
        self._paths: dict[int, str] = {}
        #: Watches on replaced sequence-file inodes, by descriptor: folder.
        self._orphans: dict[int, str] = {}
        self._report: Report = lambda paths: None
        self._on_limit: Callable[[], None] = lambda: None
        self._reading = False
        self._mutex = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        try:
            self._add_tree(ROOT)
        except BaseException:
            os.close(fd)
            self._fd = None
            raise

    def folders(self) -> list[str]:
        return [path for path in self._paths.values() if path != ROOT]

    def start(self, report: Report, on_limit: Callable[[], None]) -> None:
        assert self._fd is not None, "started after stop"
        self._report, self._on_limit = report, on_limit
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._loop.add_reader(self._fd, self._on_readable)
        self._reading = True
        if self._feed is not None:
            self._feed.attach(self.drain, self.watch_inode)
        # Events queued before start() are in the kernel buffer; read them.
        self._on_readable()

    async def stop(self) -> None:
        if self._feed is not None:
            self._feed.detach()
        with self._mutex:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            if self._reading:
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
            self._paths.clear()
            self._orphans.clear()

    def _add_tree(self, top: str) -> list[str]:
        """Watch ``top`` and every folder below it; the folders now watched.

        The watch is added *before* a directory is listed, so a subfolder
        created meanwhile is either seen in the listing or announced by an
        ``IN_CREATE`` on the new watch (``mkdir -p a/b/c`` in a burst).
        Raises :class:`WatchLimitReached`.
        """
        assert self._fd is not None
        added: list[str] = []
        stack = [top]
        while stack:
            rel = stack.pop()
            directory = self._root / rel if rel else self._root
            try:
                wd = inotify_add_watch(self._fd, directory, WATCH_MASK)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise WatchLimitReached(exc.errno, str(exc)) from exc
                # ENOENT/ENOTDIR: removed or replaced since it was seen;
                # ELOOP: a symbolic link (IN_DONT_FOLLOW); EACCES: not ours.
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    log.warning("cannot watch %s: %s", directory, exc)
                continue
            self._paths[wd] = rel
            added.append(rel)
            stack.extend(_join(rel, name) for name in _subfolders(directory))
        return added

    def _drop_tree(self, top: str) -> None:
        """Forget (and unwatch) ``top`` and everything below it."""
        assert self._fd is not None
        for wd, path in list(self._paths.items()):
            if _is_within(path, top):
                del self._paths[wd]
                inotify_rm_watch(self._fd, wd)

    def watch_inode(self, folder: str, fd: int) -> None:
        """Report writes into the open file ``fd`` (a sequence-file inode
        we replaced, which has no name in any watched directory) as a
        change of ``folder``.  The watch ends by itself when the last
        descriptor of the unlinked inode closes (``IN_IGNORED``)."""
        with self._mutex:
            if self._fd is None:
                raise OSError(errno.EBADF, "watcher stopped")
            wd = inotify_add_watch(self._fd, Path(f"/proc/self/fd/{fd}"), ORPHAN_MASK)
            self._orphans[wd] = folder

    def drain(self) -> None:
        """Read every queued event now (any thread; never blocks).

        Asked before every command's answer from memory, mostly when
        nothing is queued: ``poll`` with no timeout says so for half the
        cost of a read that fails with EAGAIN (and no exception).  Nothing
        is missed: the kernel queues an event before the changing syscall
        returns, so a tool that returned before the question has its event
        readable here; the mutex lets a reader on the other thread finish
        reporting what it took from the queue before we look at it."""
        self._read(ask_first=True)

    def _on_readable(self) -> None:
        """Drain the descriptor; called by the event loop, never blocks."""
        self._read()

    def _read(self, ask_first: bool = False) -> None:
        limit = False
        with self._mutex:
            if ask_first and self._fd is not None and not self._queued.poll(0):
                return
            try:
                while self._fd is not None:
                    try:
                        data = os.read(self._fd, _READ_SIZE)
                    except BlockingIOError:
                        return
                    self._handle(data)
            except WatchLimitReached:
                # Stop reading now; the watcher replaces us and stops us later.
                if self._feed is not None:
                    self._feed.detach()
                if self._fd is not None and self._reading and self._loop is not None:
                    self._loop.call_soon_threadsafe(self._loop.remove_reader, self._fd)
                    self._reading = False
                limit = True
        if limit:
            self._to_loop(self._on_limit)

    def _to_loop(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the event loop (now, when we are on it)."""
        if self._loop is None or threading.get_ident() == self._loop_thread:
            fn()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed
                self._loop.call_soon_threadsafe(fn)

    def _handle(self, data: bytes) -> None:
        changed: set[str] = set()
        offset = 0
        while offset < len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size
            name = data[offset : offset + length].rstrip(b"\0")
            offset += length
            if mask & IN_Q_OVERFLOW:
                if self._feed is not None:
                    self._feed.overflowed()
                changed.update(self._resync())
                continue
            self._event(wd, mask, os.fsdecode(name), changed)
        if changed:
            report = self._report
            self._to_loop(lambda: report(changed))

    def _event(self, wd: int, mask: int, name: str, changed: set[str]) -> None:
        orphan = self._orphans.get(wd)
        if orphan is not None:
            if mask & IN_IGNORED:
                del self._orphans[wd]
            elif mask & ORPHAN_MASK:
                changed.add(orphan)
                self._lost(orphan)
            return
        folder = self._paths.get(wd)
        if folder is None:  # a watch we already dropped; IN_IGNORED
            return
        if mask & IN_IGNORED:
            del self._paths[wd]
            self._lost(folder)
            return
        if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
            changed.add(folder)
            self._lost(folder)
            return
        if not mask & IN_ISDIR:
            # A file changed.  At the root that is not a folder (asimap.db,
            # the MH profile): nothing to report.
            if folder != ROOT:
                changed.add(folder)
                if self._feed is not None:
                    self._feed.changed(folder, name, mask)
            return
        if not name or name.startswith("."):
            # Hidden directories are not MH folders (nmh skips them too).
            if folder != ROOT:
                changed.add(folder)
            return
        child = _join(folder, name)
        changed.update((folder, child))
        affected = {child}
        if mask & (IN_DELETE | IN_MOVED_FROM):
            affected.update(p for p in self._paths.values() if _is_within(p, child))
            self._drop_tree(child)
        elif mask & (IN_CREATE | IN_MOVED_TO):
            affected.update(self._add_tree(child))
        changed.update(affected)
        for path in affected:
            self._lost(path)

    def _lost(self, folder: str) -> None:
        if self._feed is not None:
            self._feed.lost(folder)

    def _resync(self) -> list[str]:
        """After ``IN_Q_OVERFLOW`` anything may have happened: rebuild the
        watch set from the disk and report every folder, old and new."""
        assert self._fd is not None
        log.warning("MH watcher for %s: inotify queue overflowed", self._root)
        before = dict(self._paths)
        self._paths.clear()
        after = self._add_tree(ROOT)
        for wd in before.keys() - self._paths.keys():
            inotify_rm_watch(self._fd, wd)
        return [*before.values(), *after]


def _subfolders(directory: Path, nlink: int | None = None) -> list[str]:
    """Names of the MH folders directly in ``directory``: real directories
    (no symbolic links) whose names do not start with a dot.

    A directory's link count is 2 plus its number of subdirectories on
    ext4, xfs and tmpfs, so 2 means "no subfolders" and the listing, which
    costs a read of every message name in a big folder, is skipped (btrfs
    always says 1, and is listed).
    """
    try:
        if nlink is None:
            nlink = os.lstat(directory).st_nlink
        if nlink == 2:
            return []
        with os.scandir(directory) as entries:
            return [
                entry.name
                for entry in entries
                if not entry.name.startswith(".")
                and entry.is_dir(follow_symlinks=False)
            ]
    except OSError:  # removed or unreadable meanwhile
        return []


# -- poll backend ----------------------------------------------------------------


@dataclass(frozen=True)
class _DirState:
    """What one folder looks like to the poller.

    ``signature`` covers the directory (inode, mtime: any file created,
    unlinked or renamed in it) and ``.mh_sequences`` (inode, mtime, size:
    rewritten in place or replaced).  ``subfolders`` is re-listed only when
    the directory's mtime moved.
    """

    signature: tuple[int, ...]
    subfolders: tuple[str, ...]


def _scan(root: Path, previous: dict[str, _DirState]) -> dict[str, _DirState]:
    """Stat every folder; list only those whose directory changed."""
    result: dict[str, _DirState] = {}
    stack = [ROOT]
    while stack:
        rel = stack.pop()
        directory = root / rel if rel else root
        try:
            st = os.lstat(directory)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        signature: tuple[int, ...] = (st.st_ino, st.st_mtime_ns)
        try:
            seq = os.stat(directory / SEQUENCES_FILE)
            signature += (seq.st_ino, seq.st_mtime_ns, seq.st_size)
        except OSError:
            pass
        old = previous.get(rel)
        if old is not None and old.signature[:2] == signature[:2]:
            subfolders = old.subfolders
        else:
            subfolders = tuple(_subfolders(directory, st.st_nlink))
        result[rel] = _DirState(signature, subfolders)
        stack.extend(_join(rel, name) for name in subfolders)
    return result


def _diff(old: dict[str, _DirState], new: dict[str, _DirState]) -> set[str]:
    """Folders that appeared or vanished (with their parents) or changed.
    The root's own signature moves with every root-level file (asimap.db);
    it is reported only as the parent of a top-level folder that came or
    went."""
    changed: set[str] = set()
    for path in old.keys() ^ new.keys():
        changed.update((path, parent_of(path)))
    for path in old.keys() & new.keys():
        if path != ROOT and old[path].signature != new[path].signature:
            changed.add(path)
    return changed


class _PollSource:
    """Stats the tree every ``interval`` in a worker thread (design.md section
    3: blocking work stays off the event loop)."""

    backend = "poll"
    coalesced = True

    def __init__(self, root: Path, interval: float) -> None:
        self._root = root
        self._interval = interval
        self._state = _scan(root, {})
        self._task: asyncio.Task[None] | None = None

    def folders(self) -> list[str]:
        return [path for path in self._state if path != ROOT]

    def start(self, report: Report, on_limit: Callable[[], None]) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(report))

    async def _run(self, report: Report) -> None:
        while True:
            await asyncio.sleep(self._interval)
            new = await asyncio.to_thread(_scan, self._root, self._state)
            changed = _diff(self._state, new)
            self._state = new
            if changed:
                report(changed)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
