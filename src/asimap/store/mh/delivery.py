"""Local delivery into an MH folder, as nmh's ``rcvstore`` does it.

``rcvstore`` writes the message as the next number of the folder and adds
it to the unseen sequence.  :func:`deliver` does the same through the
store, so it is atomic (temporary file, fsync, ``os.link`` claiming a
number that ``inc`` may be racing for), gets a UID at once, and wakes IDLE
sessions through the change feed.  It is the entry point for LMTP and any
other delivery agent.
"""

from __future__ import annotations

from collections.abc import Iterable

from asimap.store.mh.store import MHStore


async def deliver(
    store: MHStore, mailbox: str, data: bytes, flags: Iterable[str] = ()
) -> int:
    """Deliver ``data`` into ``mailbox``; return its UID.

    Without ``\\Seen`` among ``flags`` the message joins the unseen
    sequence(s), like ``rcvstore``; it is \\Recent for the first session
    that selects the mailbox (RFC 3501 section 2.3.2).
    """
    target = await store.mailbox(mailbox)
    return await target.append(data, flags)
