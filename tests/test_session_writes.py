"""Each command's answer is one write: untagged responses go with the tagged.

Every write of a worker costs a syscall, a wakeup of the main process and
a TLS record for the client; a FETCH, STATUS, LIST or SELECT used to cost
two (the untagged responses, then the tagged one).  Counted here as calls
of the session's ``send`` (one ``send`` is one write in the driver).
"""

from __future__ import annotations

from asimap.imap.responses import Response
from transcript import FakeClient, World, add_messages, message


class Counting(FakeClient):
    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.sends = 0

    async def send(self, *responses: Response) -> None:
        self.sends += 1
        await super().send(*responses)


async def ask(client: Counting, line: str) -> tuple[int, list[bytes]]:
    """Send one command; the number of sends and the lines of its answer."""
    tag = line.split()[0].encode()
    before = client.sends
    client.write(line.encode() + b"\r\n")
    lines = [await client.next_line()]
    while not lines[-1].startswith(tag + b" "):
        lines.append(await client.next_line())
    return client.sends - before, lines


async def test_fetch_status_list_select_are_one_write_each() -> None:
    world = World()
    await add_messages(world, "alice", "INBOX", message("one"), message("two"))
    client = Counting(world)
    client.start()
    await client.next_line()  # greeting
    assert (await ask(client, "a LOGIN alice secret-a"))[1][-1].startswith(b"a OK")
    for line, untagged in (
        ('b LIST "" *', 1),
        ("c STATUS INBOX (MESSAGES UIDNEXT)", 1),
        ("d SELECT INBOX", 7),
        ("e FETCH 1:2 (UID FLAGS)", 2),
        ("f UID FETCH 1 (BODY.PEEK[])", 1),
    ):
        sends, lines = await ask(client, line)
        assert len(lines) - 1 >= untagged, lines
        assert lines[-1].split()[1] == b"OK", lines
        assert sends == 1, (line, sends)
    client.close_input()
