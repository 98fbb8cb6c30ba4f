"""asimap and Dovecot under the same load, one after the other, in one run.

design.md section 4 rule 5: performance is reported side by side with a
reference server measured in the same run, as ratios.  Both servers get the
same users, the same populated INBOX (K corpus messages each), the same TLS
certificate and mode (STARTTLS on a plain port by default - asimap refuses
LOGIN before TLS), the same clients, duration and random seed.  They run one
at a time so that each has the machine's cores to itself (the load generator
excepted, which is identical for both).

    python -m bench.compare --clients 10 --duration 20 --populate 200

prints Markdown (docs/benchmarks.md shows how to read it); ``--json FILE``
keeps the raw reports.  A server that cannot run here is reported with the
reason, and the other is still measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.asimap_server import AsimapServer, asimap_available
from bench.dovecot import DovecotServer
from bench.imapload.cli import (
    add_load_arguments,
    plan_from,
    run_event_loop,
    settings_from,
)
from bench.imapload.corpus import load_corpus
from bench.imapload.runner import Credentials, RunPlan, make_users, populate, run_load
from bench.imapload.scenario import SessionSettings

SERVERS = ("asimap", "dovecot")


class _Server(Protocol):
    host: str
    port: int

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass(slots=True)
class Outcome:
    """One server's result, or why it could not be measured."""

    server: str
    version: str = ""
    report: dict[str, Any] | None = None
    problem: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _make_server(
    name: str, users: Sequence[Credentials], args: argparse.Namespace
) -> _Server:
    """The server object for ``name``; raises with the reason it cannot run."""
    if name == "dovecot":
        return DovecotServer(users)
    reason = asimap_available()
    if reason is not None:
        raise RuntimeError(reason)
    return AsimapServer(users, hash_iterations=args.asimap_iterations)


