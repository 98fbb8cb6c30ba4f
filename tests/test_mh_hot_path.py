"""Commands on an unchanged MH folder do not look at the folder at all.

The server (in-process, MH store, inotify watcher, real TLS) trusts its
watcher: a command on a folder nothing changed costs no directory listing,
no access to ``.mh_sequences`` and no probe of nmh's lock; a STORE writes
the sequence file but lists nothing.  The file system calls the server
makes are counted by wrapping them for the duration of each command (the
server's store runs in this process, on its worker thread).

The other half: trusting the watcher must not make a command miss what an
nmh tool did just before it -- the command after ``mark`` or ``inc``
returns sees the change at once, without waiting for the watcher's
debounce.
"""

from __future__ import annotations

import builtins
import fcntl
import io
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from test_mh_live_imap import Live, RawClient, inc, live, message

__all__ = ["live"]  # the fixture, imported for pytest

SEQUENCES = ".mh_sequences"


@dataclass
class Calls:
    """What the server did to the mail folders while counted."""

    listings: list[str] = field(default_factory=list)
    sequence_file: list[str] = field(default_factory=list)
    lock_probes: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.listings.clear()
        self.sequence_file.clear()
        self.lock_probes.clear()


@contextmanager
def counted(root: Path) -> Iterator[Calls]:
    """Count, in every thread, listings of directories under ``root``,
    any access to a ``.mh_sequences`` by path (open, stat) and ``fcntl``
    lock calls (nmh's lock, probed with ``F_GETLK``)."""
    calls = Calls()
    prefix = str(root)
    lock = threading.Lock()
    originals: dict[tuple[Any, str], Callable[..., Any]] = {}

    def note(bucket: list[str], what: str) -> None:
        with lock:
            bucket.append(what)

    def path_of(arg: Any) -> str:
        try:
            return os.fsdecode(arg)
        except TypeError:
            return ""

    def wrap_listing(module: Any, name: str) -> None:
        original = getattr(module, name)
        originals[(module, name)] = original

        def wrapper(path: Any = ".", *args: Any, **kwargs: Any) -> Any:
            text = path_of(path)
            if text.startswith(prefix):
                note(calls.listings, f"{name}({text})")
            return original(path, *args, **kwargs)

        setattr(module, name, wrapper)

    def wrap_path_call(module: Any, name: str) -> None:
        original = getattr(module, name)
        originals[(module, name)] = original

        def wrapper(path: Any, *args: Any, **kwargs: Any) -> Any:
            text = path_of(path)
            if text.endswith(SEQUENCES) and text.startswith(prefix):
                note(calls.sequence_file, f"{name}({text})")
            return original(path, *args, **kwargs)

        setattr(module, name, wrapper)

    def wrap_lock(module: Any, name: str) -> None:
        original = getattr(module, name)
        originals[(module, name)] = original

        def wrapper(fd: Any, op: Any, *args: Any, **kwargs: Any) -> Any:
            if name == "lockf" or op in (fcntl.F_GETLK, fcntl.F_SETLK, fcntl.F_SETLKW):
                note(calls.lock_probes, f"{name}({op})")
            return original(fd, op, *args, **kwargs)

        setattr(module, name, wrapper)

    for name in ("scandir", "listdir"):
        wrap_listing(os, name)
    for module, name in ((os, "open"), (os, "stat"), (io, "open"), (builtins, "open")):
        wrap_path_call(module, name)
    for name in ("fcntl", "lockf"):
        wrap_lock(fcntl, name)
    try:
        yield calls
    finally:
        for (module, name), original in originals.items():
            setattr(module, name, original)


def settled(client: RawClient) -> None:
    """Run every command once so that caches are warm and the folder's
    own writes (SELECT's \\Recent claim, the STORE) are behind us."""
    client.command("NOOP")
    client.command("FETCH 1:* (FLAGS)")
    client.command('SEARCH SUBJECT "m2"')
    client.command("STORE 1 +FLAGS (\\Answered)")
    client.command("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)")
    client.command("NOOP")


