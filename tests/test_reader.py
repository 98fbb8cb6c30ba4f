"""Tests for the sans-IO command reader (asimap.imap.reader).

Every scenario is run twice: input fed whole and input fed one byte at a
time, and both must give the same events (the h11 discipline, design.md
section 5).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from asimap.imap.limits import Limits
from asimap.imap.reader import (
    CommandFrame,
    CommandReader,
    Eof,
    Event,
    FrameError,
    LiteralPending,
    RawLine,
)

Policy = Callable[[LiteralPending], bool]


def accept_all(_: LiteralPending) -> bool:
    return True


def reject_all(_: LiteralPending) -> bool:
    return False


def drain(reader: CommandReader, policy: Policy, out: list[Event]) -> None:
    while (event := reader.next_event()) is not None:
        out.append(event)
        if isinstance(event, LiteralPending):
            if policy(event):
                reader.accept_literal()
            else:
                reader.reject_literal()


def run_chunks(
    chunks: Iterable[bytes],
    policy: Policy = accept_all,
    *,
    limits: Limits | None = None,
    literal_plus: bool = True,
    eof: bool = True,
) -> list[Event]:
    reader = CommandReader(limits or Limits(), literal_plus=literal_plus)
    events: list[Event] = []
    for chunk in chunks:
        reader.feed(chunk)
        drain(reader, policy, events)
    if eof:
        reader.feed_eof()
        drain(reader, policy, events)
    return events


def run(
    data: bytes,
    policy: Policy = accept_all,
    *,
    limits: Limits | None = None,
    literal_plus: bool = True,
    eof: bool = True,
) -> list[Event]:
    """Feed ``data`` whole and byte by byte; assert same events; return them."""
    whole = run_chunks(
        [data], policy, limits=limits, literal_plus=literal_plus, eof=eof
    )
    single = run_chunks(
        [data[i : i + 1] for i in range(len(data))],
        policy,
        limits=limits,
        literal_plus=literal_plus,
        eof=eof,
    )
    assert whole == single
    return whole


def frames(events: list[Event]) -> list[Event]:
    return [e for e in events if not isinstance(e, LiteralPending)]


# -- plain commands ---------------------------------------------------------


def test_simple_commands_crlf_and_bare_lf() -> None:
    events = run(b"a1 NOOP\r\na2 CAPABILITY\na3")
    assert events == [
        CommandFrame((b"a1 NOOP",), ()),
        CommandFrame((b"a2 CAPABILITY",), ()),
        Eof(),
    ]


def test_nothing_until_line_complete() -> None:
    reader = CommandReader()
    reader.feed(b"a1 NOO")
    assert reader.next_event() is None
    assert reader.buffered == 6
    reader.feed(b"P\r\n")
    assert reader.next_event() == CommandFrame((b"a1 NOOP",), ())
    assert reader.next_event() is None


def test_nul_bytes_are_kept_for_the_parser() -> None:
    assert run(b"a1 LOGIN a\x00b c\r\n")[0] == CommandFrame((b"a1 LOGIN a\x00b c",), ())


def test_eof_once_then_none() -> None:
    reader = CommandReader()
    reader.feed_eof()
    assert reader.next_event() == Eof()
    assert reader.next_event() is None
    reader.feed(b"a1 NOOP\r\n")
    assert reader.next_event() is None


# -- literals -----------------------------------------------------------------


def test_synchronizing_literal() -> None:
    events = run(b"a1 LOGIN {5}\r\nfred\n {3}\r\nabc\r\n")
    assert events == [
        LiteralPending((b"a1 LOGIN {5}",), (), 5, True, False),
        LiteralPending((b"a1 LOGIN {5}", b" {3}"), (b"fred\n",), 3, True, False),
        CommandFrame((b"a1 LOGIN {5}", b" {3}", b""), (b"fred\n", b"abc")),
        Eof(),
    ]


def test_literal_plus_and_literal8_markers_kept_verbatim() -> None:
    data = b"a APPEND box ~{3+}\r\n\x00\r\n {2}\r\nhi ~{1}\r\nx\r\n"
    events = run(data)
    pending = [e for e in events if isinstance(e, LiteralPending)]
    assert [(p.size, p.synchronizing, p.binary) for p in pending] == [
        (3, False, True),
        (2, True, False),
        (1, True, True),
    ]
    assert frames(events) == [
        CommandFrame(
            (b"a APPEND box ~{3+}", b" {2}", b" ~{1}", b""),
            (b"\x00\r\n", b"hi", b"x"),
        ),
        Eof(),
    ]


def test_zero_length_literal() -> None:
    assert frames(run(b"a LOGIN {0}\r\n {0+}\r\n\r\n")) == [
        CommandFrame((b"a LOGIN {0}", b" {0+}", b""), (b"", b"")),
        Eof(),
    ]


def test_marker_must_end_line() -> None:
    assert run(b"a X {5} y\r\n")[0] == CommandFrame((b"a X {5} y",), ())


def test_pause_until_answered() -> None:
    reader = CommandReader()
    reader.feed(b"a LOGIN {3}\r\nabc\r\nb NOOP\r\n")
    assert isinstance(reader.next_event(), LiteralPending)
    assert reader.next_event() is None
    assert reader.next_event() is None
    reader.accept_literal()
    assert reader.next_event() == CommandFrame((b"a LOGIN {3}", b""), (b"abc",))
    assert reader.next_event() == CommandFrame((b"b NOOP",), ())


def test_answer_without_pending_is_misuse() -> None:
    reader = CommandReader()
    for answer in (reader.accept_literal, reader.reject_literal):
        try:
            answer()
        except RuntimeError:
            continue
        raise AssertionError("expected RuntimeError")


def test_reject_sync_literal_resumes_at_next_command() -> None:
    # The client does not send the literal after our tagged NO/BAD.
    events = run(b"a LOGIN {5}\r\nb NOOP\r\n", reject_all)
    assert frames(events) == [CommandFrame((b"b NOOP",), ()), Eof()]


def test_reject_nonsync_literal_discards_rest_of_command() -> None:
    data = b"a APPEND box {5+}\r\n{6}\r\n {4+}\r\nb NO c NOOP\r\nd NOOP\r\n"
    events = run(data, lambda p: p.synchronizing)
    # "{6}\r\n" is literal data, " {4+}" continues the dropped command whose
    # 4-byte literal "b NO" is discarded; " c NOOP" ends it.
    assert frames(events) == [CommandFrame((b"d NOOP",), ()), Eof()]


def test_eof_mid_command_and_mid_literal() -> None:
    assert run(b"a NOO") == [Eof()]
    assert frames(run(b"a LOGIN {10}\r\nabc")) == [Eof()]


# -- limits -------------------------------------------------------------------


def test_oversized_sync_literal_refused_before_sent() -> None:
    limits = Limits(max_literal=100)
    events = run(b"a1 LOGIN u {101}\r\nb NOOP\r\n", limits=limits)
    assert events == [
        FrameError("a1", "literal too big", "TOOBIG"),
        CommandFrame((b"b NOOP",), ()),
        Eof(),
    ]


def test_oversized_nonsync_literal_discarded_then_error() -> None:
    limits = Limits(max_literal=10)
    data = b"a1 LOGIN u {20+}\r\n" + b"x" * 20 + b"\r\nb NOOP\r\n"
    assert run(data, limits=limits) == [
        FrameError("a1", "literal too big", "TOOBIG"),
        CommandFrame((b"b NOOP",), ()),
        Eof(),
    ]


def test_four_gigabyte_nonsync_literal_costs_nothing() -> None:
    reader = CommandReader()
    reader.feed(b"a1 APPEND box {4294967296+}\r\n")
    assert reader.next_event() is None
    chunk = b"z" * 65536
    events: list[Event] = []
    for _ in range(160):  # 10 MiB of discarded data
        reader.feed(chunk)
        drain(reader, accept_all, events)
        assert reader.buffered < 1024
    # Same when the driver feeds several chunks before draining.
    for _ in range(10):
        reader.feed(chunk)
    assert reader.buffered < 1024
    assert events == []
    reader.feed_eof()
    assert reader.next_event() == Eof()


def test_one_megabyte_line_is_bounded() -> None:
    reader = CommandReader()
    events: list[Event] = []
    reader.feed(b"t1 LOGIN ")
    for _ in range(64):
        reader.feed(b"y" * 16384)
        drain(reader, accept_all, events)
        assert reader.buffered <= Limits().max_line + 16384
    reader.feed(b"\r\nt2 NOOP\r\n")
    drain(reader, accept_all, events)
    assert events == [
        FrameError("t1", "line too long", "LIMIT"),
        CommandFrame((b"t2 NOOP",), ()),
    ]


def test_long_line_boundaries_and_both_feedings() -> None:
    limits = Limits(max_line=20)
    ok = b"a " + b"x" * 16 + b"\r\n"  # exactly 20 bytes with CRLF
    bad = b"a " + b"x" * 17 + b"\r\n"
    assert run(ok, limits=limits)[0] == CommandFrame((ok[:-2],), ())
    assert run(bad + b"b NOOP\r\n", limits=limits) == [
        FrameError("a", "line too long", "LIMIT"),
        CommandFrame((b"b NOOP",), ()),
        Eof(),
    ]


def test_long_line_with_nonsync_literal_is_discarded() -> None:
    limits = Limits(max_line=30)
    data = b"a APPEND " + b"m" * 40 + b" {5+}\r\nhello\r\nb NOOP\r\n"
    assert run(data, limits=limits) == [
        FrameError("a", "line too long", "LIMIT"),
        CommandFrame((b"b NOOP",), ()),
        Eof(),
    ]


def test_long_continuation_line_keeps_tag() -> None:
    limits = Limits(max_line=30)
    data = b"c7 LOGIN {2}\r\nab " + b"p" * 40 + b"\r\nd NOOP\r\n"
    assert frames(run(data, limits=limits)) == [
        FrameError("c7", "line too long", "LIMIT"),
        CommandFrame((b"d NOOP",), ()),
        Eof(),
    ]


def test_literal_plus_disabled_limits_nonsync() -> None:
    limits = Limits(max_nonsync_literal=4)
    data = b"a LOGIN {5+}\r\nhello\r\nb LOGIN {4+}\r\nabcd\r\n"
    assert run(data, limits=limits, literal_plus=False) == [
        FrameError("a", "non-synchronizing literal too big", "TOOBIG"),
        LiteralPending((b"b LOGIN {4+}",), (), 4, False, False),
        CommandFrame((b"b LOGIN {4+}", b""), (b"abcd",)),
        Eof(),
    ]
    # With LITERAL+ the same 5-byte literal is fine.
    assert len(frames(run(data, limits=limits))) == 3


def test_too_many_literals_and_command_too_big() -> None:
    limits = Limits(max_literals=2, max_command=70)
    many = b"a X {1+}\r\n1 {1+}\r\n2 {1+}\r\n3\r\nb NOOP\r\n"
    assert frames(run(many, limits=limits)) == [
        FrameError("a", "too many literals", "LIMIT"),
        CommandFrame((b"b NOOP",), ()),
        Eof(),
    ]
    big = b"a X {50}\r\n" + b"q" * 50 + b" {10}\r\nb NOOP\r\n"
    assert frames(run(big, limits=limits)) == [
        FrameError("a", "command too big", "TOOBIG"),
        CommandFrame((b"b NOOP",), ()),
        Eof(),
    ]


def test_message_literals_are_left_to_the_session_up_to_max_command() -> None:
    """APPEND/REPLACE literals above max_literal reach the session, which
    answers RFC 7889's NO [TOOBIG]; above max_command the reader refuses."""
    limits = Limits(max_literal=100, max_command=1000)
    for line in (b"a1 APPEND box {101}", b"a1 uid replace 1 box {101}"):
        events = run(line + b"\r\n", limits=limits)
        assert events[0] == LiteralPending((line,), (), 101, True, False)
    events = run(b"a1 APPEND box {1001}\r\nb NOOP\r\n", limits=limits)
    assert events[0] == FrameError("a1", "literal too big", "TOOBIG")


