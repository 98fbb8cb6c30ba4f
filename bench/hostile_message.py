"""A hostile message -- a To: of 1.4 million addresses -- asimap vs Dovecot.

Issue 12 found one 62 MB message of that kind costing a worker 37.6 s and
2 GB for its first FETCH ENVELOPE; ``asimap.message.limits`` bounds what
such a message costs.  This measures both servers on the same messages, in
one run, each in turn (design.md section 4 rule 5: ratios, never timed assertions):
``--copies`` copies of a message whose To: holds ``--addresses`` addresses
are put in INBOX (asimap: an MH folder; Dovecot: its Maildir), then after
SELECT: ``FETCH 1 (ENVELOPE)``, ``UID SORT (TO) UTF-8 ALL`` and
``UID SEARCH TO <an address>``, with the time of each and the peak
resident size (VmHWM) of the process serving the user: asimap's server
process (single-process mode, as ``bench.asimap_server`` runs it) and
Dovecot's ``imap`` process.

    python -m bench.hostile_message                       # 1.4 M addresses, 5 copies
    python -m bench.hostile_message --addresses 200000 --copies 1

Not a test: pytest never runs it.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.asimap_server import AsimapServer
from bench.dovecot import NOBODY, DovecotServer
from bench.imapload.runner import Credentials

USER = Credentials("bench", "bench-secret")


def hostile_message(addresses: int) -> bytes:
    """One message whose To: field holds ``addresses`` addresses."""
    to = b",\r\n\t".join(
        b'"Person %07d" <p%07d@example.org>' % (i, i) for i in range(addresses)
    )
    return (
        b"From: a@example.org\r\nSubject: many\r\n"
        b"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <many@example.org>\r\n"
        b"To: " + to + b"\r\n\r\nhello\r\n"
    )


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def imap_pids() -> set[int]:
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "imap":
                    found.add(int(entry))
            except OSError:
                continue
    return found


Row = tuple[str, float, float]


def run_commands(client: imaplib.IMAP4, pid: Callable[[], int]) -> list[Row]:
    imaplib._MAXLINE = 1 << 31  # type: ignore[attr-defined]
    client.select("INBOX")
    rows: list[Row] = []
    commands: list[tuple[str, Callable[[], object]]] = [
        ("FETCH 1 (ENVELOPE)", lambda: client.fetch("1", "(ENVELOPE)")),
        ("UID SORT (TO) UTF-8 ALL", lambda: client.uid("SORT", "(TO)", "UTF-8", "ALL")),
        ("UID SEARCH TO p0000003", lambda: client.uid("SEARCH", "TO", "p0000003")),
    ]
    for name, command in commands:
        started = time.monotonic()
        command()
        rows.append((name, time.monotonic() - started, peak_mib(pid())))
    client.logout()
    return rows


def measure_asimap(raw: bytes, copies: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        inbox = Path(tmp) / "mh" / "inbox"
        inbox.mkdir(parents=True)
        for number in range(1, copies + 1):
            (inbox / str(number)).write_bytes(raw)
        maildirs = {USER.user: Path(tmp) / "mh"}
        with AsimapServer([USER], store="mh", maildirs=maildirs) as server:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            client = imaplib.IMAP4_SSL(
                server.host, server.tls_port, ssl_context=context
            )
            client.login(USER.user, USER.password)
            process = server._process
            assert process is not None
            return run_commands(client, lambda: process.pid)


def measure_dovecot(raw: bytes, copies: int) -> list[Row]:
    with DovecotServer([USER]) as server:
        assert server.root is not None
        before = imap_pids()
        client = imaplib.IMAP4(server.host, server.port)
        client.login(USER.user, USER.password)
        new = server.root / "mail" / USER.user / "new"
        new.mkdir(parents=True, exist_ok=True)
        for number in range(copies):
            path = new / f"{1000 + number}.M1P1.bench"
            path.write_bytes(raw)
            if os.geteuid() == 0:
                os.chown(path, NOBODY, NOBODY)
        if os.geteuid() == 0:
            for directory in (new.parent, new):
                os.chown(directory, NOBODY, NOBODY)
        started = imap_pids() - before
        pid = next(iter(started))
        return run_commands(client, lambda: pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--addresses", type=int, default=1_400_000)
    parser.add_argument("--copies", type=int, default=5)
    args = parser.parse_args()
    raw = hostile_message(args.addresses)
    print(
        f"{args.copies} x {len(raw) / 1e6:.1f} MB, To: of {args.addresses} addresses\n"
    )
    ours = measure_asimap(raw, args.copies)
    theirs = measure_dovecot(raw, args.copies)
    heads = ["command", "asimap s", "Dovecot s", "ratio", "asimap MiB", "Dovecot MiB"]
    print("| " + " | ".join(heads) + " |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (name, time_a, peak_a), (_, time_d, peak_d) in zip(ours, theirs, strict=True):
        ratio = time_a / time_d if time_d else float("inf")
        cells = [f"`{name}`", f"{time_a:.1f}", f"{time_d:.1f}", f"{ratio:.2f}"]
        cells += [f"{peak_a:.0f}", f"{peak_d:.0f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
