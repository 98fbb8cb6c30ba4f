"""A private asimap server on loopback, for side-by-side runs.

It runs in its own process, exactly as in production (``asimap.imap.server
.run``, the function behind ``asimapd``, uvloop when installed), so that the
load generator and the server compete for the two cores the same way they
do with Dovecot.  The process is configured through :class:`asimap.config
.Config` - a shared contract - rather than command-line flags, so this file
keeps working while the CLI is being written.

Accounts go into a password file (``user:hash:maildir``) with a real Django
PBKDF2 hash; the server's verification cache makes repeated logins cheap,
as in production.

``python -m bench.asimap_server ROOT IMAPS_PORT IMAP_PORT`` is the child
process entry point; use :class:`AsimapServer` from Python.
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from bench.dovecot import free_port, wait_for_port
from bench.imapload.runner import Credentials
from bench.tlscert import write_self_signed

REPO = Path(__file__).resolve().parent.parent


def asimap_available() -> str | None:
    """None if asimap can be started here, else the reason it cannot."""
    try:
        import asimap.imap.server  # noqa: F401
    except Exception as exc:  # any import failure means "not runnable yet"
        return f"asimap.imap.server cannot be imported: {exc!r}"
    return None


class AsimapServer:
    """Start/stop one asimap process; use as a context manager."""

    def __init__(
        self,
        users: Sequence[Credentials],
        *,
        store: str = "memory",
        hash_iterations: int | None = None,
        maildirs: Mapping[str, Path] | None = None,
    ) -> None:
        self.users = list(users)
        self.store = store
        #: Per-user maildir (an MH root with ``store="mh"``) to serve as is;
        #: users not named get an empty one under the temp dir.
        self.maildirs = dict(maildirs or {})
        self.hash_iterations = hash_iterations
        self.host = "127.0.0.1"
        self.port = 0
        self.tls_port = 0
        self.root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AsimapServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 20.0) -> None:
        from asimap.auth.hashers import make_password

        root = Path(tempfile.mkdtemp(prefix="bench-asimap-"))
        self.root = root
        write_self_signed(root)
        (root / "mail").mkdir()
        lines = []
        for creds in self.users:
            hashed = (
                make_password(creds.password)
                if self.hash_iterations is None
                else make_password(creds.password, self.hash_iterations)
            )
            maildir = self.maildirs.get(creds.user, Path("mail") / creds.user)
            lines.append(f"{creds.user}:{hashed}:{maildir}")
        (root / "pwfile").write_text("\n".join(lines) + "\n")
        self.port = free_port()
        self.tls_port = free_port()
        log = open(root / "asimapd.log", "wb")  # noqa: SIM115 - child owns it
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO), str(REPO / "src"), env.get("PYTHONPATH")])
        )
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.asimap_server",
                str(root),
                str(self.tls_port),
                str(self.port),
                self.store,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            cwd=str(REPO),
        )
        log.close()
        try:
            deadline = time.monotonic() + timeout
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"asimap exited with {self._process.returncode}:\n"
                        + self.log_tail()
                    )
                try:
                    wait_for_port(self.host, self.port, 0.2)
                    return
                except OSError:
                    if time.monotonic() >= deadline:
                        raise RuntimeError(
                            "asimap did not start listening:\n" + self.log_tail()
                        ) from None
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines: int = 20) -> str:
        if self.root is None:
            return ""
        try:
            text = (self.root / "asimapd.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM our child by PID; SIGKILL if it does not exit in time."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def _child_main(argv: Sequence[str]) -> int:
    """Child process: build the Config and serve until SIGTERM."""
    import logging

    from asimap.config import Config
    from asimap.imap.server import run

    root, tls_port, imap_port, store = argv
    logging.basicConfig(level=logging.WARNING)
    config = Config(
        address="127.0.0.1",
        port=int(tls_port),
        imap_port=int(imap_port),
        cert=Path(root) / "cert.pem",
        key=Path(root) / "key.pem",
        pwfile=Path(root) / "pwfile",
        store=store,
        trace_dir=Path(root) / "traces",
        # Single-process mode, as these comparisons were first measured;
        # bench/workers.py measures what worker mode adds.
        workers=False,
    )
    return run(config)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(_child_main(sys.argv[1:]))
