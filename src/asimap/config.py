"""Server configuration: one immutable value built from flags, environment
variables, a ``.env`` file and defaults (design.md section 2).

``asimap.cli.load_config`` fills it; everything else only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Config:
    address: str = "0.0.0.0"
    #: IMAP over implicit TLS.
    port: int = 993
    #: Plain IMAP with STARTTLS; None = not listening.
    imap_port: int | None = None
    cert: Path = Path("/opt/asimap/ssl/cert.pem")
    key: Path = Path("/opt/asimap/ssl/key.pem")
    trace: bool = False
    trace_dir: Path = Path("/opt/asimap/traces/")
    debug: bool = False
    #: None = search the standard places, then log to stdout.
    log_config: Path | None = None
    pwfile: Path = Path("/opt/asimap/pwfile")
    enable_pop3: bool = False
    pop3_port: int = 995
    pop3_stls_port: int | None = None
    enable_mh_file_locking: bool = False
    #: Which mail store serves accounts: "mh" (each account's maildir is an
    #: MH root, shared with nmh) or "memory" (tests, nothing persists).
    store: str = "mh"
    sentry_dsn: str | None = None
    sentry_traces_sample_rate: float = 0.0
    sentry_profiles_sample_rate: float = 0.0
    sentry_asyncio_task_spans: bool = False
    #: Connection limits and timeouts (seconds).
    max_connections: int = 1000
    idle_timeout_authenticated: float = 30 * 60
    idle_timeout_unauthenticated: float = 60
    #: Connections that have not logged in (asimap.net.admission): most at
    #: once (None = a quarter of ``max_connections``), most from one
    #: address, and the seconds each has to authenticate, however active.
    max_prelogin_connections: int | None = None
    max_prelogin_per_address: int = 20
    login_timeout: float = 180.0
    #: One worker process per user (``--workers``/``WORKERS``); off serves
    #: every user in the main process (tests, benchmarks' baseline).
    workers: bool = True
    #: Seconds a worker stays after its user's last connection closed.
    worker_linger: float = 30 * 60
    #: Most workers alive at once; a login beyond it is refused for now.
    max_workers: int = 1000
    #: Most memory one worker may use, in octets (``RLIMIT_DATA``, set in
    #: the worker after fork, see :mod:`asimap.worker.memory`); None = no
    #: limit.  One user's hostile mail cannot exhaust the host.
    worker_memory_limit: int | None = 1024**3
    #: Run as root, a worker takes the identity of its mail root's owner;
    #: a root-owned mail root is refused unless this is set.
    allow_root_mail: bool = False
    #: Per-account quota (RFC 9208): the most octets (``--quota-storage``,
    #: given in KiB or with a K/M/G/T suffix) and the most messages
    #: (``--quota-messages``) of all an account's mailboxes together.
    #: None = no limit.
    quota_storage: int | None = None
    quota_messages: int | None = None
    #: Advertise LITERAL- rather than LITERAL+ (RFC 7888 section 5):
    #: non-synchronizing literals above 4096 octets are refused.
    literal_minus: bool = False
    extra: dict[str, str] = field(default_factory=dict)
