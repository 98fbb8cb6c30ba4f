"""The in-memory store: the reference implementation of the store contract.

Why it exists: the session can be tested without disks, and the MH and
database stores are checked against the same conformance suite
(``tests/store_conformance.py``) that this store defines by example.  So it
keeps *real* semantics -- UIDs never reused, MODSEQs that grow with every
change, tombstones for expunged UIDs, RFC 3501 hierarchy rules -- only the
persistence is missing.

Concurrency: every operation runs to completion without awaiting, so on one
event loop each is atomic; waiters of :meth:`MemoryMailbox.wait_for_change`
are woken through a fresh :class:`asyncio.Event` per change generation
(set once, then replaced), which needs no lock and is trivially
cancellation-safe.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from asimap.message.model import Message
from asimap.store.base import (
    Changes,
    Mailbox,
    MailboxEntry,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotFound,
    MailboxStatus,
    MessageGone,
    MessageInfo,
    MessageState,
    OperationNotPermitted,
    QuotaLimits,
    QuotaUsage,
    Store,
    StoreMode,
    StoreResult,
    apply_metadata_changes,
    apply_store_mode,
    check_quota,
)
from asimap.store.feed import ChangeFeed, FeedKind
from asimap.store.names import (
    INBOX,
    ancestors_of,
    check_name,
    is_inferior,
    parent_of,
)
from asimap.store.objectid import new_mailboxid

#: System flags by their case-folded spelling (RFC 3501 section 2.3.2: flag
#: names are case-insensitive), mapped to the canonical spelling we store.
_SYSTEM_FLAGS = {
    flag.lower(): flag
    for flag in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
}

#: \Recent is session state, never stored (RFC 3501 section 2.3.2).
_RECENT = "\\recent"

#: Special-use attributes of RFC 6154 section 2, by case-folded spelling.
SPECIAL_USE = {
    attr.lower(): attr
    for attr in (
        "\\All",
        "\\Archive",
        "\\Drafts",
        "\\Flagged",
        "\\Junk",
        "\\Sent",
        "\\Trash",
    )
}

#: Folders every new account gets (design.md section 2, asimap 2.x compatible).
NEW_ACCOUNT_FOLDERS: tuple[tuple[str, str], ...] = (
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
    ("Sent Messages", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Deleted Messages", "\\Trash"),
)


def normalise_flags(flags: Iterable[str], spelling: dict[str, str]) -> frozenset[str]:
    """Canonicalise flags as given by a client.

    System flags get their canonical case, ``\\Recent`` is dropped, keywords
    compare case-insensitively (RFC 3501 section 2.3.2) and take the
    spelling the mailbox first saw (``spelling``, updated in place), so the
    FLAGS response never lists one keyword twice.
    """
    result: set[str] = set()
    for flag in flags:
        folded = flag.lower()
        if folded == _RECENT:
            continue
        canonical = _SYSTEM_FLAGS.get(folded)
        if canonical is None:
            canonical = spelling.setdefault(folded, flag)
        result.add(canonical)
    return frozenset(result)


def _truncate(moment: datetime | None) -> datetime:
    """INTERNALDATE with second resolution (what IMAP can express), aware.

    A naive datetime is taken as UTC rather than refused: it can only come
    from our own code, and UTC is what every caller means by it.
    """
    if moment is None:
        moment = datetime.now(UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.replace(microsecond=0)


@dataclass(slots=True)
class _Entry:
    """One stored message: immutable facts plus its mutable state."""

    info: MessageInfo
    state: MessageState
    message: Message


@dataclass(slots=True)
class _AccountUsage:
    """What every mailbox of one account holds, kept up to date by each
    add and remove (so a quota check never walks the mailboxes), and the
    account's limits (RFC 9208)."""

    messages: int = 0
    octets: int = 0
    limits: QuotaLimits = field(default_factory=QuotaLimits)

    def usage(self) -> QuotaUsage:
        return QuotaUsage(storage=self.octets, messages=self.messages)

    def check(self, messages: int, octets: int) -> None:
        check_quota(self.limits, self.usage(), messages, octets)


#: UIDVALIDITY source shared by every memory store of the process, seeded
#: with the clock, so a mailbox deleted and created again (or a store
#: rebuilt) never repeats a value (RFC 3501 section 2.3.1.1).
_uidvalidity_counter = itertools.count(int(time.time()))