@contextlib.contextmanager
def _running(server: _Server) -> Iterator[_Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _measure(
    host: str,
    port: int,
    args: argparse.Namespace,
    users: Sequence[Credentials],
    messages: Sequence[bytes],
) -> dict[str, Any]:
    settings: SessionSettings = settings_from(args, host, port, args.security, messages)
    if args.populate:
        await populate(host, port, args.security, users, messages, args.populate)
    if args.warmup > 0:
        warm = RunPlan(clients=args.clients, duration=args.warmup, seed=args.seed + 1)
        await run_load(settings, users, warm)
    return await run_load(settings, users, plan_from(args))


def measure_server(
    name: str,
    args: argparse.Namespace,
    users: Sequence[Credentials],
    messages: Sequence[bytes],
) -> Outcome:
    """Start ``name``, load it, stop it; never raises for a broken server."""
    outcome = Outcome(name)
    try:
        server = _make_server(name, users, args)
        with _running(server):
            outcome.version = getattr(server, "version", "") or _asimap_version(name)
            outcome.report = run_event_loop(
                _measure(server.host, server.port, args, users, messages),
                args.uvloop,
            )
    except Exception as exc:  # a server failing must not lose the other result
        outcome.problem = f"{type(exc).__name__}: {exc}"
    return outcome


def median_outcome(outcomes: Sequence[Outcome]) -> Outcome:
    """The round with the median cmd/s (the lower middle one for even counts).

    A whole round is kept rather than per-command medians so that every
    number in a table comes from one real run.
    """
    measured = [o for o in outcomes if o.report is not None]
    if not measured:
        return outcomes[-1]
    measured.sort(key=lambda o: float(o.report["commands_per_s"]))  # type: ignore[index]
    return measured[(len(measured) - 1) // 2]


def _asimap_version(name: str) -> str:
    if name != "asimap":
        return ""
    try:
        from importlib.metadata import version

        return version("asimap")
    except Exception:
        return "?"


def _ratio(numerator: float, denominator: float) -> str:
    if numerator <= 0 or denominator <= 0:
        return "-"
    return f"{numerator / denominator:.2f}"


def markdown(outcomes: Sequence[Outcome], args: argparse.Namespace) -> str:
    """Summary table, per-command table, and the asimap/Dovecot ratios."""
    by_name = {outcome.server: outcome for outcome in outcomes}
    user_count = len(make_users(args.user, args.password, args.users))
    lines = [
        f"Load: {args.clients} clients, {user_count} users, {args.duration:g}s"
        + (f" ({args.sessions} sessions/client)" if args.sessions else "")
        + f", INBOX populated to {args.populate}, security {args.security},"
        f" mix '{args.mix or 'default'}', repeat {args.repeat}, seed {args.seed}",
        "",
        "| server | version | cmd/s | commands | errors | sessions ok/failed |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for outcome in outcomes:
        if outcome.report is None:
            lines.append(
                f"| {outcome.server} | {outcome.version or '-'} | not measured: "
                f"{outcome.problem.splitlines()[0] if outcome.problem else '?'} "
                "| | | |"
            )
            continue
        r = outcome.report
        lines.append(
            f"| {outcome.server} | {outcome.version} | {r['commands_per_s']:.1f} | "
            f"{r['commands']} | {r['errors']} | "
            f"{r['sessions_completed']}/{r['sessions_failed']} |"
        )
    asimap, dovecot = by_name.get("asimap"), by_name.get("dovecot")
    both = (
        asimap is not None
        and dovecot is not None
        and asimap.report is not None
        and dovecot.report is not None
    )
    if both:
        assert asimap is not None and dovecot is not None
        assert asimap.report is not None and dovecot.report is not None
        ratio = _ratio(
            asimap.report["commands_per_s"], dovecot.report["commands_per_s"]
        )
        lines.append(f"| **asimap/Dovecot** | | **{ratio}** | | | |")
    lines += ["", _per_command_table(outcomes, both)]
    lines += _error_notes(outcomes)
    if both:
        lines += [
            "",
            "Ratios are asimap/Dovecot: above 1 is better for cmd/s, "
            "below 1 is better for latency.",
        ]
    return "\n".join(lines)


def _error_notes(outcomes: Sequence[Outcome]) -> list[str]:
    """Why commands failed, per server and command (first few samples)."""
    notes: list[str] = []
    for outcome in outcomes:
        if outcome.report is None:
            continue
        for label, stats in outcome.report["per_command"].items():
            if stats["errors"]:
                kinds = ", ".join(f"{k} {n}" for k, n in stats["error_kinds"].items())
                samples = "; ".join(stats["error_samples"][:2])
                notes.append(
                    f"- {outcome.server} {label}: {stats['errors']} errors "
                    f"({kinds}) e.g. `{samples}`"
                )
    return ["", "Errors:", *notes] if notes else []


def _per_command_table(outcomes: Sequence[Outcome], both: bool) -> str:
    measured = [o for o in outcomes if o.report is not None]
    if not measured:
        return "(no server was measured)"
    labels = sorted({label for o in measured for label in o.report["per_command"]})  # type: ignore[index]
    header = "| command |"
    rule = "|---|"
    for outcome in measured:
        header += f" {outcome.server} n/err | p50 ms | p99 ms |"
        rule += "---:|---:|---:|"
    if both:
        header += " p50 ratio | p99 ratio |"
        rule += "---:|---:|"
    rows = [header, rule]
    for label in labels:
        row = f"| {label} |"
        cells: dict[str, dict[str, float]] = {}
        for outcome in measured:
            assert outcome.report is not None
            stats = outcome.report["per_command"].get(label)
            if stats is None:
                row += " - | - | - |"
                continue
            cells[outcome.server] = stats
            row += (
                f" {stats['count']}/{stats['errors']} | {stats['p50_ms']:.2f} |"
                f" {stats['p99_ms']:.2f} |"
            )
        if both:
            a, d = cells.get("asimap"), cells.get("dovecot")
            if a is not None and d is not None:
                row += (
                    f" {_ratio(a['p50_ms'], d['p50_ms'])} |"
                    f" {_ratio(a['p99_ms'], d['p99_ms'])} |"
                )
            else:
                row += " - | - |"
        rows.append(row)
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench.compare",
        description="Run the same IMAP load against asimap and Dovecot.",
    )
    add_load_arguments(parser)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument(
        "--security",
        choices=("plain", "starttls"),
        default="starttls",
        help="STARTTLS on the plain ports (default); asimap needs TLS for LOGIN",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternate servers; report medians"
    )
    parser.add_argument("--user", default="user%d")
    parser.add_argument("--password", default="secret")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds of load first"
    )
    parser.add_argument(
        "--asimap-iterations",
        type=int,
        default=None,
        help="PBKDF2 iterations for asimap's password file (default: Django's)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write raw reports")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = set(names) - set(SERVERS)
    if unknown:
        print(f"unknown servers: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    users = make_users(args.user, args.password, args.users)
    messages = load_corpus(args.corpus, limit=max(args.populate, 200))
    rounds: dict[str, list[Outcome]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        # Alternate the order so that neither server always runs second,
        # after the machine has warmed up (or while a neighbour is busy).
        order = names if round_number % 2 == 0 else names[::-1]
        for name in order:
            print(f"round {round_number + 1}: measuring {name} ...", file=sys.stderr)
            outcome = measure_server(name, args, users, messages)
            if outcome.problem:
                print(f"{name}: NOT MEASURED - {outcome.problem}", file=sys.stderr)
            rounds[name].append(outcome)
    outcomes = [median_outcome(rounds[name]) for name in names]
    print(markdown(outcomes, args))
    if args.rounds > 1:
        print()
        for name in names:
            rates = ", ".join(
                f"{o.report['commands_per_s']:.1f}" if o.report else "-"
                for o in rounds[name]
            )
            print(f"- {name} cmd/s per round: {rates} (the table shows the median)")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {
                        "server": o.server,
                        "version": o.version,
                        "problem": o.problem,
                        "report": o.report,
                    }
                    for name in names
                    for o in rounds[name]
                ],
                indent=2,
            )
            + "\n"
        )
    measured = [o for o in outcomes if o.report is not None]
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
