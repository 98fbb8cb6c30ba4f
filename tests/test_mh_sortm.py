"""nmh ``sortm`` running on a folder we APPEND to.

``sortm`` (strace, nmh 1.8) lists the folder, then swaps files through a
temporary number, one past the highest it listed::

    rename("inbox/5", "6"); rename("inbox/1", "5"); rename("6", "1")

``rename`` replaces its target silently.  An APPEND that claimed that
number (``link``) after sortm's listing is replaced by sortm's first
rename and its name is gone after the third: the acknowledged message
would be lost (RFC 4315 section 3: its APPENDUID names it).  The other
messages change numbers, not files: their UIDs must follow their inodes
(RFC 3501 section 2.3.1.1).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asimap.store.mh import MHStore, files
from asimap.store.mh.profile import Profile
from test_store_mh_nmh import Nmh, message, sequence, uid_flags

pytest_plugins = ["test_store_mh_nmh"]


@pytest.fixture(params=[False, True], ids=["unlocked", "locked"])
async def either_store(
    request: pytest.FixtureRequest, nmh: Nmh
) -> AsyncIterator[MHStore]:
    """The store without locking and with nmh's fcntl lock."""
    opened = await MHStore.open(
        nmh.root,
        profile=Profile(path=nmh.root, unseen=("unseen",)),
        locking=request.param,
    )
    yield opened
    await opened.close()


def sortm_swap(folder: Path, a: int, b: int, temporary: int) -> None:
    """sortm's exchange of numbers ``a`` and ``b`` through ``temporary``,
    syscall for syscall (strace of nmh 1.8)."""
    os.rename(folder / str(b), folder / str(temporary))
    os.rename(folder / str(a), folder / str(b))
    os.rename(folder / str(temporary), folder / str(a))


async def subjects_by_uid(inbox: object, uids: list[int]) -> dict[int, bytes]:
    found = {}
    for uid in uids:
        raw = (await inbox.message(uid)).raw  # type: ignore[attr-defined]
        found[uid] = raw.split(b"Subject: ")[1].split(b"\r\n")[0]
    return found


async def test_append_replaced_by_sortm_temporary_is_kept(
    nmh: Nmh, either_store: MHStore
) -> None:
    """sortm listed 1..3 before our APPEND linked 4, then used 4 as its
    temporary: our message keeps its UID, bytes and flags, once; the
    others keep their UIDs under their new numbers."""
    inbox = await either_store.mailbox("INBOX")
    olds = [await inbox.append(message(s)) for s in ("one", "two", "three")]
    ours = message("ours")
    uid = await inbox.append(ours, ["\\Flagged"])
    folder = nmh.root / "inbox"
    assert (folder / "4").exists()
    sortm_swap(folder, 1, 3, temporary=4)  # replaces our 4, then removes it
    assert sorted(int(n) for n in os.listdir(folder) if n.isdigit()) == [1, 2, 3]
    states = await uid_flags(inbox)
    assert sorted(states) == [*olds, uid]
    assert states[uid] == {"\\Flagged"}
    assert (await inbox.message(uid)).raw == ours
    names = await subjects_by_uid(inbox, olds)
    assert names == dict(zip(olds, [b"one", b"two", b"three"], strict=True))
    scanned = nmh("scan", "+inbox", "-format", "%(msg) %{subject}").split("\n")
    by_subject = {line.split()[1]: int(line.split()[0]) for line in scanned if line}
    assert sorted(by_subject) == ["one", "ours", "three", "two"]
    assert sequence(nmh, "inbox", "flagged") == {by_subject["ours"]}


async def check_all_there(
    nmh: Nmh, inbox: object, olds: list[int], uid: int, ours: bytes
) -> None:
    """The three old messages under their UIDs, ours under its UID with
    its bytes and flags, each once, in the store and for nmh."""
    states = await uid_flags(inbox)  # type: ignore[arg-type]
    assert sorted(states) == [*olds, uid]
    assert states[uid] == {"\\Flagged"}
    assert (await inbox.message(uid)).raw == ours  # type: ignore[attr-defined]
    names = await subjects_by_uid(inbox, olds)
    assert names == dict(zip(olds, [b"one", b"two", b"three"], strict=True))
    scanned = nmh("scan", "+inbox", "-format", "%(msg) %{subject}").split("\n")
    by_subject = {line.split()[1]: int(line.split()[0]) for line in scanned if line}
    assert sorted(by_subject) == ["one", "ours", "three", "two"]
    assert sequence(nmh, "inbox", "flagged") == {by_subject["ours"]}


