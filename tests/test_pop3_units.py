"""POP3 sans-IO pieces: line reader, command parser, encoders, transfer.

Like h11's tests, the reader is fed every input whole and then one byte at
a time and must produce the same events.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asimap.pop3 import commands as c
from asimap.pop3 import transfer
from asimap.pop3.reader import MAX_LINE, Eof, Line, LineReader, LineTooLong
from asimap.pop3.responses import Code, err, multiline, ok


def _events(chunks: list[bytes], eof: bool = True) -> list[object]:
    reader = LineReader()
    events: list[object] = []
    for chunk in chunks:
        reader.feed(chunk)
        while (event := reader.next_event()) is not None:
            events.append(event)
        assert reader.buffered <= MAX_LINE
    if eof:
        reader.feed_eof()
        events.append(reader.next_event())
    return events


STREAMS = [
    b"USER a\r\nPASS b c\r\n",
    b"STAT\nLIST 1\r\n",
    b"NOOP\r\n" + b"x" * 5000 + b"\r\nQUIT\r\n",
    b"x" * MAX_LINE + b"\r\nNOOP\r\n",
    b"partial",
]


@pytest.mark.parametrize("stream", STREAMS)
def test_reader_whole_and_bytewise_agree(stream: bytes) -> None:
    whole = _events([stream])
    trickled = _events([stream[i : i + 1] for i in range(len(stream))])
    assert whole == trickled


def test_reader_lines_and_limits() -> None:
    assert _events([b"USER a\r\nPASS b c\r\n"]) == [
        Line(b"USER a"),
        Line(b"PASS b c"),
        Eof(),
    ]
    # A bare LF ends a line; a partial last line is dropped at EOF.
    assert _events([b"STAT\nLIS"]) == [Line(b"STAT"), Eof()]
    # Exactly at the limit (CRLF included) is fine, one more is not.
    fits = b"x" * (MAX_LINE - 2) + b"\r\n"
    assert _events([fits]) == [Line(b"x" * (MAX_LINE - 2)), Eof()]
    assert _events([b"x" * (MAX_LINE - 1) + b"\r\nNOOP\r\n"]) == [
        LineTooLong(MAX_LINE),
        Line(b"NOOP"),
        Eof(),
    ]


def test_reader_memory_is_bounded_for_an_endless_line() -> None:
    reader = LineReader()
    events = []
    for _ in range(1000):
        reader.feed(b"y" * 10_000)
        while (event := reader.next_event()) is not None:
            events.append(event)
        assert reader.buffered < MAX_LINE
    reader.feed(b"\r\nQUIT\r\n")
    while (event := reader.next_event()) is not None:
        events.append(event)
    assert events == [LineTooLong(MAX_LINE), Line(b"QUIT")]


def test_reader_discard_drops_pipelined_bytes() -> None:
    reader = LineReader()
    reader.feed(b"STLS\r\nUSER evil\r\n")
    assert reader.next_event() == Line(b"STLS")
    assert reader.discard_buffered() == len(b"USER evil\r\n")
    assert reader.next_event() is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"USER alice", c.User(b"alice")),
        (b"user alice", c.User(b"alice")),
        (b"PASS two words ", c.Pass(b"two words ")),
        (b"AUTH", c.Auth(None)),
        (b"AUTH plain", c.Auth("PLAIN")),
        (b"AUTH PLAIN AGFAYgA=", c.Auth("PLAIN", b"AGFAYgA=")),
        (b"CAPA", c.Capa()),
        (b"STLS", c.Stls()),
        (b"STAT", c.Stat()),
        (b"STAT ", c.Stat()),
        (b"LIST", c.List(None)),
        (b"LIST 3", c.List(3)),
        (b"LIST 1  ", c.List(1)),
        (b"UIDL", c.Uidl(None)),
        (b"UIDL 12", c.Uidl(12)),
        (b"RETR 1", c.Retr(1)),
        (b"DELE 2", c.Dele(2)),
        (b"TOP 1 0", c.Top(1, 0)),
        (b"TOP 1 10", c.Top(1, 10)),
        (b"NOOP", c.Noop()),
        (b"RSET", c.Rset()),
        (b"QUIT", c.Quit()),
    ],
)
def test_parse_commands(line: bytes, expected: c.Command) -> None:
    assert c.parse_line(line) == expected


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"", "Unknown command"),
        (b"FROB", "Unknown command"),
        (b"APOP a b", "Unknown command"),
        (b"RETR", "Missing argument"),
        (b"RETR 0", "Invalid message number: must be at least 1"),
        (b"RETR -1", "Invalid message number: not a number"),
        (b"RETR +1", "Invalid message number: not a number"),
        (b"RETR one", "Invalid message number: not a number"),
        (b"RETR \xd9\xa3", "Invalid message number: not a number"),
        (b"RETR 12345678901", "Invalid message number: too large"),
        (b"RETR 1 2", "Too many arguments"),
        (b"DELE", "Missing argument"),
        (b"TOP 1", "Missing argument"),
        (b"TOP 1 -1", "Invalid line count: not a number"),
        (b"LIST  1", "Arguments must be separated by a single space"),
        (b"STAT 1", "Too many arguments"),
        (b"USER", "Missing argument"),
        (b"PASS", "Missing argument"),
        (b"NOOP\x00", "Unknown command"),
        (b"AUTH a b c", "Too many arguments"),
    ],
)
def test_parse_errors(line: bytes, text: str) -> None:
    assert c.parse_line(line) == c.CommandError(text)


@given(st.binary(max_size=300))
def test_parser_is_total(line: bytes) -> None:
    result = c.parse_line(line)
    assert isinstance(result, c.CommandError | c.Command)  # type: ignore[arg-type]


def test_status_lines_and_multiline() -> None:
    assert ok() == b"+OK\r\n"
    assert ok("2 320") == b"+OK 2 320\r\n"
    assert err("bad\r\nthing", Code.AUTH) == b"-ERR [AUTH] bad  thing\r\n"
    assert err("x", Code.SYS_TEMP) == b"-ERR [SYS/TEMP] x\r\n"
    assert multiline(ok(), [b"1 2", b".dot"]) == b"+OK\r\n1 2\r\n..dot\r\n.\r\n"


def _unstuff(wire: bytes) -> bytes:
    """What a client keeps: drop the terminator, undo byte-stuffing."""
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    body = wire[: -len(b".\r\n")]
    lines = body.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


MESSAGES = [
    b"",
    b"A: b\r\n\r\nbody\r\n",
    b"A: b\n\nbody\n.\n..\n.x\nend",
    b".starts with a dot\r\n\r\n.\r\n",
    b"bare\rcr\r\rat end\r",
    b"mixed\r\nends\nhere\r\n",
    b"x" * 100_000,
]


@pytest.mark.parametrize("raw", MESSAGES)
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, transfer.CHUNK])
def test_stuffed_chunks_round_trip(
    raw: bytes, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "CHUNK", chunk)
    if chunk < 5 and len(raw) > 1000:
        raw = raw[:1000]
    wire = b"".join(transfer.stuffed_chunks(raw))
    normal = transfer.normalise(raw)
    assert _unstuff(wire) == normal
    assert transfer.wire_size(raw) == len(normal)
    # Every line of the wire form ends with CRLF and no bare LF is left.
    assert wire.count(b"\n") == wire.count(b"\r\n")


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=9))
def test_stuffing_is_exact_for_any_bytes(raw: bytes, chunk: int) -> None:
    original = transfer.CHUNK
    transfer.CHUNK = chunk
    try:
        wire = b"".join(transfer.stuffed_chunks(raw))
    finally:
        transfer.CHUNK = original
    normal = transfer.normalise(raw)
    assert _unstuff(wire) == normal
    assert transfer.wire_size(raw) == len(normal)
    assert wire.count(b"\n") == wire.count(b"\r\n")


@pytest.mark.parametrize(
    ("raw", "lines", "expected"),
    [
        (b"A: b\r\n\r\n1\r\n2\r\n3\r\n", 0, b"A: b\r\n\r\n"),
        (b"A: b\r\n\r\n1\r\n2\r\n3\r\n", 2, b"A: b\r\n\r\n1\r\n2\r\n"),
        (b"A: b\r\n\r\n1\r\n2\r\n3\r\n", 99, b"A: b\r\n\r\n1\r\n2\r\n3\r\n"),
        (b"A: b\n\n1\n2", 1, b"A: b\n\n1\n"),
        (b"A: b\n\n1\n2", 2, b"A: b\n\n1\n2"),
        (b"only header\r\n", 5, b"only header\r\n"),
        (b"\r\nbody\r\nmore\r\n", 1, b"\r\nbody\r\n"),
        (b"\nbody\n", 0, b"\n"),
    ],
)
def test_top_end(raw: bytes, lines: int, expected: bytes) -> None:
    assert raw[: transfer.top_end(raw, lines)] == expected
