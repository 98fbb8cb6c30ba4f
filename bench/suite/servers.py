"""The servers the suite compares, each started fresh for one workload.

* ``asimap``: ``asimapd`` as in production - started as root, one worker
  process per user (each drops to the owner of its mail root, ``nobody``),
  MH store, implicit TLS on its port (RFC 8314).
* ``asimap-user``: the same command run by an ordinary user, as the
  quickstart does (workers on, but nobody to switch to).

Both run the system's ``python3`` (Debian's is built with PGO and LTO, as
a packaged install would run; a self-built interpreter without them is
much slower, and the venv's usually lives under a home an ordinary user
cannot enter) with the venv's packages on its path; ``SUITE_PYTHON``
names another interpreter.
* ``dovecot``: a private Dovecot (:mod:`bench.dovecot`), Maildir, implicit
  TLS on its ``imaps`` listener.

Accounts are fresh hard-linked copies of the cached data sets
(:mod:`bench.mh_large_data`): MH for asimap, Maildir for Dovecot, the same
message files.  Every process is stopped by its own PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from asimap.auth.hashers import make_password
from bench.dovecot import NOBODY, DovecotServer, free_port, wait_for_port
from bench.imapload.runner import Credentials
from bench.mh_large_data import link_tree
from bench.tlscert import write_self_signed

REPO = Path(__file__).resolve().parent.parent.parent
#: asimap's password file uses few PBKDF2 iterations: Dovecot's accounts
#: are {PLAIN}, and the suite measures mail serving, not password hashing.
ASIMAP_ITERATIONS = 1000
SERVERS = ("asimap", "asimap-user", "dovecot")


class Running(Protocol):
    """What a workload sees of a started server."""

    name: str
    host: str
    tls_port: int
    version: str

    def pids(self) -> list[int]: ...


@dataclass
class Account:
    """One user: credentials and, optionally, a data set to copy in
    (``mh`` for asimap, ``maildir`` for Dovecot); None = empty account."""

    creds: Credentials
    mh: Path | None = None
    maildir: Path | None = None


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc/*/task/*/children)."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                text = Path(f"/proc/{current}/task/{task}/children").read_text()
                found.extend(int(child) for child in text.split())
    return found


def pss_kib(pids: Sequence[int]) -> int:
    """Proportional set size of ``pids`` together, in KiB (as smem counts
    it: shared pages split among the processes that map them)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
    return total


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def git_commit() -> str:
    """Short commit of the working tree, ``+dirty`` when it has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=REPO,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+dirty" if dirty else "")


@dataclass
class Asimapd:
    """``python -m asimap.cli`` on loopback with the MH store and workers."""

    name: str
    accounts: Sequence[Account]
    flags: Sequence[str] = ()
    host: str = "127.0.0.1"
    tls_port: int = 0
    version: str = ""
    base: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: Directories put first on the server's module path (bench.idle_memory
    #: puts a ``sitecustomize`` there).
    python_path: Sequence[str] = ()

    @property
    def as_user(self) -> bool:
        return self.name == "asimap-user"

    def start(self, timeout: float = 60.0) -> None:
        base = Path(tempfile.mkdtemp(prefix=f"suite-{self.name}-"))
        self.base = base
        os.chmod(base, 0o711)
        cert, key = write_self_signed(base)
        mail = base / "mail"
        mail.mkdir(mode=0o711)
        owner = NOBODY if os.geteuid() == 0 else None
        lines = []
        for account in self.accounts:
            root = mail / account.creds.user
            if account.mh is not None:
                link_tree(account.mh, root, owner)
            else:
                root.mkdir(mode=0o700)
                if owner is not None:
                    os.chown(root, owner, owner)
            hashed = make_password(account.creds.password, iterations=ASIMAP_ITERATIONS)
            lines.append(f"{account.creds.user}:{hashed}:{root}\n")
        (base / "pwfile").write_text("".join(lines))
        self.tls_port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("TRACE", "DEBUG")}
        env.update(self.extra_env)
        python = server_python()
        user: int | None = None
        if self.as_user:
            if os.geteuid() != 0:
                raise RuntimeError("asimap-user needs the suite to run as root")
            user = NOBODY
            for path in (base / "pwfile", cert, key):
                os.chown(path, NOBODY, NOBODY)
            env["HOME"] = str(base)
        env["PYTHONPATH"] = os.pathsep.join(
            [*self.python_path, str(REPO / "src"), *_venv_site_packages()]
        )
        self.version = f"asimap {git_commit()}"
        command = [
            python,
            "-m",
            "asimap.cli",
            "--address=127.0.0.1",
            f"--port={self.tls_port}",
            f"--cert={cert}",
            f"--key={key}",
            f"--pwfile={base / 'pwfile'}",
            "--store=mh",
            "--workers=on",
            "--max-connections=20000",
            *self.flags,
        ]
        with (base / "asimapd.log").open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=base,
                env=env,
                user=user,
                group=user,
                extra_groups=[] if user is not None else None,
            )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"asimapd exited:\n{self.log_tail()}")
                try:
                    wait_for_port(self.host, self.tls_port, 0.2)
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"asimapd did not listen:\n{self.log_tail()}"
                        ) from None
        except BaseException:
            self.stop()
            raise

    def pids(self) -> list[int]:
        return [] if self.process is None else descendants(self.process.pid)

    def workers(self) -> list[int]:
        return [pid for pid in self.pids() if comm(pid).startswith("asimap-w:")]

    def log_tail(self, lines: int = 30) -> str:
        if self.base is None:
            return ""
        with contextlib.suppress(OSError):
            text = (self.base / "asimapd.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in reversed(descendants(process.pid)):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                process.wait(timeout)
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None


def python_version(python: str) -> str:
    """``3.11.2`` for the interpreter at ``python``."""
    try:
        out = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.strip() or "?"


def server_python() -> str:
    """The interpreter that runs asimapd (see the module doc)."""
    chosen = os.environ.get("SUITE_PYTHON")
    if chosen:
        return chosen
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidate = f"/usr/bin/{version}"
    if os.access(candidate, os.X_OK):
        return candidate
    return sys.executable


def _venv_site_packages() -> list[str]:
    import site

    return [path for path in site.getsitepackages() if "site-packages" in path]


@dataclass
class Dovecot:
    """A private Dovecot whose accounts are copies of the data sets."""

    accounts: Sequence[Account]
    name: str = "dovecot"
    host: str = "127.0.0.1"
    tls_port: int = 0
    version: str = ""
    server: DovecotServer | None = None

    def start(self) -> None:
        self.server = DovecotServer([a.creds for a in self.accounts])
        self.server.start()
        self.tls_port = self.server.tls_port
        self.version = f"Dovecot {self.server.version}"
        assert self.server.root is not None
        owner = NOBODY if os.geteuid() == 0 else None
        for account in self.accounts:
            if account.maildir is None:
                continue
            home = self.server.root / "mail" / account.creds.user
            home.rmdir()
            link_tree(account.maildir, home, owner)
        wait_for_port(self.host, self.tls_port, 15)

    def pids(self) -> list[int]:
        if self.server is None:
            return []
        master = self.server.master_pid()
        return [] if master is None else descendants(master)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


Server = Asimapd | Dovecot


def make_server(
    name: str, accounts: Sequence[Account], flags: Sequence[str] = ()
) -> Server:
    if name == "dovecot":
        return Dovecot(accounts)
    return Asimapd(name, accounts, flags)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
