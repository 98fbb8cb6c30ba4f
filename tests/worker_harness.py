"""Real ``asimapd`` processes in worker mode, for the ``test_worker_*`` files.

Worker mode forks a zygote before any thread exists, so it cannot run
inside the pytest process: every test here starts ``python -m asimap.cli``
(or, for the plaintext-login paths that production never allows,
``tests/worker_launcher.py``) on loopback with ephemeral ports, reads the
bound ports from its log, and finds the zygote and the workers through
``/proc`` by the names they give themselves (``asimap-zygote``,
``asimap-w:<user>``).

Mail roots live under a directory made with ``tempfile.mkdtemp`` and
opened to traversal (0711), because pytest's own temporary directories
are private to root and a worker that dropped to ``nobody`` could not
reach its mail there.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from asimap.auth.hashers import make_password

REPO = Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0
#: Unprivileged ids for mail roots when the tests run as root.
UIDS = {"demo": 65534, "other": 65533}
PASSWORDS = {"demo": "demo", "other": "other-secret"}
_LISTENING = re.compile(r"listening on [^:]+: (\{.*\})")


@dataclass
class MailSetup:
    """A password file and one mail root per user, owned by the user's
    unprivileged uid when running as root."""

    base: Path
    pwfile: Path
    roots: dict[str, Path] = field(default_factory=dict)

    def write_pwfile(self, passwords: dict[str, str]) -> None:
        lines = [
            f"{user}:{make_password(pw, iterations=1000)}:{self.roots[user]}\n"
            for user, pw in passwords.items()
        ]
        temp = self.pwfile.with_suffix(".new")
        temp.write_text("".join(lines))
        os.replace(temp, self.pwfile)


@contextlib.contextmanager
def mail_setup(owners: dict[str, int] | None = None) -> Iterator[MailSetup]:
    """Mail roots for ``demo`` and ``other``; ``owners`` overrides the uid
    that owns each root (0 = leave it to root)."""
    base = Path(tempfile.mkdtemp(prefix="asimap-worker-test-"))
    try:
        os.chmod(base, 0o711)
        mail = base / "mail"
        mail.mkdir(mode=0o711)
        setup = MailSetup(base, base / "pwfile")
        wanted = dict(UIDS if owners is None else owners)
        for user in PASSWORDS:
            root = mail / user
            root.mkdir(mode=0o700)
            uid = wanted.get(user, 0)
            if IS_ROOT and uid:
                os.chown(root, uid, uid)
            setup.roots[user] = root
        setup.write_pwfile(PASSWORDS)
        yield setup
    finally:
        shutil.rmtree(base, ignore_errors=True)


class Asimapd:
    """One ``asimapd`` main process (plus its zygote and workers)."""

    def __init__(
        self,
        setup: MailSetup,
        cert: Path,
        key: Path,
        *args: str,
        plaintext_login: bool = False,
        launcher: str | None = None,
    ) -> None:
        self.log_path = setup.base / f"asimapd-{time.monotonic_ns()}.log"
        self.cert = cert
        if launcher is not None:
            command = [sys.executable, str(REPO / "tests" / launcher)]
        elif plaintext_login:
            command = [sys.executable, str(REPO / "tests" / "worker_launcher.py")]
        else:
            command = [sys.executable, "-m", "asimap.cli"]
        command += [
            "--address=127.0.0.1",
            "--port=0",
            "--imap-port=0",
            f"--cert={cert}",
            f"--key={key}",
            f"--pwfile={setup.pwfile}",
            *args,
        ]
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("TRACE", "DEBUG", "WORKERS", "PORT", "IMAP_PORT")
        }
        env["PYTHONPATH"] = str(REPO / "src")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=setup.base, env=env
            )
        self.ports = self._wait_for_ports()

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_for_ports(self) -> dict[str, int]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"asimapd exited:\n{self.log()}")
            match = _LISTENING.search(self.log())
            if match:
                ports: dict[str, int] = ast.literal_eval(match.group(1))
                return ports
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"asimapd did not listen:\n{self.log()}")

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def tls_socket(self, port_name: str = "imaps") -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.ports[port_name]), 10)
        return self.client_context().wrap_socket(raw, server_hostname="127.0.0.1")

    # processes ---------------------------------------------------------------

    def zygote_pid(self) -> int:
        found = [p for p in children_of(self.pid) if comm(p) == "asimap-zygote"]
        assert len(found) == 1, f"zygote not found: {children_of(self.pid)}"
        return found[0]

    def workers(self) -> dict[str, int]:
        """username -> pid of each live worker."""
        result: dict[str, int] = {}
        for pid in children_of(self.zygote_pid()):
            name = comm(pid)
            if name.startswith("asimap-w:") and not is_zombie(pid):
                result[name.removeprefix("asimap-w:")] = pid
        return result

    def wait_for_worker(self, user: str, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.workers().get(user)
            if pid is not None:
                return pid
            time.sleep(0.02)
        raise AssertionError(f"no worker for {user}: {self.workers()}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """Last resort: SIGKILL the main process and what it started."""
        pids: list[int] = []
        with contextlib.suppress(AssertionError, OSError):
            zygote = self.zygote_pid()
            pids = [*children_of(zygote), zygote]
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@contextlib.contextmanager
def running_with_pop3(cert: Path, key: Path) -> Iterator[Asimapd]:
    """A fresh ``asimapd`` with IMAP and POP3 (implicit TLS and STLS) on
    ephemeral ports; stopped afterwards, failing the test if it did not
    exit cleanly."""
    setup: MailSetup
    with mail_setup() as setup:
        daemon = Asimapd(
            setup,
            cert,
            key,
            "--enable-pop3",
            "--pop3-port=0",
            "--pop3-stls-port=0",
        )
        try:
            yield daemon
        finally:
            assert daemon.stop() == 0, daemon.log()


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc/*/stat)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and not is_zombie(pid)


def wait_until_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still alive"
        time.sleep(0.02)


def status_ids(pid: int) -> dict[str, list[int]]:
    """The Uid, Gid and Groups lines of /proc/PID/status."""
    ids: dict[str, list[int]] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            ids[key] = [int(v) for v in rest.split()]
    return ids


class LineClient:
    """A raw IMAP (or POP3) conversation over one socket, line by line."""

    def __init__(self, sock: socket.socket, timeout: float = 10) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; pending {self.buffer!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def until_tagged(self, tag: bytes) -> list[bytes]:
        """Lines up to and including the one starting with ``tag``."""
        lines: list[bytes] = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def command(self, tag: bytes, text: bytes) -> list[bytes]:
        self.send(tag + b" " + text + b"\r\n")
        return self.until_tagged(tag)

    def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        data = self.buffer
        self.buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionError, ssl.SSLError):
                return data
            if not chunk:
                return data
            data += chunk

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
