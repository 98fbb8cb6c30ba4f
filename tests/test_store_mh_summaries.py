"""Cached message summaries: FETCH ENVELOPE/BODYSTRUCTURE without parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from asimap.imap.encoder import encode, encode_value
from asimap.imap.responses import Atom, Encoded, Untagged
from asimap.store.base import MessageSummary, summarize
from asimap.store.memory import MemoryStore
from asimap.store.mh import MHStore
from asimap.store.mh.profile import Profile
from store_conformance import corpus_messages

NO_PROFILE = Profile(path=None, unseen=("unseen",))


def test_encoded_is_written_verbatim() -> None:
    envelope = Encoded(b'(NIL "subject" NIL NIL NIL NIL NIL NIL NIL NIL)')
    wire = encode(Untagged((1, Atom("FETCH"), [Atom("ENVELOPE"), envelope])))
    assert (
        wire
        == b'* 1 FETCH (ENVELOPE (NIL "subject" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n'
    )
    assert encode_value(envelope, utf8=True) == envelope.data


async def test_summaries_match_the_parsed_messages_and_are_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await MHStore.open(tmp_path / "Mail", profile=NO_PROFILE)
    try:
        inbox = await store.mailbox("INBOX")
        raws = corpus_messages()[:8]
        uids = [await inbox.append(raw) for raw in raws]
        first = await inbox.summaries([*reversed(uids), 99999])
        assert [s.uid for s in first] == list(reversed(uids))  # order kept
        for summary in first:
            expected = summarize(
                await inbox.info(summary.uid), await inbox.message(summary.uid)
            )
            assert summary == expected
            assert summary.envelope.data == encode_value(
                (await inbox.message(summary.uid)).envelope(), utf8=False
            )
        assert "subject" in first[0].headers

        # Cached: a second call never reads a message file.
        def no_reading(*_args: object) -> bytes:
            raise AssertionError("message file read for a cached summary")

        monkeypatch.setattr(store.core, "read", no_reading)
        assert await inbox.summaries(uids) == list(reversed(first))

        # COPY carries the cache along; expunge drops it.
        archive = await store.mailbox("Archive")
        pairs = await inbox.copy_to(uids[:2], archive)
        copied = await archive.summaries([new for _, new in pairs])
        assert [s.envelope for s in copied] == [s.envelope for s in first[-1:-3:-1]]
    finally:
        await store.close()


async def test_default_summaries_come_from_the_message() -> None:
    store = MemoryStore.for_new_account()
    inbox = await store.mailbox("INBOX")
    uid = await inbox.append(corpus_messages()[0])
    (summary,) = await inbox.summaries([uid, uid + 1])
    assert isinstance(summary, MessageSummary)
    assert summary.size == len(corpus_messages()[0])
    assert summary.body.data == encode_value(
        (await inbox.message(uid)).bodystructure(False), utf8=False
    )