COMMANDS = (
    "NOOP",
    "FETCH 1:* (FLAGS)",
    "UID FETCH 1:* (UID FLAGS)",
    "STATUS INBOX (MESSAGES UNSEEN UIDNEXT HIGHESTMODSEQ)",
    'SEARCH SUBJECT "m3"',
    "SEARCH UNSEEN",
    "CHECK",
)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_on_unchanged_folder_touches_nothing(live: Live, command: str) -> None:
    client = live.client()
    settled(client)
    root = live.nmh.root
    with counted(root) as calls:
        client.command(command)
        client.command(command)  # and again right after: nothing is "racy"
    assert calls.listings == [], calls
    assert calls.sequence_file == [], calls
    assert calls.lock_probes == [], calls


def test_store_writes_sequences_but_lists_nothing(live: Live) -> None:
    client = live.client()
    settled(client)
    with counted(live.nmh.root) as calls:
        client.command("STORE 2 +FLAGS (\\Flagged)")
        client.command("STORE 2:3 +FLAGS (\\Seen)")
        client.command("STORE 3 -FLAGS (\\Seen)")
    assert calls.listings == [], calls
    assert calls.sequence_file, "a STORE must write .mh_sequences"
    # Our own writes were checked at the end of their job: the next
    # command finds the folder current.
    with counted(live.nmh.root) as calls:
        client.command("NOOP")
        client.command("FETCH 1:* (FLAGS)")
    assert calls.listings == [] and calls.sequence_file == [], calls
    assert calls.lock_probes == [], calls


def test_append_lists_nothing(live: Live) -> None:
    client = live.client()
    settled(client)
    with counted(live.nmh.root) as calls:
        for n in range(3):
            client.append("INBOX", message(f"a{n}").replace(b"\n", b"\r\n"))
        client.command("NOOP")
    assert calls.listings == [], calls


def test_mark_is_seen_by_the_very_next_command(live: Live) -> None:
    """``mark`` returned: the next NOOP reports the flag, with no wait for
    the watcher's debounce."""
    client = live.client()
    settled(client)
    for n, flag in ((2, b"\\Flagged"), (3, b"\\Draft"), (4, b"\\Flagged")):
        sequence = {b"\\Flagged": "flagged", b"\\Draft": "Draft"}[flag]
        live.nmh("mark", "+inbox", str(n), "-sequence", sequence, "-add")
        untagged, _ = client.command("NOOP")
        found = [line for line in untagged if re.match(rb"\* %d FETCH" % n, line)]
        assert found and flag in found[0], untagged


def test_inc_and_rmm_are_seen_by_the_very_next_command(live: Live) -> None:
    client = live.client()
    settled(client)
    inc(live.nmh, live.tmp, [message("fresh")])
    untagged, _ = client.command("NOOP")
    assert b"* 5 EXISTS" in untagged, untagged
    live.nmh("rmm", "+inbox", "1")
    untagged, _ = client.command("NOOP")
    assert b"* 1 EXPUNGE" in untagged, untagged
    # And a message rewritten in place (same name, no directory change).
    path = live.nmh.root / "inbox" / "2"
    path.write_bytes(path.read_bytes() + b"more\n")
    untagged, _ = client.command("NOOP")
    assert b"* 1 EXPUNGE" in untagged and b"* 4 EXISTS" in untagged, untagged


def test_grouped_sequences_are_the_per_message_ones() -> None:
    """The grouped build an APPEND uses gives exactly the per-message one."""
    import random

    from asimap.store.mh import sequences

    rng = random.Random(7)
    pool = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "work"]
    triples = [
        (num, frozenset(f for f in pool if rng.random() < 0.3), rng.random() < 0.2)
        for num in rng.sample(range(1, 5000), 800)
    ]
    groups: dict[tuple[frozenset[str], bool], set[int]] = {}
    for num, flags, recent in triples:
        groups.setdefault((flags, recent), set()).add(num)
    unseen = ("unseen", "new")
    assert sequences.build_grouped(groups, unseen) == sequences.build_sequences(
        triples, unseen
    )


