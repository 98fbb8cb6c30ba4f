"""The MH store side by side with real nmh tools on the same folders.

Each test runs nmh's own programs (``scan``, ``mark``, ``inc``, ``rmm``,
``refile``, ``folder -pack``, ``sortm``) against the root the store
serves, and checks both directions: what the store writes, nmh reads;
what nmh changes, the store reports through its change feed -- with UIDs
following their messages across renumbering.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from asimap.store.base import StoreMode
from asimap.store.mh import MHMailbox, MHStore
from asimap.store.mh.profile import Profile
from conftest import require_tool

NMH_BIN = Path("/usr/bin/mh")


@dataclass
class Nmh:
    """Runs nmh programs with a profile whose Path: is the store's root."""

    root: Path
    env: dict[str, str]

    def __call__(self, *argv: str) -> str:
        tool = require_tool(argv[0])
        done = subprocess.run(
            [tool, *argv[1:]],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        return done.stdout


@pytest.fixture
def nmh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nmh:
    root = tmp_path / "Mail"
    profile = tmp_path / "mh_profile"
    profile.write_text(f"Path: {root}\nUnseen-Sequence: unseen\n")
    path = f"{NMH_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    monkeypatch.setenv("PATH", path)
    env = {"PATH": path, "MH": str(profile), "HOME": str(tmp_path), "LC_ALL": "C"}
    return Nmh(root, env)


@pytest.fixture
async def store(nmh: Nmh) -> AsyncIterator[MHStore]:
    opened = await MHStore.open(
        nmh.root, profile=Profile(path=nmh.root, unseen=("unseen",))
    )
    yield opened
    await opened.close()


def message(subject: str, date: str = "Mon, 1 Jan 2024 10:00:00 +0000") -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
        f"Date: {date}\r\nMessage-ID: <{subject}@example.org>\r\n\r\n"
        f"Body of {subject}\r\n"
    ).encode()


def mbox_of(*subjects: str) -> bytes:
    return b"".join(
        b"From a@example.org Mon Jan  1 10:00:00 2024\n"
        + message(s).replace(b"\r\n", b"\n")
        + b"\n"
        for s in subjects
    )


def sequence(nmh: Nmh, folder: str, name: str) -> set[int]:
    """Numbers in an MH sequence, as ``mark -list`` reports them."""
    out = nmh("mark", f"+{folder}", "-list", "-sequence", name)
    _, _, ranges = out.partition(":")
    numbers: set[int] = set()
    for token in ranges.split():
        low, _, high = token.partition("-")
        numbers.update(range(int(low), int(high or low) + 1))
    return numbers


async def uid_flags(mailbox: MHMailbox) -> dict[int, frozenset[str]]:
    return {state.uid: state.flags for state in await mailbox.states()}


async def test_appended_messages_are_listed_by_scan(nmh: Nmh, store: MHStore) -> None:
    inbox = await store.mailbox("INBOX")
    for subject in ("alpha", "beta", "gamma"):
        await inbox.append(message(subject))
    out = nmh("scan", "+inbox")
    lines = out.splitlines()
    assert len(lines) == 3
    for line, subject in zip(lines, ("alpha", "beta", "gamma"), strict=True):
        assert subject in line
    assert sorted(p.name for p in (nmh.root / "inbox").iterdir() if p.name.isdigit())


async def test_flags_set_by_the_store_are_nmh_sequences(
    nmh: Nmh, store: MHStore
) -> None:
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(message(f"m{n}")) for n in range(4)]
    await inbox.store([uids[0], uids[2]], StoreMode.ADD, ["\\Flagged"])
    await inbox.store([uids[1]], StoreMode.ADD, ["\\Seen", "\\Answered", "Work"])
    assert sequence(nmh, "inbox", "flagged") == {1, 3}
    assert sequence(nmh, "inbox", "replied") == {2}
    assert sequence(nmh, "inbox", "Work") == {2}
    assert sequence(nmh, "inbox", "Seen") == {2}
    # \Seen and the unseen sequence stay complementary.
    assert sequence(nmh, "inbox", "unseen") == {1, 3, 4}
    picked = nmh("pick", "+inbox", "-sequence", "flagged", "-list", "flagged")
    assert picked.split() == ["1", "3"]


async def test_inc_brings_new_uids_through_the_change_feed(
    nmh: Nmh, store: MHStore, tmp_path: Path
) -> None:
    inbox = await store.mailbox("INBOX")
    first = await inbox.append(message("before"), ["\\Seen"])
    assert await inbox.claim_recent() == {first}
    baseline = (await inbox.status()).highestmodseq
    mbox = tmp_path / "new.mbox"
    mbox.write_bytes(mbox_of("one", "two", "three"))
    nmh("inc", "+inbox", "-file", str(mbox), "-notruncate", "-silent")
    changes = await inbox.changes_since(baseline)
    new = [state.uid for state in changes.changed]
    assert len(new) == 3 and min(new) > first
    assert all("\\Seen" not in s.flags for s in changes.changed)  # inc: unseen
    assert changes.expunged == ()
    subjects = [(await inbox.message(uid)).subject() for uid in new]
    assert subjects == ["one", "two", "three"]
    assert (await inbox.status()).recent == 3


