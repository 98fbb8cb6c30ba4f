"""What the suite measures and how big: scales, rows and workload results."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scale:
    """Sizes and durations of one run (``--quick``, default, ``--full``)."""

    name: str
    duration: float  # seconds of measured load (workloads 1 and 2)
    warmup: float  # unmeasured seconds before
    mixed_users: int
    mixed_clients: int
    folders_per_user: int  # folders of each mixed-load account (INBOX first)
    per_folder: int  # messages in each of them
    long_clients: int  # connections of the one user in workload 2
    big_messages: int  # workload 3
    big_repeat: int  # warm repeats in workload 3
    idle_connections: int  # workload 4
    idle_users: int
    idle_rounds: int
    many_folders: int  # workload 5
    many_per_folder: int
    big_size_mb: float  # workload 6
    big_rounds: int
    bulk_count: int
    multi_batch: int
    cold_rounds: int  # workload 7

    def replace(self, **changes: Any) -> Scale:
        return dataclasses.replace(self, **changes)


QUICK = Scale(
    name="quick",
    duration=8,
    warmup=1,
    mixed_users=50,
    mixed_clients=20,
    folders_per_user=5,
    per_folder=100,
    long_clients=20,
    big_messages=2_000,
    big_repeat=2,
    idle_connections=100,
    idle_users=10,
    idle_rounds=3,
    many_folders=100,
    many_per_folder=20,
    big_size_mb=25,
    big_rounds=2,
    bulk_count=300,
    multi_batch=100,
    cold_rounds=5,
)
DEFAULT = Scale(
    name="default",
    duration=20,
    warmup=2,
    mixed_users=50,
    mixed_clients=20,
    folders_per_user=5,
    per_folder=200,
    long_clients=20,
    big_messages=10_000,
    big_repeat=3,
    idle_connections=500,
    idle_users=10,
    idle_rounds=5,
    many_folders=1_000,
    many_per_folder=100,
    big_size_mb=25,
    big_rounds=3,
    bulk_count=3_000,
    multi_batch=100,
    cold_rounds=10,
)
FULL = DEFAULT.replace(name="full", big_messages=100_000, idle_connections=2_000)
SCALES = {scale.name: scale for scale in (QUICK, DEFAULT, FULL)}


@dataclass(frozen=True)
class Metric:
    """One figure of a workload: its unit and which way is better."""

    key: str
    label: str
    unit: str
    #: "higher", "lower", or "" for figures without a meaningful ratio.
    better: str = "lower"


@dataclass
class ServerRun:
    """One server's part of one workload."""

    server: str
    version: str = ""
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problem: str = ""
    seconds: float = 0.0
    #: Raw extras for --json (the load generator's per-command figures).
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkloadResult:
    name: str
    title: str
    setup: str
    metrics: tuple[Metric, ...]
    runs: list[ServerRun] = field(default_factory=list)

    def run(self, server: str) -> ServerRun | None:
        for run in self.runs:
            if run.server == server:
                return run
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "setup": self.setup,
            "metrics": [dataclasses.asdict(m) for m in self.metrics],
            "runs": [dataclasses.asdict(r) for r in self.runs],
        }
