"""NUL octets in messages that did not come through APPEND.

APPEND re-encodes binary parts (``asimap.message.reencode``), but a message
nmh's ``rcvstore`` (or any MH tool, or a store filled directly) wrote holds
whatever octets it was given.  RFC 3501/9051 section 9 (CHAR8 excludes
%x00) and section 4.3.1 allow a NUL only in a literal8 answering
``BINARY[...]``; every other FETCH item that carries message data sends
each NUL as one 0x80 octet (as Dovecot 2.3 does), so every size the client
was told stays exact, and ``BINARY[...]`` keeps the exact octets.

The MH cases deliver with the real ``rcvstore`` into the root the store
serves; the memory store gets the same bytes straight into the store.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asimap.auth.account import Account
from asimap.store.base import Store
from asimap.store.memory import MemoryStore
from asimap.store.mh import MHStore
from asimap.store.mh.profile import Profile
from conftest import require_tool
from transcript import FakeClient, World

RCVSTORE = "/usr/lib/mh/rcvstore"

#: A stray NUL in 8bit text, a ``binary`` part, a NUL in a header field.
TEXT_WITH_NUL = (
    b"From: a@example.org\nTo: b@example.org\nSubject: stray\n"
    b"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: 8bit\n\nhello\x00world\nsecond line\n"
)
BINARY_OCTETS = b"\x00\x01\x02ab\x00"
BINARY_PART = (
    b"From: a@example.org\nTo: b@example.org\nSubject: binary\n"
    b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=bb\n\n"
    b"--bb\nContent-Type: text/plain\n\ntext\n"
    b"--bb\nContent-Type: application/octet-stream\n"
    b"Content-Transfer-Encoding: binary\n\n" + BINARY_OCTETS + b"\n--bb--\n"
)
HEADER_WITH_NUL = b"From: a@example.org\nSubject: nul\x00here\n\nbody\n"
MESSAGES = (TEXT_WITH_NUL, BINARY_PART, HEADER_WITH_NUL)

_LITERAL = re.compile(rb"(~?)\{(\d+)\}\r\n")


class _StoreWorld(World):
    """A transcript world whose every user gets ``store``."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    async def open_store(self, account: Account) -> Store:
        return self.store


def _deliver_with_rcvstore(tmp_path: Path, root: Path) -> None:
    """Each message through nmh's own MDA, as a mail system would."""
    if not Path(RCVSTORE).exists():
        require_tool("rcvstore")  # skips locally, fails under CI
    profile = tmp_path / "mh_profile"
    profile.write_text(f"Path: {root}\n")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "MH": str(profile),
        "HOME": str(tmp_path),
    }
    for data in MESSAGES:
        subprocess.run(
            [RCVSTORE, "+inbox"], input=data, env=env, check=True, timeout=30
        )


