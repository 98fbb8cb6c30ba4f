"""Header-only summaries of the MH store (``asimap.store.mh.summarizing``).

Header SEARCH, SORT, THREAD and FETCH ENVELOPE of a folder nmh filled
summarise only each message's header block, read from the first
kilobytes of its file; BODYSTRUCTURE and the RFC 8474 ids wait until a
FETCH or SEARCH asks.  Every answer must stay what the full parse gives:
the same header fields, the same ENVELOPE, and a full summary (never the
empty BODYSTRUCTURE of a header row) when one is asked for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from asimap.imap.responses import Encoded
from asimap.message.model import Message
from asimap.store.base import MessageInfo, MessageSummary, summarize
from asimap.store.mh import MHStore, summarizing
from asimap.store.mh.files import FileIdentity
from asimap.store.mh.profile import Profile
from store_conformance import corpus_messages

NO_PROFILE = Profile(path=None, unseen=("unseen",))
_WHEN = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)


def _header_part(summary: MessageSummary) -> MessageSummary:
    """``summary`` as a header summary carries it (structure and ids empty)."""
    empty = Encoded(b"")
    return dataclasses.replace(
        summary, bodystructure=empty, body=empty, emailid="", threadid=""
    )


def _odd_messages() -> list[bytes]:
    """Header ends a prefix could misjudge: no body, no empty line, CRLF
    and LF mixed, an empty header, a header longer than the first read."""
    long_header = b"".join(b"X-Filler-%d: %s\n" % (n, b"y" * 60) for n in range(400))
    return [
        b"Subject: only a header\n",
        b"Subject: only a header, ended\n\n",
        b"\nbody without header\n",
        b"\r\nbody without header\r\n",
        b"Subject: crlf\r\nFrom: a@b.example\r\n\r\nbody\r\n",
        b"Subject: mixed\nFrom: a@b.example\r\n\nbody\n\r\n\r\nmore\n",
        b"From: x@y.example\n" + long_header + b"Subject: late\n\nbody\n",
        b"From: x@y.example\n" + long_header + b"Subject: no end\n",
    ]


@pytest.mark.parametrize("head_bytes", [8192, 1000, 300, 40, 3])
def test_header_summary_equals_the_full_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, head_bytes: int
) -> None:
    """Read through the file path that reads only the first bytes (with a
    tiny first read too, so that every header runs past it), each corpus
    message with LF and CRLF line ends gives the full summary's fields and
    ENVELOPE."""
    monkeypatch.setattr(summarizing, "HEAD_BYTES", head_bytes)
    raws = list(corpus_messages(300)) + _odd_messages()
    raws += [raw.replace(b"\n", b"\r\n") for raw in raws]
    for number, raw in enumerate(raws, start=1):
        path = tmp_path / str(number)
        path.write_bytes(raw)
        identity = FileIdentity.of(os.stat(path))
        read = summarizing._open_if_same(str(path), identity, whole=False)
        assert read is not None and raw.startswith(read)
        info = MessageInfo(number, _WHEN, len(raw))
        full = summarize(info, Message(raw))
        assert summarizing.header_summary(info, read) == _header_part(full), number


async def test_header_rows_serve_search_and_full_reads_replace_them(
    tmp_path: Path,
) -> None:
    """A folder nmh filled: the background fill caches header rows; a
    header read is answered from them, a full read (FETCH BODYSTRUCTURE)
    gets the real BODYSTRUCTURE and ids, never a header row's empty one."""
    folder = tmp_path / "Mail" / "inbox"
    folder.mkdir(parents=True)
    raws = corpus_messages(30)
    for number, raw in enumerate(raws, start=1):
        (folder / str(number)).write_bytes(raw)
    store = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE)
    try:
        inbox = await store.mailbox("INBOX")
        uids = [state.uid for state in await inbox.states()]  # starts the fill
        deadline = time.monotonic() + 30
        while await store.call(lambda: store.core.unsummarised(inbox.mailbox_id)):
            assert time.monotonic() < deadline, "summaries not filled"
            await asyncio.sleep(0.05)
        rows = await store.call(
            lambda: store.core.conn.execute(
                "SELECT count(*) FROM summaries WHERE bodystructure=x''"
            ).fetchone()[0]
        )
        assert rows == len(raws)  # header rows only
        expected = [
            summarize(await inbox.info(uid), Message(raw))
            for uid, raw in zip(uids, raws, strict=True)
        ]
        light = await inbox.summaries(uids, structure=False)
        assert light == [_header_part(full) for full in expected]
        assert await inbox.summaries(uids[:10]) == expected[:10]
        # Full rows serve header reads as header summaries.
        assert await inbox.summaries(uids, structure=False) == light
        assert await inbox.summaries(uids) == expected
    finally:
        await store.close()
