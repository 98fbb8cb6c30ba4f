"""``asimapd`` whose main process keeps its cyclic garbage, for tests only.

The main process must free a connection by reference counting alone: a
reference cycle left behind waits for the cyclic collector, and a full
collection with thousands of connections stops every one of them for
seconds.  This launcher is ``asimap.cli.main`` with
``gc.DEBUG_SAVEALL`` set in the main process once the zygote is forked
(so workers are not affected): what the collector finds unreachable stays
in ``gc.garbage`` instead of being freed.  A test asks for a report by
creating ``<ASIMAP_GC_PROBE>/collect``; the launcher collects, writes
``<ASIMAP_GC_PROBE>/garbage.json`` (``garbage``: type name -> count of
the objects found unreachable; ``tracked``: the same for every object the
collector still follows, frozen ones excluded) and removes the request.
Likewise ``collect-worker`` makes every worker write what its collector
follows to ``worker-<pid>.json`` (the folder must be writable by the
workers' users).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

from asimap.cli import main as cli_main
from asimap.imap import server
from asimap.worker.child import Worker

_serve = server.serve
_worker_run = Worker.run


async def _probe(folder: Path) -> None:
    request = folder / "collect"
    while True:
        await asyncio.sleep(0.05)
        if not request.exists():
            continue
        gc.collect()
        counts = collections.Counter(
            f"{type(obj).__module__}.{type(obj).__qualname__}" for obj in gc.garbage
        )
        # Free what was found for good: emptying the list is not enough,
        # the cycles would be found (and counted) again next time.
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        tracked = collections.Counter(
            f"{type(obj).__module__}.{type(obj).__qualname__}"
            for obj in gc.get_objects()
        )
        temp = folder / "garbage.json.new"
        temp.write_text(json.dumps({"garbage": counts, "tracked": tracked}))
        os.replace(temp, folder / "garbage.json")
        request.unlink()


async def _serve_saving_garbage(*args: Any, **kwargs: Any) -> None:
    gc.set_debug(gc.DEBUG_SAVEALL)
    prober = asyncio.get_running_loop().create_task(
        _probe(Path(os.environ["ASIMAP_GC_PROBE"]))
    )
    try:
        await _serve(*args, **kwargs)
    finally:
        prober.cancel()


async def _worker_probe(folder: Path) -> None:
    """In a worker: on ``collect-worker``, write ``worker-<pid>.json`` once
    (type name -> count of the objects the collector follows)."""
    request = folder / "collect-worker"
    report = folder / f"worker-{os.getpid()}.json"
    while True:
        await asyncio.sleep(0.05)
        if not request.exists() or report.exists():
            continue
        gc.collect()
        tracked = collections.Counter(
            f"{type(obj).__module__}.{type(obj).__qualname__}"
            for obj in gc.get_objects()
        )
        temp = folder / f"worker-{os.getpid()}.new"
        temp.write_text(json.dumps(tracked))
        os.replace(temp, report)


async def _worker_run_probed(self: Worker) -> int:
    probe = asyncio.get_running_loop().create_task(
        _worker_probe(Path(os.environ["ASIMAP_GC_PROBE"]))
    )
    try:
        return await _worker_run(self)
    finally:
        probe.cancel()


if __name__ == "__main__":
    # Before the zygote forks: workers are copies of this process.
    Worker.run = _worker_run_probed  # type: ignore[method-assign]
    server.serve = _serve_saving_garbage
    sys.exit(cli_main())
