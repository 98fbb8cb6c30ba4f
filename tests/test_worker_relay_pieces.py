"""The relay writes into the client's TLS transport in bounded pieces.

The TLS transport encrypts each write whole into a memory buffer that
keeps its size for the rest of the connection, so one big write (a
chunk of a large FETCH, up to 256 KiB) would leave every connection that
ever fetched a big message holding that much in the main process while it
idles.  In-process, with socketpairs standing in for the client's
connection and the worker's end; the order and integrity of the bytes are
checked too.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from asimap.net.pipe import Pipe
from asimap.worker.relay import TLS_PIECE, Relay


class _Recording:
    """Forwards to a transport, noting the size of every write."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.sizes: list[int] = []

    def write(self, data: bytes | memoryview) -> None:
        self.sizes.append(len(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def test_big_worker_output_reaches_the_client_in_pieces() -> None:
    loop = asyncio.get_running_loop()
    client, server_side = socket.socketpair()
    client.setblocking(False)
    _transport, pipe = await loop.connect_accepted_socket(
        lambda: Pipe(lambda _p: None), sock=server_side
    )
    pipe.detach()
    assert pipe.transport is not None
    relay = Relay(pipe.transport)
    main_end, worker_end = socket.socketpair()
    worker_end.setblocking(False)
    await relay.start(main_end)
    recording = _Recording(relay.client_side.transport)
    relay.client_side.transport = recording  # type: ignore[assignment]

    payload = bytes(range(256)) * 4096  # 1 MiB, position-dependent
    received = bytearray()
    try:
        async with asyncio.timeout(10):
            sending = loop.create_task(loop.sock_sendall(worker_end, payload))
            while len(received) < len(payload):
                received += await loop.sock_recv(client, 1 << 20)
            await sending
    finally:
        worker_end.close()
        client.close()
    assert bytes(received) == payload
    assert recording.sizes and max(recording.sizes) <= TLS_PIECE
    assert sum(recording.sizes) == len(payload)
