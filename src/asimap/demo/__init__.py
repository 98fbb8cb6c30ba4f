"""Demo mail for the quickstart: a few real messages in a few folders.

The messages in ``messages/`` are two hand-written ones (a welcome note and
a MIME multipart with an encoded attachment) and a handful taken from the
public usrp-users mailing-list archive that the test corpus comes from --
real-world headers, threads and multipart bodies, so that a client pointed
at the quickstart server shows something realistic.

Each sub-directory is one mailbox (see :data:`DEMO_FOLDERS`).  The files are
stored with LF line ends, as they came out of the mbox; :func:`seed_store`
converts them to the CRLF that IMAP clients expect (RFC 3501 section 2.3.1
counts RFC822.SIZE in CRLF octets).
"""

from __future__ import annotations

import contextlib
import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources

from asimap.store.base import MailboxExists, Store

#: Directory under ``messages/`` -> mailbox name.
DEMO_FOLDERS: dict[str, str] = {
    "inbox": "INBOX",
    "usrp": "Lists/usrp-users",
    "archive": "Archive",
}


def demo_messages() -> Iterator[tuple[str, str, bytes]]:
    """``(mailbox, file name, raw CRLF bytes)`` in a stable order."""
    root = resources.files(__package__).joinpath("messages")
    for directory, mailbox in DEMO_FOLDERS.items():
        entries = sorted(
            (entry for entry in root.joinpath(directory).iterdir()),
            key=lambda entry: entry.name,
        )
        for entry in entries:
            if entry.name.endswith(".eml"):
                yield mailbox, entry.name, to_crlf(entry.read_bytes())


def to_crlf(data: bytes) -> bytes:
    """Normalise line ends to CRLF (bare LF and bare CR both become CRLF)."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def _internaldate(raw: bytes) -> datetime:
    """The message's Date header, so clients sort the demo sensibly."""
    header_end = raw.find(b"\r\n\r\n")
    headers = raw[: header_end if header_end >= 0 else len(raw)]
    for line in headers.split(b"\r\n"):
        if line.lower().startswith(b"date:"):
            try:
                parsed = email.utils.parsedate_to_datetime(
                    line[5:].decode("ascii", "replace").strip()
                )
            except (TypeError, ValueError):
                break
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


async def seed_store(store: Store) -> int:
    """Fill an empty store with the demo mail; returns the message count.

    The older half of INBOX is marked ``\\Seen`` and the welcome note
    ``\\Flagged``, so flags show up in clients too.
    """
    for name in DEMO_FOLDERS.values():
        if name != "INBOX":
            with contextlib.suppress(MailboxExists):
                await store.create(name)
    count = 0
    for mailbox_name, file_name, raw in demo_messages():
        mailbox = await store.mailbox(mailbox_name)
        flags: set[str] = set()
        if file_name.startswith("00-welcome"):
            flags.add("\\Flagged")
        elif mailbox_name != "INBOX" or file_name < "05":
            flags.add("\\Seen")
        await mailbox.append(raw, flags, _internaldate(raw))
        count += 1
    return count
