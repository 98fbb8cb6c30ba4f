"""What worker processes cost: login latency and the TLS relay.

``python -m bench.workers [--rounds N] [--fetch-rounds N] [--size MB]``

Two real ``asimapd`` processes on loopback, MH store, one account whose
mail root belongs to ``nobody`` when run as root (so workers really drop
privileges):

* login latency, worker mode: *cold* (no worker for the user: the previous
  one lingered 0.2 s and exited, so the zygote forks a new one) and *warm*
  (another connection of the user keeps its worker alive).  Two figures
  each: connect -> tagged OK of LOGIN (TCP, TLS handshake, greeting, LOGIN)
  and LOGIN sent -> first response (the worker path alone: handoff, fork
  if cold, store open, the tagged OK).  Passwords are hashed with few
  iterations and the main process caches verifications, so hashing is not
  what is measured.
* a 25 MB ``FETCH BODY.PEEK[]`` over TLS, worker mode (bytes relayed by the
  main process) against ``--workers=off`` (no relay), MB/s and ratio.

Medians of ``--rounds`` (default 20) and ``--fetch-rounds`` (default 5).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asimap.auth.hashers import make_password
from bench.tlscert import write_self_signed

REPO = Path(__file__).resolve().parent.parent
USER, PASSWORD = "bench", "bench-secret"
_LISTENING = re.compile(r"listening on [^:]+: (\{.*\})")


class Server:
    """One ``asimapd`` on loopback with ephemeral ports."""

    def __init__(self, base: Path, *flags: str) -> None:
        self.log_path = base / f"asimapd-{time.monotonic_ns()}.log"
        env = {k: v for k, v in os.environ.items() if k not in ("TRACE", "DEBUG")}
        env["PYTHONPATH"] = str(REPO / "src")
        command = [
            sys.executable,
            "-m",
            "asimap.cli",
            "--address=127.0.0.1",
            "--port=0",
            f"--cert={base / 'cert.pem'}",
            f"--key={base / 'key.pem'}",
            f"--pwfile={base / 'pwfile'}",
            *flags,
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=base, env=env
            )
        deadline = time.monotonic() + 30
        while True:
            match = _LISTENING.search(self.log_path.read_text())
            if match:
                self.port = int(ast.literal_eval(match.group(1))["imaps"])
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.log_path.read_text())
            time.sleep(0.05)
        self.context = ssl.create_default_context(cafile=str(base / "cert.pem"))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)

    def has_worker(self) -> bool:
        """Whether a process named ``asimap-w:bench`` is alive."""
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    comm = Path(f"/proc/{entry}/comm").read_text().strip()
                    state = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2]
                except OSError:
                    continue
                if comm == f"asimap-w:{USER}" and state.split()[0] not in "ZX":
                    return True
        return False


class Client:
    """A raw IMAPS conversation (no client library in the measurement)."""

    def __init__(self, server: Server) -> None:
        raw = socket.create_connection(("127.0.0.1", server.port), 30)
        self.sock = server.context.wrap_socket(raw, server_hostname="127.0.0.1")
        self.buffer = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError(self.buffer)
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def tagged(self, tag: bytes) -> bytes:
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                return line

    def login(self) -> float:
        """Seconds from sending LOGIN to its first response line."""
        started = time.perf_counter()
        self.sock.sendall(f"a LOGIN {USER} {PASSWORD}\r\n".encode())
        first = self.line()
        elapsed = time.perf_counter() - started
        if not first.startswith(b"a OK"):
            raise RuntimeError(first)
        return elapsed

    def fetch_whole(self, size: int) -> float:
        """Seconds for ``FETCH 1 BODY.PEEK[]`` of a ``size``-byte message."""
        started = time.perf_counter()
        self.sock.sendall(b"f FETCH 1 BODY.PEEK[]\r\n")
        header = self.line()
        literal = int(header.rsplit(b"{", 1)[1].rstrip(b"}"))
        if literal != size:
            raise RuntimeError(header)
        if len(self.buffer) >= literal:
            self.buffer = self.buffer[literal:]
        else:
            remaining = literal - len(self.buffer)
            self.buffer = b""
            while remaining > 0:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise EOFError
                if len(chunk) > remaining:
                    self.buffer = chunk[remaining:]
                remaining -= len(chunk)
        self.tagged(b"f")
        return time.perf_counter() - started

    def close(self) -> None:
        self.sock.close()


def big_message(size: int) -> bytes:
    head = b"From: bench@example.org\r\nSubject: big\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    body = line * ((size - len(head)) // len(line))
    return head + body + b"y" * (size - len(head) - len(body))


def prepare(base: Path, size: int) -> None:
    os.chmod(base, 0o711)
    write_self_signed(base)
    for mode in ("workers", "single"):
        root = base / mode
        root.mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(root, 65534, 65534)
    hashed = make_password(PASSWORD, iterations=1000)
    (base / "pwfile").write_text(f"{USER}:{hashed}:mail\n")
    del size


def use_root(base: Path, mode: str) -> None:
    """Point the account at one mode's mail root (``mail`` symlink)."""
    link = base / "mail"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(base / mode)


