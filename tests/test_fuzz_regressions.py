"""Defects the fuzzers found, each pinned by the input that showed it.

Every test here failed before its fix; the inputs are also in the seed
corpus of their target (``tests/fuzz/corpus/``), so the fuzz runs replay
them too.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pytest

from asimap.imap.encoder import encode_value
from asimap.message import wire
from asimap.message.model import Message
from asimap.store.mh import MHStore, sequences
from asimap.store.mh.profile import Profile
from imap_grammar import check_body, check_envelope


def test_mh_sequences_with_a_non_ascii_digit_still_parse() -> None:
    """ "²" is a digit to str.isdigit() but not to int(): the parser raised
    ValueError, and the MH store could not open the folder at all."""
    parsed = sequences.parse("unseen: 2 \u00b2 3-\u00b9\nflagged: 1\n")
    assert parsed.sequences == {"unseen": {2}, "flagged": {1}}


def test_a_folder_with_such_a_sequence_file_is_served(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    (root / "inbox").mkdir(parents=True)
    for number in (1, 2):
        (root / "inbox" / str(number)).write_bytes(b"Subject: x\r\n\r\nbody\r\n")
    (root / "inbox" / ".mh_sequences").write_text("unseen: 2 \u00b2\nflagged: 1\n")

    async def flags() -> list[frozenset[str]]:
        store = await MHStore.open(root, profile=Profile(path=None, unseen=("unseen",)))
        try:
            inbox = await store.mailbox("INBOX")
            return [state.flags for state in await inbox.states()]
        finally:
            await store.close()

    assert asyncio.run(flags())[0] >= {"\\Flagged"}


def test_a_sequence_on_several_lines_is_written_back_whole() -> None:
    """A sequence we do not interpret is written back verbatim; when its
    name had two lines only the last was kept, losing the first's numbers."""
    parsed = sequences.parse("odd name: 7\nodd name: 9\n")
    assert parsed.sequences["odd name"] == {7, 9}
    kept = sequences.preserved_lines(parsed, ("unseen",))
    again = sequences.parse(sequences.format_file({}, kept))
    assert again.sequences["odd name"] == {7, 9}


def test_a_preserved_line_with_leading_blanks_stays_its_own_sequence() -> None:
    """Written back after another line, ``\\t%: 4`` continued it instead."""
    parsed = sequences.parse("\t%: 4\n\n\x01: 5\n")
    kept = sequences.preserved_lines(parsed, ("unseen",))
    again = sequences.parse(sequences.format_file({}, kept))
    assert again.sequences == {"%": {4}, "\x01": {5}}


def test_garbage_ranges_are_bounded_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each line may name ten million numbers, a set entry each (about
    half a gigabyte): a handful of such lines exhausted the worker's
    memory.  The whole file may name at most MAX_NUMBERS (made small here
    to keep the test light)."""
    monkeypatch.setattr(sequences, "MAX_NUMBERS", 1000)
    text = "".join(f"s{i}: 1-1000\n" for i in range(40))
    parsed = sequences.parse(text)
    total = sum(len(numbers) for numbers in parsed.sequences.values())
    assert total == 1000
    assert parsed.sequences["s0"] == set(range(1, 1001))


def test_a_nul_in_a_header_field_does_not_reach_the_wire() -> None:
    """A message stored by nmh with a NUL in its Subject: ENVELOPE sent it
    in a plain literal, which RFC 3501 section 4.3 forbids (CHAR8 excludes
    NUL); it is now U+FFFD, and BODY[] still has the stored bytes."""
    raw = b"Subject: \x00 hi\r\nFrom: a\x00b <a@b>\r\nContent-ID: <\x00>\r\n\r\nx\r\n"
    message = Message(raw)
    for utf8 in (False, True):
        envelope = encode_value(message.envelope(), utf8=utf8)
        check_envelope(envelope, utf8=utf8)
        assert "\ufffd hi".encode() in envelope
        check_body(encode_value(message.bodystructure(), utf8=utf8), utf8=utf8)
    # The summary cache (what FETCH ENVELOPE answers from) has its own encoder.
    wire.clear_memos()
    check_envelope(wire.encode_summary_value(message.envelope()))
    check_body(wire.encode_summary_value(message.bodystructure()))
    assert message.section(None) == raw


def test_flags_of_a_huge_sequence_cost_nothing_until_asked() -> None:
    """``See1:1-2222226`` (14 bytes) made the fuzzer run out of 1.5 GB, and
    ``unseen: 1-9999999`` took a 2-message folder's first SELECT to 5 GB:
    flags_by_number built an entry for every number named.  The store
    asks only about the messages on disk, so it is now worked out then."""
    parsed = sequences.parse("unseen: 1-200000\nSeen: 5\nflagged: 1-200000\n")
    tracemalloc.start()
    try:
        flags = sequences.flags_by_number(parsed, ("unseen",))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak
    assert flags.get(5) == sequences.FileFlags(
        flags=frozenset({"\\Flagged"}), in_seen=True, in_unseen=True
    )
    assert flags.get(200001) is None
    assert len(flags) == 200000
