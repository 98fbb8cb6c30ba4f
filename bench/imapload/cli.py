"""Command line of the load generator: ``python -m bench.imapload --help``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.imapload.corpus import DEFAULT_CORPUS, load_corpus
from bench.imapload.runner import RunPlan, make_users, populate, run_load
from bench.imapload.scenario import Mix, SessionSettings
from bench.imapload.stats import format_report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imapload",
        description="Drive N concurrent realistic IMAP sessions against a server.",
    )
    add_load_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=143)
    parser.add_argument(
        "--security", choices=("plain", "tls", "starttls"), default="starttls"
    )
    parser.add_argument("--user", default="user%d", help="name, or pattern with %%d")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON")
    return parser


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared with bench.compare, so both describe load the same way."""
    parser.add_argument("--users", type=int, default=10, help="users for %%d")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds")
    parser.add_argument(
        "--sessions", type=int, help="sessions per client instead of a duration"
    )
    parser.add_argument("--max-duration", type=float, default=600.0)
    parser.add_argument(
        "--populate",
        type=int,
        default=0,
        metavar="K",
        help="top up each INBOX to K corpus messages before measuring",
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument(
        "--mix", default="", help="e.g. fetch_body=3,search=0 (see scenario.py)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="work blocks per login session"
    )
    parser.add_argument("--think-ms", type=float, default=0.0)
    parser.add_argument("--search", default='SUBJECT "usrp"')
    parser.add_argument("--timeout", type=float, default=30.0, help="per command")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--uvloop", action="store_true", help="run the generator on uvloop"
    )


def settings_from(
    args: argparse.Namespace,
    host: str,
    port: int,
    security: str,
    messages: Sequence[bytes],
) -> SessionSettings:
    return SessionSettings(
        host=host,
        port=port,
        security=security,
        mix=Mix.parse(args.mix),
        messages=tuple(messages),
        repeat=args.repeat,
        think_s=args.think_ms / 1000,
        search=args.search.encode("utf-8"),
        timeout=args.timeout,
    )


def plan_from(args: argparse.Namespace) -> RunPlan:
    return RunPlan(
        clients=args.clients,
        duration=None if args.sessions is not None else args.duration,
        sessions_per_client=args.sessions,
        max_duration=args.max_duration,
        seed=args.seed,
    )


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    messages = load_corpus(args.corpus, limit=max(args.populate, 200))
    users = make_users(args.user, args.password, args.users)
    settings = settings_from(args, args.host, args.port, args.security, messages)
    if args.populate:
        added = await populate(
            args.host, args.port, args.security, users, messages, args.populate
        )
        print(f"populated: {added} messages appended", file=sys.stderr)
    return await run_load(settings, users, plan_from(args))


def run_event_loop(coro: Any, use_uvloop: bool) -> Any:
    """Run ``coro`` on asyncio or, if asked and installed, uvloop."""
    if use_uvloop:
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = run_event_loop(_main(args), args.uvloop)
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0
