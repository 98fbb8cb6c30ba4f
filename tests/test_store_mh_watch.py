"""The MH folder watcher: every kind of change, both backends, real nmh tools.

Each test changes a real directory tree and waits (at most 1 s, the
requirement) until the changed folders appear in the watcher's batches.
The poll backend runs with a 0.2 s interval here so the same 1 s bound
applies to it; in production its latency is ``poll_interval`` plus a scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from asimap.store.mh import watch
from asimap.store.mh.watch import (
    ROOT,
    FolderWatcher,
    make_inotify_watcher,
    make_poll_watcher,
    make_watcher,
)
from conftest import require_tool

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="inotify and /proc are Linux-only"
)

POLL_INTERVAL = 0.2
WITHIN = 1.0  # the requirement: changes are seen within 1 second

Factory = Callable[[Path], FolderWatcher]

FACTORIES: dict[str, Factory] = {
    "inotify": lambda root: make_inotify_watcher(root),
    "poll": lambda root: make_poll_watcher(root, poll_interval=POLL_INTERVAL),
}


class Collector:
    """Consumes ``watcher.changes()`` in a task and keeps every batch."""

    def __init__(self, watcher: FolderWatcher) -> None:
        self.watcher = watcher
        self.batches: list[set[str]] = []
        self._new = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for batch in self.watcher.changes():
            self.batches.append(batch)
            self._new.set()

    def seen(self) -> set[str]:
        return set().union(*self.batches)

    def clear(self) -> None:
        self.batches.clear()

    async def wait_for(self, *expected: str, within: float = WITHIN) -> set[str]:
        """Wait until every expected folder was reported; fail after
        ``within`` seconds, saying what was reported instead."""
        wanted = set(expected)
        try:
            async with asyncio.timeout(within):
                while not wanted <= self.seen():
                    self._new.clear()
                    await self._new.wait()
        except TimeoutError:
            pytest.fail(
                f"not reported within {within} s: {wanted - self.seen()}; "
                f"batches: {self.batches}"
            )
        return self.seen()

    async def quiet(self, seconds: float) -> None:
        """Wait and require that nothing at all was reported meanwhile."""
        await asyncio.sleep(seconds)
        assert self.batches == []

    async def stop(self) -> None:
        await self.watcher.close()
        async with asyncio.timeout(5):
            await self._task


def make_account(root: Path) -> None:
    """inbox with three messages and flags, plus a nested folder."""
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    for number in (1, 2, 3):
        (inbox / str(number)).write_bytes(b"Subject: m%d\n\nbody\n" % number)
    (inbox / ".mh_sequences").write_text("unseen: 2-3\n")
    (root / "lists" / "usrp").mkdir(parents=True)
    (root / "lists" / "usrp" / "1").write_bytes(b"Subject: usrp\n\nx\n")


@pytest.fixture(params=sorted(FACTORIES))
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def account(
    tmp_path: Path, backend: str
) -> AsyncIterator[tuple[Path, Collector]]:
    root = tmp_path / "mail"
    make_account(root)
    watcher = FACTORIES[backend](root)
    assert watcher.backend == backend
    collector = Collector(watcher)
    yield root, collector
    await collector.stop()


# -- each kind of change --------------------------------------------------------


async def test_idle_reports_nothing(account: tuple[Path, Collector]) -> None:
    _root, collector = account
    await collector.quiet(3 * POLL_INTERVAL)


async def test_new_message_file(account: tuple[Path, Collector]) -> None:
    root, collector = account
    (root / "inbox" / "4").write_bytes(b"Subject: new\n\n")
    assert await collector.wait_for("inbox") == {"inbox"}


async def test_unlink(account: tuple[Path, Collector]) -> None:
    root, collector = account
    (root / "lists" / "usrp" / "1").unlink()
    assert await collector.wait_for("lists/usrp") == {"lists/usrp"}


async def test_rename_within_folder(account: tuple[Path, Collector]) -> None:
    root, collector = account
    os.rename(root / "inbox" / "2", root / "inbox" / ",2")  # what rmm does
    assert await collector.wait_for("inbox") == {"inbox"}


async def test_sequences_rewritten_by_temp_and_rename(
    account: tuple[Path, Collector],
) -> None:
    root, collector = account
    temp = root / "inbox" / ".mh_sequences.tmp"
    temp.write_text("unseen: 3\nflagged: 1\n")
    os.rename(temp, root / "inbox" / ".mh_sequences")
    assert await collector.wait_for("inbox") == {"inbox"}


async def test_sequences_rewritten_in_place(account: tuple[Path, Collector]) -> None:
    root, collector = account
    (root / "lists" / "usrp" / ".mh_sequences").write_text("x: 1\n")
    await collector.wait_for("lists/usrp")
    collector.clear()
    (root / "lists" / "usrp" / ".mh_sequences").write_text("x: 1\ny: 1\n")
    assert await collector.wait_for("lists/usrp") == {"lists/usrp"}


async def test_new_top_level_folder(account: tuple[Path, Collector]) -> None:
    root, collector = account
    (root / "Junk").mkdir()
    assert await collector.wait_for(ROOT, "Junk") == {ROOT, "Junk"}
    collector.clear()
    (root / "Junk" / "1").write_bytes(b"spam")
    assert await collector.wait_for("Junk") == {"Junk"}


async def test_new_subfolder_reports_parent(account: tuple[Path, Collector]) -> None:
    root, collector = account
    (root / "lists" / "nmh").mkdir()
    assert await collector.wait_for("lists", "lists/nmh") == {"lists", "lists/nmh"}


async def test_mkdir_p_burst_then_file_in_deepest(
    account: tuple[Path, Collector],
) -> None:
    """The race: b and c exist before a's watch does; scanning after adding
    each watch must still find them and watch them."""
    root, collector = account
    subprocess.run(["mkdir", "-p", str(root / "a" / "b" / "c" / "d")], check=True)
    (root / "a" / "b" / "c" / "d" / "1").write_bytes(b"deep")
    await collector.wait_for(ROOT, "a", "a/b", "a/b/c", "a/b/c/d")
    collector.clear()
    (root / "a" / "b" / "c" / "d" / "2").write_bytes(b"deeper")
    assert await collector.wait_for("a/b/c/d") == {"a/b/c/d"}


async def test_folder_removal(account: tuple[Path, Collector]) -> None:
    root, collector = account
    shutil.rmtree(root / "lists" / "usrp")
    assert await collector.wait_for("lists", "lists/usrp") == {"lists", "lists/usrp"}
    collector.clear()
    shutil.rmtree(root / "lists")
    assert await collector.wait_for(ROOT, "lists") == {ROOT, "lists"}


async def test_folder_rename_moves_the_watches(
    account: tuple[Path, Collector],
) -> None:
    root, collector = account
    os.rename(root / "lists", root / "archive")
    await collector.wait_for(ROOT, "lists", "archive", "archive/usrp")
    collector.clear()
    (root / "archive" / "usrp" / "2").write_bytes(b"after rename")
    assert await collector.wait_for("archive/usrp") == {"archive/usrp"}
    collector.clear()
    os.rename(root / "archive" / "usrp", root / "inbox" / "usrp")
    await collector.wait_for("archive", "archive/usrp", "inbox", "inbox/usrp")
    collector.clear()
    (root / "inbox" / "usrp" / "3").write_bytes(b"moved twice")
    assert await collector.wait_for("inbox/usrp") == {"inbox/usrp"}


async def test_hidden_directories_are_not_folders(
    account: tuple[Path, Collector],
) -> None:
    root, collector = account
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "objects" / "x").write_bytes(b"not mail")
    await collector.quiet(3 * POLL_INTERVAL)
    (root / ".git" / "objects" / "y").write_bytes(b"still not mail")
    (root / "inbox" / "9").write_bytes(b"mail")
    assert await collector.wait_for("inbox") == {"inbox"}


async def test_root_level_files_are_not_folders(
    account: tuple[Path, Collector],
) -> None:
    """asimap.db and nmh's context live at the root; writing them is no
    folder change."""
    root, collector = account
    (root / "asimap.db").write_bytes(b"sqlite")
    (root / "context").write_text("Current-Folder: inbox\n")
    await collector.quiet(3 * POLL_INTERVAL)


async def test_many_files_come_in_few_batches(
    account: tuple[Path, Collector],
) -> None:
    """500 files written over ~0.3 s with short pauses, as a delivery run
    does: 1,000 inotify events, yet a batch only after a quiet period (or
    the 0.5 s cap), so one to three batches, not one per event or per
    debounce period."""
    root, collector = account
    loop = asyncio.get_running_loop()
    started = loop.time()
    for number in range(10, 510):
        (root / "inbox" / str(number)).write_bytes(b"Subject: bulk\n\n")
        if number % 10 == 0:
            await asyncio.sleep(0.005)
    elapsed = loop.time() - started
    await collector.wait_for("inbox")
    await asyncio.sleep(0.3)
    if collector.watcher.backend == "inotify":
        limit = 3
    else:  # at most one batch per poll that saw the writes
        limit = math.ceil(elapsed / POLL_INTERVAL) + 1
    assert len(collector.batches) <= limit, (elapsed, collector.batches)


# -- real nmh tools ---------------------------------------------------------------


def mbox(count: int) -> bytes:
    """Messages dated newest first, so that ``sortm`` has work to do (on a
    sorted folder it changes nothing, and nothing should be reported)."""
    return b"".join(
        b"From sender@example.org Mon Jan  1 00:00:00 2024\n"
        b"From: Sender <sender@example.org>\n"
        b"Date: %s\n"
        b"Subject: message %d\n\nbody %d\n\n"
        % (
            format_datetime(
                datetime(2024, 1, 1, tzinfo=UTC) - timedelta(minutes=n)
            ).encode(),
            n,
            n,
        )
        for n in range(count)
    )


async def nmh(root: Path, *args: str) -> None:
    """Run an nmh command with MH pointing at a profile for ``root``."""
    # Debian installs nmh's commands in /usr/bin/mh, outside PATH.
    found = shutil.which(args[0], path=f"/usr/bin/mh{os.pathsep}{os.defpath}")
    program = require_tool(found or args[0])
    profile = root.parent / "mh_profile"
    profile.write_text(f"Path: {root}\n")
    env = {**os.environ, "MH": str(profile)}
    result = await asyncio.to_thread(
        subprocess.run,
        [program, *args[1:]],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


async def test_nmh_tools_are_seen(
    account: tuple[Path, Collector], tmp_path: Path
) -> None:
    root, collector = account
    source = tmp_path / "new.mbox"
    source.write_bytes(mbox(500))
    await nmh(root, "inc", "-file", str(source), "+inbox", "-silent")
    assert "inbox" in await collector.wait_for("inbox")
    # 500 messages in one inc: a handful of batches, not hundreds.
    await asyncio.sleep(0.3)
    assert len(collector.batches) <= 10, collector.batches

    steps: list[tuple[tuple[str, ...], set[str]]] = [
        (("mark", "+inbox", "-sequence", "urgent", "-add", "1-10"), {"inbox"}),
        (("rmm", "+inbox", "4"), {"inbox"}),
        (("refile", "-src", "+inbox", "5", "+lists/usrp"), {"inbox", "lists/usrp"}),
        (("folder", "-pack", "+inbox"), {"inbox"}),
        (("sortm", "+inbox"), {"inbox"}),
        (("folder", "-create", "+Archive"), {ROOT, "Archive"}),
        (("refile", "-src", "+inbox", "1", "+Archive"), {"inbox", "Archive"}),
    ]
    for command, expected in steps:
        collector.clear()
        await nmh(root, *command)
        assert expected <= await collector.wait_for(*expected), command


# -- resources ----------------------------------------------------------------------


def open_fds() -> list[str]:
    targets = []
    for name in os.listdir("/proc/self/fd"):
        # The listing's own descriptor is closed by the time we read it.
        with contextlib.suppress(OSError):
            targets.append(os.readlink(f"/proc/self/fd/{name}"))
    return targets


def inotify_fds() -> int:
    return sum(1 for target in open_fds() if target == "anon_inode:inotify")


async def test_close_releases_the_inotify_fd(tmp_path: Path) -> None:
    make_account(tmp_path)
    before_total, before = len(open_fds()), inotify_fds()
    watcher = make_watcher(tmp_path)
    assert watcher.backend == "inotify"
    assert inotify_fds() == before + 1
    collector = Collector(watcher)
    (tmp_path / "inbox" / "7").write_bytes(b"x")
    await collector.wait_for("inbox")
    await collector.stop()
    assert inotify_fds() == before
    assert len(open_fds()) == before_total
    await watcher.close()  # a second close is harmless


@pytest.mark.parametrize("name", sorted(FACTORIES))
async def test_two_thousand_folders_do_not_cost_fds(tmp_path: Path, name: str) -> None:
    root = tmp_path / "mail"
    for top in range(40):
        for sub in range(50):
            (root / f"f{top:02}" / f"s{sub:02}").mkdir(parents=True)
    before = len(open_fds())
    watcher = FACTORIES[name](root)
    collector = Collector(watcher)
    try:
        assert len(open_fds()) - before <= 3
        (root / "f39" / "s49" / "1").write_bytes(b"x")
        (root / "f00" / "s00" / ".mh_sequences").write_text("unseen: 1\n")
        assert await collector.wait_for("f39/s49", "f00/s00") == {"f39/s49", "f00/s00"}
    finally:
        await collector.stop()
    assert len(open_fds()) == before


# -- failure modes ---------------------------------------------------------------


async def test_queue_overflow_reports_every_folder_and_rewatches(
    tmp_path: Path,
) -> None:
    """More events than fs.inotify.max_queued_events while nobody reads:
    the kernel drops them and says IN_Q_OVERFLOW; we report everything and
    rebuild the watches (a folder created meanwhile is watched too)."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    root = tmp_path / "mail"
    make_account(root)
    watcher = make_inotify_watcher(root)
    # IN_ATTRIB events; alternating two files defeats the kernel's merging
    # of identical consecutive events.
    files = [str(root / "inbox" / "1"), str(root / "inbox" / "2")]
    for number in range(limit + 100):
        os.utime(files[number % 2])
    (root / "lists" / "late").mkdir()  # its IN_CREATE is lost
    collector = Collector(watcher)  # starts reading now
    try:
        assert {ROOT, "inbox", "lists", "lists/usrp", "lists/late"} <= (
            await collector.wait_for("inbox", "lists/usrp", "lists/late")
        )
        collector.clear()
        (root / "lists" / "late" / "1").write_bytes(b"x")
        assert await collector.wait_for("lists/late") == {"lists/late"}
    finally:
        await collector.stop()


