"""Where a cold big folder's time goes: py-spy on the worker, per command.

    python -m bench.cold_profile --messages 10000 --out /tmp/cold-prof

starts ``asimapd`` as the suite does (root, workers, MH store, implicit
TLS) on a fresh copy of a folder filled as nmh ``inc`` leaves it, logs
in, and runs the big-folder commands of ``bench.suite`` once each, cold,
with py-spy (``pip install py-spy``) sampling the user's worker during
each one.  Prints each command's time and the functions with the most
samples (inclusive and self) while it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.suite import workloads as w
from bench.suite.model import SCALES
from bench.suite.profile import summarize
from bench.suite.servers import Asimapd, running


def _spy(py_spy: str, pid: int, out: Path, rate: int) -> subprocess.Popen[bytes]:
    spy = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--threads",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # attached before the command starts
    return spy


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_profile")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=200, help="samples/s")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("/tmp/asimap-cold-profile"))
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds between SELECT and the rest"
    )
    parser.add_argument(
        "--warm", action="store_true", help="profile a second run of each command"
    )
    parser.add_argument(
        "--only",
        default="",
        help="commands to run besides SELECT, e.g. sort_date,thread",
    )
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    scale = SCALES["default"].replace(big_messages=args.messages)
    ctx = w.Context(scale, Path("/tmp/asimap-bench-mh-large"))
    server = Asimapd("asimap", w.big_accounts(ctx))
    results: list[tuple[str, float, Path]] = []
    with running(server):

        async def run() -> None:
            client = await w._login(server, "big", ctx.timeout)
            worker = server.workers()[0]
            lines: dict[str, bytes] = {}
            passes = [False, True] if args.warm else [True]
            only = {"select", *args.only.split(",")} if args.only else None
            steps = [
                (p, k, t)
                for p in passes
                for k, t in w.BIG_COMMANDS
                if only is None or k in only
            ]
            for profiled, key, text in steps:
                out = args.out / f"{key}.txt"
                spy = _spy(py_spy, worker, out, args.rate) if profiled else None
                line = lines.get(key, text.encode())
                started = time.perf_counter()
                result = await w._ok(client.command(line), text)
                took = time.perf_counter() - started
                if spy is not None:
                    os.kill(spy.pid, signal.SIGINT)
                    spy.wait(60)
                    results.append((text, took, out))
                print(f"{text}: {took * 1000:.0f} ms", flush=True)
                if key == "select" and "envelope" not in lines:
                    uidnext = next(
                        int(m[1])
                        for r in result.untagged
                        if (m := w._UIDNEXT.search(r.text))
                    )
                    newest = f"{max(1, uidnext - 500)}:{uidnext - 1}"
                    lines["envelope"] = f"UID FETCH {newest} (ENVELOPE)".encode()
                    await asyncio.sleep(args.pause)
            await client.logout()
            client.close()

        asyncio.run(run())
    for text, took, out in results:
        print(f"== {text}: {took * 1000:.0f} ms")
        if out.exists():
            print(summarize(out, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
