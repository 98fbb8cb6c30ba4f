"""PipeFeeder: the read loop both connection drivers share.

The Pipe here gets its bytes through the asyncio.Protocol callbacks, as a
transport would deliver them; the end-to-end behaviour over real sockets
is covered by test_server_driver.py and the POP3 tests.
"""

from __future__ import annotations

import asyncio

import pytest

from asimap.imap.limits import Limits
from asimap.imap.reader import CommandFrame, CommandReader
from asimap.imap.reader import Eof as ImapEof
from asimap.imap.reader import Event as ImapEvent
from asimap.net.pipe import Pipe, StopReading
from asimap.net.pipe_feeder import PipeFeeder
from asimap.pop3.reader import Eof, Event, Line, LineReader


def make(timeout: float = 5.0) -> tuple[Pipe, PipeFeeder[Event], list[bytes]]:
    pipe = Pipe(lambda _pipe: None)
    seen: list[bytes] = []
    feeder: PipeFeeder[Event] = PipeFeeder(
        pipe,
        LineReader(),
        eof=Eof(),
        idle_timeout=lambda: timeout,
        on_client_bytes=seen.append,
    )
    return pipe, feeder, seen


async def test_events_across_chunks_then_eof_for_good() -> None:
    pipe, feeder, seen = make()
    pipe.data_received(b"NO")
    pipe.data_received(b"OP\r\nQU")
    waiter = asyncio.ensure_future(feeder.next_event())
    assert await waiter == Line(b"NOOP")
    later = asyncio.ensure_future(feeder.next_event())
    await asyncio.sleep(0)
    assert not later.done()  # waits for the rest of "QUIT"
    pipe.data_received(b"IT\n")
    assert await later == Line(b"QUIT")
    pipe.eof_received()
    assert await feeder.next_event() == Eof()
    assert await feeder.next_event() == Eof()
    assert seen == [b"NO", b"OP\r\nQU", b"IT\n"]


async def test_idle_timeout_and_interrupt_stop_reading() -> None:
    _pipe, feeder, _seen = make(timeout=0.05)
    with pytest.raises(StopReading, match="Autologout"):
        await feeder.next_event()
    pipe, feeder, _seen = make()
    pipe.interrupt("Server shutting down")
    with pytest.raises(StopReading, match="Server shutting down"):
        await feeder.next_event()


async def test_discard_and_detach_take_reader_and_pipe_bytes() -> None:
    pipe, feeder, _seen = make()
    pipe.data_received(b"STLS\r\nUSER x")
    assert await feeder.next_event() == Line(b"STLS")
    pipe.data_received(b"\r\nPASS y\r\n")
    # 6 bytes still in the reader, 10 still queued in the pipe.
    assert feeder.discard() == 16
    pipe.data_received(b"RETR 1\r\nQU")
    assert await feeder.next_event() == Line(b"RETR 1")
    pipe.data_received(b"IT\r\n")
    assert feeder.detach() == b"QUIT\r\n"


async def test_imap_reader_reports_eof_once_feeder_repeats_it() -> None:
    pipe = Pipe(lambda _pipe: None)
    reader = CommandReader(Limits())
    feeder: PipeFeeder[ImapEvent] = PipeFeeder(
        pipe, reader, eof=ImapEof(), idle_timeout=lambda: 5.0
    )
    pipe.data_received(b"a NOOP\r\n")
    pipe.eof_received()
    assert isinstance(await feeder.next_event(), CommandFrame)
    assert await feeder.next_event() == ImapEof()
    assert reader.next_event() is None  # the reader said it once ...
    assert await feeder.next_event() == ImapEof()  # ... the feeder keeps saying it
