"""The seven workloads of issue 11, each a function of (server, scale).

Each returns figures keyed as in its :class:`~bench.suite.model.Metric`
list; a workload never decides pass or fail, the report computes ratios.
Every client connects with implicit TLS, the way a mail client reaches
port 993.
"""

from __future__ import annotations

import asyncio
import functools
import re
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.imapload.client import ImapClient, ImapError, TaggedResult
from bench.imapload.runner import Credentials, RunPlan, run_load
from bench.imapload.scenario import Mix, SessionSettings
from bench.imapload.stats import percentile
from bench.mh_large_data import DataSet, build, corpus_messages
from bench.suite.model import Metric, Scale
from bench.suite.servers import Account, Asimapd, Running, comm, pss_kib

PASSWORD = "secret"
_UIDNEXT = re.compile(rb"UIDNEXT (\d+)")
_LIST_NAME = re.compile(rb'^\* LIST \(([^)]*)\) (?:"[^"]*"|NIL) (.+)$')

#: Workload 1: a client's whole session, from LOGIN to LOGOUT.
MIXED = Mix.parse(
    "list=1,status=2,fetch_flags=1,fetch_headers=0,fetch_envelope=1,"
    "fetch_body=2,store=2,append=1,search=0,noop=0,expunge=1"
)
#: Workload 2: the same work on connections that never log out; NOOP
#: is where each sees the others' changes.
LONG = Mix.parse(
    "fetch_flags=1,fetch_headers=0,fetch_envelope=1,fetch_body=2,store=2,"
    "append=1,search=0,noop=1,expunge=1"
)


@dataclass
class Context:
    """What every workload may use: the scale and the data-set cache."""

    scale: Scale
    cache: Path
    timeout: float = 1800.0

    @functools.cached_property
    def corpus(self) -> list[bytes]:
        return corpus_messages()

    @functools.cached_property
    def crlf_corpus(self) -> list[bytes]:
        return [m.replace(b"\n", b"\r\n") for m in self.corpus]

    def dataset(self, name: str, folders: int, per_folder: int) -> DataSet:
        return build(self.cache, name, folders, per_folder, self.corpus)


def _accounts(users: Sequence[str], data: DataSet | None) -> list[Account]:
    return [
        Account(
            Credentials(user, PASSWORD),
            None if data is None else data.mh,
            None if data is None else data.maildir,
        )
        for user in users
    ]


async def _login(server: Running, user: str, timeout: float) -> ImapClient:
    client = ImapClient(timeout=timeout)
    await client.connect(server.host, server.tls_port, security="tls")
    result = await client.login(user, PASSWORD)
    if not result.ok:
        client.close()
        raise ImapError(f"LOGIN {user}: {result.text!r}")
    return client


async def _ok(action: Awaitable[TaggedResult], what: str) -> TaggedResult:
    result = await action
    if not result.ok:
        raise ImapError(f"{what}: {result.status} {result.text[:200]!r}")
    return result


async def _timed(action: Callable[[], Awaitable[TaggedResult]], what: str) -> float:
    started = time.perf_counter()
    await _ok(action(), what)
    return time.perf_counter() - started


# -- 1 and 2: load ---------------------------------------------------------

LOAD_METRICS = (
    Metric("cmd_s", "commands/s", "cmd/s", "higher"),
    Metric("errors", "errors", "", ""),
    Metric("stalls", "stalls > 3 s", "", ""),
    Metric("p50_ms", "p50 latency", "ms"),
    Metric("p99_ms", "p99 latency", "ms"),
)


def mixed_accounts(ctx: Context) -> list[Account]:
    s = ctx.scale
    data = ctx.dataset("users", s.folders_per_user, s.per_folder)
    return _accounts([f"user{i}" for i in range(1, s.mixed_users + 1)], data)


def long_accounts(ctx: Context) -> list[Account]:
    data = ctx.dataset("users", ctx.scale.folders_per_user, ctx.scale.per_folder)
    return _accounts(["shared"], data)


