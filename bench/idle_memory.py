"""Where the memory of an IDLE connection goes, process by process.

``python -m bench.idle_memory --connections 500`` starts ``asimapd`` in
its real configuration (as :mod:`bench.suite` does: workers, MH store,
implicit TLS), parks N IDLE connections, then N more, and prints for the
main process and the workers what the second N added, per connection:

* PSS by kind of mapping (``[heap]``, anonymous maps by size), from
  ``/proc/PID/smaps`` -- what the kernel charges, C allocations included
  (OpenSSL, the event loop);
* with ``--tracemalloc``, the Python allocations that grew, by line
  (``tracemalloc`` started in every server process through a
  ``sitecustomize`` on their path; each dumps a snapshot on SIGUSR2).

Doubling and taking the difference leaves out what one connection per
user costs anyway (the workers, the stores) and what settles only once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

from bench.imapload.client import ImapClient
from bench.suite.model import DEFAULT
from bench.suite.servers import Asimapd, comm
from bench.suite.workloads import Context, _login, _ok, idle_accounts

#: Installed as ``sitecustomize`` in the server processes by --tracemalloc.
SITECUSTOMIZE = """
import os, signal, tracemalloc
_dir = os.environ.get("IDLE_MEMORY_SNAPSHOTS")
if _dir:
    tracemalloc.start(int(os.environ.get("IDLE_MEMORY_FRAMES", "1")))
    _count = [0]
    def _dump(signum, frame):
        _count[0] += 1
        path = os.path.join(_dir, "%d-%d.snap" % (os.getpid(), _count[0]))
        tracemalloc.take_snapshot().dump(path)
    signal.signal(signal.SIGUSR2, _dump)
"""


def smaps_by_kind(pid: int) -> dict[str, int]:
    """PSS (KiB) of one process by kind of mapping."""
    out: dict[str, int] = defaultdict(int)
    kind = "?"
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return out
    header = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")
    for line in text.splitlines():
        if header.match(line):
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else ""
            size = (end - start) // 1024
            if name == "[heap]":
                kind = "heap"
            elif name.startswith("["):
                kind = name
            elif name:
                kind = "files"
            elif size <= 4:
                kind = "anon <=4K (guards)"
            elif size <= 300:
                kind = "anon <=300K (mmap'd blocks, arenas)"
            else:
                kind = "anon >300K"
        elif line.startswith("Pss:"):
            out[kind] += int(line.split()[1])
    return out


def role(pids: list[int], pid: int) -> str:
    if pid == pids[0]:
        return "main"
    name = comm(pid)
    return "workers" if name.startswith("asimap-w:") else name


def measure(server: Asimapd) -> dict[str, dict[str, int]]:
    pids = server.pids()
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for pid in pids:
        for kind, kib in smaps_by_kind(pid).items():
            out[role(pids, pid)][kind] += kib
    return out


def snapshot_all(server: Asimapd, snaps: Path, label: str) -> dict[int, Path]:
    """SIGUSR2 every server process; returns pid -> its new snapshot."""
    before = set(snaps.iterdir())
    pids = server.pids()
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 120
    found: dict[int, Path] = {}
    while time.monotonic() < deadline and len(found) < len(pids):
        time.sleep(0.5)
        for path in set(snaps.iterdir()) - before:
            if path.suffix == ".snap":
                found[int(path.name.split("-")[0])] = path
    renamed = {}
    for pid, path in found.items():
        target = path.with_name(f"{label}-{role(pids, pid)}-{pid}.snap")
        path.rename(target)
        renamed[pid] = target
    return renamed


def compare(first: dict[int, Path], second: dict[int, Path], n: int, top: int) -> None:
    """Per role, the allocation sites that grew from first to second."""
    roles: dict[str, list[tuple[Path, Path]]] = defaultdict(list)
    for pid, path in first.items():
        if pid in second:
            name = path.name.split("-")[1]
            roles[name].append((path, second[pid]))
    for name, pairs in sorted(roles.items()):
        totals: dict[str, int] = defaultdict(int)
        counts: dict[str, int] = defaultdict(int)
        for a, b in pairs:
            old = tracemalloc.Snapshot.load(str(a))
            new = tracemalloc.Snapshot.load(str(b))
            for stat in new.compare_to(old, "lineno"):
                frame = stat.traceback[0]
                key = f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
                totals[key] += stat.size_diff
                counts[key] += stat.count_diff
        whole = sum(totals.values())
        print(f"\n== {name}: Python allocations {whole / n / 1024:.1f} KiB/conn")
        ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
        for key, size in ranked:
            print(f"  {size / n:8.0f} B {counts[key] / n:6.1f} blk  {key}")


async def park(server: Asimapd, users: list[str], count: int) -> list[ImapClient]:
    limit = asyncio.Semaphore(20)
    clients: list[ImapClient] = []

    async def one(index: int) -> None:
        async with limit:
            client = await _login(server, users[index % len(users)], 120)
            await _ok(client.command(b"SELECT INBOX"), "SELECT")
            await client.idle_start()
        clients.append(client)

    await asyncio.gather(*(one(i) for i in range(count)))
    return clients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--per-folder", type=int, default=DEFAULT.per_folder)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "asimap-bench-mh-large",
    )
    args = parser.parse_args()
    with contextlib.suppress(ValueError, OSError):
        want = 4 * args.connections + 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < want:
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (max(want, hard), max(want, hard))
            )
    scale = DEFAULT.replace(idle_users=args.users, per_folder=args.per_folder)
    ctx = Context(scale, args.cache)
    accounts = idle_accounts(ctx)
    users = [a.creds.user for a in accounts]
    work = Path(tempfile.mkdtemp(prefix="idle-memory-"))
    os.chmod(work, 0o755)
    snaps = work / "snaps"
    snaps.mkdir()
    os.chmod(snaps, 0o1777)
    (work / "site").mkdir()
    (work / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env: dict[str, str] = {}
    if args.tracemalloc:
        env = {
            "IDLE_MEMORY_SNAPSHOTS": str(snaps),
            "IDLE_MEMORY_FRAMES": str(args.frames),
        }
    server = Asimapd(
        "asimap", accounts, extra_env=env, python_path=[str(work / "site")]
    )
    server.start()
    try:
        asyncio.run(run(server, users, args, snaps))
    finally:
        server.stop()


async def run(
    server: Asimapd, users: list[str], args: argparse.Namespace, snaps: Path
) -> None:
    n = args.connections
    first = await park(server, users, n)
    await asyncio.sleep(2)
    m1 = measure(server)
    s1 = snapshot_all(server, snaps, "a") if args.tracemalloc else {}
    second = await park(server, users, n)
    await asyncio.sleep(2)
    m2 = measure(server)
    s2 = snapshot_all(server, snaps, "b") if args.tracemalloc else {}
    print(f"PSS added by {n} more IDLE connections (after {n}), KiB per connection:")
    for name in sorted(m2):
        kinds = m2[name]
        added = {k: kinds[k] - m1.get(name, {}).get(k, 0) for k in kinds}
        total = sum(added.values())
        detail = ", ".join(
            f"{k} {v / n:.1f}"
            for k, v in sorted(added.items(), key=lambda kv: -kv[1])
            if abs(v / n) >= 0.5
        )
        print(f"  {name:10s} {total / n:7.1f}   ({detail})")
    if args.tracemalloc:
        compare(s1, s2, n, args.top)
    for client in first + second:
        client.close()
    print(
        f"(load average {os.getloadavg()[0]:.1f}; snapshots in {snaps})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