class MemoryMailbox(Mailbox):
    """One mailbox held in dictionaries."""

    #: Expunge tombstones kept for :meth:`changes_since`; older ones are
    #: forgotten and reported through ``expunged_complete=False``.
    max_tombstones: int = 100_000

    def __init__(
        self,
        name: str,
        special_use: frozenset[str] = frozenset(),
        account: _AccountUsage | None = None,
    ) -> None:
        self.name = name
        #: Shared by every mailbox of the store (quota usage and limits).
        self.account = account if account is not None else _AccountUsage()
        self.uidvalidity = next(_uidvalidity_counter)
        #: RFC 8474 section 4: travels with the object on RENAME.
        self.mailboxid = new_mailboxid()
        self.special_use = special_use
        self.deleted = False
        self._uidnext = 1
        self._highestmodseq = 1
        # Insertion order is UID order: UIDs only grow.
        self._entries: dict[int, _Entry] = {}
        self._tombstones: deque[tuple[int, int]] = deque()  # (modseq, uid)
        self._forgotten_modseq = 0
        self._unclaimed_recent: set[int] = set()
        self._spelling: dict[str, str] = {}
        self._changed = asyncio.Event()
        #: RFC 5464 entries; they move with the object on RENAME and go
        #: with it on DELETE.
        self.metadata: dict[str, bytes] = {}
        #: The owning store's change feed (set by :class:`MemoryStore`).
        self.feed: ChangeFeed | None = None

    # -- reading -----------------------------------------------------------

    async def status(self) -> MailboxStatus:
        states = [entry.state for entry in self._entries.values()]
        return MailboxStatus(
            uidvalidity=self.uidvalidity,
            uidnext=self._uidnext,
            messages=len(states),
            unseen=sum(1 for s in states if "\\Seen" not in s.flags),
            recent=len(self._unclaimed_recent),
            highestmodseq=self._highestmodseq,
            size=sum(entry.info.size for entry in self._entries.values()),
            deleted=sum(1 for s in states if "\\Deleted" in s.flags),
            deleted_storage=sum(
                entry.info.size
                for entry in self._entries.values()
                if "\\Deleted" in entry.state.flags
            ),
            mailboxid=self.mailboxid,
        )

    async def states(self) -> tuple[MessageState, ...]:
        return tuple(entry.state for entry in self._entries.values())

    async def changes_since(self, modseq: int) -> Changes:
        changed = tuple(
            entry.state
            for entry in self._entries.values()
            if entry.state.modseq > modseq
        )
        expunged: list[int] = []
        for expunge_modseq, uid in reversed(self._tombstones):
            if expunge_modseq <= modseq:
                break
            expunged.append(uid)
        return Changes(
            highestmodseq=self._highestmodseq,
            changed=changed,
            expunged=tuple(sorted(expunged)),
            expunged_complete=modseq >= self._forgotten_modseq,
        )

    async def wait_for_change(self, modseq: int) -> None:
        while self._highestmodseq <= modseq:
            await self._changed.wait()

    async def claim_recent(self) -> frozenset[int]:
        claimed = frozenset(self._unclaimed_recent)
        self._unclaimed_recent.clear()
        return claimed

    async def peek_recent(self) -> frozenset[int]:
        return frozenset(self._unclaimed_recent)

    async def keywords(self) -> frozenset[str]:
        return frozenset(
            flag
            for entry in self._entries.values()
            for flag in entry.state.flags
            if flag.lower() not in _SYSTEM_FLAGS
        )

    async def info(self, uid: int) -> MessageInfo:
        return self._entry(uid).info

    async def message(self, uid: int) -> Message:
        return self._entry(uid).message

    def _entry(self, uid: int) -> _Entry:
        try:
            return self._entries[uid]
        except KeyError:
            raise MessageGone(f"Message UID {uid} no longer exists") from None

    # -- changing ----------------------------------------------------------

    def _bump(self) -> int:
        """Advance HIGHESTMODSEQ and wake every waiter; returns the new one."""
        self._highestmodseq += 1
        self._changed.set()
        self._changed = asyncio.Event()
        if self.feed is not None:
            self.feed.publish(FeedKind.MESSAGES, self.name)
        return self._highestmodseq

    def _require_alive(self) -> None:
        if self.deleted:
            raise MailboxNotFound(f"Mailbox {self.name} was deleted")

    def add(
        self,
        data: bytes,
        flags: Iterable[str],
        internaldate: datetime | None,
        *,
        check: bool = True,
    ) -> int:
        """Synchronous append, shared by :meth:`append` and RENAME INBOX.

        ``check=False`` skips the quota check, for messages that move
        within the account (usage does not grow).
        """
        self._require_alive()
        raw = bytes(data)
        if check:
            self.account.check(1, len(raw))
        uid = self._uidnext
        self._uidnext += 1
        modseq = self._bump()
        self._entries[uid] = _Entry(
            info=MessageInfo(
                uid=uid,
                internaldate=_truncate(internaldate),
                size=len(raw),
                savedate=_truncate(None),  # RFC 8514 section 3: now
            ),
            state=MessageState(
                uid=uid, flags=normalise_flags(flags, self._spelling), modseq=modseq
            ),
            message=Message(raw),
        )
        self.account.messages += 1
        self.account.octets += len(raw)
        self._unclaimed_recent.add(uid)
        return uid

    async def append(
        self,
        data: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> int:
        return self.add(data, flags, internaldate)

    async def store(
        self,
        uids: Sequence[int],
        mode: StoreMode,
        flags: Iterable[str],
        unchanged_since: int | None = None,
    ) -> StoreResult:
        given = normalise_flags(flags, self._spelling)
        to_change: dict[int, frozenset[str]] = {}
        conflicts: list[int] = []
        for uid in sorted(set(uids)):
            entry = self._entries.get(uid)
            if entry is None:
                continue  # expunged meanwhile: skipped silently
            if unchanged_since is not None and entry.state.modseq > unchanged_since:
                # RFC 7162 section 3.1.3: refused, reported as MODIFIED.
                conflicts.append(uid)
                continue
            new_flags = apply_store_mode(entry.state.flags, mode, given)
            if new_flags != entry.state.flags:
                to_change[uid] = new_flags
        updated: list[MessageState] = []
        if to_change:
            # One MODSEQ for the whole command (RFC 7162 allows it).
            modseq = self._bump()
            for uid, new_flags in to_change.items():
                entry = self._entries[uid]
                entry.state = replace(entry.state, flags=new_flags, modseq=modseq)
                updated.append(entry.state)
        return StoreResult(updated=tuple(updated), conflicts=tuple(conflicts))

    async def expunge(self, uids: Sequence[int] | None = None) -> tuple[int, ...]:
        candidates = self._entries.keys() if uids is None else set(uids)
        doomed = [
            uid
            for uid in candidates
            if uid in self._entries and "\\Deleted" in self._entries[uid].state.flags
        ]
        return self.remove(doomed)

    def remove(self, uids: Iterable[int]) -> tuple[int, ...]:
        """Expunge exactly ``uids`` (those still present), whatever their flags.

        Leaves a tombstone per UID so :meth:`changes_since` can report it.
        """
        gone = sorted({uid for uid in uids if uid in self._entries})
        if not gone:
            return ()
        modseq = self._bump()
        for uid in gone:
            entry = self._entries.pop(uid)
            self.account.messages -= 1
            self.account.octets -= entry.info.size
            self._unclaimed_recent.discard(uid)
            self._tombstones.append((modseq, uid))
        while len(self._tombstones) > self.max_tombstones:
            forgotten, _ = self._tombstones.popleft()
            self._forgotten_modseq = max(self._forgotten_modseq, forgotten)
        return tuple(gone)

    async def copy_to(
        self, uids: Sequence[int], destination: Mailbox
    ) -> tuple[tuple[int, int], ...]:
        return await self._transfer(uids, destination, move=False)

    async def move_to(
        self, uids: Sequence[int], destination: Mailbox
    ) -> tuple[tuple[int, int], ...]:
        # RFC 6851 section 3.3: copy, then expunge exactly the sources,
        # whether or not they carry \Deleted.
        pairs = await self._transfer(uids, destination, move=True)
        self.remove(source for source, _ in pairs)
        return pairs

    async def _transfer(
        self, uids: Sequence[int], destination: Mailbox, move: bool
    ) -> tuple[tuple[int, int], ...]:
        pairs: list[tuple[int, int]] = []
        # Snapshot first: copying into this same mailbox must not loop.
        sources = [
            self._entries[uid] for uid in sorted(set(uids)) if uid in self._entries
        ]
        local = (
            isinstance(destination, MemoryMailbox)
            and destination.account is self.account
        )
        if local and not move:
            # All or nothing: the whole copy is checked before the first
            # message is added (RFC 9208 section 4.4.1's OVERQUOTA).
            self.account.check(len(sources), sum(e.info.size for e in sources))
        for entry in sources:
            if local:
                assert isinstance(destination, MemoryMailbox)
                new_uid = destination.add(
                    entry.message.raw,
                    entry.state.flags,
                    entry.info.internaldate,
                    check=False,
                )
            else:
                new_uid = await destination.append(
                    entry.message.raw, entry.state.flags, entry.info.internaldate
                )
            pairs.append((entry.info.uid, new_uid))
        return tuple(pairs)

    def take_all(self) -> list[_Entry]:
        """Remove and return every message (RENAME INBOX, RFC 3501 6.3.5)."""
        entries = list(self._entries.values())
        self.remove(list(self._entries))
        return entries


class MemoryStore(Store):
    """All mailboxes of one account, in a dictionary.

    Names that exist only as \\Noselect placeholders (a deleted mailbox that
    still has inferiors, RFC 3501 section 6.3.4) are kept in ``_noselect``.
    """

    def __init__(self) -> None:
        self._account = _AccountUsage()
        self._mailboxes: dict[str, MemoryMailbox] = {}
        self._mailboxes[INBOX] = self._new_mailbox(INBOX)
        self._noselect: set[str] = set()
        self._subscribed: set[str] = set()
        self._server_metadata: dict[str, bytes] = {}

    @classmethod
    def for_new_account(cls) -> MemoryStore:
        """A store with INBOX and the special-use folders of design.md section 2."""
        store = cls()
        for name, use in NEW_ACCOUNT_FOLDERS:
            store._create(name, frozenset({use}))
        return store

    # -- helpers -----------------------------------------------------------

    def _new_mailbox(
        self, name: str, special_use: frozenset[str] = frozenset()
    ) -> MemoryMailbox:
        """A mailbox object wired to this store's change feed."""
        mailbox = MemoryMailbox(name, special_use, self._account)
        mailbox.feed = self.feed
        return mailbox

    def _all_names(self) -> set[str]:
        """Selectable names, \\Noselect placeholders and implied parents."""
        names = set(self._mailboxes) | self._noselect
        for name in list(names):
            names.update(ancestors_of(name))
        return names

    def _has_children(self, name: str, names: Iterable[str]) -> bool:
        return any(is_inferior(other, name) for other in names)

    def _create_parents(self, name: str) -> None:
        """Make missing superiors real, selectable mailboxes (like Dovecot).

        A superior kept as a \\Noselect placeholder stays one.
        """
        explicit = set(self._mailboxes) | self._noselect
        for parent in ancestors_of(name):
            if parent not in explicit:
                self._mailboxes[parent] = self._new_mailbox(parent)
                self.feed.publish(FeedKind.CREATED, parent)

    def _create(self, name: str, special_use: frozenset[str]) -> None:
        """Create ``name`` and its missing parents (RFC 3501 6.3.3).

        All or nothing: every mailbox object is made before any is added,
        so a failure half-way (memory) leaves no parent behind.
        """
        explicit = set(self._mailboxes) | self._noselect
        made = {
            parent: self._new_mailbox(parent)
            for parent in ancestors_of(name)
            if parent not in explicit
        }
        made[name] = self._new_mailbox(name, special_use)
        self._noselect.discard(name)
        self._mailboxes.update(made)
        for created in made:
            self.feed.publish(FeedKind.CREATED, created)

    # -- the Store interface -------------------------------------------------

    async def list_mailboxes(self) -> tuple[MailboxEntry, ...]:
        names = self._all_names()
        # Every name's ancestors are in ``names``, so a name has children
        # exactly when it is someone's parent: one pass, not a pair scan.
        parents = {parent_of(name) for name in names}
        entries: dict[str, MailboxEntry] = {}
        for name in names:
            attributes: set[str] = set()
            mailbox = self._mailboxes.get(name)
            if mailbox is None:
                attributes.add("\\Noselect")
            else:
                attributes.update(mailbox.special_use)
            # RFC 3348 / RFC 5258 section 4: child information.
            has_children = name in parents
            attributes.add("\\HasChildren" if has_children else "\\HasNoChildren")
            entries[name] = MailboxEntry(
                name=name,
                attributes=frozenset(attributes),
                subscribed=name in self._subscribed,
            )
        for name in self._subscribed - names:
            # Subscriptions outlive their mailbox (RFC 3501 section 6.3.6),
            # so LSUB can still show them (RFC 5258 section 3.4).
            entries[name] = MailboxEntry(
                name=name,
                attributes=frozenset({"\\NonExistent", "\\Noselect"}),
                subscribed=True,
            )
        return tuple(entries[name] for name in sorted(entries))

    async def create(self, name: str, special_use: Iterable[str] = ()) -> None:
        name = check_name(name)
        uses: set[str] = set()
        for attr in special_use:
            canonical = SPECIAL_USE.get(attr.lower())
            if canonical is None:
                # RFC 6154 section 3: answered NO [USEATTR].
                raise OperationNotPermitted(f"Unsupported special-use {attr}")
            uses.add(canonical)
        if name in self._mailboxes:
            raise MailboxExists(f"Mailbox {name} already exists")
        self._create(name, frozenset(uses))

    async def delete(self, name: str) -> None:
        name = check_name(name)
        if name == INBOX:
            raise OperationNotPermitted("INBOX cannot be deleted")
        names = self._all_names()
        if name not in names:
            raise MailboxNotFound(f"Mailbox {name} does not exist")
        has_children = self._has_children(name, names)
        mailbox = self._mailboxes.pop(name, None)
        if mailbox is None:
            # Already \Noselect: only a leaf may go (RFC 3501 section 6.3.4).
            if has_children:
                raise MailboxHasChildren(f"Mailbox {name} has inferior mailboxes")
            self._noselect.discard(name)
            self.feed.publish(FeedKind.DELETED, name)
            return
        mailbox.take_all()
        mailbox.deleted = True
        if has_children:
            # Its messages go, the name stays as \Noselect (RFC 3501 6.3.4).
            self._noselect.add(name)
        self.feed.publish(FeedKind.DELETED, name)

    async def rename(self, old: str, new: str) -> None:
        old, new = check_name(old), check_name(new)
        names = self._all_names()
        if old not in names:
            raise MailboxNotFound(f"Mailbox {old} does not exist")
        if new in names:
            raise MailboxExists(f"Mailbox {new} already exists")
        if old == INBOX:
            # RFC 3501 section 6.3.5: move INBOX's messages into a new
            # mailbox, leave INBOX empty, inferiors of INBOX stay put.
            # RFC 5465 section 5.4: a renamed INBOX is a new mailbox for
            # NOTIFY (``_create`` publishes it), INBOX itself stays.
            self._create(new, frozenset())
            target = self._mailboxes[new]
            # RFC 8474 section 4.2: the messages' new home keeps INBOX's
            # MAILBOXID; the INBOX left behind, empty, is a new mailbox.
            inbox = self._mailboxes[INBOX]
            target.mailboxid, inbox.mailboxid = inbox.mailboxid, new_mailboxid()
            for entry in self._mailboxes[INBOX].take_all():
                target.add(
                    entry.message.raw,
                    entry.state.flags,
                    entry.info.internaldate,
                    check=False,  # moves within the account
                )
            return
        if is_inferior(new, old):
            raise OperationNotPermitted("Cannot rename a mailbox under itself")
        moved = [name for name in names if name == old or is_inferior(name, old)]
        renames = {name: new + name[len(old) :] for name in moved}
        for name, target_name in sorted(renames.items()):
            mailbox = self._mailboxes.pop(name, None)
            if mailbox is not None:
                mailbox.name = target_name
                self._mailboxes[target_name] = mailbox
            elif name in self._noselect:
                self._noselect.discard(name)
                self._noselect.add(target_name)
        self.feed.publish(FeedKind.RENAMED, new, old_name=old)
        # Parents of the new name that do not exist yet become real mailboxes.
        self._create_parents(new)

    async def subscribe(self, name: str) -> None:
        # Subscribing a name that does not exist is allowed (RFC 3501
        # section 6.3.6 lets servers accept it; Dovecot does).
        name = check_name(name)
        if name not in self._subscribed:
            self._subscribed.add(name)
            self.feed.publish(FeedKind.SUBSCRIPTION, name)

    async def unsubscribe(self, name: str) -> None:
        name = check_name(name)
        if name not in self._subscribed:
            raise MailboxNotFound(f"Mailbox {name} is not subscribed")
        self._subscribed.discard(name)
        self.feed.publish(FeedKind.SUBSCRIPTION, name)

    def set_quota_limits(self, limits: QuotaLimits) -> None:
        super().set_quota_limits(limits)
        self._account.limits = limits

    async def quota_usage(self) -> QuotaUsage:
        return self._account.usage()

    async def mailbox(self, name: str) -> MemoryMailbox:
        name = check_name(name)
        try:
            return self._mailboxes[name]
        except KeyError:
            raise MailboxNotFound(f"Mailbox {name} does not exist") from None

    async def get_metadata(self, mailbox: str) -> dict[str, bytes]:
        if not mailbox:
            return dict(self._server_metadata)
        return dict((await self.mailbox(mailbox)).metadata)

    async def set_metadata(
        self, mailbox: str, changes: Mapping[str, bytes | None]
    ) -> None:
        if not mailbox:
            self._server_metadata = apply_metadata_changes(
                self._server_metadata, changes
            )
            self.feed.publish(FeedKind.METADATA, "", entries=tuple(changes))
            return
        box = await self.mailbox(mailbox)
        box.metadata = apply_metadata_changes(box.metadata, changes)
        self.feed.publish(FeedKind.METADATA, box.name, entries=tuple(changes))
