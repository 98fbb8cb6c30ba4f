"""Idle CPU of the MH folder watcher on a 2,000-folder account.

Why: the requirement is near-zero idle CPU for large MH accounts, i.e. file
change notification instead of stat-ing every folder each second.  This
builds an account (``--folders`` folders, two levels deep, a few messages and
a ``.mh_sequences`` in each), starts a watcher whose batches are consumed as
the MH store will, measures this process's CPU time over ``--seconds`` of
idleness, and then checks that the watcher is alive by timing one change.
Both backends are measured (inotify, then poll) in one run, so the figure
for inotify can be read against the polling it replaces.

Run from the repository root: ``python -m bench.mh_idle_cpu``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from asimap.store.mh.watch import FolderWatcher, make_inotify_watcher, make_poll_watcher


def build_account(root: Path, folders: int, messages: int) -> int:
    """``folders`` folders as ``fNN/sNNN`` (plus the top-level ones), each
    with ``messages`` small messages; the number of folders made."""
    per_top = 50
    made = 0
    for index in range(folders):
        top, sub = divmod(index, per_top)
        folder = root / f"f{top:03}" / f"s{sub:03}"
        folder.mkdir(parents=True)
        for number in range(1, messages + 1):
            (folder / str(number)).write_bytes(b"Subject: idle\n\nbody\n")
        (folder / ".mh_sequences").write_text(f"unseen: 1-{messages}\n")
        made += 1
    return made + (folders + per_top - 1) // per_top


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def measure(
    name: str, make: Callable[[Path], FolderWatcher], root: Path, seconds: float
) -> None:
    fds_before = open_fds()
    started = time.perf_counter()
    watcher = make(root)
    setup = time.perf_counter() - started
    fds = open_fds() - fds_before
    batches: list[tuple[float, set[str]]] = []
    arrived = asyncio.Event()

    async def consume() -> None:
        async for batch in watcher.changes():
            batches.append((time.perf_counter(), batch))
            arrived.set()

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.5)  # let start-up settle before measuring
    cpu_before = time.process_time()
    await asyncio.sleep(seconds)
    idle_cpu = time.process_time() - cpu_before

    arrived.clear()
    target = sorted(p for p in root.glob("f*/s*"))[-1]
    changed_at = time.perf_counter()
    (target / f"{name}-wake").write_bytes(b"Subject: wake up\n\n")
    await asyncio.wait_for(arrived.wait(), 10)
    latency = batches[-1][0] - changed_at
    await watcher.close()
    await task
    print(
        f"{name:8} setup {setup * 1000:7.1f} ms  extra fds {fds:2}  "
        f"idle CPU {idle_cpu * 1000:7.1f} ms over {seconds:.0f} s "
        f"({idle_cpu / seconds * 100:.3f} %)  "
        f"change seen after {latency * 1000:6.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folders", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mh-idle-") as directory:
        root = Path(directory)
        count = build_account(root, args.folders, args.messages)
        print(f"account: {count} folders, {args.messages} messages each")
        await measure("inotify", make_inotify_watcher, root, args.seconds)
        await measure(
            "poll",
            lambda r: make_poll_watcher(r, poll_interval=args.poll_interval),
            root,
            args.seconds,
        )


if __name__ == "__main__":
    asyncio.run(main())
