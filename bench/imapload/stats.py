"""Latency bookkeeping and the numbers we report.

Percentiles use the *nearest-rank* method (the smallest sample such that at
least p% of all samples are less than or equal to it): no interpolation, so a
reported p99 is always a latency some command really had.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_ERROR_SAMPLES = 5
#: A command slower than this is a *stall*: the user sees a frozen client.
STALL_SECONDS = 3.0


def percentile(sorted_samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted samples; 0.0 when empty."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    if not sorted_samples:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_samples)))
    return sorted_samples[rank - 1]


def stalls(sorted_samples: Sequence[float]) -> int:
    """How many samples exceed :data:`STALL_SECONDS`."""
    return len(sorted_samples) - bisect.bisect_right(sorted_samples, STALL_SECONDS)


@dataclass(slots=True)
class CommandStats:
    """Latencies (seconds) and error count of one command kind."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    #: Errors by kind ("NO", "BAD", "lost" for disconnects/timeouts).
    kinds: Counter[str] = field(default_factory=Counter)
    #: The first few error texts, so a report says *why* commands failed.
    samples: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Commands that completed (OK) plus those that failed."""
        return len(self.latencies) + self.errors

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "count": self.count,
            "errors": self.errors,
            "p50_ms": percentile(ordered, 50) * 1000,
            "p90_ms": percentile(ordered, 90) * 1000,
            "p99_ms": percentile(ordered, 99) * 1000,
            "max_ms": (ordered[-1] if ordered else 0.0) * 1000,
            "stalls": stalls(ordered),
            "error_kinds": dict(self.kinds),
            "error_samples": list(self.samples),
        }


@dataclass(slots=True)
class LatencyStats:
    """All measurements of one run, keyed by command label (``FETCH_BODY``).

    Only successful commands contribute latencies: a NO that returns in 50us
    would otherwise make a broken server look fast.  Errors are counted
    separately and shown next to the latencies.
    """

    commands: dict[str, CommandStats] = field(default_factory=dict)
    sessions_completed: int = 0
    sessions_failed: int = 0

    def record(self, label: str, seconds: float) -> None:
        self._get(label).latencies.append(seconds)

    def error(self, label: str, kind: str = "lost", text: str = "") -> None:
        stats = self._get(label)
        stats.errors += 1
        stats.kinds[kind] += 1
        if len(stats.samples) < MAX_ERROR_SAMPLES and text:
            stats.samples.append(f"{kind}: {text}"[:200])

    def _get(self, label: str) -> CommandStats:
        stats = self.commands.get(label)
        if stats is None:
            stats = self.commands[label] = CommandStats()
        return stats

    def merge(self, others: Iterable[LatencyStats]) -> None:
        """Fold in results from other workers (e.g. other processes)."""
        for other in others:
            self.sessions_completed += other.sessions_completed
            self.sessions_failed += other.sessions_failed
            for label, stats in other.commands.items():
                mine = self._get(label)
                mine.latencies.extend(stats.latencies)
                mine.errors += stats.errors
                mine.kinds.update(stats.kinds)
                room = MAX_ERROR_SAMPLES - len(mine.samples)
                mine.samples.extend(stats.samples[: max(0, room)])

    @property
    def total_commands(self) -> int:
        return sum(stats.count for stats in self.commands.values())

    @property
    def total_errors(self) -> int:
        return sum(stats.errors for stats in self.commands.values())

    def report(self, elapsed: float) -> dict[str, Any]:
        """The JSON-ready result of a run that lasted ``elapsed`` seconds."""
        ok = self.total_commands - self.total_errors
        everything = sorted(
            sample for stats in self.commands.values() for sample in stats.latencies
        )
        return {
            "elapsed_s": elapsed,
            "commands": self.total_commands,
            "errors": self.total_errors,
            "commands_per_s": ok / elapsed if elapsed > 0 else 0.0,
            "sessions_completed": self.sessions_completed,
            "sessions_failed": self.sessions_failed,
            # Over every successful command, whatever its kind.
            "p50_ms": percentile(everything, 50) * 1000,
            "p99_ms": percentile(everything, 99) * 1000,
            "stalls": stalls(everything),
            "per_command": {
                label: self.commands[label].summary() for label in sorted(self.commands)
            },
        }


def format_report(report: dict[str, Any]) -> str:
    """A fixed-width text table of :meth:`LatencyStats.report` output."""
    lines = [
        f"elapsed {report['elapsed_s']:.1f}s  commands {report['commands']}  "
        f"errors {report['errors']}  {report['commands_per_s']:.1f} cmd/s  "
        f"p50 {report.get('p50_ms', 0.0):.2f} ms  "
        f"p99 {report.get('p99_ms', 0.0):.2f} ms"
        f"  stalls {report.get('stalls', 0)}  "
        f"sessions ok {report['sessions_completed']} "
        f"failed {report['sessions_failed']}"
        + (
            f"  generator cpu {report['generator_cpu_s']:.1f}s"
            if "generator_cpu_s" in report
            else ""
        ),
        f"{'command':<14}{'count':>8}{'errors':>8}"
        f"{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}",
    ]
    for label, row in report["per_command"].items():
        lines.append(
            f"{label:<14}{row['count']:>8}{row['errors']:>8}"
            f"{row['p50_ms']:>10.2f}{row['p90_ms']:>10.2f}"
            f"{row['p99_ms']:>10.2f}{row['max_ms']:>10.2f}"
        )
    for label, row in report["per_command"].items():
        for sample in row.get("error_samples", []):
            lines.append(f"  {label} error {sample}")
    return "\n".join(lines)
