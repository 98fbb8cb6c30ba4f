"""RFC 5267 update contexts against a model: a client that applies every
ADDTO/REMOVEFROM (and renumbers on EXPUNGE, as section 4.3.2 expects of
message-number contexts) must always hold exactly what a fresh SEARCH or
SORT returns.

Client 2 changes the mailbox at random (seeded): flag changes on one
message or on many at once (the bulk paths), appends, expunges.  Client 1
keeps four contexts -- UID and message-number, SEARCH and SORT -- and
after each change sends NOOP, or a FETCH by sequence number during which
expunges must wait while REMOVEFROM need not.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from test_ext_special_use import MHWorld
from transcript import FakeClient, World, message

CONTEXTS = {
    "A": "UID SORT RETURN (UPDATE ALL) (SUBJECT REVERSE SIZE) UTF-8 UNSEEN",
    "B": "UID SEARCH RETURN (UPDATE ALL) FLAGGED",
    "C": "SEARCH RETURN (UPDATE ALL) OR SEEN DELETED",
    "D": "SORT RETURN (UPDATE ALL) (REVERSE SIZE) UTF-8 NOT FLAGGED",
}

_ESEARCH = re.compile(rb'^\* ESEARCH \(TAG "([^"]+)"\)( UID)?(.*)$')
_ITEM = re.compile(rb" (ALL|ADDTO|REMOVEFROM) (\([^)]*\)|\S+)")
_NUMBERED = re.compile(rb"^\* (\d+) (EXISTS|EXPUNGE)$")


def _expand(text: bytes) -> list[int]:
    numbers: list[int] = []
    for part in text.decode().split(","):
        low, _, high = part.partition(":")
        first, last = int(low), int(high or low)
        assert first <= last, "ranges must be ascending (RFC 5267 section 3.2)"
        numbers += range(first, last + 1)
    return numbers


@dataclass
class Client:
    """A scripted connection and what it believes."""

    io: FakeClient
    #: UIDs by sequence number, as EXISTS/EXPUNGE told it.
    mirror: list[int] = field(default_factory=list)
    #: UIDs the next EXISTS brings (learnt from client 2's APPENDUID).
    arriving: list[int] = field(default_factory=list)
    #: Each context's result as UIDs, in the requested order.
    results: dict[str, list[int]] = field(default_factory=dict)
    counter: int = 0

    async def run(self, command: bytes) -> list[bytes]:
        self.counter += 1
        tag = f"t{self.counter}".encode()
        self.io.write(tag + b" " + command + b"\r\n")
        lines: list[bytes] = []
        while True:
            line = await self.io.next_line()
            if line.startswith(tag + b" "):
                assert line.startswith(tag + b" OK"), line
                return lines
            lines.append(line)
            self._apply(line)

    def _apply(self, line: bytes) -> None:
        numbered = _NUMBERED.match(line)
        if numbered is not None:
            count = int(numbered.group(1))
            if numbered.group(2) == b"EXPUNGE":
                del self.mirror[count - 1]
            else:
                while len(self.mirror) < count:
                    self.mirror.append(self.arriving.pop(0))
            return
        found = _ESEARCH.match(line)
        if found is None:
            return
        tag, uid = found.group(1).decode(), bool(found.group(2))
        if tag not in self.results:
            return
        result = self.results[tag]
        for name, payload in _ITEM.findall(found.group(3)):
            if name == b"ALL":
                result[:] = self._uids(_expand(payload), uid)
                continue
            words = payload.strip(b"()").split()
            for position, numbers in zip(words[::2], words[1::2], strict=True):
                uids = self._uids(_expand(numbers), uid)
                at = int(position)
                if name == b"ADDTO":
                    if at == 0:
                        result[:] = sorted({*result, *uids})
                    else:
                        result[at - 1 : at - 1] = uids
                elif at == 0:
                    assert set(uids) <= set(result)
                    result[:] = [u for u in result if u not in set(uids)]
                else:
                    assert result[at - 1 : at - 1 + len(uids)] == uids
                    del result[at - 1 : at - 1 + len(uids)]

    def _uids(self, numbers: list[int], uid: bool) -> list[int]:
        return numbers if uid else [self.mirror[n - 1] for n in numbers]


async def _open(world: World) -> Client:
    io = FakeClient(world)
    io.start()
    await io.next_line()  # greeting
    client = Client(io)
    await client.run(b"LOGIN alice secret-a")
    for line in await client.run(b"SELECT INBOX"):
        if line.endswith(b" EXISTS"):
            client.mirror = list(range(1, int(line.split()[1]) + 1))
    return client


@pytest.fixture
async def world(store: str, tmp_path: Path) -> AsyncIterator[World]:
    if store == "memory":
        yield World()
        return
    mh = MHWorld(tmp_path / "Mail")
    try:
        yield mh
    finally:
        await mh.close()


def _message(rng: random.Random) -> bytes:
    subject = rng.choice(["alpha", "Re: alpha", "beta", "gamma", "Fwd: beta"])
    return message(subject, "x" * rng.randrange(1, 400))


# Several seeds on memory (fast); one on MH, whose appends fsync.
@pytest.mark.parametrize(
    ("store", "seed"), [("memory", 1), ("memory", 2), ("memory", 3), ("mh", 2)]
)
async def test_contexts_follow_random_changes(
    world: World, store: str, seed: int
) -> None:
    del store  # chosen by the fixture
    rng = random.Random(seed)
    one, two = await _open(world), await _open(world)
    try:
        for _ in range(40):
            await _append(two, one, rng)
        await two.run(b"NOOP")
        await one.run(b"NOOP")
        for tag, command in CONTEXTS.items():
            one.results[tag] = []
            one.io.write(f"{tag} {command}\r\n".encode())
            while not (line := await one.io.next_line()).startswith(tag.encode()):
                one._apply(line)
        await _check(one)
        for step in range(60):
            await _change(two, one, rng)
            if step % 3 == 0:
                await one.run(b"FETCH 1 (UID)")  # expunges must wait
            await one.run(b"NOOP")
            await _check(one)
    finally:
        await one.io.stop()
        await two.io.stop()


async def _append(two: Client, one: Client, rng: random.Random) -> None:
    """Client 2 appends one message; both learn its UID first (UIDNEXT),
    so that the EXISTS responses can be mapped to UIDs."""
    status = await two.run(b"STATUS INBOX (UIDNEXT)")
    uidnext = int(re.findall(rb"UIDNEXT (\d+)", status[-1])[0])
    one.arriving.append(uidnext)
    two.arriving.append(uidnext)
    data = _message(rng)
    flags = rng.choice([b"", b"(\\Seen) ", b"(\\Flagged) "])
    await two.run(b"APPEND INBOX " + flags + b"{%d+}\r\n" % len(data) + data)


async def _change(two: Client, one: Client, rng: random.Random) -> None:
    kind = rng.choice(["store", "store", "bulk", "append", "expunge"])
    await two.run(b"NOOP")
    count = len(two.mirror)
    if kind == "append" or count < 5:
        for _ in range(rng.choice([1, 1, 36])):
            await _append(two, one, rng)
        return
    if kind == "expunge":
        await two.run(b"EXPUNGE")
        return
    flag = rng.choice([b"\\Seen", b"\\Flagged", b"\\Deleted"])
    sign = rng.choice([b"+", b"-"])
    size = 1 if kind == "store" or count < 34 else rng.randrange(33, count + 1)
    picked = sorted(rng.sample(range(1, count + 1), min(size, count)))
    numbers = b",".join(b"%d" % n for n in picked)
    await two.run(b"STORE " + numbers + b" " + sign + b"FLAGS.SILENT (" + flag + b")")


async def _check(one: Client) -> None:
    """Every context equals a fresh run of its command (as UIDs)."""
    for tag, command in CONTEXTS.items():
        fresh_command = command.replace("UPDATE ", "").encode()
        lines = await one.run(fresh_command)
        answer = [line for line in lines if line.startswith(b"* ESEARCH")][-1]
        found = _ESEARCH.match(answer)
        assert found is not None
        items = dict(_ITEM.findall(found.group(3)))
        numbers = _expand(items[b"ALL"]) if b"ALL" in items else []
        fresh = one._uids(numbers, bool(found.group(2)))
        assert one.results[tag] == fresh, tag