async def test_sequences_kept_between_appends_are_the_rows(tmp_path: Path) -> None:
    """After APPENDs, STOREs, an EXPUNGE and a rolled-back APPEND, the
    groups kept between writes are what the rows say, and so is the file."""
    from asimap.store.base import StoreMode
    from asimap.store.mh import MHStore, sequences
    from asimap.store.mh.profile import Profile
    from asimap.store.mh.seqcache import OurSequences

    store = await MHStore.open(
        tmp_path / "Mail", profile=Profile(path=None, unseen=("unseen",))
    )
    try:
        box = await store.mailbox("INBOX")
        core = store.core
        uids = []
        for n in range(12):
            flags = ["\\Seen"] if n % 3 == 0 else (["work"] if n % 3 == 1 else [])
            uids.append(await box.append(message(f"k{n}"), flags))
        await box.store(uids[2:5], StoreMode.ADD, ["\\Flagged"])
        await box.append(message("after-store"), ["\\Draft"])
        await box.store(uids[:2], StoreMode.ADD, ["\\Deleted"])
        await box.expunge()
        with pytest.raises(Exception):  # noqa: B017 - any refusal will do
            await box.append(message("bad"), ["not a keyword"])
        await box.append(message("last"))
        # A row changed by a statement that writes no sequences (none does
        # today; the change counter must notice all the same).
        await store.call(
            lambda: core.conn.execute(
                "UPDATE messages SET flags='\\Answered' WHERE mailbox_id=? AND uid=?",
                (box.mailbox_id, uids[5]),
            )
        )
        await box.append(message("very last"))

        def compare() -> tuple[object, object, str, str]:
            kept = core.our_sequences.groups(box.mailbox_id)
            fresh = OurSequences(core.conn).groups(box.mailbox_id)
            text = (core.root / "inbox" / ".mh_sequences").read_text()
            wanted = sequences.format_file(
                sequences.build_grouped(fresh, core.unseen), {}
            )
            return kept, fresh, text, wanted

        kept, fresh, text, wanted = await store.call(compare)
        assert kept == fresh
        assert text == wanted
    finally:
        await store.close()


def test_format_ranges_matches_a_plain_walk() -> None:
    """The faster run detection gives nmh's compact form exactly."""
    import random

    from asimap.store.mh import sequences

    def plain(numbers: set[int]) -> str:
        ordered, parts, index = sorted(numbers), [], 0
        while index < len(ordered):
            start = end = ordered[index]
            while index + 1 < len(ordered) and ordered[index + 1] == end + 1:
                index += 1
                end = ordered[index]
            parts.append(str(start) if start == end else f"{start}-{end}")
            index += 1
        return " ".join(parts)

    rng = random.Random(3)
    cases = [set(), {1}, {5, 6, 7}, {1, 3}, set(range(1, 3001))]
    cases += [{n for n in range(1, 400) if rng.random() < p} for p in (0.1, 0.5, 0.9)]
    for numbers in cases:
        assert sequences.format_ranges(numbers) == plain(numbers), numbers


async def test_opening_a_folder_fills_its_summaries_in_the_background(
    tmp_path: Path,
) -> None:
    """A folder nmh filled has no summaries; opening it (SELECT lists its
    states) builds them without any SEARCH or SORT asking, so the first
    one does not wait for all of them."""
    import asyncio
    import time

    from asimap.store.mh import MHStore
    from asimap.store.mh.profile import Profile
    from store_conformance import corpus_messages

    folder = tmp_path / "Mail" / "inbox"
    folder.mkdir(parents=True)
    raws = corpus_messages(20)
    for number in range(1, 251):
        (folder / str(number)).write_bytes(raws[number % len(raws)])
    store = await MHStore.open(
        tmp_path / "Mail", profile=Profile(path=None, unseen=("unseen",))
    )
    try:
        inbox = await store.mailbox("INBOX")
        core = store.core
        assert len(await inbox.states()) == 250
        deadline = time.monotonic() + 30
        while await store.call(lambda: core.unsummarised(inbox.mailbox_id)):
            assert time.monotonic() < deadline, "summaries not filled"
            await asyncio.sleep(0.05)
    finally:
        await store.close()


def test_watch_feed_memory_is_bounded_per_folder() -> None:
    """An inc of thousands of messages into a folder no job looks at keeps
    one "changed" mark, not every name."""
    from asimap.store.mh.freshness import MAX_NAMES, WHOLE, WatchFeed

    feed = WatchFeed()
    feed.attach(lambda: None, lambda folder, fd: None)
    for number in range(1, 3 * MAX_NAMES):
        feed.changed("inbox", str(number), 0x100)
    taken = feed.take()
    assert taken is not None
    assert taken[1] == {"inbox": {WHOLE: 0}}
