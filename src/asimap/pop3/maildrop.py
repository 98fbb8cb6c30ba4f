"""The POP3 view of INBOX: a numbered snapshot taken at login.

RFC 1939 section 4: message numbers are fixed for the whole session and
messages marked deleted are not counted by STAT or listed by LIST/UIDL
(section 5).  Nothing reaches the store until a clean QUIT (section 6,
UPDATE state): then exactly the UIDs marked here get ``\\Deleted`` and are
expunged, so IMAP sessions of the same user see ordinary EXPUNGEs and a
dropped connection deletes nothing.

Unique-ids (RFC 1939 section 7, UIDL) are ``"<uidvalidity>.<uid>"``: the
store keeps both stable across sessions and restarts, and together they
are unique for the life of the mailbox (at most 21 characters of 0x21-0x7E,
well inside the 70 allowed).

No lock is taken: like Dovecot's default (``pop3_lock_session = no``)
two POP3 sessions of one user may run at once; a message expunged by
someone else meanwhile answers ``-ERR`` on RETR/TOP and its deletion at
QUIT is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asimap.pop3.transfer import wire_size
from asimap.store.base import Mailbox, MessageGone, MessageUnreadable, StoreMode


@dataclass(frozen=True, slots=True)
class Entry:
    """One message of the snapshot."""

    uid: int
    size: int  # octets as RETR sends them (see asimap.pop3.transfer)
    unique_id: str


@dataclass(eq=False, slots=True)
class Maildrop:
    mailbox: Mailbox
    entries: tuple[Entry, ...]
    deleted: set[int] = field(default_factory=set)  # message numbers

    @classmethod
    async def snapshot(cls, mailbox: Mailbox) -> Maildrop:
        """Number the messages present now, ascending by UID."""
        entries: list[Entry] = []
        for state in await mailbox.states():
            try:
                message = await mailbox.message(state.uid)
            except MessageGone:
                continue
            except MessageUnreadable:
                # Logged by the store; the maildrop opens without it and
                # it appears in a later session once it can be read.
                continue
            unique_id = f"{mailbox.uidvalidity}.{state.uid}"
            entries.append(Entry(state.uid, wire_size(message.raw), unique_id))
        return cls(mailbox, tuple(entries))

    def entry(self, msg: int) -> Entry | None:
        """The live (not deleted) message numbered ``msg``, or None."""
        if msg < 1 or msg > len(self.entries) or msg in self.deleted:
            return None
        return self.entries[msg - 1]

    def live(self) -> list[tuple[int, Entry]]:
        """(number, entry) of every message not marked deleted."""
        return [
            (number, entry)
            for number, entry in enumerate(self.entries, start=1)
            if number not in self.deleted
        ]

    def totals(self) -> tuple[int, int]:
        """STAT's answer: count and total size of the live messages."""
        live = self.live()
        return len(live), sum(entry.size for _number, entry in live)

    async def commit(self) -> tuple[int, ...]:
        """UPDATE state: flag and expunge exactly the marked messages.

        Returns the UIDs the store expunged (messages already gone are
        skipped by the store, RFC 3501 semantics for STORE/UID EXPUNGE).
        """
        uids = sorted(self.entries[number - 1].uid for number in self.deleted)
        if not uids:
            return ()
        await self.mailbox.store(uids, StoreMode.ADD, ["\\Deleted"])
        return await self.mailbox.expunge(uids)