def test_tag_validity_and_length() -> None:
    limits = Limits(max_tag=4, max_literal=1)
    assert run(b"abcde NOOP\r\n", limits=limits)[0] == FrameError(
        None, "tag too long", "LIMIT"
    )
    assert run(b"a+b X {9}\r\n", limits=limits)[0] == FrameError(
        None, "literal too big", "TOOBIG"
    )
    assert run(b"a]b X {9}\r\n", limits=limits)[0] == FrameError(
        "a]b", "literal too big", "TOOBIG"
    )


def test_huge_digit_count_is_not_a_marker() -> None:
    line = b"a X {" + b"9" * 25 + b"}"
    assert run(line + b"\r\n")[0] == CommandFrame((line,), ())


# -- modes ----------------------------------------------------------------------


def test_raw_line_mode() -> None:
    reader = CommandReader(Limits(max_line=24))
    reader.feed(b"a AUTHENTICATE PLAIN\r\ndGVzdA== {5}\r\n" + b"x" * 30)
    reader.feed(b"\r\nb NOOP\r\n")
    assert reader.next_event() == CommandFrame((b"a AUTHENTICATE PLAIN",), ())
    reader.set_raw_line_mode(True)
    assert reader.next_event() == RawLine(b"dGVzdA== {5}")
    assert reader.next_event() == FrameError(None, "line too long", "LIMIT")
    reader.set_raw_line_mode(False)
    assert reader.next_event() == CommandFrame((b"b NOOP",), ())