async def _load(
    server: Running, ctx: Context, users: Sequence[str], clients: int, mix: Mix,
    repeat: int,
) -> dict[str, Any]:  # fmt: skip
    settings = SessionSettings(
        host=server.host,
        port=server.tls_port,
        security="tls",
        mix=mix,
        messages=tuple(ctx.crlf_corpus[:200]),
        repeat=repeat,
        timeout=60.0,
    )
    creds = [Credentials(user, PASSWORD) for user in users]
    if ctx.scale.warmup > 0:
        await run_load(settings, creds, RunPlan(clients, ctx.scale.warmup, seed=2))
    report = await run_load(settings, creds, RunPlan(clients, ctx.scale.duration))
    return {
        "cmd_s": report["commands_per_s"],
        "errors": report["errors"],
        "stalls": report["stalls"],
        "p50_ms": report["p50_ms"],
        "p99_ms": report["p99_ms"],
        "_report": report,
    }


async def mixed_load(server: Running, ctx: Context) -> dict[str, Any]:
    s = ctx.scale
    users = [f"user{i}" for i in range(1, s.mixed_users + 1)]
    return await _load(server, ctx, users, s.mixed_clients, MIXED, 1)


async def long_lived(server: Running, ctx: Context) -> dict[str, Any]:
    return await _load(server, ctx, ["shared"], ctx.scale.long_clients, LONG, 10**6)


# -- 3: a big folder, cold and warm -------------------------------------------

BIG_COMMANDS = (
    ("select", "SELECT INBOX"),
    ("flags", "UID FETCH 1:* (UID FLAGS)"),
    ("envelope", "UID FETCH <newest 500> (ENVELOPE)"),
    ("search_from", 'UID SEARCH FROM "Sam Reiter"'),
    ("search_body", 'UID SEARCH BODY "underrun"'),
    ("sort_date", "UID SORT (DATE) UTF-8 ALL"),
    ("sort_subject", "UID SORT (SUBJECT) UTF-8 ALL"),
    ("thread", "UID THREAD REFERENCES UTF-8 ALL"),
)
BIG_METRICS = tuple(
    Metric(f"{key}_{kind}", f"{text} ({kind})", "ms")
    for kind in ("cold", "warm")
    for key, text in BIG_COMMANDS
)


def big_accounts(ctx: Context) -> list[Account]:
    data = ctx.dataset("folder", 1, ctx.scale.big_messages)
    return _accounts(["big"], data)


def _count(result: TaggedResult) -> int:
    """Numbers in the SEARCH/SORT answer, responses otherwise."""
    for response in result.untagged:
        head = response.text[:9].upper()
        if head.startswith((b"* SEARCH", b"* SORT")):
            return len(response.text.split()) - 2
        if head.startswith(b"* THREAD"):
            return response.text.count(b"(")
    return len(result.untagged)


async def big_folder(server: Running, ctx: Context) -> dict[str, Any]:
    client = await _login(server, "big", ctx.timeout)
    out: dict[str, Any] = {}
    counts: dict[str, int] = {}
    try:
        lines: dict[str, bytes] = {}
        for kind in ("cold", "warm"):
            repeats = 1 if kind == "cold" else ctx.scale.big_repeat
            for key, text in BIG_COMMANDS:
                runs = []
                for _ in range(repeats):
                    line = lines.get(key, text.encode())
                    started = time.perf_counter()
                    result = await _ok(client.command(line), text)
                    runs.append(time.perf_counter() - started)
                    counts[key] = _count(result)
                    if key == "select" and "envelope" not in lines:
                        uidnext = next(
                            int(m[1])
                            for r in result.untagged
                            if (m := _UIDNEXT.search(r.text))
                        )
                        newest = f"{max(1, uidnext - 500)}:{uidnext - 1}"
                        lines["envelope"] = f"UID FETCH {newest} (ENVELOPE)".encode()
                out[f"{key}_{kind}"] = statistics.median(runs) * 1000
        await client.logout()
    finally:
        client.close()
    out["_counts"] = counts
    return out


