"""IDLE latency: every kind of change reaches an idling client within 1 s.

Issue 6 (Build): "IDLE (RFC 2177): changes from the user's other
connections, from deliveries and from MH tools arrive within 1 s."  A raw
IMAPS client idles on INBOX of an MH-backed account while, one after the
other and several times over:

* another IMAP connection of the same user APPENDs      -> ``* n EXISTS``,
  STOREs ``\\Deleted`` -> ``FETCH FLAGS``, and UID EXPUNGEs -> ``EXPUNGE``
* a delivery agent delivers (our ``deliver()`` in-process; nmh's
  ``rcvstore``, a real MDA, against a separate server process) -> EXISTS
* nmh ``inc -file`` incorporates an mbox                 -> EXISTS
* nmh ``refile`` moves a message in from another folder  -> EXISTS
* nmh ``mark -sequence flagged -add``                    -> ``FETCH FLAGS``
* nmh ``rmm``                                            -> ``* n EXPUNGE``

for three deployments: ``asimapd`` in worker mode (the production shape:
the change travels watcher -> worker -> TLS relay), ``asimapd
--workers=off``, and the server in this process (so that ``deliver()`` can
run on the server's own store, as an LMTP front end would).

Latency is measured from the moment the change *starts* (just before the
APPEND is sent or the tool is launched) to the arrival of the untagged
response: an upper bound on the true figure, since the start includes the
tool's own start-up.  Each observation must be below 1 s; the medians and
maxima are printed (``pytest -s``) for the benchmark notes.  Every expected
line is asserted exactly (RFC 3501 section 7.3.1 EXISTS, 7.3.2 RECENT,
7.4.1 EXPUNGE, 7.4.2 FETCH), and nothing else may arrive.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from conftest import PASSWORD, USER, ServerFactory, TlsFiles, require_tool
from test_mh_live_imap import NMH_BIN, RawClient, mbox_of, message
from worker_harness import IS_ROOT, UIDS, Asimapd, mail_setup

#: The brief's bound for every observation.
BOUND_S = 1.0
#: How long we keep listening after the expected lines, for stray ones.
QUIET_S = 0.2
#: Each kind of change is repeated this many times.
REPEATS = 3
RCVSTORE = Path("/usr/lib/mh/rcvstore")


@dataclass
class Tools:
    """nmh programs run as the owner of the mail root (in worker mode the
    worker runs as that owner too, so the files stay writable by both)."""

    root: Path
    profile: Path
    home: Path
    uid: int | None

    def run(self, program: Path, *args: str, stdin: bytes | None = None) -> None:
        tool = require_tool(str(program))
        env = {
            "PATH": f"{NMH_BIN}{os.pathsep}/usr/bin:/bin",
            "MH": str(self.profile),
            "HOME": str(self.home),
            "LC_ALL": "C",
        }
        done = subprocess.run(
            [tool, *args],
            env=env,
            input=stdin,
            capture_output=True,
            timeout=30,
            check=False,
            user=self.uid,
            group=self.uid,
            extra_groups=None if self.uid is None else [],
        )
        assert done.returncode == 0, (program, args, done.stdout, done.stderr)

    def nmh(self, name: str, *args: str, stdin: bytes | None = None) -> None:
        self.run(NMH_BIN / name, *args, stdin=stdin)

    def numbers(self, folder: str) -> list[int]:
        """The message numbers of an MH folder, ascending (= IMAP order)."""
        return sorted(
            int(p.name) for p in (self.root / folder).iterdir() if p.name.isdigit()
        )


def make_tools(base: Path, root: Path, uid: int | None) -> Tools:
    """A profile readable by ``uid`` whose ``Path:`` is the mail root."""
    home = base / "nmh-home"
    home.mkdir(mode=0o755, exist_ok=True)
    profile = home / "mh_profile"
    profile.write_text(f"Path: {root}\nUnseen-Sequence: unseen\n")
    profile.chmod(0o644)
    if uid is not None:
        os.chown(home, uid, uid)
    return Tools(root, profile, home, uid)


@dataclass
class Deployment:
    """A running server plus how to reach it and how to deliver to it."""

    host: str
    port: int
    context: ssl.SSLContext
    tools: Tools
    #: Delivers one message into INBOX by the deployment's delivery agent.
    deliver: Callable[[bytes], None]
    latencies: dict[str, list[float]] = field(default_factory=dict)
    #: The same, counted from the end of the change (the tool's exit, the
    #: APPEND's tagged OK): how long the server itself took, at most.
    after_exit: dict[str, list[float]] = field(default_factory=dict)

    def connect(self) -> RawClient:
        raw = socket.create_connection((self.host, self.port), timeout=10)
        sock = self.context.wrap_socket(raw, server_hostname="localhost")
        client = RawClient(sock)
        assert client.read_line(10).startswith(b"* OK")
        return client


@contextlib.contextmanager
def asimapd(tls_files: TlsFiles, *args: str) -> Iterator[Deployment]:
    """``python -m asimap.cli`` on the MH store; rcvstore is its MDA."""
    # Workers drop to the mail root's owner; --workers=off serves as root.
    owners: dict[str, int] | None = None if args == () else {}
    with mail_setup(owners) as setup:
        root = setup.roots[USER]
        uid = UIDS[USER] if IS_ROOT and owners is None else None
        tools = make_tools(setup.base, root, uid)
        daemon = Asimapd(setup, tls_files.cert, tls_files.key, *args)
        try:

            def rcvstore(data: bytes) -> None:
                tools.run(RCVSTORE, "+inbox", stdin=data)

            yield Deployment(
                "127.0.0.1",
                daemon.ports["imaps"],
                tls_files.client_context(),
                tools,
                rcvstore,
            )
        finally:
            assert daemon.stop() == 0, daemon.log()


@contextlib.contextmanager
def in_process(
    tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory
) -> Iterator[Deployment]:
    """The server in this process; ``deliver()`` runs on its own store."""
    from asimap.auth.account import Account
    from asimap.auth.hashers import make_password
    from asimap.store.mh import MHStore
    from asimap.store.mh.delivery import deliver

    root = tmp_path / "Mail"
    root.mkdir()
    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"{USER}:{make_password(PASSWORD, iterations=1000)}:Mail\n")
    server = server_factory(pwfile=pwfile, store="mh", workers=False)
    tools = make_tools(tmp_path, root, None)

    def deliver_here(data: bytes) -> None:
        async def run() -> None:
            # The registry hands back the very store the sessions share.
            assert server.registry is not None
            store = await server.registry.open(Account(USER, root))
            assert isinstance(store, MHStore)
            await deliver(store, "INBOX", data)

        server.call(run)

    yield Deployment(
        server.host, server.imaps_port, tls_files.client_context(), tools, deliver_here
    )


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def observe(
    client: RawClient,
    deployment: Deployment,
    kind: str,
    change: Callable[[], object],
    expected: list[bytes],
) -> None:
    """Make ``change``; exactly ``expected`` arrives, the first line within
    BOUND_S of the start of the change; record that latency."""
    start = time.monotonic()
    change()
    finished = time.monotonic() - start
    got: list[tuple[float, bytes]] = []
    while len(got) < len(expected):
        left = start + BOUND_S + QUIET_S - time.monotonic()
        line = client.read_line(max(left, 0.01))
        if not line:
            break
        got.append((time.monotonic() - start, line))
    # Anything further would be a stray or duplicate response.
    got += [(BOUND_S + QUIET_S, line) for _, line in client.collect(QUIET_S)]
    assert [line for _, line in got] == expected, (kind, got)
    latency = got[0][0]
    assert latency < BOUND_S, (kind, latency)
    deployment.latencies.setdefault(kind, []).append(latency)
    deployment.after_exit.setdefault(kind, []).append(max(latency - finished, 0.0))


def exercise(deployment: Deployment) -> None:
    """Every kind of change, REPEATS times, seen by one idling client."""
    tools = deployment.tools
    idler = deployment.connect()
    writer = deployment.connect()
    try:
        writer.command(f"LOGIN {USER} {PASSWORD}")
        writer.command('CREATE "other"')
        idler.login_select("INBOX")
        idler.idle()
        exists = 0

        def arrives() -> list[bytes]:
            # RFC 3501 7.3.1 then 7.3.2: the idler is the only session with
            # INBOX selected, so every message that arrived while it was
            # selected (here: all of them) is \Recent for it.
            nonlocal exists
            exists += 1
            return [f"* {exists} EXISTS".encode(), f"* {exists} RECENT".encode()]

        for n in range(REPEATS):
            tag = f"r{n}"
            observe(
                idler,
                deployment,
                "IMAP APPEND",
                partial(writer.append, "INBOX", crlf(message(f"{tag}-append"))),
                arrives(),
            )
            observe(
                idler,
                deployment,
                "delivery",
                partial(deployment.deliver, crlf(message(f"{tag}-deliver"))),
                arrives(),
            )
            mbox = tools.home / f"{tag}.mbox"
            mbox.write_bytes(mbox_of([message(f"{tag}-inc")]))
            mbox.chmod(0o644)
            observe(
                idler,
                deployment,
                "inc -file",
                partial(tools.nmh, "inc", "+inbox", "-file", str(mbox), "-notruncate"),
                arrives(),
            )
            tools.run(RCVSTORE, "+other", stdin=message(f"{tag}-refile"))
            source = str(tools.numbers("other")[-1])
            observe(
                idler,
                deployment,
                "refile",
                partial(tools.nmh, "refile", "+inbox", "-src", "+other", source),
                arrives(),
            )
            # Flag the message delivered in this round (no flags but
            # \Recent so far: it is in the unseen sequence, so not \Seen).
            numbers = tools.numbers("inbox")
            target = numbers[-3]
            seq = numbers.index(target) + 1
            observe(
                idler,
                deployment,
                "mark flagged",
                partial(
                    tools.nmh,
                    "mark",
                    "+inbox",
                    str(target),
                    "-sequence",
                    "flagged",
                    "-add",
                ),
                [f"* {seq} FETCH (FLAGS (\\Flagged \\Recent))".encode()],
            )
            # The user's other connection flags the inc'ed message \Deleted
            # and expunges it (RFC 4315 UID EXPUNGE); it leaves INBOX again
            # before the next round so that new mail stays \Recent for
            # the idler alone.
            writer.command('SELECT "INBOX"')
            untagged, _ = writer.command(f'UID SEARCH HEADER Message-ID "{tag}-inc"')
            [uid] = untagged[0].split()[2:]
            seq = numbers.index(numbers[-2]) + 1
            observe(
                idler,
                deployment,
                "IMAP STORE",
                partial(writer.command, f"UID STORE {uid.decode()} +FLAGS (\\Deleted)"),
                [f"* {seq} FETCH (FLAGS (\\Deleted \\Recent))".encode()],
            )
            observe(
                idler,
                deployment,
                "IMAP EXPUNGE",
                partial(writer.command, f"UID EXPUNGE {uid.decode()}"),
                [f"* {seq} EXPUNGE".encode()],
            )
            exists -= 1
            writer.command("UNSELECT")
            # Remove the message APPENDed in this round (RFC 3501 7.4.1: the
            # sequence number it had; later ones move down by one).
            target = numbers[-4]
            seq = numbers.index(target) + 1
            observe(
                idler,
                deployment,
                "rmm",
                partial(tools.nmh, "rmm", "+inbox", str(target)),
                [f"* {seq} EXPUNGE".encode()],
            )
            exists -= 1
        assert idler.done() == []
        # The idler's view agrees with the folder on disk.
        assert len(idler.uid_map()) == len(tools.numbers("inbox")) == exists
    finally:
        idler.close()
        writer.close()


def report(
    name: str, deployment: Deployment, what: str = "IDLE", each: int | None = REPEATS
) -> None:
    """Latencies for the notes (``pytest -s``); ``each``: how many times
    every kind of change must have been observed (None: not checked)."""
    print(f"\n{what} latency, {name} (s; from start / after end of the change):")
    for kind, values in deployment.latencies.items():
        assert each is None or len(values) == each, (kind, values)
        after = deployment.after_exit[kind]
        print(
            f"  {kind:22} median {statistics.median(values):.3f}"
            f" max {max(values):.3f} / median {statistics.median(after):.3f}"
            f" max {max(after):.3f}  n={len(values)}"
        )


@pytest.mark.parametrize("mode", ["workers", "workers-off"])
def test_idle_latency_asimapd(tls_files: TlsFiles, mode: str) -> None:
    require_tool(str(RCVSTORE))
    args = () if mode == "workers" else ("--workers=off",)
    with asimapd(tls_files, *args) as deployment:
        exercise(deployment)
    report(f"asimapd {mode}", deployment)


def test_idle_latency_in_process(
    tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory
) -> None:
    require_tool(str(RCVSTORE))
    with in_process(tmp_path, tls_files, server_factory) as deployment:
        exercise(deployment)
    report("in-process", deployment)
