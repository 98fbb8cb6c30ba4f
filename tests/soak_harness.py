"""A bounded soak: N IMAP clients (bench.imapload's client) and an nmh loop
on the same folders of one account, served by a real ``asimapd`` in
worker mode, for ``--minutes``; checked against a model at the end, with
the worker's and the main process's memory (PSS), open descriptors and
the command latencies sampled all along.

The trend check compares the first and the last third of the samples
with a generous margin: it looks for growth (a leak), not for speed.

``scripts/soak --minutes 30`` (as root); writes a CSV and prints a
summary table in Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench.imapload import ImapClient  # noqa: E402

from worker_harness import IS_ROOT, PASSWORDS, UIDS, Asimapd, mail_setup  # noqa: E402

USER = "demo"
FOLDERS = ("INBOX", "A")
NMH_BIN = Path("/usr/bin/mh")
#: Most messages of its own a client keeps in a folder, and the nmh loop
#: in both: past it an append becomes a deletion, so the folders stop
#: growing after the first minutes and a growing cost is the server's, not
#: the workload's (deleting at random, as often as appending, lets each
#: share drift up like a random walk: 450 to 1,526 messages in 30 minutes).
CLIENT_KEEPS = 6
NMH_KEEPS = 100


def message(mid: str, rng: random.Random) -> bytes:
    body = (f"soak line of {mid} " * 4 + "\r\n") * rng.randint(2, 200)
    return (
        f"From: soak@example.org\r\nTo: demo@example.org\r\nSubject: soak {mid}\r\n"
        f"Message-ID: <{mid}>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n{body}"
    ).encode()


@dataclass
class Model:
    """Where each message should be at the end (None: deleted)."""

    place: dict[str, str | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, mid: str, folder: str | None) -> None:
        with self.lock:
            self.place[mid] = folder


@dataclass
class Samples:
    latencies: list[tuple[float, float]] = field(default_factory=list)
    rows: list[dict[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ops: int = 0
    nmh_ops: int = 0


def proc_pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def imap_client(
    index: int, port: int, cert: Path, deadline: float, model: Model, samples: Samples
) -> None:
    import ssl

    rng = random.Random(index)
    context = ssl.create_default_context(cafile=str(cert))
    client = ImapClient(timeout=120)
    await client.connect("127.0.0.1", port, security="tls", context=context)
    assert (await client.login(USER, PASSWORDS[USER])).ok
    mine: dict[str, list[str]] = {f: [] for f in FOLDERS}
    n = 0
    while time.monotonic() < deadline:
        folder = rng.choice(FOLDERS)
        action = rng.choices(
            ["append", "fetch", "search", "store", "delete", "status"],
            # Appends past CLIENT_KEEPS become deletions (below).
            [2, 3, 2, 2, 2, 1],
        )[0]
        if action == "append" and len(mine[folder]) >= CLIENT_KEEPS:
            action = "delete"
        started = time.monotonic()
        if action == "append":
            n += 1
            mid = f"c{index}.{n}@soak"
            result = await client.append(folder, message(mid, rng))
            if result.ok:
                model.put(mid, folder)
                mine[folder].append(mid)
        elif action == "status":
            result = await client.command(
                b'STATUS "%s" (MESSAGES UIDNEXT)' % folder.encode()
            )
        else:
            result = await client.command(b'SELECT "%s"' % folder.encode())
            if not result.ok:
                samples.errors.append(f"SELECT {folder}: {result.text!r}")
                continue
            if action == "fetch":
                result = await client.command(
                    b"FETCH 1:50 (UID FLAGS RFC822.SIZE ENVELOPE)"
                )
            elif action == "search":
                result = await client.command(b'UID SEARCH SUBJECT "soak c1"')
            elif action == "store":
                flag = rng.choice([b"\\Flagged", b"\\Seen", b"$Soak"])
                sign = rng.choice([b"+", b"-"])
                result = await client.command(
                    b"STORE 1:* %sFLAGS.SILENT (%s)" % (sign, flag)
                )
            elif action == "delete" and mine[folder]:
                mid = mine[folder].pop(rng.randrange(len(mine[folder])))
                found = await client.command(
                    b'UID SEARCH HEADER Message-ID "%s"' % mid.encode()
                )
                uids = [
                    u
                    for r in found.untagged
                    if r.text.startswith(b"* SEARCH")
                    for u in r.text.split()[2:]
                ]
                if len(uids) != 1:
                    samples.errors.append(f"{mid} in {folder}: UIDs {uids}")
                    continue
                await client.command(
                    b"UID STORE %s +FLAGS.SILENT (\\Deleted)" % uids[0]
                )
                result = await client.command(b"UID EXPUNGE %s" % uids[0])
                if result.ok:
                    model.put(mid, None)
            await client.command(b"UNSELECT")
        if not result.ok and action in ("append", "delete", "status"):
            # (FETCH/STORE 1:* on an empty folder, or under another
            # client's EXPUNGE, may rightly answer NO.)
            samples.errors.append(f"{action} {folder}: {result.text[:200]!r}")
        samples.latencies.append((time.monotonic(), time.monotonic() - started))
        samples.ops += 1
    await client.logout()
    client.close()


class NmhLoop:
    """inc, mark, rmm and refile, as the mail root's owner."""

    def __init__(self, root: Path, base: Path, model: Model, samples: Samples) -> None:
        self.root, self.model, self.samples = root, model, samples
        self.home = Path(tempfile.mkdtemp(prefix="soak-nmh-", dir=base))
        (self.home / ".mh_profile").write_text(
            f"Path: {root}\nUnseen-Sequence: unseen\n"
        )
        if IS_ROOT:
            for path in (self.home, self.home / ".mh_profile"):
                os.chown(path, UIDS[USER], UIDS[USER])
        self.rng = random.Random(99)
        self.mine: dict[str, list[str]] = {"inbox": [], "A": []}
        self.n = 0

    def run(self, *argv: str) -> str:
        done = subprocess.run(
            [str(NMH_BIN / argv[0]), *argv[1:]],
            env={
                "PATH": f"{NMH_BIN}:/usr/bin:/bin",
                "HOME": str(self.home),
                "MH": str(self.home / ".mh_profile"),
                "LC_ALL": "C",
            },
            capture_output=True,
            timeout=120,
            check=False,
            user=UIDS[USER] if IS_ROOT else None,
            group=UIDS[USER] if IS_ROOT else None,
        )
        if done.returncode != 0:
            self.samples.errors.append(f"nmh {argv}: {done.stderr[:200]!r}")
        return done.stdout.decode("utf-8", "replace")

    def number(self, folder: str, mid: str) -> str | None:
        out = self.run("pick", f"+{folder}", "--message-id", f"<{mid}>").split()
        return out[0] if len(out) == 1 else None

    def step(self) -> None:
        action = self.rng.choices(["inc", "mark", "rmm", "refile"], [1, 2, 2, 1])[0]
        if action == "inc" and sum(map(len, self.mine.values())) >= NMH_KEEPS:
            action = "rmm"
        if action == "inc":
            mbox = self.home / "drop"
            mids = []
            with mbox.open("wb") as out:
                for _ in range(self.rng.randint(1, 3)):
                    self.n += 1
                    mid = f"n{self.n}@soak"
                    mids.append(mid)
                    raw = message(mid, self.rng).replace(b"\r\n", b"\n")
                    out.write(
                        b"From soak@example.org Mon Dec  7 10:00:00 2026\n"
                        + raw
                        + b"\n"
                    )
            if IS_ROOT:
                os.chown(mbox, UIDS[USER], UIDS[USER])
            self.run("inc", "+inbox", "-file", str(mbox), "-silent", "-notruncate")
            mbox.unlink()
            for mid in mids:
                self.model.put(mid, "INBOX")
                self.mine["inbox"].append(mid)
            return
        folder = self.rng.choice(["inbox", "A"])
        if not self.mine[folder]:
            return
        mid = self.rng.choice(self.mine[folder])
        number = self.number(folder, mid)
        if number is None:
            self.samples.errors.append(f"nmh cannot find {mid} in {folder}")
            return
        if action == "mark":
            self.run("mark", f"+{folder}", number, "-sequence", "flagged", "-add")
        elif action == "rmm":
            self.run("rmm", f"+{folder}", number)
            self.mine[folder].remove(mid)
            self.model.put(mid, None)
        elif action == "refile" and folder == "inbox":
            self.run("refile", "-src", "+inbox", number, "+A")
            self.mine["inbox"].remove(mid)
            self.mine["A"].append(mid)
            self.model.put(mid, "A")
        self.samples.nmh_ops += 1

    def loop(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            self.step()
            time.sleep(0.2)


def sampler(server: Asimapd, deadline: float, every: float, samples: Samples) -> None:
    start = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(every)
        if time.monotonic() >= deadline:
            break  # the clients are logging out: not the steady state
        now = time.monotonic()
        window = [lat for at, lat in samples.latencies if now - every <= at]
        worker = server.workers().get(USER)
        if worker is None:
            samples.errors.append("no worker")
            continue
        samples.rows.append(
            {
                "seconds": round(now - start, 1),
                "worker_pss_kib": proc_pss_kb(worker),
                "worker_fds": proc_fds(worker),
                "main_pss_kib": proc_pss_kb(server.pid),
                "main_fds": proc_fds(server.pid),
                "commands": len(window),
                "p50_ms": round(1000 * statistics.median(window), 2) if window else 0,
                "p95_ms": round(1000 * sorted(window)[int(0.95 * (len(window) - 1))], 2)
                if window
                else 0,
            }
        )


def final_check(server: Asimapd, root: Path, model: Model) -> list[str]:
    """Every message where the model says, exactly once, nowhere else."""
    problems: list[str] = []
    found: dict[str, list[str]] = {}
    for folder in FOLDERS:
        directory = root / ("inbox" if folder == "INBOX" else folder)
        for path in directory.iterdir():
            if path.name.isdigit():
                for line in path.read_bytes().splitlines():
                    if line.lower().startswith(b"message-id:"):
                        mid = line.split(b"<")[1].split(b">")[0].decode()
                        found.setdefault(mid, []).append(folder)
                        break

    async def imap_view() -> dict[str, list[str]]:
        import ssl

        view: dict[str, list[str]] = {}
        context = ssl.create_default_context(cafile=str(server.cert))
        client = ImapClient(timeout=120)
        await client.connect(
            "127.0.0.1", server.ports["imaps"], security="tls", context=context
        )
        await client.login(USER, PASSWORDS[USER])
        for folder in FOLDERS:
            await client.command(b'SELECT "%s"' % folder.encode())
            result = await client.command(
                b"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            )
            for response in result.untagged:
                for literal in response.literals:
                    mid = literal.split(b"<")[1].split(b">")[0].decode()
                    view.setdefault(mid, []).append(folder)
        await client.logout()
        client.close()
        return view

    view = asyncio.run(imap_view())
    for mid, place in model.place.items():
        want = [] if place is None else [place]
        if found.get(mid, []) != want:
            problems.append(f"{mid}: files in {found.get(mid)}, model {want}")
        if view.get(mid, []) != want:
            problems.append(f"{mid}: IMAP shows {view.get(mid)}, model {want}")
    for mid in set(found) | set(view):
        if mid not in model.place:
            problems.append(f"{mid}: unknown message")
    return problems


def thirds(rows: list[dict[str, float]], key: str) -> tuple[float, float]:
    third = max(1, len(rows) // 3)
    first = statistics.mean(r[key] for r in rows[:third])
    last = statistics.mean(r[key] for r in rows[-third:])
    return first, last


def trend_problems(rows: list[dict[str, float]]) -> list[str]:
    """Flat within a generous margin: a leak grows, noise does not double."""
    problems = []
    limits = {
        "worker_pss_kib": lambda a: a * 1.5 + 20_000,
        "main_pss_kib": lambda a: a * 1.5 + 20_000,
        # The worker keeps replaced .mh_sequences files open for 5 s (up to
        # 256 a folder, asimap.store.mh.seqfile.OrphanWatch): the count
        # follows the write rate, so the margin is wide.
        "worker_fds": lambda a: a * 1.5 + 100,
        "main_fds": lambda a: a + 20,
        "p50_ms": lambda a: a * 3 + 50,
    }
    for key, limit in limits.items():
        first, last = thirds(rows, key)
        if last > limit(first):
            problems.append(
                f"{key} grew: first third {first:.1f}, last third {last:.1f}"
            )
    return problems


def summary(rows: list[dict[str, float]]) -> str:
    lines = [
        "| Sampled | first third | last third | peak |",
        "| --- | --- | --- | --- |",
    ]
    for key in (
        "worker_pss_kib",
        "worker_fds",
        "main_pss_kib",
        "main_fds",
        "p50_ms",
        "p95_ms",
        "commands",
    ):
        first, last = thirds(rows, key)
        peak = max(r[key] for r in rows)
        lines.append(f"| {key} | {first:.1f} | {last:.1f} | {peak:.1f} |")
    return "\n".join(lines)


def soak(seconds: float, clients: int, every: float, csv_path: Path) -> int:
    from asimap.tls import generate_self_signed

    with mail_setup() as setup:
        cert, key = setup.base / "cert.pem", setup.base / "key.pem"
        generate_self_signed(cert, key, ["127.0.0.1", "localhost"])
        # All the clients come from 127.0.0.1 and log in at once: the
        # per-address cap on connections not yet logged in (20 by default,
        # against one host opening many) must let them all through.
        server = Asimapd(setup, cert, key, f"--max-prelogin-per-address={clients + 10}")
        samples, model = Samples(), Model()
        try:

            async def prepare() -> None:
                import ssl

                c = ImapClient(timeout=60)
                await c.connect(
                    "127.0.0.1",
                    server.ports["imaps"],
                    security="tls",
                    context=ssl.create_default_context(cafile=str(cert)),
                )
                await c.login(USER, PASSWORDS[USER])
                await c.command(b"CREATE A")
                await c.logout()

            asyncio.run(prepare())
            deadline = time.monotonic() + seconds
            nmh = NmhLoop(setup.roots[USER], setup.base, model, samples)
            threads = [
                threading.Thread(target=nmh.loop, args=(deadline,)),
                threading.Thread(
                    target=sampler, args=(server, deadline, every, samples)
                ),
            ]
            for thread in threads:
                thread.start()

            async def load() -> None:
                await asyncio.gather(
                    *(
                        imap_client(
                            i, server.ports["imaps"], cert, deadline, model, samples
                        )
                        for i in range(clients)
                    )
                )

            asyncio.run(load())
            for thread in threads:
                thread.join()
            problems = final_check(server, setup.roots[USER], model)
        finally:
            status = server.stop()
        with csv_path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(samples.rows[0]))
            writer.writeheader()
            writer.writerows(samples.rows)
        kept = sum(1 for p in model.place.values() if p is not None)
        print(
            f"{seconds / 60:.0f} min, {clients} IMAP clients + nmh loop: "
            f"{samples.ops} IMAP commands, {samples.nmh_ops} nmh changes, "
            f"{len(model.place)} messages made, {kept} kept; "
            f"{len(samples.rows)} samples every {every} s -> {csv_path}"
        )
        print(summary(samples.rows))
        problems += trend_problems(samples.rows)
        problems += samples.errors[:20]
        if status != 0:
            problems.append(f"asimapd exited {status}")
        for problem in problems:
            print("PROBLEM:", problem)
        print("model check:", "FAILED" if problems else "passed")
        return 1 if problems else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument(
        "--every", type=float, default=5.0, help="seconds between samples"
    )
    parser.add_argument("--csv", type=Path, default=Path("soak.csv"))
    args = parser.parse_args(argv)
    return soak(args.minutes * 60, args.clients, args.every, args.csv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
