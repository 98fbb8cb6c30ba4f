"""Run many sessions concurrently for a bounded time, and populate mailboxes.

Bounded means: a run ends when its duration has passed (or each client has
run its sessions), and in any case after ``max_duration`` plus one command
timeout, when every still-running client is cancelled.  Nothing here can make
the generator hang or crash on a misbehaving server.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.imapload.client import ImapClient, ImapError, quote
from bench.imapload.scenario import Session, SessionSettings
from bench.imapload.stats import LatencyStats

_EXISTS = re.compile(rb"^\* (\d+) EXISTS", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str


def make_users(pattern: str, password: str, count: int) -> list[Credentials]:
    """``user%d`` with count 3 -> user1..user3; a name without ``%d`` -> one user."""
    if "%d" not in pattern:
        return [Credentials(pattern, password)]
    return [Credentials(pattern % i, password) for i in range(1, count + 1)]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """How much load: N clients for a duration or a number of sessions."""

    clients: int
    duration: float | None = 20.0
    sessions_per_client: int | None = None
    #: Hard cap on any run, also when counting sessions.
    max_duration: float = 600.0
    seed: int = 1


async def _client_loop(
    index: int,
    settings: SessionSettings,
    users: Sequence[Credentials],
    plan: RunPlan,
    stats: LatencyStats,
    deadline: float,
) -> None:
    """One simulated client: sessions back to back until told to stop."""
    rng = random.Random(plan.seed * 1_000_003 + index)
    creds = users[index % len(users)]
    done = 0
    while time.monotonic() < deadline:
        if plan.sessions_per_client is not None and done >= plan.sessions_per_client:
            return
        session = Session(settings, creds.user, creds.password, stats, rng, deadline)
        try:
            outcome = await session.run()
        except Exception as exc:
            # A bug in the generator (or a response it cannot digest) must
            # show up in the report, not end this client silently.
            stats.error("INTERNAL", "bug", repr(exc))
            outcome = False
        done += 1
        if outcome is True:
            stats.sessions_completed += 1
        elif outcome is False:
            stats.sessions_failed += 1
            # Do not hammer a server that refuses us in a tight loop.
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


async def run_load(
    settings: SessionSettings, users: Sequence[Credentials], plan: RunPlan
) -> dict[str, Any]:
    """Run the load and return the JSON-ready report."""
    if plan.clients < 1 or not users:
        raise ValueError("need at least one client and one user")
    stats = LatencyStats()
    cpu_start = time.process_time()
    window = plan.duration if plan.duration is not None else plan.max_duration
    window = min(window, plan.max_duration)
    start = time.monotonic()
    deadline = start + window
    tasks = [
        asyncio.create_task(_client_loop(i, settings, users, plan, stats, deadline))
        for i in range(plan.clients)
    ]
    # Clients stop issuing measured commands at the deadline; the grace lets
    # the command in flight and the unmeasured cleanup finish.
    grace = settings.timeout + 5.0
    _, pending = await asyncio.wait(tasks, timeout=window + grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = min(time.monotonic(), deadline) - start
    report = stats.report(elapsed)
    report["clients"] = plan.clients
    report["users"] = len(users)
    report["cancelled_clients"] = len(pending)
    # If this approaches elapsed_s, the generator (one core) is the bottleneck
    # and the run measures Python, not the server.
    report["generator_cpu_s"] = time.process_time() - cpu_start
    return report


async def _populate_one(
    host: str,
    port: int,
    security: str,
    creds: Credentials,
    messages: Sequence[bytes],
    count: int,
    timeout: float,
) -> int:
    """Top up one INBOX to ``count`` messages; returns how many were added."""
    client = ImapClient(timeout=timeout)
    await client.connect(host, port, security=security)
    try:
        login = await client.login(creds.user, creds.password)
        if not login.ok:
            raise ImapError(f"populate: LOGIN {creds.user} refused: {login.text!r}")
        select = await client.command(b"SELECT " + quote("INBOX"))
        if not select.ok:
            raise ImapError(f"populate: SELECT refused: {select.text!r}")
        exists = 0
        for response in select.untagged:
            match = _EXISTS.match(response.text)
            if match:
                exists = int(match[1])
        added = 0
        for i in range(exists, count):
            result = await client.append("INBOX", messages[i % len(messages)])
            if not result.ok:
                raise ImapError(f"populate: APPEND refused: {result.text!r}")
            added += 1
        await client.logout()
        return added
    finally:
        client.close()


async def populate(
    host: str,
    port: int,
    security: str,
    users: Sequence[Credentials],
    messages: Sequence[bytes],
    count: int,
    *,
    parallel: int = 4,
    timeout: float = 60.0,
) -> int:
    """APPEND corpus messages until every user's INBOX holds ``count``.

    Unlike the measured run, a failure here raises: measuring against
    mailboxes of unknown content would make the comparison meaningless.
    """
    if not messages and count > 0:
        raise ValueError("no corpus messages to populate with")
    limit = asyncio.Semaphore(parallel)

    async def one(creds: Credentials) -> int:
        async with limit:
            return await _populate_one(
                host, port, security, creds, messages, count, timeout
            )

    results = await asyncio.gather(*(one(creds) for creds in users))
    return sum(results)
