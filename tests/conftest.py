"""Shared fixtures: TLS material, a password file, and a real server.

The server runs the whole stack (driver, reader, parser, session, memory
store) on loopback with ephemeral ports, in a thread of its own with its own
event loop, so that blocking clients (imaplib, imapclient, curl, mutt) can
be used from ordinary synchronous tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings

from asimap.auth.account import Account
from asimap.config import Config
from asimap.tls import generate_self_signed

if TYPE_CHECKING:
    from asimap.imap.server import StoreRegistry

# Property tests check what is generated, not how fast: on a loaded CI
# machine Hypothesis's timing checks (per-example deadline, "data generation
# too slow") fail tests that are correct.  Explicit @settings keep their
# other values and inherit these.
settings.register_profile(
    "asimap", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("asimap")

T = TypeVar("T")

USER = "demo"
PASSWORD = "demo"

#: A small, well-formed message for APPEND tests (CRLF line ends).
SAMPLE_MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Demo <demo@example.org>\r\n"
    b"Subject: asimap client test\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <client-test@example.org>\r\n"
    b"\r\n"
    b"Hello from a real client.\r\n"
)


def require_tool(name: str) -> str:
    """Path of an external program a test needs.

    Locally a missing tool skips the test; under ``CI`` (set to anything)
    it fails it, because ``.ci/run`` installs every tool and a silent skip
    there would hide a test that never ran.
    """
    path = shutil.which(name)
    if path is not None:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{name!r} is required under CI but is not installed")
    pytest.skip(f"{name!r} is not installed")


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly our self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    generate_self_signed(cert, key, ["localhost", "127.0.0.1", "::1"])
    return TlsFiles(cert, key)


@pytest.fixture(scope="session")
def pwfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from asimap.auth.hashers import make_password

    directory = tmp_path_factory.mktemp("accounts")
    path = directory / "pwfile"
    # Few iterations: logins in tests must be fast; the format is the real one.
    hashed = make_password(PASSWORD, iterations=1000)
    other = make_password("other-secret", iterations=1000)
    path.write_text(f"{USER}:{hashed}:mail/{USER}\nother:{other}:mail/other\n")
    return path


class RecordingAuthenticator:
    """Wraps the real authenticator and remembers every attempt, so tests
    can assert what a real client did (e.g. that mutt logged in)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.attempts: list[tuple[str, bool]] = []

    async def authenticate(
        self, username: str, password: str, peer_host: str
    ) -> Account | None:
        account: Account | None = await self._inner.authenticate(
            username, password, peer_host
        )
        self.attempts.append((username, account is not None))
        return account


class ServerThread:
    """A real asimap server on loopback, running in a background thread."""

    def __init__(
        self, config: Config, auth_options: dict[str, Any] | None = None
    ) -> None:
        self.config = config
        #: Keyword arguments for PasswordFileAuthenticator (e.g. short
        #: failure delays for brute-force tests); None = production defaults.
        self.auth_options = auth_options
        self.ports: dict[str, int] = {}
        self.authenticator: RecordingAuthenticator | None = None
        self.server: Any = None
        #: The stores of the accounts served (for in-process deliveries).
        self.registry: StoreRegistry | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def host(self) -> str:
        return self.config.address

    @property
    def imaps_port(self) -> int:
        return self.ports["imaps"]

    @property
    def imap_port(self) -> int:
        return self.ports["imap"]

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("server did not start within 15 s")
        if self._error is not None:
            raise RuntimeError("server failed to start") from self._error
        return self

    def stop(self) -> None:
        """Stop the server; a no-op once stopped (a test may stop it early,
        e.g. to restart on the same data, before the fixture does)."""
        if not self._thread.is_alive():
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        assert not self._thread.is_alive(), "server thread did not stop"

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 10) -> T:
        """Run a coroutine on the server's loop and return its result."""
        assert self._loop is not None

        async def runner() -> T:
            return await make()

        future: Future[T] = asyncio.run_coroutine_threadsafe(runner(), self._loop)
        return future.result(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from asimap.imap.server import ImapServer, build_services

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        services, registry = build_services(self.config)
        self.registry = registry
        inner: Any = services.authenticator
        if self.auth_options is not None:
            from asimap.auth.authenticator import PasswordFileAuthenticator

            inner = PasswordFileAuthenticator(self.config.pwfile, **self.auth_options)
        self.authenticator = RecordingAuthenticator(inner)
        services = dataclasses.replace(services, authenticator=self.authenticator)
        async with ImapServer(self.config, services) as server:
            self.server = server
            self.ports = dict(server.ports)
            self._ready.set()
            await self._stop.wait()
        await registry.close_all()


ServerFactory = Callable[..., ServerThread]


@pytest.fixture
def server_factory(tls_files: TlsFiles, pwfile: Path) -> Iterator[ServerFactory]:
    """Start servers with config overrides: ``server_factory(max_connections=2)``."""
    started: list[ServerThread] = []

    def start(
        auth_options: dict[str, Any] | None = None, **overrides: Any
    ) -> ServerThread:
        values: dict[str, Any] = {
            "address": "127.0.0.1",
            "port": 0,
            "imap_port": 0,
            "cert": tls_files.cert,
            "key": tls_files.key,
            "pwfile": pwfile,
            "store": "memory",
        }
        values.update(overrides)
        thread = ServerThread(Config(**values), auth_options).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def imap_server(server_factory: ServerFactory) -> ServerThread:
    """A server with both listeners and default limits."""
    return server_factory()