def test_discard_buffered_for_starttls() -> None:
    reader = CommandReader()
    reader.feed(b"a STARTTLS\r\nb LOGIN injected {3}\r\nabc")
    assert reader.next_event() == CommandFrame((b"a STARTTLS",), ())
    assert reader.discard_buffered() == len(b"b LOGIN injected {3}\r\nabc")
    assert reader.buffered == 0
    assert reader.next_event() is None
    reader.feed(b"c NOOP\r\n")
    assert reader.next_event() == CommandFrame((b"c NOOP",), ())


# -- properties -------------------------------------------------------------------

_pieces = st.sampled_from(
    [
        b"a1 ",
        b"NOOP",
        b" ",
        b"\r\n",
        b"\n",
        b"\r",
        b"{3}",
        b"{2+}",
        b"~{1}",
        b"~{4+}",
        b"{0}",
        b"{99}",
        b"{12345678901}",
        b"{",
        b"}",
        b"+",
        b"x" * 25,
        b"\x00",
        b"\xff",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.one_of(_pieces, st.binary(max_size=8)), max_size=40),
    reject_mask=st.integers(min_value=0, max_value=255),
    literal_plus=st.booleans(),
)
def test_whole_equals_byte_by_byte(
    parts: list[bytes], reject_mask: int, literal_plus: bool
) -> None:
    data = b"".join(parts)
    limits = Limits(
        max_line=40,
        max_literal=50,
        max_command=120,
        max_literals=3,
        max_nonsync_literal=2,
        max_tag=8,
    )

    def policy(pending: LiteralPending) -> bool:
        return not (reject_mask >> (pending.size % 8)) & 1

    events = run(data, policy, limits=limits, literal_plus=literal_plus)
    assert events[-1] == Eof()
    for event in events:
        if isinstance(event, CommandFrame):
            assert len(event.lines) == len(event.literals) + 1
            assert all(b"\n" not in line for line in event.lines)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=6))