async def test_rmm_expunges_exactly_those_uids(nmh: Nmh, store: MHStore) -> None:
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(message(f"m{n}")) for n in range(5)]
    baseline = (await inbox.status()).highestmodseq
    nmh("rmm", "+inbox", "2", "4")
    changes = await inbox.changes_since(baseline)
    assert changes.expunged == (uids[1], uids[3])
    assert changes.changed == ()
    assert [s.uid for s in await inbox.states()] == [uids[0], uids[2], uids[4]]


async def test_refile_moves_between_mailboxes(nmh: Nmh, store: MHStore) -> None:
    inbox = await store.mailbox("INBOX")
    archive = await store.mailbox("Archive")
    uids = [await inbox.append(message(f"m{n}")) for n in range(3)]
    inbox_base = (await inbox.status()).highestmodseq
    archive_base = (await archive.status()).highestmodseq
    nmh("refile", "-src", "+inbox", "2", "+Archive")
    assert (await inbox.changes_since(inbox_base)).expunged == (uids[1],)
    arrived = (await archive.changes_since(archive_base)).changed
    assert len(arrived) == 1
    assert (await archive.message(arrived[0].uid)).subject() == "m1"


async def test_mark_changes_flags_with_a_modseq_bump(nmh: Nmh, store: MHStore) -> None:
    inbox = await store.mailbox("INBOX")
    uids = [await inbox.append(message(f"m{n}"), ["\\Seen"]) for n in range(3)]
    baseline = (await inbox.status()).highestmodseq
    nmh("mark", "+inbox", "2", "-sequence", "flagged", "-add")
    changes = await inbox.changes_since(baseline)
    assert [(s.uid, s.flags) for s in changes.changed] == [
        (uids[1], frozenset({"\\Seen", "\\Flagged"}))
    ]
    assert changes.changed[0].modseq > baseline
    # nmh's "show" semantics: leaving unseen means \Seen.
    nmh("mark", "+inbox", "3", "-sequence", "unseen", "-add")
    after = await inbox.changes_since(changes.highestmodseq)
    assert [(s.uid, s.flags) for s in after.changed] == [(uids[2], frozenset())]
    assert "3" not in " ".join(str(n) for n in sequence(nmh, "inbox", "Seen"))


async def test_pack_and_sortm_change_nothing_visible(nmh: Nmh, store: MHStore) -> None:
    inbox = await store.mailbox("INBOX")
    dates = [f"Mon, {day} Jan 2024 10:00:00 +0000" for day in (5, 3, 9, 1, 7)]
    uids = [
        await inbox.append(message(f"m{n}", date), ["\\Flagged"] if n % 2 else [])
        for n, date in enumerate(dates)
    ]
    await inbox.store([uids[0]], StoreMode.ADD, ["\\Deleted"])
    await inbox.expunge()  # leaves a gap at number 1
    await inbox.store([uids[2]], StoreMode.ADD, ["Work"])
    before_flags = await uid_flags(inbox)
    before = (await inbox.status()).highestmodseq
    subjects = {uid: (await inbox.message(uid)).subject() for uid in before_flags}

    nmh("folder", "+inbox", "-pack")
    assert sorted(
        int(p.name) for p in (nmh.root / "inbox").iterdir() if p.name.isdigit()
    ) == [1, 2, 3, 4]
    assert await uid_flags(inbox) == before_flags
    nmh("sortm", "+inbox")
    assert await uid_flags(inbox) == before_flags
    changes = await inbox.changes_since(before)
    assert (changes.changed, changes.expunged) == ((), ())
    # Every UID still reads its own message, wherever sortm put it.
    for uid, subject in subjects.items():
        inbox._messages.clear()  # force reading the file again
        assert (await inbox.message(uid)).subject() == subject
    # And flags the store sets after renumbering land on the right files.
    await inbox.store([uids[3]], StoreMode.ADD, ["\\Answered"])
    replied = sequence(nmh, "inbox", "replied")
    (number,) = replied
    assert "m3" in nmh("scan", "+inbox", str(number))


async def test_rewritten_file_is_a_new_message(
    nmh: Nmh, store: MHStore, tmp_path: Path
) -> None:
    # Delivered by inc, not APPENDed: an APPEND rewritten in place within
    # seconds is what inc's O_TRUNC overwrite looks like, and is put back
    # (test_store_mh_races.py).
    inbox = await store.mailbox("INBOX")
    mbox = tmp_path / "original.mbox"
    mbox.write_bytes(mbox_of("original"))
    nmh("inc", "+inbox", "-file", str(mbox), "-notruncate", "-silent")
    (old,) = [s.uid for s in await inbox.states()]
    baseline = (await inbox.status()).highestmodseq
    path = nmh.root / "inbox" / "1"
    path.write_bytes(message("rewritten with different length"))
    changes = await inbox.changes_since(baseline)
    assert changes.expunged == (old,)
    (new,) = [s.uid for s in changes.changed]
    assert new > old
    assert (await inbox.message(new)).subject().startswith("rewritten")