@pytest.fixture(params=["memory", "mh"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        memory = MemoryStore.for_new_account()
        inbox = await memory.mailbox("INBOX")
        for data in MESSAGES:
            await inbox.append(data)
        yield memory
        return
    root = tmp_path / "Mail"
    _deliver_with_rcvstore(tmp_path, root)
    stored = sorted((root / "inbox").iterdir(), key=lambda p: p.name)
    assert [p.read_bytes() for p in stored if p.name.isdigit()] == list(MESSAGES)
    mh = await MHStore.open(
        root, profile=Profile(path=root, unseen=("unseen",)), watch=False
    )
    try:
        yield mh
    finally:
        await mh.close()


async def _exchange(client: FakeClient, tag: str, line: str) -> bytes:
    """Every octet the server sends for one command, up to its tagged reply
    (literals are skipped by their announced size, so data cannot end it)."""
    client.write(f"{tag} {line}\r\n".encode())
    out = b""
    while True:
        got = await client.next_line(timeout=30) + b"\r\n"
        out += got
        while (match := re.search(rb"~?\{(\d+)\}\r\n\Z", out)) is not None:
            size = int(match[1])
            while len(client.output) < size:
                client.output_changed.clear()
                await client.output_changed.wait()
            out += bytes(client.output[:size])
            del client.output[:size]
            rest = await client.next_line(timeout=30) + b"\r\n"
            out += rest
        if got.startswith(tag.encode() + b" "):
            return out


def _items(response: bytes) -> dict[bytes, tuple[bytes, bytes]]:
    """``{item name: (literal marker "" or "~", data)}`` of the literals of
    one FETCH response."""
    found: dict[bytes, tuple[bytes, bytes]] = {}
    position = 0
    while (match := _LITERAL.search(response, position)) is not None:
        name = response[: match.start()].rstrip().rsplit(b" ", 1)[-1].lstrip(b"(")
        start = match.end()
        data = response[start : start + int(match[2])]
        found[name] = (match[1], data)
        position = start + len(data)
    return found


async def _fetch(store: Store, items: str, messages: str = "1:*") -> list[bytes]:
    """One FETCH of ``messages``, one response per message."""
    client = FakeClient(_StoreWorld(store))
    client.start()
    try:
        await client.next_line()
        assert b"l OK" in await _exchange(client, "l", "LOGIN alice secret-a")
        assert b"s OK" in await _exchange(client, "s", "EXAMINE INBOX")
        out = await _exchange(client, "f", f"FETCH {messages} ({items})")
    finally:
        await client.stop()
    assert out.endswith(b"f OK Fetch completed\r\n"), out
    return re.split(rb"(?=\* \d+ FETCH )", out)[1:]


def _textual(data: bytes) -> bytes:
    return data.replace(b"\x00", b"\x80")


async def test_no_plain_literal_carries_nul(store: Store) -> None:
    """Every item that carries message data, on each message: no ``{n}``
    literal holds NUL; each holds the stored octets with NUL as 0x80."""
    responses = await _fetch(
        store,
        "RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] "
        "BODY.PEEK[]<10.200> RFC822.HEADER RFC822.TEXT RFC822",
    )
    assert len(responses) == len(MESSAGES)
    for raw, response in zip(MESSAGES, responses, strict=True):
        items = _items(response)
        for name, (marker, data) in items.items():
            assert marker == b"", name
            assert b"\x00" not in data, (name, data)
        header, _, text = raw.partition(b"\n\n")
        size = re.search(rb"RFC822\.SIZE (\d+)", response)
        assert size is not None and int(size[1]) == len(raw)
        assert items[b"BODY[]"][1] == _textual(raw)
        assert items[b"RFC822"][1] == _textual(raw)
        assert items[b"BODY[HEADER]"][1] == _textual(header + b"\n\n")
        assert items[b"RFC822.HEADER"][1] == _textual(header + b"\n\n")
        assert items[b"BODY[TEXT]"][1] == _textual(text)
        assert items[b"RFC822.TEXT"][1] == _textual(text)
        assert items[b"BODY[]<10>"][1] == _textual(raw[10:210])
    # BODY[1] of a single-part message is its body; of the multipart, the
    # first part, which has no NUL.
    assert _items(responses[0])[b"BODY[1]"][1] == b"hello\x80world\nsecond line\n"
    assert _items(responses[1])[b"BODY[1]"][1] == b"text"


async def test_binary_keeps_the_exact_octets(store: Store) -> None:
    """BINARY[] and BINARY[part] are literal8 with the NULs as stored;
    BINARY.SIZE and the BODYSTRUCTURE sizes match what BODY and BINARY send."""
    responses = await _fetch(
        store, "BODYSTRUCTURE BINARY.PEEK[] BINARY.PEEK[1] BINARY.SIZE[1]"
    )
    for raw, response in zip(MESSAGES, responses, strict=True):
        items = _items(response)
        assert items[b"BINARY[]"] == (b"~", raw)
    text = _items(responses[0])[b"BINARY[1]"]
    assert text == (b"~", b"hello\x00world\nsecond line\n")
    assert b"BINARY.SIZE[1] 24" in responses[0]
    # "8BIT" size lines: the body sent by BODY[1] above.
    assert re.search(rb'"8BIT" 24 2 ', responses[0]), responses[0]

    (binary,) = await _fetch(store, "BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[2]", "2")
    items = _items(binary)
    assert items[b"BINARY[2]"] == (b"~", BINARY_OCTETS)
    assert items[b"BODY[2]"] == (b"", _textual(BINARY_OCTETS))
    assert b"BINARY.SIZE[2] 6" in binary
    (structure,) = await _fetch(store, "BODYSTRUCTURE", "2")
    assert re.search(rb'"BINARY" %d ' % len(BINARY_OCTETS), structure), structure
