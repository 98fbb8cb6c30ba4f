"""Cold message-summary build cost, in CPU milliseconds per message.

The first header SEARCH, SORT or THREAD of a big MH folder builds a
:class:`asimap.store.base.MessageSummary` for every message (and the MH
store caches it in SQLite).  This measures that cost in-process, without a
server, so that a change to the message model or to ``summarize`` can be
judged in seconds rather than in a 15-minute ``bench.sort_thread`` run:

* ``corpus``: the 1,990 corpus messages with CRLF line ends, as APPEND
  stores them;
* ``mh``: the same messages with LF line ends, as ``bench.mh_large_data``
  writes them to disk (what a migrated MH folder holds);
* ``store``: the MH store's own path -- ``Core.summaries`` on a fresh MH
  folder of ``--store-messages`` messages, file reads and SQLite inserts
  included.

``--profile`` prints the top of a cProfile of the ``corpus`` pass.

    python -m bench.summary_build
    python -m bench.summary_build --repeat 5 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from asimap.message.envelope import _parsed_list
from asimap.message.model import Message
from asimap.message.params import parse_content_type, parse_disposition
from asimap.message.wire import clear_memos
from asimap.store.base import MessageInfo, summarize
from bench.imapload.corpus import DEFAULT_CORPUS, load_corpus

_MOMENT = datetime(2020, 1, 1, tzinfo=UTC)


def forget_memos() -> None:
    """Empty the message model's memos (parsed address lists and content
    types, encoded strings), so that every run starts as cold as the first
    summary build of a server process."""
    _parsed_list.cache_clear()
    parse_content_type.cache_clear()
    parse_disposition.cache_clear()
    clear_memos()


def summarize_all(messages: Sequence[bytes]) -> None:
    """Build (and drop) the summary of every message, memos cold."""
    forget_memos()
    for uid, raw in enumerate(messages, start=1):
        info = MessageInfo(uid=uid, internaldate=_MOMENT, size=len(raw))
        summarize(info, Message(raw))


def _time(action: Callable[[], None], repeat: int) -> list[float]:
    """CPU seconds of each of ``repeat`` runs of ``action``.

    CPU time rather than wall-clock: the machine is shared, and what a
    change to the code saves is CPU; the work is CPU-bound either way.
    """
    out: list[float] = []
    for _ in range(repeat):
        started = time.process_time()
        action()
        out.append(time.process_time() - started)
    return out


async def _store_pass(messages: Sequence[bytes]) -> float:
    """Seconds for the MH store to summarise a fresh folder of ``messages``
    (files written first, untimed; the timed part is ``summaries``)."""
    from asimap.store.mh import MHStore  # heavy import, only when used
    from asimap.store.mh.profile import Profile

    with tempfile.TemporaryDirectory(prefix="asimap-summary-bench-") as tmp:
        inbox = Path(tmp) / "inbox"
        inbox.mkdir()
        for number, raw in enumerate(messages, start=1):
            (inbox / str(number)).write_bytes(raw)
        store = await MHStore.open(
            Path(tmp), profile=Profile(path=None, unseen=("unseen",))
        )
        try:
            mailbox = await store.mailbox("INBOX")
            uids = [state.uid for state in await mailbox.states()]
            forget_memos()
            started = time.process_time()  # every thread of the process
            await mailbox.summaries(uids)
            return time.process_time() - started
        finally:
            await store.close()


def _report(label: str, seconds: Sequence[float], count: int) -> None:
    per = [1000 * s / count for s in seconds]
    print(
        f"{label:<8} {count:>6} msgs  median {statistics.median(per):6.3f} CPU ms/msg"
        f"  min {min(per):6.3f}  max {max(per):6.3f}  ({len(per)} runs)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store-messages", type=int, default=1990)
    parser.add_argument("--no-store", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    crlf = load_corpus(args.corpus)
    lf = [m.replace(b"\r\n", b"\n") for m in crlf]
    summarize_all(crlf[:50])  # warm imports and codec lookups
    _report("corpus", _time(lambda: summarize_all(crlf), args.repeat), len(crlf))
    _report("mh", _time(lambda: summarize_all(lf), args.repeat), len(lf))
    if not args.no_store:
        sample = [lf[i % len(lf)] for i in range(args.store_messages)]
        runs = [asyncio.run(_store_pass(sample)) for _ in range(args.repeat)]
        _report("store", runs, len(sample))
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(summarize_all, crlf)
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
