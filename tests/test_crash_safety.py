"""SIGKILL of the worker, the main process and a delivery at random points
of every write path; after each kill, nothing acknowledged is lost or
doubled, nothing partial shows, no UID is reused, IMAP and nmh agree on
flags (see ``tests/crash_harness.py``).  A few dozen kills here; hundreds
with ``scripts/crash``."""

from __future__ import annotations

import os

import pytest

from conftest import require_tool
from crash_harness import OPERATIONS, crash_run
from worker_harness import IS_ROOT


def test_kills_during_every_write_path_lose_nothing() -> None:
    if not IS_ROOT:
        if os.environ.get("CI"):
            pytest.fail("the crash test runs as root under CI")
        pytest.skip("needs root: the worker drops to the mail root's owner")
    for tool in ("scan", "pick", "mark"):
        require_tool(f"/usr/bin/mh/{tool}")
    seed = int(os.environ.get("ASIMAP_CRASH_SEED", "12"))
    with crash_run(seed, main_every=6) as run:
        kills = int(os.environ.get("ASIMAP_CRASH_KILLS", "33"))
        stats = run.run(
            kills=kills,
            enough=lambda s: sum(s.cut_short.values()) >= 5,
            max_kills=3 * kills,
        )
    assert stats.rounds >= len(OPERATIONS) * 3
    assert stats.kills.get("main", 0) >= 3
    assert stats.kills.get("deliver", 0) >= 1
    # The kills landed both before and after the answer.
    assert sum(stats.cut_short.values()) >= 5, stats
    assert sum(stats.acknowledged.values()) >= 5, stats
