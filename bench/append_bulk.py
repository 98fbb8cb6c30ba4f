"""Bulk APPEND: one client appends N real messages into an empty INBOX.

This is what a migration from another server does (issue target: at least
Dovecot's rate, every acknowledged message durable, and the cost of one
APPEND independent of how many messages the folder already holds).  Both
servers run in turn on loopback (design.md section 4 rule 5: same run, ratios): asimap
on the MH store, Dovecot on Maildir with its default ``mail_fsync``.  The
client is the load generator's raw client (STARTTLS, LITERAL+ when the
server offers it), appending the corpus messages one after another and
waiting for each tagged OK.

Prints a Markdown table: total seconds, messages per second, and the mean
APPEND time over the first and the last tenth of the run -- equal when
the cost does not grow with the folder.

    python -m bench.append_bulk                  # 3,000 messages
    python -m bench.append_bulk --messages 500 --servers asimap

Not a test: pytest never runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.asimap_server import AsimapServer
from bench.dovecot import DovecotServer
from bench.imapload.client import ImapClient, ImapError
from bench.imapload.runner import Credentials
from bench.mh_large_data import corpus_messages

USER, PASSWORD = "bulk", "secret"


@dataclass
class Run:
    server: str
    version: str = ""
    seconds: list[float] = field(default_factory=list)
    problem: str = ""

    @property
    def total(self) -> float:
        return sum(self.seconds)

    def tenth(self, last: bool) -> float:
        """Mean seconds per APPEND over the first (or last) tenth."""
        size = max(1, len(self.seconds) // 10)
        part = self.seconds[-size:] if last else self.seconds[:size]
        return statistics.fmean(part) if part else 0.0


async def append_all(
    host: str, port: int, messages: Sequence[bytes], timeout: float
) -> list[float]:
    client = ImapClient(timeout=timeout)
    await client.connect(host, port, security="starttls")
    result = await client.login(USER, PASSWORD)
    if not result.ok:
        raise ImapError(f"LOGIN: {result.text!r}")
    seconds: list[float] = []
    try:
        for message in messages:
            started = time.perf_counter()
            result = await client.append("INBOX", message)
            seconds.append(time.perf_counter() - started)
            if not result.ok:
                raise ImapError(f"APPEND: {result.status} {result.text!r}")
        await client.logout()
    finally:
        client.close()
    return seconds


def run_server(name: str, messages: Sequence[bytes], timeout: float) -> Run:
    run = Run(name)
    users = [Credentials(USER, PASSWORD)]
    server: AsimapServer | DovecotServer
    if name == "asimap":
        server = AsimapServer(users, store="mh", hash_iterations=1000)
    else:
        server = DovecotServer(users)
    try:
        server.start()
        try:
            if isinstance(server, DovecotServer):
                run.version = f"Dovecot {server.version}"
            else:
                run.version = f"asimap {_git_commit()} (MH store)"
            print(f"{name}: appending {len(messages)} ...", file=sys.stderr)
            run.seconds = asyncio.run(
                append_all(server.host, server.port, messages, timeout)
            )
        finally:
            server.stop()
    except Exception as exc:  # report the other server even if this one fails
        run.problem = f"{type(exc).__name__}: {exc}"
        print(f"{name}: FAILED {run.problem}", file=sys.stderr)
    return run


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.strip()


def markdown(runs: Sequence[Run], count: int) -> str:
    lines = [
        f"APPEND of {count} corpus messages, one client, one after another, "
        "into an empty INBOX.",
        "",
        "| server | total s | msg/s | first tenth ms/APPEND | last tenth ms/APPEND |",
        "|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        if run.problem:
            lines.append(f"| {run.version or run.server} | {run.problem} | | | |")
            continue
        rate = len(run.seconds) / run.total if run.total else 0.0
        lines.append(
            f"| {run.version} | {run.total:.1f} | {rate:.0f} "
            f"| {run.tenth(False) * 1000:.2f} | {run.tenth(True) * 1000:.2f} |"
        )
    by_name = {r.server: r for r in runs if not r.problem and r.total}
    if "asimap" in by_name and "dovecot" in by_name:
        ratio = by_name["dovecot"].total / by_name["asimap"].total
        lines += ["", f"asimap rate / Dovecot rate: {ratio:.2f}x"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.append_bulk", description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--servers", default="asimap,dovecot")
    parser.add_argument("--timeout", type=float, default=120.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    corpus = corpus_messages()
    messages = [corpus[i % len(corpus)] for i in range(args.messages)]
    runs = [
        run_server(name.strip(), messages, args.timeout)
        for name in args.servers.split(",")
        if name.strip()
    ]
    print(markdown(runs, len(messages)))
    return 0 if all(not r.problem for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
