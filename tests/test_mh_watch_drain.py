"""The question "did nmh change this folder?" costs no failing read.

Before every answer from memory (store/mh/mirror.py) the inotify
descriptor is drained, so that an nmh tool that returned just before is
seen (tests/test_mh_mirror.py holds that guarantee).  On an idle account
nothing is queued, and a read would fail with EAGAIN every time; the
watcher asks ``poll`` first.  Counted here: reads of the descriptor that
fail, while a settled folder answers ``changes_since`` from memory, and
that a queued event is still read at the very next question.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from asimap.store.base import StoreMode
from asimap.store.mh import MHStore
from test_store_mh_nmh import Nmh, message, nmh, store

__all__ = ["nmh", "store"]  # fixtures, imported for pytest


@pytest.fixture
def failing_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every ``os.read`` that raised EAGAIN (any thread), by descriptor."""
    failed: list[int] = []
    original = os.read

    def read(fd: int, size: int) -> bytes:
        try:
            return original(fd, size)
        except BlockingIOError:
            failed.append(fd)
            raise

    monkeypatch.setattr(os, "read", read)
    yield failed


async def test_idle_questions_read_nothing(
    store: MHStore, nmh: Nmh, failing_reads: list[int]
) -> None:
    inbox = await store.mailbox("INBOX")
    uid = await inbox.append(message("one"))
    await inbox.store([uid], StoreMode.ADD, ["\\Seen"])
    modseq = (await inbox.changes_since(0)).highestmodseq
    answers: list[Any] = []
    failing_reads.clear()
    for _ in range(50):
        answers.append(await inbox.changes_since(modseq))
    assert all(a.changed == () for a in answers)
    assert failing_reads == [], f"{len(failing_reads)} reads failed with EAGAIN"
    # Still read when something is queued: the mark that returned is seen.
    nmh("mark", "+inbox", "all", "-sequence", "flagged", "-add")
    changes = await inbox.changes_since(modseq)
    assert [(s.uid, "\\Flagged" in s.flags) for s in changes.changed] == [(uid, True)]
