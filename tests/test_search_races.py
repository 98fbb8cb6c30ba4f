"""SEARCH TEXT while the folder changes under it: no match may go missing.

A folder filled by nmh ``inc`` has no cached summaries, so opening it
starts the background summary fill (newest first, in small jobs queued
with everybody else's); while it runs, two connections search the message
text over and over and a third STOREs flags and APPENDs messages (some of
them matching), and a fourth keeps opening the folder, which restarts the
fill for what the APPENDs added.  Every message that matched when a SEARCH
began is still there when it ends (nothing is expunged), so each SEARCH
must return at least those.  Bounded in time; real nmh, real MH store.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import random
import re
import subprocess
import time
from pathlib import Path

from asimap.auth.account import Account
from asimap.message.model import Message
from asimap.store.base import Store
from asimap.store.mh import MHStore
from asimap.store.mh.profile import Profile
from conftest import require_tool
from transcript import FakeClient, World

NMH_BIN = Path("/usr/bin/mh")
CORPUS = Path(__file__).parent / "data" / "usrp-users.mbox.gz"
#: Messages inc puts into the folder, and how long the races run.
MESSAGES = 150
SECONDS = float(os.environ.get("ASIMAP_SEARCH_RACE_SECONDS", "6"))
WORD = "gnuradio"


class _StoreWorld(World):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    async def open_store(self, account: Account) -> Store:
        return self.store


async def _command(client: FakeClient, tag: str, line: bytes) -> list[bytes]:
    client.write(tag.encode() + b" " + line + b"\r\n")
    lines: list[bytes] = []
    while True:
        got = await client.next_line(timeout=60)
        lines.append(got)
        if got.startswith(tag.encode() + b" "):
            return lines


async def _open(store: Store, command: bytes = b"SELECT INBOX") -> FakeClient:
    client = FakeClient(_StoreWorld(store))
    client.start()
    await client.next_line()
    assert (await _command(client, "l", b"LOGIN alice secret-a"))[-1].startswith(
        b"l OK"
    )
    opened = await _command(client, "s", command)
    assert opened[-1].startswith(b"s OK"), opened
    return client


def _inc_corpus(tmp_path: Path, root: Path) -> dict[int, bool]:
    """The first :data:`MESSAGES` corpus messages through nmh ``inc``;
    whether each (by message number = UID) matches :data:`WORD`."""
    inc = str(NMH_BIN / "inc") if (NMH_BIN / "inc").exists() else require_tool("inc")
    data = gzip.decompress(CORPUS.read_bytes())
    starts = [m.start() for m in re.finditer(rb"^From ", data, re.MULTILINE)]
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(data[: starts[MESSAGES]])
    profile = tmp_path / "mh_profile"
    profile.write_text(f"Path: {root}\nUnseen-Sequence: unseen\n")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "MH": str(profile),
        "HOME": str(tmp_path),
    }
    subprocess.run(
        [inc, "-file", str(mbox), "-notruncate", "+inbox"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    folder = root / "inbox"
    numbers = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())
    assert len(numbers) == MESSAGES
    return {n: _has_word((folder / str(n)).read_bytes()) for n in numbers}


def _has_word(raw: bytes) -> bool:
    """What SEARCH TEXT matches (RFC 9051 section 6.4.4: the header,
    including MIME header fields, or the body), from the message model."""
    message = Message(raw)
    texts = (message.header_text(), message.body_text(), message.mime_header_text())
    return any(WORD in text.casefold() for text in texts)


def _appended(n: int) -> bytes:
    word = WORD if n % 2 else "nothing"
    return (
        f"From: writer@example.org\r\nSubject: appended {n}\r\n"
        f"Message-ID: <appended-{n}@example.org>\r\n\r\n{word} {n}\r\n"
    ).encode()


async def test_search_text_misses_nothing_while_the_folder_changes(
    tmp_path: Path,
) -> None:
    root = tmp_path / "Mail"
    matching = {uid for uid, hit in _inc_corpus(tmp_path, root).items() if hit}
    assert matching
    store = await MHStore.open(root, profile=Profile(path=root, unseen=("unseen",)))
    deadline = time.monotonic() + SECONDS
    misses: list[tuple[int, list[int]]] = []
    searches = 0
    rng = random.Random(10)

    async def searcher() -> None:
        nonlocal searches
        client = await _open(store, b"EXAMINE INBOX")
        try:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                wanted = set(matching)  # acknowledged before this SEARCH
                got = await _command(
                    client, f"q{n}", b"UID SEARCH TEXT " + WORD.encode()
                )
                assert got[-1].startswith(b"q%d OK" % n), got
                (line,) = [g for g in got if g.startswith(b"* SEARCH")]
                found = {int(uid) for uid in line.split()[2:]}
                searches += 1
                if wanted - found:
                    misses.append((n, sorted(wanted - found)))
        finally:
            await client.stop()

    async def writer() -> None:
        client = await _open(store)
        try:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                uid = rng.choice(sorted(matching))
                sign = rng.choice("+-")
                await _command(
                    client,
                    f"w{n}",
                    b"UID STORE %d %sFLAGS (\\Flagged $k)" % (uid, sign.encode()),
                )
                data = _appended(n)
                got = await _command(
                    client, f"a{n}", b"APPEND INBOX {%d+}\r\n" % len(data) + data
                )
                assert got[-1].startswith(b"a%d OK [APPENDUID" % n), got
                if n % 2:
                    matching.add(int(got[-1].split()[4].rstrip(b"]")))
        finally:
            await client.stop()

    async def reopener() -> None:
        # Each SELECT lists the folder's states, which starts a fill of
        # the summaries the APPENDs added.
        while time.monotonic() < deadline:
            client = await _open(store)
            await client.stop()
            await asyncio.sleep(0.01)

    try:
        await asyncio.gather(searcher(), searcher(), writer(), reopener())
    finally:
        await store.close()
    assert searches >= 2
    assert misses == [], misses
