"""SORT and THREAD on a 100,000-message folder: asimap (MH) vs Dovecot.

A benchmark, not a test: SORT and THREAD on a 100,000-message folder,
asimap and Dovecot side by side; design.md section 4 rule 5 says how:
both servers in one run, on loopback, reported as ratios.  For each
server in turn (so each has the cores to itself), on a fresh hard-linked
copy of the :mod:`bench.mh_large_data` folder (the corpus repeated, so
every Message-ID occurs about 50 times -- a harsh case for threading):

* SELECT INBOX (the first one: asimap builds its database, Dovecot its
  index), reported for context;
* then each of :data:`COMMANDS` once right after the SELECT ("first":
  nothing about header fields is cached yet on either side -- asimap's
  summaries and Dovecot's cache file fill on first use) and ``--repeat``
  more times ("warm", median reported).

Both answers are compared: ``same`` says whether asimap's untagged response
is byte-identical to Dovecot's (the algorithms are deterministic, so a
difference is either a bug or a documented disagreement).

    python -m bench.sort_thread                    # 100,000 messages
    python -m bench.sort_thread --messages 10000 --repeat 2

Not a test: pytest never runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bench.asimap_server import AsimapServer
from bench.dovecot import NOBODY, DovecotServer
from bench.imapload.client import ImapError
from bench.imapload.runner import Credentials
from bench.mh_large import (
    ASIMAP_ITERATIONS,
    PASSWORD,
    Timings,
    _fmt,
    _git_commit,
    _ratio,
    login,
    machine,
    timed,
)
from bench.mh_large_data import DataSet, build, corpus_messages, link_tree

SELECT_OP = "SELECT INBOX (first)"

#: The commands measured, in run order.
COMMANDS = (
    "UID SORT (DATE) UTF-8 ALL",
    "UID SORT (SUBJECT) UTF-8 ALL",
    "UID SORT (FROM) UTF-8 ALL",
    "UID SORT (REVERSE ARRIVAL) UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 ALL",
    "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
    "UID THREAD REFS UTF-8 ALL",
)


@dataclass
class Answers:
    """Per command: a digest of the untagged answer and its size."""

    digests: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


async def measure(
    host: str, port: int, args: argparse.Namespace, t: Timings, answers: Answers
) -> None:
    client, _ = await login(host, port, "big1", args.timeout)
    await timed(t, SELECT_OP, lambda: client.command(b"SELECT INBOX"))
    for command in COMMANDS:
        for _ in range(1 + args.repeat):
            result = await timed(t, command, partial(client.command, command.encode()))
        text = b"\n".join(
            r.text
            for r in result.untagged
            if r.text.startswith((b"* SORT", b"* THREAD"))
        )
        answers.digests[command] = hashlib.sha256(text).hexdigest()[:12]
        answers.sizes[command] = len(text)
    await client.logout()


def run_server(
    name: str, args: argparse.Namespace, data: DataSet
) -> tuple[Timings, Answers]:
    t, answers = Timings(name), Answers()
    users = [Credentials("big1", PASSWORD)]
    work = Path(tempfile.mkdtemp(prefix=f"sort-thread-{name}-", dir=args.cache))
    try:
        print(f"{name}: copying the folder ...", file=sys.stderr)
        kind = "mh" if name == "asimap" else "maildir"
        owner = NOBODY if kind == "maildir" and os.geteuid() == 0 else None
        copy = work / kind / "big1"
        link_tree(data.mh if kind == "mh" else data.maildir, copy, owner)
        if name == "asimap":
            server: AsimapServer | DovecotServer = AsimapServer(
                users,
                store="mh",
                hash_iterations=ASIMAP_ITERATIONS,
                maildirs={"big1": copy},
            )
        else:
            server = DovecotServer(users)
        server.start()
        try:
            if isinstance(server, DovecotServer):
                t.version = f"Dovecot {server.version}"
                assert server.root is not None
                home = server.root / "mail" / "big1"
                home.rmdir()
                copy.rename(home)
            else:
                t.version = f"asimap {_git_commit()}"
            print(f"{name}: measuring ...", file=sys.stderr)
            asyncio.run(measure(server.host, server.port, args, t, answers))
        finally:
            server.stop()
    except (ImapError, OSError, RuntimeError, TimeoutError) as exc:
        # Report the other server even if this one fails.
        t.problem = f"{type(exc).__name__}: {exc}"
        print(f"{name}: FAILED {t.problem}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return t, answers


def markdown(
    results: Sequence[tuple[Timings, Answers]], args: argparse.Namespace
) -> str:
    by = {t.server: (t, a) for t, a in results}
    a, a_ans = by.get("asimap", (Timings("asimap"), Answers()))
    d, d_ans = by.get("dovecot", (Timings("dovecot"), Answers()))

    def first(t: Timings, op: str) -> float | None:
        runs = t.runs.get(op)
        return runs[0] if runs else None

    def warm(t: Timings, op: str) -> float | None:
        runs = t.runs.get(op, [])[1:]
        return statistics.median(runs) if runs else None

    lines = [
        f"Folder of {args.messages:,} messages (the corpus repeated);"
        f" first run after SELECT, then median of {args.repeat} warm runs.",
        f"{a.version or 'asimap'} (MH) vs {d.version or 'Dovecot'} (Maildir);"
        f" {machine()}",
        "",
        "| command | asimap first | Dovecot first | ratio | asimap warm"
        " | Dovecot warm | ratio (warm) | same answer |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines.append(
        f"| {SELECT_OP} | {_fmt(first(a, SELECT_OP))} | {_fmt(first(d, SELECT_OP))}"
        f" | {_ratio(first(a, SELECT_OP), first(d, SELECT_OP))} | | | | |"
    )
    for op in COMMANDS:
        same = a_ans.digests.get(op)
        verdict = (
            "-"
            if same is None or op not in d_ans.digests
            else ("yes" if same == d_ans.digests[op] else "no")
        )
        lines.append(
            f"| `{op}` | {_fmt(first(a, op))} | {_fmt(first(d, op))} |"
            f" {_ratio(first(a, op), first(d, op))} | {_fmt(warm(a, op))} |"
            f" {_fmt(warm(d, op))} | {_ratio(warm(a, op), warm(d, op))} |"
            f" {verdict} |"
        )
    for t, _ in results:
        if t.problem:
            lines.append(f"\n{t.server} failed: {t.problem}")
    lines.append("")
    for t, ans in results:
        for op, runs in t.runs.items():
            shown = ", ".join(_fmt(r) for r in runs)
            size = ans.sizes.get(op)
            suffix = f" ({size:,} bytes)" if size is not None else ""
            lines.append(f"- {t.server} {op}: {shown}{suffix}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.sort_thread", description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--servers", default="asimap,dovecot")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "asimap-bench-mh-large",
        help="where the data set is built once (shared with bench.mh_large)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print("building or reusing the data set ...", file=sys.stderr)
    data = build(args.cache, "folder", 1, args.messages, corpus_messages())
    results = [
        run_server(name.strip(), args, data)
        for name in args.servers.split(",")
        if name.strip()
    ]
    print(markdown(results, args))
    print(f"\n(total {time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0 if all(not t.problem for t, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