# -- 4: IDLE memory and delivery latency ------------------------------------

#: How long an IDLE connection may take to see a delivery before it counts
#: as missed (and is left out of the latencies).
IDLE_PATIENCE = 5.0

IDLE_METRICS = (
    Metric("per_conn_kib", "PSS per IDLE connection (added)", "KiB"),
    Metric("total_per_conn_kib", "PSS of all processes / connections", "KiB"),
    Metric("p50_ms", "delivery to IDLE, p50", "ms"),
    Metric("p99_ms", "delivery to IDLE, p99", "ms"),
    Metric("max_ms", "delivery to IDLE, max", "ms"),
    Metric("after_ok_p99_ms", "delivery to IDLE after the APPEND's OK, p99", "ms"),
    Metric("missed", f"deliveries not seen within {IDLE_PATIENCE:g} s", "", ""),
)


def idle_accounts(ctx: Context) -> list[Account]:
    data = ctx.dataset("users", ctx.scale.folders_per_user, ctx.scale.per_folder)
    return _accounts([f"idle{i}" for i in range(1, ctx.scale.idle_users + 1)], data)


async def _settle_pss(server: Running) -> dict[int, int]:
    """PSS by process once they stopped moving (lazy frees, late workers)."""
    await asyncio.sleep(1.0)
    return {pid: pss_kib([pid]) for pid in server.pids()}


def _by_role(server: Running, pss: dict[int, int]) -> dict[str, int]:
    """PSS summed by process role (main, zygote, workers; Dovecot's by name)."""
    out: dict[str, int] = {}
    pids = server.pids()
    for pid, kib in pss.items():
        name = comm(pid)
        if pids and pid == pids[0]:
            role = "main"
        elif name.startswith("asimap-w:"):
            role = "workers"
        else:
            role = name
        out[role] = out.get(role, 0) + kib
    return out


async def _stamp(waiter: Awaitable[object], started: float) -> float:
    """Seconds from ``started`` until ``waiter`` is done."""
    await waiter
    return time.perf_counter() - started


async def idle(server: Running, ctx: Context) -> dict[str, Any]:
    s = ctx.scale
    users = [f"idle{i}" for i in range(1, s.idle_users + 1)]
    senders = {user: await _login(server, user, 60) for user in users}
    for sender in senders.values():
        await _ok(sender.command(b"SELECT INBOX"), "SELECT")
    baseline = await _settle_pss(server)
    limit = asyncio.Semaphore(20)
    idlers: dict[str, list[ImapClient]] = {user: [] for user in users}

    async def park(index: int) -> None:
        user = users[index % len(users)]
        async with limit:
            client = await _login(server, user, 60)
            await _ok(client.command(b"SELECT INBOX"), "SELECT")
            await client.idle_start()
        idlers[user].append(client)

    try:
        await asyncio.gather(*(park(i) for i in range(s.idle_connections)))
        loaded = await _settle_pss(server)
        latencies: list[float] = []
        #: The same, from the APPEND's tagged OK (the store's work done):
        #: how long telling every IDLE connection takes.
        after_ok: list[float] = []
        missed = 0
        message = ctx.crlf_corpus[0]
        for _ in range(s.idle_rounds):
            for user in users:
                waiters = [
                    asyncio.ensure_future(c.idle_wait(b" EXISTS")) for c in idlers[user]
                ]
                await asyncio.sleep(0)
                started = time.perf_counter()
                await _ok(senders[user].append("INBOX", message), "APPEND")
                acked = time.perf_counter() - started
                stamps = [
                    asyncio.ensure_future(_stamp(waiter, started)) for waiter in waiters
                ]
                done, late = await asyncio.wait(stamps, timeout=IDLE_PATIENCE)
                latencies.extend(stamp.result() for stamp in done)
                after_ok.extend(max(0.0, stamp.result() - acked) for stamp in done)
                missed += len(late)
                for stamp in late:
                    stamp.cancel()
                for waiter in waiters:
                    waiter.cancel()
                await asyncio.gather(*stamps, *waiters, return_exceptions=True)
        ordered = sorted(latencies)
        before, after = _by_role(server, baseline), _by_role(server, loaded)
        n = s.idle_connections
        split = ", ".join(
            f"{role} {(after[role] - before.get(role, 0)) / n:.0f}"
            for role in sorted(after, key=lambda r: before.get(r, 0) - after[r])[:4]
        )
        return {
            "per_conn_kib": (sum(loaded.values()) - sum(baseline.values())) / n,
            "total_per_conn_kib": sum(loaded.values()) / n,
            "_notes": [f"KiB per connection added, by process: {split}"],
            "p50_ms": percentile(ordered, 50) * 1000,
            "p99_ms": percentile(ordered, 99) * 1000,
            "max_ms": ordered[-1] * 1000 if ordered else 0.0,
            "after_ok_p99_ms": percentile(sorted(after_ok), 99) * 1000,
            "missed": missed,
        }
    finally:
        for clients in idlers.values():
            for client in clients:
                client.close()
        for sender in senders.values():
            sender.close()