def refuse_watches_after(monkeypatch: pytest.MonkeyPatch, allowed: int) -> None:
    """Make inotify_add_watch fail as the kernel does when
    fs.inotify.max_user_watches is reached (that sysctl is system-wide, so
    the test cannot lower it)."""
    real = watch.inotify_add_watch
    calls = 0

    def add_watch(fd: int, path: Path, mask: int) -> int:
        nonlocal calls
        calls += 1
        if calls > allowed:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(fd, path, mask)

    monkeypatch.setattr(watch, "inotify_add_watch", add_watch)


async def test_watch_limit_at_start_falls_back_to_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    make_account(tmp_path)
    refuse_watches_after(monkeypatch, allowed=2)
    before = inotify_fds()
    with caplog.at_level(logging.WARNING, logger=watch.__name__):
        watcher = make_watcher(tmp_path, poll_interval=POLL_INTERVAL)
    assert watcher.backend == "poll"
    assert inotify_fds() == before  # the half-built inotify fd was closed
    assert "falls back to polling" in caplog.text
    collector = Collector(watcher)
    try:
        (tmp_path / "lists" / "usrp" / "5").write_bytes(b"x")
        assert await collector.wait_for("lists/usrp") == {"lists/usrp"}
    finally:
        await collector.stop()


async def test_watch_limit_later_degrades_to_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    make_account(tmp_path)
    before = inotify_fds()
    watcher = make_watcher(tmp_path, poll_interval=POLL_INTERVAL)
    assert watcher.backend == "inotify"
    collector = Collector(watcher)
    try:
        refuse_watches_after(monkeypatch, allowed=0)
        with caplog.at_level(logging.WARNING, logger=watch.__name__):
            (tmp_path / "new").mkdir()
            # Everything is reported: events may have been missed.
            await collector.wait_for(ROOT, "new", "inbox", "lists", "lists/usrp")
        assert watcher.backend == "poll"
        assert "max_user_watches" in caplog.text
        collector.clear()
        (tmp_path / "new" / "1").write_bytes(b"x")
        assert await collector.wait_for("new") == {"new"}
        assert inotify_fds() == before
    finally:
        await collector.stop()


async def test_non_linux_uses_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_account(tmp_path)
    monkeypatch.setattr(watch, "_libc", None)
    monkeypatch.setattr(sys, "platform", "darwin")
    watcher = make_watcher(tmp_path, poll_interval=POLL_INTERVAL)
    assert watcher.backend == "poll"
    await watcher.close()


async def test_missing_root_is_an_error(tmp_path: Path) -> None:
    for factory in FACTORIES.values():
        with pytest.raises(FileNotFoundError):
            factory(tmp_path / "nowhere")
