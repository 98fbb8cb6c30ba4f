"""Memoising parsers of header values, for short values only.

The same ``Content-Type: text/plain; charset=us-ascii`` recurs in nearly
every message of a folder, so its parse is worth keeping; a value of a
megabyte is never repeated and must not be kept (4096 of them would be
gigabytes held for the life of the process).  :class:`ShortMemo` keeps the
results for values up to :data:`~asimap.message.limits.MAX_MEMO_TEXT`
characters and computes the others each time.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, update_wrapper
from typing import Generic, TypeVar

from asimap.message.limits import MAX_MEMO_TEXT

_R = TypeVar("_R")


class ShortMemo(Generic[_R]):
    """``func`` memoised (LRU, ``maxsize`` entries) for short arguments.

    ``__wrapped__`` is the undecorated function and ``cache_clear``
    empties the memo, as with :func:`functools.lru_cache`.
    """

    def __init__(self, func: Callable[[str | None], _R], maxsize: int = 4096) -> None:
        self.__wrapped__ = func
        self._cached = lru_cache(maxsize=maxsize)(func)
        update_wrapper(self, func)

    def __call__(self, text: str | None) -> _R:
        if text is not None and len(text) > MAX_MEMO_TEXT:
            return self.__wrapped__(text)
        return self._cached(text)

    def cache_clear(self) -> None:
        self._cached.cache_clear()
