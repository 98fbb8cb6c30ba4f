"""The main<->worker message framing: bounded, total, descriptors in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct

import pytest

from asimap.worker.protocol import (
    MAX_DATA,
    MAX_HEADER,
    BlockingReceiver,
    Channel,
    FrameDecoder,
    Message,
    ProtocolError,
    encode_frame,
    send_blocking,
)


def test_frames_decode_whole_and_byte_by_byte() -> None:
    frames = encode_frame({"op": "a", "n": 1}, b"xyz") + encode_frame({"op": "b"})
    whole = FrameDecoder().feed(frames)
    decoder = FrameDecoder()
    trickled = [m for i in range(len(frames)) for m in decoder.feed(frames[i : i + 1])]
    for messages in (whole, trickled):
        assert [(m.op, m.data) for m in messages] == [("a", b"xyz"), ("b", b"")]
        assert messages[0].header["n"] == 1


@pytest.mark.parametrize(
    "frame",
    [
        struct.pack(">II", MAX_HEADER + 1, 0),
        struct.pack(">II", 2, MAX_DATA + 1),
        struct.pack(">II", 2, 0) + b"[]",
        struct.pack(">II", 2, 0) + b"{}",
        struct.pack(">II", 3, 0) + b"{x}",
        encode_frame({"op": "x", "fds": 1}),
        encode_frame({"op": "x", "fds": -1}),
    ],
)
def test_bad_frames_are_protocol_errors(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(frame)


def test_oversized_messages_are_refused_before_sending() -> None:
    with pytest.raises(ValueError):
        encode_frame({"op": "x"}, b"\0" * (MAX_DATA + 1))
    with pytest.raises(ValueError):
        encode_frame({"op": "x", "pad": "y" * MAX_HEADER})


def test_descriptors_travel_with_their_frames() -> None:
    left, right = socket.socketpair()
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    try:
        send_blocking(left, {"op": "one"}, b"data", [r1])
        send_blocking(left, {"op": "none"})
        send_blocking(left, {"op": "two"}, fds=[r2])
        receiver = BlockingReceiver(right)
        got = [receiver.receive() for _ in range(3)]
        assert [m.op for m in got if m is not None] == ["one", "none", "two"]
        assert all(m is not None for m in got)
        first, middle, last = (m for m in got if m is not None)
        assert len(first.fds) == 1 and not middle.fds and len(last.fds) == 1
        os.write(w1, b"1")
        os.write(w2, b"2")
        assert os.read(first.fds[0], 1) == b"1"
        assert os.read(last.fds[0], 1) == b"2"
        for message in (first, last):
            message.close_fds()
        left.close()
        assert receiver.receive() is None
    finally:
        for fd in (r1, w1, r2, w2):
            with contextlib.suppress(OSError):
                os.close(fd)
        right.close()


async def test_channel_on_the_event_loop_both_ways_with_backpressure() -> None:
    left, right = socket.socketpair()
    received: list[Message] = []
    closed = asyncio.Event()
    arrived = asyncio.Event()

    def on_message(message: Message) -> None:
        received.append(message)
        if len(received) == 20:
            arrived.set()

    sender = Channel(left, lambda m: None, lambda: None)
    Channel(right, on_message, closed.set)
    read_end, write_end = os.pipe()
    big = os.urandom(MAX_DATA)
    # 20 x 2 MiB: far more than the socket buffer, so sends must queue.
    for n in range(20):
        sender.send({"op": "m", "n": n}, big, [read_end] if n == 7 else [])
    os.close(read_end)  # the channel sent its own duplicate
    await asyncio.wait_for(arrived.wait(), 30)
    assert [m.header["n"] for m in received] == list(range(20))
    assert all(m.data == big for m in received)
    assert [len(m.fds) for m in received].count(1) == 1
    os.write(write_end, b"!")
    assert os.read(received[7].fds[0], 1) == b"!"
    for message in received:
        message.close_fds()
    os.close(write_end)
    sender.close()
    await asyncio.wait_for(closed.wait(), 5)
