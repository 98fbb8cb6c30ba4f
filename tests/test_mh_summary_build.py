"""The MH store's batched summary build (``asimap.store.mh.summarizing``).

Rows of a whole batch are read in one query and files opened directly; a
file an MH tool renamed, rewrote or removed since the last scan must still
be handled exactly as the careful one-message read handles it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from asimap.message.model import Message
from asimap.store.base import MessageInfo, MessageSummary, summarize
from asimap.store.mh import MHStore
from asimap.store.mh import mailbox as mailbox_module
from asimap.store.mh.profile import Profile
from store_conformance import corpus_messages

NO_PROFILE = Profile(path=None, unseen=("unseen",))


async def test_batched_build_follows_files_that_tools_moved(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    store = await MHStore.open(root, profile=NO_PROFILE)
    try:
        inbox = await store.mailbox("INBOX")
        raws = list(corpus_messages()[:6])
        uids = [await inbox.append(raw) for raw in raws]
        infos = {uid: await inbox.info(uid) for uid in uids}
        folder = root / "inbox"
        # Behind the store's back, as folder -pack / rmm -unlink / an editor
        # would: message 2 moves to number 40 (same inode, so same UID),
        # message 3's file goes away, message 4 is rewritten in place.
        os.rename(folder / "2", folder / "40")
        os.unlink(folder / "3")
        (folder / "4").write_bytes(b"Subject: rewritten\n\nnew\n")

        got = await inbox.summaries(uids)

        # 2 is found at its new number and 3 is gone.  4 is whatever the
        # careful path makes of a rewrite (the store puts an APPENDed
        # message back when a tool overwrites it, and the new content gets
        # a new UID): the batched build must agree with it.
        assert [s.uid for s in got] == [uids[0], uids[1], uids[3], uids[4], uids[5]]
        for summary in got:
            info = await inbox.info(summary.uid)
            assert summary == summarize(info, await inbox.message(summary.uid))
            if summary.uid != uids[3]:
                raw = raws[uids.index(summary.uid)]
                assert summary == summarize(infos[summary.uid], Message(raw))
        newest = max(state.uid for state in await inbox.states())
        assert newest > uids[-1]
        (rewritten,) = await inbox.summaries([newest])
        assert rewritten.headers["subject"] == ("rewritten",)
    finally:
        await store.close()


async def test_batched_build_spans_several_batches(tmp_path: Path) -> None:
    """More UIDs than one query takes (500), asked in a shuffled order."""
    root = tmp_path / "Mail"
    folder = root / "inbox"
    folder.mkdir(parents=True)
    raws = corpus_messages(40)
    for number in range(1, 1201):
        (folder / str(number)).write_bytes(raws[number % len(raws)])
    store = await MHStore.open(root, profile=NO_PROFILE)
    try:
        inbox = await store.mailbox("INBOX")
        uids = [state.uid for state in await inbox.states()]
        assert len(uids) == 1200
        order = uids[::-1][::2] + uids[::2]
        got = await inbox.summaries(order)
        assert [s.uid for s in got] == order
        for summary in got[::97]:
            info: MessageInfo = await inbox.info(summary.uid)
            assert summary == summarize(info, await inbox.message(summary.uid))
    finally:
        await store.close()


async def test_other_jobs_run_between_summary_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big summary build is several worker jobs, so a job another
    connection submits meanwhile does not wait for the whole build."""
    root = tmp_path / "Mail"
    folder = root / "inbox"
    folder.mkdir(parents=True)
    raws = corpus_messages(10)
    total = 2 * mailbox_module.SUMMARY_JOB + 7
    for number in range(1, total + 1):
        (folder / str(number)).write_bytes(raws[number % len(raws)])
    store = await MHStore.open(root, profile=NO_PROFILE)
    # Only the chunks of this build in the log, not the background fill's.
    monkeypatch.setattr(mailbox_module.MHMailbox, "start_fill", lambda self: None)
    try:
        inbox = await store.mailbox("INBOX")
        uids = [state.uid for state in await inbox.states()]
        log: list[str] = []
        real = store.core.summaries

        def logged(
            mailbox_id: int, chunk: Sequence[int], structure: bool = True
        ) -> list[MessageSummary]:
            log.append(f"chunk {len(chunk)}")
            return real(mailbox_id, chunk, structure)

        monkeypatch.setattr(store.core, "summaries", logged)
        build = asyncio.create_task(inbox.summaries(uids + uids[:3]))
        await asyncio.sleep(0)  # the first chunk is queued
        await store.call(lambda: log.append("other job"))
        got = await build
        assert [s.uid for s in got] == uids  # duplicates dropped, order kept
        size = mailbox_module.SUMMARY_JOB
        assert log == [f"chunk {size}", "other job", f"chunk {size}", "chunk 7"]
    finally:
        await store.close()
