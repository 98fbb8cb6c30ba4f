"""A private Dovecot on loopback, the reference server for comparisons.

design.md section 7: everything lives in one temporary directory (config,
base_dir, state_dir, log, maildirs, passwd-file); the system configuration in
``/etc/dovecot`` is never read or touched; the instance is stopped with
``dovecot -c FILE stop`` and, if that fails, by the PID in its own
``master.pid`` - never by process name.

The instance is tuned as one would tune a production Dovecot for load:
imap-login in "high-performance mode" (``service_count = 0``, one login
process per core kept alive) and process/client limits well above the
benchmark's connection count.  Mail storage stays at Dovecot's defaults
(Maildir, ``mail_fsync = optimized``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from bench.imapload.runner import Credentials
from bench.tlscert import write_self_signed

NOBODY = 65534


def dovecot_version(binary: str = "dovecot") -> str:
    """``2.3.19.1`` - the first word of ``dovecot --version``."""
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True, timeout=10
    )
    return out.stdout.split()[0]


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _version_tuple(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def render_config(
    root: Path,
    port: int,
    uid: int,
    gid: int,
    version: str,
    cert: Path,
    key: Path,
    tls_port: int = 0,
) -> str:
    """The dovecot.conf text for this instance (2.3 syntax, or 2.4 syntax)."""
    running_as_root = os.geteuid() == 0
    login_user = "dovenull" if running_as_root else _current_user()
    internal_user = "dovecot" if running_as_root else _current_user()
    common_tail = f"""
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
  service_count = 0
  process_min_avail = {os.cpu_count() or 1}
  vsz_limit = 1G
}}
service imap {{
  process_limit = 2048
}}
"""
    if _version_tuple(version) >= (2, 4):
        # Dovecot 2.4 renamed most settings; this mirrors the 2.3 block below.
        return f"""dovecot_config_version = {version}
dovecot_storage_version = {version}
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
default_process_limit = 2048
default_client_limit = 20000
first_valid_uid = 1
auth_allow_cleartext = yes
auth_mechanisms = plain login
ssl = yes
ssl_server_cert_file = {cert}
ssl_server_key_file = {key}
mail_driver = maildir
mail_path = {root}/mail/%{{user}}
mail_home = {root}/mail/%{{user}}
mail_uid = {uid}
mail_gid = {gid}
mail_max_userip_connections = 1000
passdb passwd-file {{
  passwd_file_path = {root}/passwd
  default_password_scheme = PLAIN
}}
userdb passwd-file {{
  passwd_file_path = {root}/passwd
}}
{common_tail}"""
    return f"""protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
default_process_limit = 2048
default_client_limit = 20000
first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
mail_max_userip_connections = 1000
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
{common_tail}"""


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


class DovecotServer:
    """Start/stop one private Dovecot; use as a context manager.

    >>> with DovecotServer(users) as server:   # doctest: +SKIP
    ...     server.port
    """

    def __init__(
        self,
        users: Sequence[Credentials],
        *,
        binary: str = "dovecot",
        extra_config: str = "",
    ) -> None:
        self.users = list(users)
        self.binary = binary
        #: Appended to the rendered configuration; a setting given again
        #: here overrides the one above it (Dovecot keeps the last value).
        self.extra_config = extra_config
        self.host = "127.0.0.1"
        self.port = 0
        #: Implicit TLS (RFC 8314), as asimap's default port serves.
        self.tls_port = 0
        self.version = ""
        self.root: Path | None = None
        self.config_path: Path | None = None

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 15.0) -> None:
        if shutil.which(self.binary) is None:
            raise FileNotFoundError(
                "dovecot is not installed: apt-get install -y dovecot-imapd"
            )
        self.version = dovecot_version(self.binary)
        root = Path(tempfile.mkdtemp(prefix="bench-dovecot-"))
        self.root = root
        # Login/auth processes run as dovenull/dovecot and must reach base_dir.
        root.chmod(0o755)
        uid, gid = (NOBODY, NOBODY) if os.geteuid() == 0 else (os.getuid(), os.getgid())
        mail = root / "mail"
        mail.mkdir()
        lines = []
        for creds in self.users:
            home = mail / creds.user
            home.mkdir()
            os.chown(home, uid, gid)
            # passwd-file: user:password:uid:gid:gecos:home:shell:extra
            lines.append(
                f"{creds.user}:{{PLAIN}}{creds.password}:{uid}:{gid}::{home}::"
            )
        if os.geteuid() == 0:
            os.chown(mail, uid, gid)
        (root / "passwd").write_text("\n".join(lines) + "\n")
        cert, key = write_self_signed(root)
        self.cert, self.key = cert, key
        self.port = free_port()
        self.tls_port = free_port()
        self.config_path = root / "dovecot.conf"
        self.config_path.write_text(
            render_config(
                root, self.port, uid, gid, self.version, cert, key, self.tls_port
            )
            + self.extra_config.replace("{root}", str(root))
        )
        # The master daemonizes; pipes would be inherited and never close,
        # so its early output goes to a file next to the log.
        with open(root / "startup.log", "wb") as startup_log:
            started = subprocess.run(
                [self.binary, "-c", str(self.config_path)],
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                stdout=startup_log,
                stderr=startup_log,
            )
        if started.returncode != 0:
            output = (root / "startup.log").read_text(errors="replace")
            self.stop()
            raise RuntimeError(f"dovecot failed to start:\n{output}")
        try:
            wait_for_port(self.host, self.port, timeout)
        except OSError:
            log = self.log_tail()
            self.stop()
            raise RuntimeError(f"dovecot did not start listening:\n{log}") from None

    def master_pid(self) -> int | None:
        """The PID of the running master process (for memory figures)."""
        return self._master_pid()

    def _master_pid(self) -> int | None:
        if self.root is None:
            return None
        try:
            return int((self.root / "run" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def log_tail(self, lines: int = 20) -> str:
        if self.root is None:
            return ""
        try:
            text = (self.root / "dovecot.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """``dovecot -c FILE stop``, then make sure its master PID is gone."""
        if self.root is None or self.config_path is None:
            return
        pid = self._master_pid()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                [self.binary, "-c", str(self.config_path), "stop"],
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        if pid is not None:
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
