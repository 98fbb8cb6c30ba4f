"""NOTIFY (RFC 5465) over real sockets: news of other mailboxes within 1 s.

Connection A logs in, says ``NOTIFY SET STATUS (personal (MessageNew
MessageExpunge))`` and then sends nothing at all: no command in progress,
no IDLE.  Every change below must reach it as an unsolicited ``* STATUS
mailbox (UIDNEXT n MESSAGES m)`` (sections 5.2 and 5.3) within 1 s of the
start of the change, with nothing else arriving:

* connection B (same user) APPENDs to another mailbox;
* a delivery into INBOX (our ``deliver()`` in process; nmh's ``rcvstore``
  against ``asimapd``);
* nmh ``inc`` into a folder no connection has opened, then ``rmm`` there.

For ``asimapd`` in worker mode (watcher -> worker -> TLS relay), ``asimapd
--workers=off``, and the server in this process.
"""

from __future__ import annotations

import re
import socket
from functools import partial
from pathlib import Path

import pytest

from asimap.imap.session import notifier
from conftest import PASSWORD, USER, ServerFactory, TlsFiles, require_tool
from test_idle_latency import (
    RCVSTORE,
    REPEATS,
    Deployment,
    asimapd,
    crlf,
    in_process,
    observe,
    report,
)
from test_mh_live_imap import RawClient, mbox_of, message


def _status(name: str, uidnext: int, messages: int) -> bytes:
    return f'* STATUS "{name}" (UIDNEXT {uidnext} MESSAGES {messages})'.encode()


def exercise(deployment: Deployment) -> None:
    tools = deployment.tools
    watcher = deployment.connect()
    writer = deployment.connect()
    try:
        writer.command(f"LOGIN {USER} {PASSWORD}")
        writer.command('CREATE "other"')
        writer.command('CREATE "lists"')
        watcher.command(f"LOGIN {USER} {PASSWORD}")
        # Section 3.1: MessageNew asks for UIDVALIDITY UIDNEXT MESSAGES.
        initial, _ = watcher.command(
            "NOTIFY SET STATUS (personal (MessageNew MessageExpunge MailboxName))"
        )
        known: dict[str, list[int]] = {}
        for line in initial:
            found = re.fullmatch(
                rb'\* STATUS "?([^"]+)"? \(UIDVALIDITY \d+ UIDNEXT (\d+) '
                rb"MESSAGES (\d+)\)",
                line,
            )
            assert found, line
            known[found.group(1).decode()] = [
                int(found.group(2)),
                int(found.group(3)),
            ]
        assert {"INBOX", "other", "lists"} <= known.keys(), initial

        def arrives(name: str) -> list[bytes]:
            known[name][0] += 1
            known[name][1] += 1
            return [_status(name, *known[name])]

        def leaves(name: str) -> list[bytes]:
            known[name][1] -= 1
            return [_status(name, *known[name])]

        for n in range(REPEATS):
            tag = f"n{n}"
            observe(
                watcher,
                deployment,
                "IMAP APPEND elsewhere",
                partial(writer.append, "other", crlf(message(f"{tag}-append"))),
                arrives("other"),
            )
            observe(
                watcher,
                deployment,
                "delivery to INBOX",
                partial(deployment.deliver, crlf(message(f"{tag}-deliver"))),
                arrives("INBOX"),
            )
            mbox = tools.home / f"{tag}.mbox"
            mbox.write_bytes(mbox_of([message(f"{tag}-inc")]))
            mbox.chmod(0o644)
            observe(
                watcher,
                deployment,
                "inc +lists",
                partial(tools.nmh, "inc", "+lists", "-file", str(mbox), "-notruncate"),
                arrives("lists"),
            )
            observe(
                watcher,
                deployment,
                "rmm +lists",
                partial(tools.nmh, "rmm", "+lists", str(tools.numbers("lists")[0])),
                leaves("lists"),
            )
        # Section 5.4: folders made and removed by nmh are LISTed.
        observe(
            watcher,
            deployment,
            "folder -create",
            partial(tools.nmh, "folder", "-create", "+made-by-nmh"),
            [b'* LIST (\\HasNoChildren) "/" "made-by-nmh"'],
        )
        observe(
            watcher,
            deployment,
            "rmf",
            partial(tools.nmh, "rmf", "-nointeractive", "+made-by-nmh"),
            [b'* LIST (\\NonExistent) "/" "made-by-nmh"'],
        )
        # Still a working connection: commands and notifications interleave.
        untagged, _ = watcher.command("NOOP")
        assert untagged == []
        untagged, _ = watcher.command("NOTIFY NONE")
        assert untagged == []
        writer.append("other", crlf(message("after-none")))
        assert watcher.collect(0.5) == []
    finally:
        watcher.close()
        writer.close()


@pytest.mark.parametrize("mode", ["workers", "workers-off"])
def test_notify_asimapd(tls_files: TlsFiles, mode: str) -> None:
    require_tool(str(RCVSTORE))
    args = () if mode == "workers" else ("--workers=off",)
    with asimapd(tls_files, *args) as deployment:
        exercise(deployment)
    report(f"asimapd {mode}", deployment, "NOTIFY", each=None)


def test_notify_in_process(
    tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory
) -> None:
    with in_process(tmp_path, tls_files, server_factory) as deployment:
        exercise(deployment)
    report("in-process", deployment, "NOTIFY", each=None)


def test_a_client_that_stops_reading_overflows(
    server_factory: ServerFactory,
    tls_files: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Section 5.8 and flow control: a NOTIFY client that stops reading
    blocks its connection's writes (the socket fills), news piles up in the
    notifier only up to ``MAX_PENDING``, and then the client is told ``*
    OK [NOTIFICATIONOVERFLOW]`` and hears nothing more -- the server's
    memory for it stays bounded whatever the other connection does."""
    monkeypatch.setattr(notifier, "MAX_PENDING", 10)
    server = server_factory(workers=False)
    context = tls_files.client_context()
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so that the server's writes block soon.
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((server.host, server.imaps_port))
    quiet = RawClient(context.wrap_socket(raw, server_hostname="localhost"))
    assert quiet.read_line(10).startswith(b"* OK")
    quiet.command(f"LOGIN {USER} {PASSWORD}")
    quiet.command("NOTIFY SET (personal (MailboxMetadataChange))")
    busy = RawClient.connect(server, tls_files)
    busy.command(f"LOGIN {USER} {PASSWORD}")
    names = " ".join(f'/private/{"x" * 200}{i} "v"' for i in range(60))
    sent = 700
    try:
        # Each change is one ~12 KB METADATA line for the quiet client:
        # about 8 MB in all, far beyond what the sockets can buffer.
        for _ in range(sent):
            busy.command(f"SETMETADATA INBOX ({names})")
        # Now read: what was buffered, the overflow notice, then silence.
        lines = [line for _, line in quiet.collect(3.0)]
        overflow = [
            i for i, line in enumerate(lines) if b"NOTIFICATIONOVERFLOW" in line
        ]
        print(f"\nbuffered before the overflow: {overflow} lines")
        assert len(overflow) == 1, (len(lines), lines[-3:])
        assert lines[overflow[0]].startswith(b"* OK [NOTIFICATIONOVERFLOW]")
        # Far fewer lines than changes: the rest were never queued.
        assert len(lines) < sent / 2, (len(lines), sent)
        busy.command(f"SETMETADATA INBOX ({names})")
        assert quiet.collect(0.5) == []
        untagged, _ = quiet.command("NOOP")
        assert untagged == []
    finally:
        quiet.close()
        busy.close()