# -- 5: first login of an account with many folders ---------------------------

MANY_METRICS = (
    Metric("login_ms", "connect + LOGIN", "ms"),
    Metric("list_ms", 'LIST "" "*"', "ms"),
    Metric("status_ms", "STATUS of every folder", "ms"),
    Metric("total_ms", "all of it", "ms"),
)


def many_accounts(ctx: Context) -> list[Account]:
    data = ctx.dataset("account", ctx.scale.many_folders, ctx.scale.many_per_folder)
    return _accounts(["many"], data)


async def many_folders(server: Running, ctx: Context) -> dict[str, Any]:
    started = time.perf_counter()
    client = await _login(server, "many", ctx.timeout)
    login = time.perf_counter() - started
    try:
        t0 = time.perf_counter()
        listed = await _ok(client.command(b'LIST "" "*"'), "LIST")
        list_s = time.perf_counter() - t0
        names = [
            m[2]
            for r in listed.untagged
            if (m := _LIST_NAME.match(r.text)) and b"\\noselect" not in m[1].lower()
        ]
        t0 = time.perf_counter()
        for name in names:
            await _ok(
                client.command(b"STATUS " + name + b" (MESSAGES UIDNEXT UNSEEN)"),
                "STATUS",
            )
        status_s = time.perf_counter() - t0
        await client.logout()
    finally:
        client.close()
    return {
        "login_ms": login * 1000,
        "list_ms": list_s * 1000,
        "status_ms": status_s * 1000,
        "total_ms": (time.perf_counter() - started) * 1000,
        "_counts": {"folders": len(names)},
    }


# -- 6: a 25 MB message, and bulk APPEND ---------------------------------------

BULK_METRICS = (
    Metric("append_big_mb_s", "APPEND of the big message", "MB/s", "higher"),
    Metric("fetch_big_mb_s", "FETCH BODY.PEEK[] of it", "MB/s", "higher"),
    Metric("bulk_s", "bulk APPEND, one a command", "s"),
    Metric("multi_s", "bulk MULTIAPPEND", "s"),
    Metric("peak_kib", "server PSS after the big FETCH", "KiB"),
)


def bulk_accounts(ctx: Context) -> list[Account]:
    return _accounts(["bulk1", "bulk2", "bulk3"], None)


def big_message(size: int) -> bytes:
    head = b"From: bench@example.org\r\nSubject: big\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    body = line * ((size - len(head)) // len(line))
    return head + body + b"y" * (size - len(head) - len(body))


