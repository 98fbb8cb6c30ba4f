"""POP3 over the MH store: unique-ids survive a restart and nmh tools.

UIDL must not change across sessions or server restarts (RFC 1939
section 7), else clients that "leave mail on the server" download
everything again.  The MH store keeps UIDVALIDITY and UIDs in its database
at the MH root, so a store opened afresh on the same root -- what a
restarted server does -- must give the same unique-ids; an ``rmm`` by nmh
must remove one id and leave the others alone.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from asimap.auth.account import Account
from asimap.imap.session.services import Services
from asimap.pop3.commands import parse_line
from asimap.pop3.session import Pop3Session
from asimap.store.mh.profile import Profile
from asimap.store.mh.store import MHStore
from conftest import require_tool
from test_pop3_session import Accounts, FakeIO


async def _uidl_session(root: Path, *commands: bytes) -> dict[bytes, bytes]:
    """Open the store afresh (a 'server start'), log in, UIDL, run commands,
    QUIT, close the store.  Returns {number: unique-id}."""
    store = await MHStore.open(root, profile=Profile(path=root, unseen=("unseen",)))
    try:

        async def open_store(_account: Account) -> MHStore:
            return store

        io = FakeIO()
        session = Pop3Session(io, Services(Accounts(), open_store))
        for line in (b"USER alice", b"PASS secret", b"UIDL"):
            io.output.clear()
            await session.handle(parse_line(line))
        listing = bytes(io.output).split(b"\r\n")[1:-2]
        for line in (*commands, b"QUIT"):
            await session.handle(parse_line(line))
        return dict(tuple(entry.split(b" ")) for entry in listing)  # type: ignore[misc]
    finally:
        await store.close()


async def test_uidl_survives_restart_and_rmm(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    store = await MHStore.open(root, profile=Profile(path=root, unseen=("unseen",)))
    inbox = await store.mailbox("INBOX")
    for n in range(1, 5):
        await inbox.append(f"Subject: {n}\r\n\r\nbody {n}\r\n".encode())
    await store.close()

    first = await _uidl_session(root)
    assert len(set(first.values())) == 4
    assert await _uidl_session(root) == first  # restart: same ids

    second = await _uidl_session(root, b"DELE 1")  # committed at QUIT
    assert second == first
    after_dele = await _uidl_session(root)
    assert list(after_dele.values()) == [first[b"2"], first[b"3"], first[b"4"]]

    # nmh removes a message behind our back: the others keep their ids.
    rmm = require_tool("/usr/bin/mh/rmm")
    profile = tmp_path / "mh_profile"
    profile.write_text(f"Path: {root}\n")
    env = {**os.environ, "MH": str(profile)}
    subprocess.run([rmm, "+inbox", "last"], env=env, check=True, timeout=30)
    after_rmm = await _uidl_session(root)
    assert list(after_rmm.values()) == [first[b"2"], first[b"3"]]
