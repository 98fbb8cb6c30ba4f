"""A 100,000-message folder and a 1,000-folder account: asimap (MH) vs Dovecot.

design.md section 8 sets the targets (a 100,000-message folder within 1.5x of
Dovecot; the first login of a 1,000-folder, 100,000-message account under
3 s); rule 5 says how: both servers in the same run, as ratios.  This
measures, for each server in turn (so each has the cores to itself), with
the load generator's raw client (no client library overhead, STARTTLS as
real clients use it):

* on one folder of ``--messages`` messages: the first SELECT (cold: asimap
  has no database yet, Dovecot no index; ``--cold-rounds`` fresh copies),
  then on one copy the second SELECT (warm), ``UID FETCH 1:* (UID FLAGS)``,
  ``UID FETCH <newest 500> (ENVELOPE)``, ``UID SEARCH FROM "<sender>"`` and
  ``UID SEARCH TEXT "<word>"``, each ``--repeat`` times;
* the first login of a fresh account of ``--folders`` folders holding
  ``--per-folder`` messages each: TCP connect to the tagged OK of LOGIN,
  ``LIST "" "*"``, then STATUS of every folder, as a client's first sync.

The data (see :mod:`bench.mh_large_data`) is built once under ``--cache``.
Prints a Markdown table with the median of each operation, the first run
of each (caches cold), and asimap/Dovecot ratios (below 1: asimap faster).

    python -m bench.mh_large                 # the issue's sizes
    python -m bench.mh_large --messages 10000 --folders 100 --repeat 2

Not a test: pytest never runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.asimap_server import AsimapServer
from bench.dovecot import NOBODY, DovecotServer
from bench.imapload.client import ImapClient, ImapError, TaggedResult, quote
from bench.imapload.runner import Credentials
from bench.mh_large_data import DataSet, build, corpus_messages, link_tree

PASSWORD = "secret"
#: asimap's password file uses few PBKDF2 iterations: Dovecot's accounts are
#: {PLAIN}, and the benchmark is about mail stores, not password hashing.
ASIMAP_ITERATIONS = 1000
_UIDNEXT = re.compile(rb"UIDNEXT (\d+)")
_LIST_NAME = re.compile(rb'^\* LIST \([^)]*\) (?:"[^"]*"|NIL) (.+)$')

#: Operations in table order.
FOLDER_OPS = (
    "SELECT (first, cold)",
    "SELECT (second, warm)",
    "UID FETCH 1:* (UID FLAGS)",
    "UID FETCH newest 500 (ENVELOPE)",
    "UID SEARCH FROM",
    "UID SEARCH TEXT",
)
LOGIN_OPS = ("connect + LOGIN", 'LIST "" "*"', "STATUS of every folder")


@dataclass
class Timings:
    """Seconds per operation, in run order, for one server."""

    server: str
    version: str = ""
    runs: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    problem: str = ""

    def add(self, op: str, seconds: float) -> None:
        self.runs.setdefault(op, []).append(seconds)


async def timed(
    timings: Timings, op: str, action: Callable[[], Awaitable[TaggedResult]]
) -> TaggedResult:
    """Run one command, record its wall time, insist on OK."""
    started = time.perf_counter()
    result = await action()
    timings.add(op, time.perf_counter() - started)
    if not result.ok:
        raise ImapError(f"{op}: {result.status} {result.text!r}")
    return result


async def login(
    host: str, port: int, user: str, timeout: float
) -> tuple[ImapClient, float]:
    """Connect (STARTTLS), LOGIN; the client and the seconds it took."""
    client = ImapClient(timeout=timeout)
    started = time.perf_counter()
    await client.connect(host, port, security="starttls")
    result = await client.login(user, PASSWORD)
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise ImapError(f"LOGIN {user}: {result.text!r}")
    return client, elapsed


def _search_count(result: TaggedResult) -> int:
    for response in result.untagged:
        if response.text.upper().startswith(b"* SEARCH"):
            return len(response.text.split()) - 2
    return 0


async def measure_folder(
    host: str, port: int, users: Sequence[str], args: argparse.Namespace, t: Timings
) -> None:
    """Cold SELECT on each fresh copy, then everything else on the first."""
    for user in reversed(users):  # the first user ends up logged in last
        client, _ = await login(host, port, user, args.timeout)
        selected = await timed(
            t, FOLDER_OPS[0], partial(client.command, b"SELECT INBOX")
        )
        if user != users[0]:
            await client.logout()
    uidnext = next(
        int(m[1]) for r in selected.untagged if (m := _UIDNEXT.search(r.text))
    )
    newest = f"{max(1, uidnext - 500)}:{uidnext - 1}".encode()
    sender, word = quote(args.sender), quote(args.word)
    commands = (
        (FOLDER_OPS[1], b"SELECT INBOX"),
        (FOLDER_OPS[2], b"UID FETCH 1:* (UID FLAGS)"),
        (FOLDER_OPS[3], b"UID FETCH " + newest + b" (ENVELOPE)"),
        (FOLDER_OPS[4], b"UID SEARCH FROM " + sender),
        (FOLDER_OPS[5], b"UID SEARCH TEXT " + word),
    )
    for op, line in commands:
        repeat = args.text_repeat if op == FOLDER_OPS[5] else args.repeat
        for _ in range(repeat):
            result = await timed(t, op, partial(client.command, line))
            if b"SEARCH" in line:
                t.counts[op] = _search_count(result)
            elif b"FETCH" in line:
                t.counts[op] = len(result.untagged)
    await client.logout()


async def measure_first_login(
    host: str, port: int, users: Sequence[str], args: argparse.Namespace, t: Timings
) -> None:
    """Per fresh account: LOGIN, LIST, STATUS of every folder."""
    for user in users:
        client, seconds = await login(host, port, user, args.timeout)
        t.add(LOGIN_OPS[0], seconds)
        listed = await timed(t, LOGIN_OPS[1], partial(client.command, b'LIST "" "*"'))
        names = [
            m[1]
            for r in listed.untagged
            if (m := _LIST_NAME.match(r.text)) and b"\\Noselect" not in r.text
        ]
        t.counts[LOGIN_OPS[1]] = len(names)
        started = time.perf_counter()
        for name in names:
            result = await client.command(
                b"STATUS " + name + b" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"
            )
            if not result.ok:
                raise ImapError(f"STATUS {name!r}: {result.text!r}")
        t.add(LOGIN_OPS[2], time.perf_counter() - started)
        await client.logout()


@dataclass(frozen=True, slots=True)
class Plan:
    """Which copies each server gets: user name -> data set root."""

    big_users: tuple[str, ...]
    many_users: tuple[str, ...]


def plan(args: argparse.Namespace) -> Plan:
    return Plan(
        tuple(f"big{i}" for i in range(1, args.cold_rounds + 1)),
        tuple(f"many{i}" for i in range(1, args.cold_rounds + 1)),
    )


def copies(
    work: Path, p: Plan, big: DataSet, many: DataSet, kind: str
) -> dict[str, Path]:
    """Fresh hard-linked copies for every user of the plan."""
    out: dict[str, Path] = {}
    owner = NOBODY if kind == "maildir" and os.geteuid() == 0 else None
    for users, data in ((p.big_users, big), (p.many_users, many)):
        for user in users:
            source = data.mh if kind == "mh" else data.maildir
            target = work / kind / user
            link_tree(source, target, owner)
            out[user] = target
    return out


def run_server(
    name: str, args: argparse.Namespace, big: DataSet, many: DataSet
) -> Timings:
    p = plan(args)
    users = [Credentials(u, PASSWORD) for u in (*p.big_users, *p.many_users)]
    t = Timings(name)
    work = Path(tempfile.mkdtemp(prefix=f"mh-large-{name}-", dir=args.cache))
    try:
        print(f"{name}: copying the data sets ...", file=sys.stderr)
        kind = "mh" if name == "asimap" else "maildir"
        paths = copies(work, p, big, many, kind)
        if name == "asimap":
            server: AsimapServer | DovecotServer = AsimapServer(
                users, store="mh", hash_iterations=ASIMAP_ITERATIONS, maildirs=paths
            )
        else:
            server = DovecotServer(users)
        server.start()
        try:
            if isinstance(server, DovecotServer):
                t.version = f"Dovecot {server.version}"
                assert server.root is not None
                # Dovecot's home is <root>/mail/<user>: put the copy there.
                for user, path in paths.items():
                    home = server.root / "mail" / user
                    home.rmdir()
                    path.rename(home)
            else:
                t.version = f"asimap {_git_commit()}"
            print(f"{name}: measuring ...", file=sys.stderr)
            host, port = server.host, server.port

            async def both() -> None:
                await measure_folder(host, port, p.big_users, args, t)
                await measure_first_login(host, port, p.many_users, args, t)

            asyncio.run(both())
        finally:
            server.stop()
    except Exception as exc:  # report the other server even if this one fails
        t.problem = f"{type(exc).__name__}: {exc}"
        print(f"{name}: FAILED {t.problem}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return t


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _ratio(a: float | None, d: float | None) -> str:
    return "-" if a is None or not d else f"{a / d:.2f}"


def markdown(results: Sequence[Timings], args: argparse.Namespace) -> str:
    by = {t.server: t for t in results}
    a, d = by.get("asimap", Timings("asimap")), by.get("dovecot", Timings("dovecot"))

    def med(t: Timings, op: str) -> float | None:
        runs = t.runs.get(op)
        return statistics.median(runs) if runs else None

    def first(t: Timings, op: str) -> float | None:
        runs = t.runs.get(op)
        return runs[0] if runs else None

    lines = [
        f"Folder of {args.messages:,} messages; account of {args.folders:,} folders"
        f" x {args.per_folder} messages; {args.cold_rounds} cold copies,"
        f" {args.repeat} repeats (TEXT {args.text_repeat});"
        f" SEARCH FROM {args.sender!r}, TEXT {args.word!r}.",
        f"{a.version or 'asimap'} vs {d.version or 'Dovecot'}; {machine()}",
        "",
        "| operation | asimap median | Dovecot median | ratio | asimap first"
        " | Dovecot first | ratio (first) | results a/d |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op in (*FOLDER_OPS, *LOGIN_OPS):
        counts = f"{a.counts.get(op, '-')}/{d.counts.get(op, '-')}"
        lines.append(
            f"| {op} | {_fmt(med(a, op))} | {_fmt(med(d, op))} |"
            f" {_ratio(med(a, op), med(d, op))} | {_fmt(first(a, op))} |"
            f" {_fmt(first(d, op))} | {_ratio(first(a, op), first(d, op))} |"
            f" {counts} |"
        )
    for t in results:
        if t.problem:
            lines.append(f"\n{t.server} failed: {t.problem}")
    lines.append("")
    for t in results:
        for op, runs in t.runs.items():
            shown = ", ".join(_fmt(r) for r in runs)
            lines.append(f"- {t.server} {op}: {shown}")
    return "\n".join(lines)


def machine() -> str:
    cores = os.cpu_count()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = 0.0
    return f"{platform.machine()}, {cores} cores, {memory:.0f} GiB, Python " + (
        platform.python_version()
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.mh_large", description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=1000)
    parser.add_argument("--per-folder", type=int, default=100)
    parser.add_argument("--cold-rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--text-repeat",
        type=int,
        default=1,
        help="SEARCH TEXT runs (no cache on either side; minutes each for asimap)",
    )
    parser.add_argument("--sender", default="Sam Reiter")
    parser.add_argument("--word", default="underrun")
    parser.add_argument("--servers", default="asimap,dovecot")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "asimap-bench-mh-large",
        help="where the data sets are built once and copies are made",
    )
    parser.add_argument("--json", type=Path, help="also write the raw timings")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    messages = corpus_messages()
    print("building or reusing the data sets ...", file=sys.stderr)
    big = build(args.cache, "folder", 1, args.messages, messages)
    many = build(args.cache, "account", args.folders, args.per_folder, messages)
    print(f"data ready after {time.monotonic() - started:.0f} s", file=sys.stderr)
    results = [
        run_server(name.strip(), args, big, many)
        for name in args.servers.split(",")
        if name.strip()
    ]
    print(markdown(results, args))
    print(f"\n(total {time.monotonic() - started:.0f} s)", file=sys.stderr)
    if args.json:
        import json

        raw: list[dict[str, Any]] = [
            {"server": t.server, "version": t.version, "runs": t.runs,
             "counts": t.counts, "problem": t.problem}
            for t in results
        ]  # fmt: skip
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 0 if all(not t.problem for t in results) else 1


if __name__ == "__main__":
    sys.exit(main())
