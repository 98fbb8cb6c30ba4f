"""The UID an APPEND promised keeps naming its message when another store
instance on the same MH root rescans the folder mid-APPEND (issue 12: no
UID handed out twice; issue 10 point 13: no acknowledged APPEND lost).

What the crash harness met once ("UID 28 was promised to m140, is None",
a delivery round): the delivery process APPENDs through a store of its
own while the worker, woken by the new file, rescans the same folder.
An APPEND links its file and only then commits the row that names it.
A rescan that lists the folder in between finds a file no row names and
that no pending record hides, reads the rows (the APPEND's not yet
committed), waits for the write lock while the APPEND commits, and then
imports the file under a second, higher UID.  The next rescan keeps the
higher UID for that number and expunges the one the client was told in
its APPENDUID (RFC 4315 section 3): the message is there, under a UID
nobody promised.

Deterministic form: two :class:`MHStore` instances on one root.  A's
APPEND is held right after its link until B's rescan has listed the
folder and read the rows; B's rescan is held there until A's APPEND has
returned.  Both lock modes: in one process nmh's ``lockf`` lock does not
exclude the other instance, so the rows and the pending records are what
must keep them apart (across processes, locking would also serialise
them).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from asimap.store.mh import MHStore
from asimap.store.mh.profile import Profile

NO_PROFILE = Profile(path=None, unseen=("unseen",))
WAIT_S = 10  # only a bound: a test that fails must not hang


async def _race(root: Path, locking: bool) -> tuple[int, list[int], list[int]]:
    a = await MHStore.open(root, profile=NO_PROFILE, watch=False, locking=locking)
    b = await MHStore.open(root, profile=NO_PROFILE, watch=False, locking=locking)
    try:
        inbox_a = await a.mailbox("INBOX")
        inbox_b = await b.mailbox("INBOX")
        await inbox_a.append(b"Subject: before\r\n\r\nfirst\r\n", ())
        await inbox_b.status()  # B is current with the folder

        linked = threading.Event()
        listed = threading.Event()
        appended = threading.Event()
        core_a: Any = a.core
        core_b: Any = b.core
        note_created = core_a._note_created
        read_sequences = core_b._read_sequences

        def after_link(*args: Any) -> None:
            note_created(*args)
            linked.set()
            # Hold A between its link and its COMMIT until B has listed
            # the folder and read the rows.
            listed.wait(WAIT_S)

        def after_listing(*args: Any) -> str:
            # In B's rescan: after the listing and the rows, before its
            # transaction.  Hold it until A's APPEND has committed.
            listed.set()
            appended.wait(WAIT_S)
            return str(read_sequences(*args))

        core_a._note_created = after_link
        core_b._read_sequences = after_listing

        async def append() -> int:
            uid = await inbox_a.append(b"Subject: raced\r\n\r\nsecond\r\n", ())
            appended.set()
            return uid

        appending = asyncio.create_task(append())
        assert await asyncio.to_thread(linked.wait, WAIT_S)
        # B rescans now: A's file is linked, its row not committed.
        rescan = asyncio.create_task(inbox_b.status())
        promised = await appending
        await rescan
        core_b._read_sequences = read_sequences
        core_a._note_created = note_created
        assert listed.is_set(), "B never rescanned between link and commit"

        # Both instances look again; the rows are what both now agree on.
        seen_by_b = [s.uid for s in await inbox_b.states()]
        seen_by_a = [s.uid for s in await inbox_a.states()]
        return promised, seen_by_a, seen_by_b
    finally:
        await b.close()
        await a.close()


@pytest.mark.parametrize("locking", [False, True], ids=["default", "locking"])
def test_a_rescan_mid_append_gives_no_second_uid(tmp_path: Path, locking: bool) -> None:
    promised, seen_by_a, seen_by_b = asyncio.run(_race(tmp_path / "Mail", locking))
    # Exactly two messages, the second under the UID its APPEND promised,
    # in both instances; no UID handed out for the same file twice.
    assert seen_by_a == [1, promised], (promised, seen_by_a)
    assert seen_by_b == [1, promised], (promised, seen_by_b)
    assert promised == 2


async def _two_rescans(root: Path, locking: bool) -> tuple[list[int], list[int]]:
    a = await MHStore.open(root, profile=NO_PROFILE, watch=False, locking=locking)
    b = await MHStore.open(root, profile=NO_PROFILE, watch=False, locking=locking)
    try:
        inbox_a = await a.mailbox("INBOX")
        inbox_b = await b.mailbox("INBOX")
        await inbox_a.append(b"Subject: before\r\n\r\nfirst\r\n", ())
        await inbox_b.status()
        # A message an MH tool (inc, refile) put into the folder.
        (root / "inbox" / "2").write_bytes(b"Subject: by a tool\r\n\r\nsecond\r\n")

        listed = threading.Event()
        imported = threading.Event()
        core_a: Any = a.core
        read_sequences = core_a._read_sequences

        def after_listing(*args: Any) -> str:
            # A's rescan has listed the folder and read the rows; B
            # imports the same file before A's transaction begins.
            listed.set()
            imported.wait(WAIT_S)
            return str(read_sequences(*args))

        core_a._read_sequences = after_listing
        rescan = asyncio.create_task(inbox_a.status())
        assert await asyncio.to_thread(listed.wait, WAIT_S)
        await inbox_b.status()
        imported.set()
        await rescan
        core_a._read_sequences = read_sequences
        return [s.uid for s in await inbox_a.states()], [
            s.uid for s in await inbox_b.states()
        ]
    finally:
        await b.close()
        await a.close()


@pytest.mark.parametrize("locking", [False, True], ids=["default", "locking"])
def test_two_rescans_give_a_tools_file_one_uid(tmp_path: Path, locking: bool) -> None:
    """Two stores rescanning at once (the worker and a delivery agent's
    process, woken by the same ``inc``) import the file once: before the
    fix each gave it a UID, and the next rescan kept the higher and
    expunged the other under the clients that had seen it."""
    seen_by_a, seen_by_b = asyncio.run(_two_rescans(tmp_path / "Mail", locking))
    assert seen_by_a == [1, 2]
    assert seen_by_b == [1, 2]


async def _import_first(root: Path, locking: bool) -> tuple[int, list[int], list[int]]:
    a = await MHStore.open(root, profile=NO_PROFILE, watch=False, locking=locking)
    b = await MHStore.open(root, profile=NO_PROFILE, watch=False, locking=locking)
    try:
        inbox_a = await a.mailbox("INBOX")
        inbox_b = await b.mailbox("INBOX")
        await inbox_a.append(b"Subject: before\r\n\r\nfirst\r\n", ())
        await inbox_b.status()

        linked = threading.Event()
        imported = threading.Event()
        core_a: Any = a.core
        note_created = core_a._note_created

        def after_link(*args: Any) -> None:
            note_created(*args)
            linked.set()
            # B's whole rescan (its COMMIT too) runs before ours.
            imported.wait(WAIT_S)

        core_a._note_created = after_link
        appending = asyncio.create_task(
            inbox_a.append(b"Subject: raced\r\n\r\nsecond\r\n", ())
        )
        assert await asyncio.to_thread(linked.wait, WAIT_S)
        await inbox_b.status()
        imported.set()
        promised = await appending
        core_a._note_created = note_created
        return (
            promised,
            [s.uid for s in await inbox_a.states()],
            [s.uid for s in await inbox_b.states()],
        )
    finally:
        await b.close()
        await a.close()


@pytest.mark.parametrize("locking", [False, True], ids=["default", "locking"])
def test_an_append_another_store_imported_first_keeps_that_uid(
    tmp_path: Path, locking: bool
) -> None:
    """The other order: B's rescan imports the linked file and commits
    before the APPEND's own transaction.  The APPEND then finds the row
    that names its file and answers with that UID; before the fix it
    added a second row, and the message showed twice until the next
    rescan expunged the UID the other store's clients had seen."""
    promised, seen_by_a, seen_by_b = asyncio.run(
        _import_first(tmp_path / "Mail", locking)
    )
    # B gave the file UID 2 first; the APPEND answers with it.
    assert promised == 2
    assert seen_by_a == [1, 2], (promised, seen_by_a)
    assert seen_by_b == [1, 2], (promised, seen_by_b)
