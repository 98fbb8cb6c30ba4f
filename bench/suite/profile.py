"""Where asimap's time goes under a load workload, in its real configuration.

    python -m bench.suite.profile mixed --seconds 20 --out /tmp/prof

starts ``asimapd`` as the suite does (root, workers, MH store, implicit
TLS), runs the workload's load, and samples the main process and every
worker with py-spy (``pip install py-spy``) for the measured part.  For
each process it writes py-spy's collapsed stacks (``*.txt``, for any
flame-graph tool) and prints the functions with the most samples on the
stack (inclusive) and at the top of it (self), in percent of samples.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.suite import workloads as w
from bench.suite.cli import BY_NAME
from bench.suite.model import SCALES
from bench.suite.servers import Asimapd, comm, running


def summarize(collapsed: Path, top: int) -> str:
    """Inclusive and self percentages per function from collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [_short(frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    if not total:
        return "(no samples)"
    lines = [f"{total} samples", "inclusive:"]
    lines += [
        f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)
    ]
    lines.append("self:")
    lines += [
        f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)
    ]
    return "\n".join(lines)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (from /proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _short(frame: str) -> str:
    """``handle (asimap/imap/driver.py:120)`` -> ``handle (imap/driver.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("/asimap/", "/site-packages/", "/lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.suite.profile")
    parser.add_argument("workload", choices=("mixed", "long-lived"))
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=int, default=200, help="samples/s")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("/tmp/asimap-profile"))
    parser.add_argument("--quick", action="store_true", help="smaller accounts")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    scale = SCALES["quick" if args.quick else "default"].replace(
        duration=args.seconds, warmup=3.0
    )
    ctx = w.Context(scale, Path("/tmp/asimap-bench-mh-large"))
    workload = BY_NAME[args.workload]
    server = Asimapd("asimap", workload.accounts(ctx))
    with running(server):

        async def load() -> None:
            # The warm-up starts the workers; sampling starts after it.
            await workload.measure(server, ctx)

        spies: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        cpu: dict[str, tuple[int, float, float]] = {}

        def attach() -> None:
            for pid in server.pids():
                name = comm(pid)
                if name == "asimap-zygote":
                    continue
                label = "main" if pid == server.pids()[0] else name.replace(":", "-")
                out = args.out / f"{args.workload}-{label}-{pid}.txt"
                spy = subprocess.Popen(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        str(args.rate),
                        "--duration",
                        str(int(args.seconds)),
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                spies.append((label, spy, out))
                cpu[label] = (pid, time.monotonic(), cpu_seconds(pid))

        async def run() -> None:
            task = asyncio.create_task(load())
            await asyncio.sleep(scale.warmup + 0.5)
            attach()
            await task

        asyncio.run(run())
        used = {
            label: (cpu_seconds(pid) - before, time.monotonic() - at)
            for label, (pid, at, before) in cpu.items()
        }
        for _, spy, _ in spies:
            spy.wait(args.seconds + 60)
    for label, (seconds, window) in used.items():
        print(
            f"{label}: {seconds:.1f} CPU s in {window:.1f} s"
            f" ({100 * seconds / window:.0f}% of a core)"
        )
    for label, _, out in spies:
        if out.exists():
            print(f"== {label} ({out})")
            print(summarize(out, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
