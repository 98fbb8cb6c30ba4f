"""Correctness of the fast paths taken for large MH folders.

Each optimised path must answer exactly what the plain path answers:

* header SEARCH answered from cached summaries (MH store) gives the same
  results as SEARCH that parses every message (memory store), and really
  reads no message file once the summaries are cached;
* ``UID FETCH (UID FLAGS)`` pre-encoded is byte-identical to the general
  FETCH item list, and FETCH responses sent in batches arrive complete and
  in order;
* the MH store's first scan, which numbers a whole folder's files in one
  statement, gives the UIDs, flags and \\Recent that one-by-one inserts
  gave; STORE and EXPUNGE on a few UIDs of a big folder touch exactly those.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from asimap.auth.account import Account
from asimap.imap.commands import FetchAtt, FetchKind
from asimap.imap.encoder import encode
from asimap.imap.responses import Atom, Untagged
from asimap.imap.session import fetch
from asimap.imap.session.handlers_fetch import SEND_BATCH
from asimap.imap.session.selected import SelectedMailbox
from asimap.store.base import MessageState, Store, StoreMode
from asimap.store.memory import MemoryStore
from asimap.store.mh import MHStore, summarizing
from asimap.store.mh.profile import Profile
from store_conformance import corpus_messages
from transcript import FakeClient, World

T = TypeVar("T")

NO_PROFILE = Profile(path=None, unseen=("unseen",))

#: Header and SENT* keys answered from summaries, mixed with flag, size and
#: date keys and with keys that still need the message (X-Mailer, TEXT).
QUERIES = (
    'FROM "ettus"',
    'FROM "nobody-matches-this"',
    'SUBJECT "usrp"',
    'SUBJECT "RE:"',
    'TO "usrp-users"',
    'CC "a"',
    'BCC ""',
    'FROM ""',
    'HEADER Message-ID "@"',
    'HEADER In-Reply-To ""',
    'HEADER References "CA"',
    'HEADER Reply-To "lists"',
    'HEADER Sender "usrp"',
    'HEADER X-Mailer ""',
    "SENTBEFORE 1-Jan-2020",
    "SENTSINCE 1-Jan-2019",
    "SENTON 20-Feb-2019",
    'OR FROM "Marcus" SUBJECT "B210"',
    'NOT FROM "Marcus"',
    'SEEN FROM "a"',
    'UNSEEN SUBJECT "e"',
    'LARGER 5000 FROM "e"',
    'SINCE 1-Jan-2000 SUBJECT "x"',
    'TEXT "underrun"',
    'OR SUBJECT "usrp" BODY "FPGA"',
    "ALL",
    "2:5",
)


class StoreWorld(World):
    """The transcript world, serving one given store to every login."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    async def open_store(self, account: Account) -> Store:
        return self.store


async def command(client: FakeClient, tag: str, line: str) -> list[bytes]:
    """Send one command; every response line up to its tagged one."""
    client.write(f"{tag} {line}\r\n".encode())
    lines: list[bytes] = []
    while True:
        got = await client.next_line(timeout=30)
        lines.append(got)
        if got.startswith(tag.encode() + b" "):
            return lines


async def session(store: Store) -> AsyncIterator[FakeClient]:
    client = FakeClient(StoreWorld(store))
    client.start()
    await client.next_line()
    ok = await command(client, "l", "LOGIN alice secret-a")
    assert ok[-1].startswith(b"l OK"), ok
    selected = await command(client, "s", "SELECT INBOX")
    assert selected[-1].startswith(b"s OK"), selected
    try:
        yield client
    finally:
        await client.stop()


async def fill(store: Store, messages: tuple[bytes, ...]) -> None:
    inbox = await store.mailbox("INBOX")
    for index, raw in enumerate(messages):
        flags = ["\\Seen"] if index % 3 else []
        await inbox.append(raw, flags)


@pytest.fixture
async def both(tmp_path: Path) -> AsyncIterator[tuple[MHStore, MemoryStore]]:
    messages = corpus_messages(40)
    mh = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE, watch=False)
    memory = MemoryStore.for_new_account()
    await fill(mh, messages)
    await fill(memory, messages)
    try:
        yield mh, memory
    finally:
        await mh.close()


async def search_results(store: Store, queries: tuple[str, ...]) -> list[bytes]:
    out: list[bytes] = []
    async for client in session(store):
        for index, query in enumerate(queries):
            for kind in ("SEARCH", "UID SEARCH"):
                lines = await command(client, f"q{index}", f"{kind} {query}")
                assert lines[-1].startswith(f"q{index} OK".encode()), (query, lines)
                (result,) = [line for line in lines if line.startswith(b"* SEARCH")]
                out.append(result)
    return out


