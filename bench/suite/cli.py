"""Command line of the suite: which workloads, which servers, how big.

    python -m bench.suite                    # everything, default scale
    python -m bench.suite --quick            # a few minutes
    python -m bench.suite --full             # 100,000-message folder
    python -m bench.suite mixed long-lived   # only these workloads

Each workload runs against every server in turn, back to back (asimap
first, then the others), each server freshly started with fresh copies of
the accounts, so that a server has the cores to itself and the figures of
one workload come from the same minutes.  The results go to
``docs/benchmarks.md`` (``--no-docs`` to leave it) and, raw, to
``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.suite import workloads as w
from bench.suite.model import SCALES, Metric, ServerRun, WorkloadResult
from bench.suite.report import (
    document_block,
    dovecot_version,
    rewrite_document,
    run_summary,
    workload_table,
)
from bench.suite.servers import SERVERS, Account, git_commit, make_server, running

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    metrics: tuple[Metric, ...]
    accounts: Callable[[w.Context], list[Account]]
    measure: Callable[[Any, w.Context], Coroutine[Any, Any, dict[str, Any]]]
    setup: Callable[[w.Context], str]
    #: Also run against asimap started by an ordinary user.
    as_user: bool = False
    #: Extra asimapd flags for this workload.
    flags: tuple[str, ...] = ()


def _mixed_setup(ctx: w.Context) -> str:
    s = ctx.scale
    return (
        f"{s.mixed_users} users, {s.mixed_clients} clients, {s.warmup:g} s warm-up"
        f" then {s.duration:g} s; every session: connect (TLS), LOGIN, LIST,"
        " 2 STATUS, SELECT INBOX, UID FETCH 1:* (UID FLAGS), ENVELOPE of the"
        " newest 20, 2 whole bodies, 2 STORE, APPEND, STORE \\Deleted + UID"
        f" EXPUNGE of it, LOGOUT.  Accounts of {s.folders_per_user} folders x"
        f" {s.per_folder} corpus messages.  p50/p99 over every command."
    )


def _long_setup(ctx: w.Context) -> str:
    s = ctx.scale
    return (
        f"One user, {s.long_clients} connections that never log out, all on"
        " INBOX; each repeats UID FETCH 1:* (UID FLAGS), ENVELOPE of the newest"
        " 20, 2 bodies, 2 STORE, APPEND, STORE \\Deleted + UID EXPUNGE, NOOP,"
        " so every change one makes reaches the others.  "
        f"{s.warmup:g} s warm-up then {s.duration:g} s."
    )


WORKLOADS = (
    Workload(
        "mixed",
        "1. Mixed load: many users, whole sessions",
        w.LOAD_METRICS,
        w.mixed_accounts,
        w.mixed_load,
        _mixed_setup,
        as_user=True,
    ),
    Workload(
        "long-lived",
        "2. One user, long-lived connections on one INBOX",
        w.LOAD_METRICS,
        w.long_accounts,
        w.long_lived,
        _long_setup,
        as_user=True,
    ),
    Workload(
        "big-folder",
        "3. A big folder, cold and warm",
        w.BIG_METRICS,
        w.big_accounts,
        w.big_folder,
        lambda ctx: (
            f"INBOX of {ctx.scale.big_messages:,} messages (the corpus repeated),"
            " written straight to disk as nmh `inc` leaves them: asimap has no"
            " database, Dovecot no index.  *cold* is the first run of each"
            " command in that order, *warm* the median of"
            f" {ctx.scale.big_repeat} more."
        ),
    ),
    Workload(
        "idle",
        "4. IDLE connections: memory and delivery",
        w.IDLE_METRICS,
        w.idle_accounts,
        w.idle,
        lambda ctx: (
            f"{ctx.scale.idle_connections} connections of {ctx.scale.idle_users}"
            " users, each LOGIN, SELECT INBOX, IDLE.  Memory is the PSS (shared"
            " pages divided among sharers, from /proc/PID/smaps_rollup) of"
            " every server process, minus the same with one logged-in"
            " connection per user.  Then, "
            f"{ctx.scale.idle_rounds} times per user, another connection of the"
            " user APPENDs a message; latency is from sending APPEND to each"
            " IDLE connection reading `* n EXISTS`."
        ),
    ),
    Workload(
        "many-folders",
        "5. First login of an account with many folders",
        w.MANY_METRICS,
        w.many_accounts,
        w.many_folders,
        lambda ctx: (
            f"{ctx.scale.many_folders:,} folders x {ctx.scale.many_per_folder}"
            ' messages, never served before: connect, LOGIN, LIST "" "*",'
            " STATUS (MESSAGES UIDNEXT UNSEEN) of every folder."
        ),
    ),
    Workload(
        "bulk",
        "6. A big message, and bulk APPEND",
        w.BULK_METRICS,
        w.bulk_accounts,
        w.bulk,
        lambda ctx: (
            f"APPEND then FETCH BODY.PEEK[] of a {ctx.scale.big_size_mb:g} MB"
            f" message (median of {ctx.scale.big_rounds}); one client APPENDs"
            f" {ctx.scale.bulk_count:,} corpus messages one after another into"
            " an empty INBOX, then the same as MULTIAPPEND (RFC 3502) of"
            f" {ctx.scale.multi_batch} a command into another account."
        ),
    ),
    Workload(
        "cold-login",
        "7. Login with no running worker",
        w.COLD_METRICS,
        w.cold_accounts,
        w.cold_login,
        lambda ctx: (
            f"{ctx.scale.cold_rounds} logins (after one unmeasured), each once"
            " the previous worker has exited (asimap: `--worker-linger=0.2`;"
            " Dovecot starts a new imap process for every login anyway)."
        ),
        flags=(f"--worker-linger={w.COLD_LINGER}",),
    ),
)
BY_NAME = {workload.name: workload for workload in WORKLOADS}


def measure(
    workload: Workload, servers: Sequence[str], ctx: w.Context
) -> WorkloadResult:
    result = WorkloadResult(
        workload.name, workload.title, workload.setup(ctx), workload.metrics
    )
    accounts = workload.accounts(ctx)
    for name in servers:
        if name == "asimap-user" and not workload.as_user:
            continue
        run = ServerRun(name, load=os.getloadavg())
        started = time.monotonic()
        print(f"[{workload.name}] {name} ...", file=sys.stderr, flush=True)
        try:
            server = make_server(name, accounts, workload.flags)
            with running(server):
                run.version = server.version
                values = asyncio.run(workload.measure(server, ctx))
            for key, value in values.items():
                if key == "_counts":
                    run.notes.append(f"result sizes {value}")
                elif key == "_notes":
                    run.notes.extend(value)
                elif key == "_report":
                    run.notes.extend(_report_notes(value))
                    run.detail["per_command"] = {
                        label: {
                            k: stats[k] for k in ("count", "errors", "p50_ms", "p99_ms")
                        }
                        for label, stats in value["per_command"].items()
                    }
                else:
                    run.values[key] = float(value)
        except Exception as exc:  # one server failing must not lose the rest
            run.problem = f"{type(exc).__name__}: {exc}"
        run.seconds = time.monotonic() - started
        result.runs.append(run)
        print(f"[{workload.name}] {run_summary(run)}", file=sys.stderr, flush=True)
    return result


def _report_notes(report: dict[str, Any]) -> list[str]:
    notes = []
    for label, stats in report["per_command"].items():
        if stats["errors"]:
            kinds = ", ".join(f"{k} {n}" for k, n in stats["error_kinds"].items())
            sample = (stats["error_samples"] or [""])[0][:160]
            notes.append(
                f"{label}: {stats['errors']} errors ({kinds}), e.g. `{sample}`"
            )
    worst = sorted(report["per_command"].items(), key=lambda item: -item[1]["p99_ms"])[
        :3
    ]
    notes.append(
        "slowest p99: "
        + ", ".join(f"{label} {stats['p99_ms']:.0f} ms" for label, stats in worst)
        + f"; generator CPU {report['generator_cpu_s']:.1f} s"
    )
    return notes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.suite",
        description="asimap (real configuration) against Dovecot, every workload.",
    )
    parser.add_argument(
        "workloads",
        nargs="*",
        metavar="WORKLOAD",
        help=f"which to run (default all): {', '.join(BY_NAME)}",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small, a few minutes")
    size.add_argument(
        "--full", action="store_true", help="100,000-message folder, more IDLE"
    )
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--duration", type=float, help="seconds of load (1, 2)")
    parser.add_argument("--messages", type=int, help="big-folder size (3)")
    parser.add_argument("--idle-connections", type=int, help="IDLE connections (4)")
    parser.add_argument("--folders", type=int, help="folders of the account (5)")
    parser.add_argument("--bulk", type=int, help="messages to bulk APPEND (6)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "asimap-bench-mh-large",
        help="where the data sets are built once (shared with bench.mh_large)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results")
    parser.add_argument(
        "--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md"
    )
    parser.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    return parser


def _raise_own_file_limit() -> None:
    """Thousands of IDLE clients need descriptors in this process too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unknown = [name for name in args.workloads if name not in BY_NAME]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if unknown or set(servers) - set(SERVERS):
        print(f"unknown workload or server: {unknown or servers}", file=sys.stderr)
        return 2
    if "asimap-user" in servers and os.geteuid() != 0:
        servers.remove("asimap-user")  # it is "as nobody, started by root"
    scale = SCALES["quick" if args.quick else "full" if args.full else "default"]
    overrides = {
        "duration": args.duration,
        "big_messages": args.messages,
        "idle_connections": args.idle_connections,
        "many_folders": args.folders,
        "bulk_count": args.bulk,
    }
    scale = scale.replace(**{k: v for k, v in overrides.items() if v is not None})
    args.cache.mkdir(parents=True, exist_ok=True)
    _raise_own_file_limit()
    # SIGTERM unwinds like Ctrl-C, so every server started is stopped.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    ctx = w.Context(scale, args.cache)
    chosen = [BY_NAME[name] for name in args.workloads] or list(WORKLOADS)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    commit = git_commit()
    results = []
    for workload in chosen:
        result = measure(workload, servers, ctx)
        results.append(result)
        print(workload_table(result, servers), flush=True)
    block = document_block(results, servers, scale, started, commit, dovecot_version())
    if not args.no_docs:
        rewrite_document(args.doc, block)
        print(f"rewrote {args.doc}", file=sys.stderr)
    if args.json:
        args.json.write_text(
            json.dumps([r.as_json() for r in results], indent=2, default=str) + "\n"
        )
    return 0 if all(not r.problem for res in results for r in res.runs) else 1