def test_any_chunking_gives_same_events(data: bytes, cuts: list[int]) -> None:
    limits = Limits(max_line=30, max_literal=20)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert run_chunks(chunks, limits=limits) == run_chunks([data], limits=limits)


def test_rejected_nonsync_then_sync_marker_ends_dropped_command() -> None:
    data = b"a APPEND box {2+}\r\nxy {3}\r\nb NOOP\r\n"
    events = run(data, lambda p: p.synchronizing)
    # " {3}" is a synchronizing literal we never continue: the client waits,
    # sees our tagged answer to "a", and sends the next command.
    assert frames(events) == [CommandFrame((b"b NOOP",), ()), Eof()]


_operations = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.one_of(_pieces, st.binary(max_size=30))),
        st.tuples(st.just("raw"), st.booleans()),
        st.tuples(st.just("discard"), st.none()),
        st.tuples(st.just("eof"), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations=_operations, reject_mask=st.integers(0, 255))
def test_never_raises_and_stays_bounded(
    operations: list[tuple[str, object]], reject_mask: int
) -> None:
    limits = Limits(max_line=40, max_literal=50, max_command=120, max_literals=3)
    reader = CommandReader(limits)
    events: list[Event] = []

    def policy(pending: LiteralPending) -> bool:
        return not (reject_mask >> (pending.size % 8)) & 1

    for name, argument in operations:
        if name == "feed":
            assert isinstance(argument, bytes)
            reader.feed(argument)
        elif name == "raw":
            reader.set_raw_line_mode(bool(argument))
        elif name == "discard":
            reader.discard_buffered()
            assert reader.buffered == 0
        else:
            reader.feed_eof()
        drain(reader, policy, events)
        # One unprocessed chunk at most, plus the partial command.
        assert reader.buffered <= 30 + limits.max_command + limits.max_line
    assert events.count(Eof()) <= 1


def test_big_literal_in_pieces_of_every_size_arrives_whole() -> None:
    """A 300 KB literal fed in pieces of mixed sizes -- single bytes, some
    larger than the reader keeps as they are, some sharing a chunk with
    the command line or the next command -- is the same bytes, in order,
    as fed whole; ``buffered`` counts it exactly while it arrives."""
    body = bytes(range(256)) * 1200
    data = b"a APPEND box {%d+}\r\n" % len(body) + body + b"\r\nb NOOP\r\n"
    sizes = itertools.cycle([1, 7, 40_000, 3, 100_000, 16_384, 2])
    chunks: list[bytes] = []
    at = 0
    while at < len(data):
        size = next(sizes)
        chunks.append(data[at : at + size])
        at += size
    limits = Limits(max_literal=1_000_000)
    whole = run_chunks([data], limits=limits)
    pieces = run_chunks(chunks, limits=limits)
    assert pieces == whole
    assert frames(whole)[0] == CommandFrame(
        (b"a APPEND box {%d+}" % len(body), b""), (body,)
    )
    reader = CommandReader(limits)
    head = b"a APPEND box {%d+}\r\n" % len(body)
    reader.feed(head + body[:5])
    assert isinstance(reader.next_event(), LiteralPending)
    reader.accept_literal()
    assert reader.next_event() is None
    reader.feed(body[5:100_000])  # kept as it came
    reader.feed(body[100_000:100_003])
    assert reader.next_event() is None
    assert reader.buffered == len(head) - 2 + 100_003  # the line, no CRLF
