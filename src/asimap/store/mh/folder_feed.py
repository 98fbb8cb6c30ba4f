"""Folders created or removed by MH tools, published on the change feed.

IMAP CREATE/DELETE/RENAME publish their own events (:mod:`store`), but an
nmh ``folder -create +x``, ``rmf +x`` or a plain ``mkdir`` happens behind
our back; the file watcher only says "something changed in these
directories".  While someone follows the account (NOTIFY MailboxName, RFC
5465 section 5.4), :class:`FolderTracker` keeps the set of folder names and
compares it with the disk whenever a watcher batch names a folder it does
not know or one whose directory is gone; the difference is published as
``CREATED`` / ``DELETED`` events.

Our own CREATE/DELETE/RENAME run inside :meth:`FolderTracker.own_change`,
which holds the same lock as the comparison and refreshes the set before
releasing it: the watcher batch caused by our own ``mkdir`` then finds
nothing new, so no event is published twice (or with the wrong origin).

Nobody listening, nothing kept: the set is dropped and rebuilt by
:meth:`FolderTracker.prepare` when the next subscriber arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from asimap.store.feed import FeedKind
from asimap.store.mh.paths import name_of_relpath

if TYPE_CHECKING:
    from asimap.store.mh.store import MHStore


class FolderTracker:
    """See the module docstring."""

    def __init__(self, store: MHStore) -> None:
        self._store = store
        self._names: set[str] | None = None
        self._lock = asyncio.Lock()

    async def prepare(self) -> None:
        """Take the folder set before a new subscriber starts listening."""
        async with self._lock:
            if self._names is None or not self._store.feed.active:
                self._names = await self._read()

    @contextlib.asynccontextmanager
    async def own_change(self) -> AsyncIterator[None]:
        """Wrap a CREATE/DELETE/RENAME made through the store."""
        async with self._lock:
            try:
                yield
            finally:
                if self._names is not None:
                    if self._store.feed.active:
                        self._names = await self._read()
                    else:
                        self._names = None

    async def after_batch(self, relpaths: Iterable[str]) -> None:
        """A watcher batch arrived: publish folders made or removed."""
        store = self._store
        async with self._lock:
            known = self._names
            if known is None:
                return
            if not store.feed.active:
                self._names = None
                return
            suspicious = False
            for relpath in relpaths:
                relpath = relpath.strip("/")
                if not relpath:
                    continue
                name = name_of_relpath(relpath)
                if name is None:
                    continue  # a message number or a hidden directory
                if name not in known or not (store.root / relpath).is_dir():
                    suspicious = True
                    break
            if not suspicious:
                return
            now = await self._read()
            self._names = now
        for name in sorted(now - known):
            store.feed.publish(FeedKind.CREATED, name)
        for name in sorted(known - now):
            store.feed.publish(FeedKind.DELETED, name)

    async def _read(self) -> set[str]:
        core = self._store.core
        return await self._store.call(core.folder_names)
