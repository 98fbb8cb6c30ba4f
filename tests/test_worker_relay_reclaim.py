"""``Relay.reclaim``: a relayed connection taken back intact (RFC 8437).

In-process, with socketpairs standing in for the client's connection and
the worker's end: the bytes the relay forwarded that the "worker" never
read come back from the returned worker end, the worker's last response
still reaches the client, and afterwards the client's transport reads
for a new :class:`Pipe` in this process.  (The whole path through real
processes is in ``test_worker_unauthenticate``.)
"""

from __future__ import annotations

import asyncio
import os
import socket

from asimap.net.pipe import Pipe
from asimap.worker.relay import Relay


def _peek(sock: socket.socket) -> bytes:
    try:
        return sock.recv(64, socket.MSG_PEEK)
    except BlockingIOError:
        return b""


async def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(5):
        while len(data) < size:
            data += await loop.sock_recv(sock, size - len(data))
    return data


async def test_reclaim_returns_unread_bytes_and_passes_the_last_response() -> None:
    loop = asyncio.get_running_loop()
    client, server_side = socket.socketpair()
    client.setblocking(False)
    _transport, pipe = await loop.connect_accepted_socket(
        lambda: Pipe(lambda _p: None), sock=server_side
    )
    assert pipe.detach() == b""
    transport = pipe.transport
    assert transport is not None
    relay = Relay(transport)
    main_end, worker_end = socket.socketpair()
    worker_end.setblocking(False)
    await relay.start(main_end)

    # The client sends; the relay forwards; the "worker" does not read it.
    await loop.sock_sendall(client, b"b LOGIN other secret\r\n")
    async with asyncio.timeout(5):
        while len(_peek(worker_end)) < 22:
            await asyncio.sleep(0.01)
    # The worker's last response, then it gives its end back and closes.
    worker_end.sendall(b"u OK Not authenticated now\r\n")
    returned = socket.socket(fileno=os.dup(worker_end.fileno()))
    worker_end.close()

    unread = await relay.reclaim(returned)
    assert unread == b"b LOGIN other secret\r\n"
    assert await _recv_exactly(client, 28) == b"u OK Not authenticated now\r\n"

    # The client transport now reads for a pipe of this process.
    transport.set_protocol(pipe)
    pipe.reattach()
    await loop.sock_sendall(client, b"c NOOP\r\n")
    async with asyncio.timeout(5):
        assert await pipe.read() == b"c NOOP\r\n"
    pipe.write(b"c OK\r\n")
    assert await _recv_exactly(client, 6) == b"c OK\r\n"
    pipe.close()
    client.close()