async def bulk(server: Running, ctx: Context) -> dict[str, Any]:
    s = ctx.scale
    size = int(s.big_size_mb * 1_000_000)
    message = big_message(size)
    out: dict[str, Any] = {}
    client = await _login(server, "bulk1", ctx.timeout)
    try:
        appends = [
            await _timed(functools.partial(client.append, "INBOX", message), "APPEND")
            for _ in range(s.big_rounds)
        ]
        await _ok(client.command(b"SELECT INBOX"), "SELECT")
        fetches = []
        for n in range(1, s.big_rounds + 1):
            started = time.perf_counter()
            result = await _ok(client.command(b"FETCH %d BODY.PEEK[]" % n), "FETCH")
            fetches.append(time.perf_counter() - started)
            got = sum(len(lit) for r in result.untagged for lit in r.literals)
            if got != size:
                raise ImapError(f"FETCH returned {got} octets, not {size}")
        out["append_big_mb_s"] = s.big_size_mb / statistics.median(appends)
        out["fetch_big_mb_s"] = s.big_size_mb / statistics.median(fetches)
        out["peak_kib"] = pss_kib(server.pids())
        await client.logout()
    finally:
        client.close()
    messages = [ctx.crlf_corpus[i % len(ctx.crlf_corpus)] for i in range(s.bulk_count)]
    client = await _login(server, "bulk2", ctx.timeout)
    try:
        started = time.perf_counter()
        for one in messages:
            await _ok(client.append("INBOX", one), "APPEND")
        out["bulk_s"] = time.perf_counter() - started
        await client.logout()
    finally:
        client.close()
    client = await _login(server, "bulk3", ctx.timeout)
    try:
        started = time.perf_counter()
        for at in range(0, len(messages), s.multi_batch):
            batch = messages[at : at + s.multi_batch]
            await _ok(client.multiappend("INBOX", batch), "MULTIAPPEND")
        out["multi_s"] = time.perf_counter() - started
        for user in ("bulk2", "bulk3"):
            check = await _login(server, user, 60) if user != "bulk3" else client
            status = await _ok(check.command(b"STATUS INBOX (MESSAGES)"), "STATUS")
            text = b" ".join(r.text for r in status.untagged)
            if b"MESSAGES %d" % len(messages) not in text:
                raise ImapError(f"{user}: expected {len(messages)}: {text!r}")
            if check is not client:
                await check.logout()
        await client.logout()
    finally:
        client.close()
    return out


# -- 7: login with no running worker ------------------------------------------

COLD_METRICS = (
    Metric("connect_login_ms", "connect + TLS + LOGIN, median", "ms"),
    Metric("login_ms", "LOGIN alone, median", "ms"),
    Metric("login_max_ms", "LOGIN alone, max", "ms"),
)
#: asimap's worker for the user exits this long after its last connection.
COLD_LINGER = 0.2


def cold_accounts(ctx: Context) -> list[Account]:
    data = ctx.dataset("users", ctx.scale.folders_per_user, ctx.scale.per_folder)
    return _accounts(["cold"], data)


async def cold_login(server: Running, ctx: Context) -> dict[str, Any]:
    total: list[float] = []
    login: list[float] = []
    for _ in range(ctx.scale.cold_rounds + 1):
        if isinstance(server, Asimapd):
            deadline = time.monotonic() + 10
            while server.workers() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        else:
            await asyncio.sleep(COLD_LINGER)
        client = ImapClient(timeout=60)
        started = time.perf_counter()
        await client.connect(server.host, server.tls_port, security="tls")
        sent = time.perf_counter()
        await _ok(client.login("cold", PASSWORD), "LOGIN")
        done = time.perf_counter()
        total.append(done - started)
        login.append(done - sent)
        await client.logout()
    # The first round pays for imports and caches on both sides: not counted.
    total, login = total[1:], login[1:]
    return {
        "connect_login_ms": statistics.median(total) * 1000,
        "login_ms": statistics.median(login) * 1000,
        "login_max_ms": max(login) * 1000,
    }