async def test_rescan_in_the_middle_of_sortm_keeps_the_append(
    nmh: Nmh, either_store: MHStore
) -> None:
    """A rescan between sortm's first rename (over our APPEND) and its
    last: our file is under no number, and one old message is under the
    temporary one."""
    inbox = await either_store.mailbox("INBOX")
    olds = [await inbox.append(message(s)) for s in ("one", "two", "three")]
    ours = message("ours")
    uid = await inbox.append(ours, ["\\Flagged"])
    folder = nmh.root / "inbox"
    os.rename(folder / "3", folder / "4")
    assert uid in await uid_flags(inbox)
    os.rename(folder / "1", folder / "3")
    os.rename(folder / "4", folder / "1")
    await check_all_there(nmh, inbox, olds, uid, ours)


async def test_sortm_right_after_our_link_keeps_the_append(
    nmh: Nmh, either_store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sortm renames over the number we just linked, before the APPEND
    holds a descriptor on its file."""
    inbox = await either_store.mailbox("INBOX")
    olds = [await inbox.append(message(s)) for s in ("one", "two", "three")]
    claim = files.claim_number

    def claim_then_sortm(
        folder: Path, source: Path, start: int, hook: files.Claim | None = None
    ) -> int:
        number = claim(folder, source, start, hook)
        sortm_swap(folder, 1, 3, temporary=number)
        return number

    monkeypatch.setattr(files, "claim_number", claim_then_sortm)
    ours = message("ours")
    uid = await inbox.append(ours, ["\\Flagged"])
    monkeypatch.setattr(files, "claim_number", claim)
    await check_all_there(nmh, inbox, olds, uid, ours)


async def test_real_sortm_keeps_every_uid_with_its_message(
    nmh: Nmh, either_store: MHStore
) -> None:
    """A real ``sortm`` renumbers the folder: each UID still names the
    same message, with its flags."""
    inbox = await either_store.mailbox("INBOX")
    dates = [f"Mon, {d} Jan 2024 10:00:00 +0000" for d in (5, 4, 3, 2, 1)]
    subjects = ["e", "d", "c", "b", "a"]
    uids = [
        await inbox.append(message(s, date), ["\\Flagged"] if s == "d" else [])
        for s, date in zip(subjects, dates, strict=True)
    ]
    nmh("sortm", "+inbox")
    scanned = nmh("scan", "+inbox", "-format", "%(msg) %{subject}").split("\n")
    assert [line.split()[1] for line in scanned if line] == sorted(subjects)
    states = await uid_flags(inbox)
    assert sorted(states) == uids
    assert states[uids[1]] == {"\\Flagged"}
    names = await subjects_by_uid(inbox, uids)
    assert names == {u: s.encode() for u, s in zip(uids, subjects, strict=True)}


async def test_file_renamed_during_our_listing_keeps_its_uid(
    nmh: Nmh, either_store: MHStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sortm renames a file while a rescan reads the directory: the read
    misses it (it was renamed between the read and its stat, to a name
    the read had passed).  Its row must not be removed and the file
    imported again under a new UID (RFC 3501 section 2.3.1.1)."""
    inbox = await either_store.mailbox("INBOX")
    olds = [await inbox.append(message(s)) for s in ("one", "two", "three")]
    folder = nmh.root / "inbox"
    listing = files.message_numbers
    shots = 1

    def listing_racing_sortm(path: Path) -> dict[int, os.stat_result]:
        nonlocal shots
        found = listing(path)
        if shots and path == folder:
            shots -= 1
            os.rename(folder / "2", folder / "4")
            del found[2]
        return found

    monkeypatch.setattr(files, "message_numbers", listing_racing_sortm)
    # New mail, as inc delivers it: the next command rescans.
    (folder / "5").write_bytes(message("five").replace(b"\r\n", b"\n"))
    states = await uid_flags(inbox)
    monkeypatch.setattr(files, "message_numbers", listing)
    assert shots == 0
    assert sorted(states)[:3] == olds and len(states) == 4
    assert sorted(await uid_flags(inbox)) == sorted(states)
    names = await subjects_by_uid(inbox, olds)
    assert names == dict(zip(olds, [b"one", b"two", b"three"], strict=True))