async def test_header_search_from_summaries_equals_parsing_messages(
    both: tuple[MHStore, MemoryStore],
) -> None:
    mh, memory = both
    # The memory store has no summary cache: it parses every message.
    expected = await search_results(memory, QUERIES)
    assert len(set(expected)) > 10  # the queries really tell messages apart
    # First run fills the MH summary cache, the second answers from it.
    assert await search_results(mh, QUERIES) == expected
    assert await search_results(mh, QUERIES) == expected


async def test_cached_header_search_reads_no_message(
    both: tuple[MHStore, MemoryStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    mh, memory = both
    header_only = tuple(q for q in QUERIES if "TEXT" not in q and "BODY" not in q)
    header_only = tuple(q for q in header_only if "X-Mailer" not in q)
    expected = await search_results(memory, header_only)
    inbox = await mh.mailbox("INBOX")
    await inbox.summaries([s.uid for s in await inbox.states()])  # warm cache

    def no_reading(*_args: object) -> bytes:
        raise AssertionError("a message file was read for a header SEARCH")

    monkeypatch.setattr(mh.core, "read", no_reading)
    # Batches of messages are read straight from their files.
    monkeypatch.setattr(summarizing, "_open_if_same", no_reading)
    assert await search_results(mh, header_only) == expected
    # TEXT still needs the message: the patched read proves the path.
    with pytest.raises(AssertionError):
        await search_results(mh, ('TEXT "underrun"',))


async def test_text_and_size_search_load_a_batch_per_store_job(
    both: tuple[MHStore, MemoryStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SEARCH TEXT and LARGER read each batch of messages in one store
    job, not one job for the facts and one for the file per message: on
    100,000 messages those jobs were a second of the search."""
    mh, memory = both
    queries = ('TEXT "underrun"', "LARGER 5000", 'OR BODY "FPGA" SMALLER 3000')
    expected = await search_results(memory, queries)
    jobs = 0
    real = mh.call

    async def counted(fn: Callable[[], T], *, adds: bool = False) -> T:
        nonlocal jobs
        jobs += 1
        return await real(fn, adds=adds)

    monkeypatch.setattr(mh, "call", counted)
    assert await search_results(mh, queries) == expected
    # 40 messages, 6 searches (SEARCH and UID SEARCH of each): one load
    # each, plus the session's few (SELECT, the changes before answering).
    assert jobs < 40


def _view(states: list[MessageState], recent: set[int]) -> SelectedMailbox:
    return SelectedMailbox(
        MemoryStore.for_new_account(),  # type: ignore[arg-type]  # never read
        states,
        1,
        readonly=False,
        recent=recent,
    )


@pytest.mark.parametrize(
    "kinds",
    [
        (FetchKind.UID, FetchKind.FLAGS),
        (FetchKind.FLAGS,),
        (FetchKind.FLAGS, FetchKind.UID),
        (FetchKind.UID,),
        (FetchKind.FLAGS, FetchKind.FLAGS),
    ],
)
@pytest.mark.parametrize("with_uid", [False, True])
async def test_fast_flags_fetch_is_byte_identical(
    kinds: tuple[FetchKind, ...], with_uid: bool
) -> None:
    flag_sets = [
        frozenset(),
        frozenset({"\\Seen"}),
        frozenset({"\\Seen", "\\Flagged", "\\Answered", "\\Deleted", "\\Draft"}),
        frozenset({"$Forwarded", "work", "\\Seen"}),
    ]
    states = [
        MessageState(uid, flag_sets[uid % len(flag_sets)], uid) for uid in range(1, 13)
    ]
    view = _view(states, recent={2, 3, 9})
    items = tuple(FetchAtt(kind) for kind in kinds)
    for seq, state in enumerate(states, 1):
        fast = fetch.fast_items(
            view, state.uid, items, with_uid=with_uid, with_flags=False
        )
        assert fast is not None
        general = await fetch.fetch_message(
            view, state.uid, items, with_uid=with_uid, with_flags=False
        )
        assert encode(Untagged((seq, Atom("FETCH"), fast))) == encode(
            Untagged((seq, Atom("FETCH"), general))
        )
    assert (
        fetch.fast_items(
            view, 1, (FetchAtt(FetchKind.ENVELOPE),), with_uid=True, with_flags=False
        )
        is None
    )


async def test_batched_fetch_responses_are_complete_and_in_order(
    tmp_path: Path,
) -> None:
    count = SEND_BATCH * 2 + 17
    store = MemoryStore.for_new_account()
    inbox = await store.mailbox("INBOX")
    raw = corpus_messages(1)[0]
    for index in range(count):
        await inbox.append(raw, ["\\Seen"] if index % 2 else [])
    async for client in session(store):
        lines = await command(client, "f", "FETCH 1:* (UID FLAGS)")
        assert lines[-1].startswith(b"f OK")
        fetched = lines[:-1]
        assert len(fetched) == count
        for seq, line in enumerate(fetched, 1):
            seen = "\\Seen " if seq % 2 == 0 else ""
            assert (
                line
                == f"* {seq} FETCH (UID {seq} FLAGS ({seen}\\Recent))".replace(
                    " )", ")"
                ).encode()
            ), line
        # Mixed items (summaries + flags) also come complete and in order.
        lines = await command(client, "g", "UID FETCH 1:* (FLAGS RFC822.SIZE)")
        numbers = [
            int(m[1]) for m in map(re.compile(rb"^\* (\d+) FETCH").match, lines) if m
        ]
        assert numbers == list(range(1, count + 1))
        assert all(f"RFC822.SIZE {len(raw)}".encode() in line for line in lines[:-1])


async def test_first_scan_numbers_files_in_order_with_their_flags(
    tmp_path: Path,
) -> None:
    root = tmp_path / "Mail"
    inbox_dir = root / "inbox"
    inbox_dir.mkdir(parents=True)
    raw = corpus_messages(1)[0]
    numbers = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
    for number in numbers:
        (inbox_dir / str(number)).write_bytes(raw)
    (inbox_dir / ".mh_sequences").write_text(
        "Recent: 89\nSeen: 1-3 55\nflagged: 5 8\nunseen: 5-34 89\nwork: 13\n"
    )
    store = await MHStore.open(root, profile=NO_PROFILE, watch=False)
    try:
        inbox = await store.mailbox("INBOX")
        states = await inbox.states()
        assert [s.uid for s in states] == list(range(1, len(numbers) + 1))
        by_number = dict(zip(numbers, states, strict=True))
        assert by_number[1].flags == {"\\Seen"}
        assert by_number[5].flags == {"\\Flagged"}
        assert by_number[13].flags == {"work"}
        assert by_number[55].flags == {"\\Seen"}
        assert by_number[89].flags == frozenset()
        # Imported: only what the file's Recent sequence names is recent.
        assert await inbox.claim_recent() == {by_number[89].uid}
        # Files arriving later (inc) get the next UIDs and are recent.
        (inbox_dir / "90").write_bytes(raw)
        (inbox_dir / "91").write_bytes(raw)
        await inbox.poll()
        later = await inbox.states()
        assert [s.uid for s in later[-2:]] == [11, 12]
        assert await inbox.claim_recent() == {11, 12}
        assert (await inbox.status()).uidnext == 13

        # STORE and EXPUNGE on a few UIDs change exactly those.
        result = await inbox.store([2, 4, 99], StoreMode.ADD, ["\\Deleted"])
        assert sorted(s.uid for s in result.updated) == [2, 4]
        assert await inbox.expunge([4, 5]) == (4,)
        assert [s.uid for s in await inbox.states()] == [1, 2, 3, *range(5, 13)]
    finally:
        await store.close()


async def test_polls_asked_together_are_one_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a delivery every IDLE connection of a user polls its folder
    at once: those polls share a job on the store's thread (plus at most
    one started after it), instead of one job each."""
    mh = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE, watch=False)
    try:
        inbox = await mh.mailbox("INBOX")
        rescans = 0
        refresh = mh.core.refresh

        def counting(mailbox_id: int) -> int:
            nonlocal rescans
            rescans += 1
            return refresh(mailbox_id)

        monkeypatch.setattr(mh.core, "refresh", counting)
        await asyncio.gather(*(inbox.poll() for _ in range(50)))
        assert rescans == 1
        # A poll asked for while one runs is answered by the next one,
        # which starts after it: it sees a message written meanwhile.
        first = asyncio.ensure_future(inbox.poll())
        await asyncio.sleep(0)
        (tmp_path / "Mail" / "inbox" / "1").write_bytes(b"Subject: x\n\nbody\n")
        before = inbox.highest_noted
        await asyncio.gather(first, inbox.poll(), inbox.poll())
        assert rescans == 3  # the two asked later shared one, after the first
        assert inbox.highest_noted > before
    finally:
        await mh.close()