def login_latencies(base: Path, rounds: int) -> dict[str, list[float]]:
    use_root(base, "workers")
    server = Server(base, "--worker-linger=0.2")
    results: dict[str, list[float]] = {
        "cold connect": [],
        "cold login": [],
        "warm connect": [],
        "warm login": [],
    }
    try:
        Client(server).close()  # first contact: the zygote finishes preloading
        time.sleep(1.0)
        for _ in range(rounds):
            keeper: Client | None = None
            deadline = time.monotonic() + 10
            while server.has_worker() and time.monotonic() < deadline:
                time.sleep(0.02)
            for kind in ("cold", "warm"):
                started = time.perf_counter()
                client = Client(server)
                client.line()  # greeting
                login = client.login()
                results[f"{kind} connect"].append(time.perf_counter() - started)
                results[f"{kind} login"].append(login)
                if kind == "cold":
                    keeper = client  # keeps the worker warm for the next one
                else:
                    client.close()
            if keeper is not None:
                keeper.close()
    finally:
        server.stop()
    return results


def fetch_times(base: Path, mode: str, rounds: int, size: int) -> list[float]:
    use_root(base, mode)
    flags = ("--workers=off",) if mode == "single" else ()
    server = Server(base, *flags)
    try:
        client = Client(server)
        client.line()
        client.login()
        message = big_message(size)
        client.sock.sendall(b"p APPEND INBOX {%d+}\r\n" % len(message))
        client.sock.sendall(message + b"\r\n")
        client.tagged(b"p")
        client.sock.sendall(b"s SELECT INBOX\r\n")
        client.tagged(b"s")
        client.fetch_whole(size)  # warm-up: caches, page cache
        times = [client.fetch_whole(size) for _ in range(rounds)]
        client.close()
    finally:
        server.stop()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--fetch-rounds", type=int, default=5)
    parser.add_argument("--size", type=float, default=25.0, help="MB to FETCH")
    args = parser.parse_args(argv)
    size = int(args.size * 1_000_000)
    base = Path(tempfile.mkdtemp(prefix="asimap-bench-workers-"))
    try:
        prepare(base, size)
        latencies = login_latencies(base, args.rounds)
        relayed = fetch_times(base, "workers", args.fetch_rounds, size)
        direct = fetch_times(base, "single", args.fetch_rounds, size)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"login latency, median of {args.rounds} (ms):")
    print("| worker | connect -> LOGIN OK | LOGIN -> first response |")
    print("|---|---|---|")
    for kind in ("cold", "warm"):
        connect = statistics.median(latencies[f"{kind} connect"]) * 1000
        login = statistics.median(latencies[f"{kind} login"]) * 1000
        print(f"| {kind} | {connect:.1f} | {login:.1f} |")
    mb = size / 1_000_000
    relayed_s, direct_s = statistics.median(relayed), statistics.median(direct)
    print(f"\n{mb:.0f} MB FETCH over TLS, median of {args.fetch_rounds}:")
    print("| mode | seconds | MB/s |")
    print("|---|---|---|")
    print(f"| workers (relayed) | {relayed_s:.3f} | {mb / relayed_s:.1f} |")
    print(f"| --workers=off | {direct_s:.3f} | {mb / direct_s:.1f} |")
    print(f"\nrelayed / direct time ratio: {relayed_s / direct_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
