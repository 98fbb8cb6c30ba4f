"""The store interface every mail store implements (memory, MH, Maildir, DB).

The store *reports state*; it never decides what a client is told.  Each
mailbox keeps, per message, a UID and a MODSEQ, and a mailbox-wide
HIGHESTMODSEQ that grows with every change (append, flag change, expunge).
A session remembers the HIGHESTMODSEQ it last saw and asks
:meth:`Mailbox.changes_since`; from the answer it builds EXISTS, EXPUNGE,
FETCH and VANISHED responses at the moments RFC 3501 section 7.4.1 and
RFC 7162 allow.  :meth:`Mailbox.wait_for_change` lets IDLE sleep until the
mailbox moves, whoever moved it (another connection, a delivery, an MH tool).

Designed so that very different backends fit:

* memory: dictionaries, an :class:`asyncio.Condition` for waiting;
* MH: files and ``.mh_sequences`` on disk, UIDs/MODSEQs in SQLite, file
  notification feeding ``wait_for_change``;
* a shared database for many server nodes: rows with modseq columns and
  LISTEN/NOTIFY (or polling) behind ``wait_for_change``.

Mailbox names are ``str`` in canonical form: UTF-8, ``/`` as the hierarchy
delimiter, ``INBOX`` always spelled ``INBOX``.  Names are validated by
:func:`asimap.store.names.check_name` before they reach a store.

Flags are ``str``: system flags with their backslash (``\\Seen``, ``\\Answered``,
``\\Flagged``, ``\\Deleted``, ``\\Draft``), keywords as atoms.  ``\\Recent`` is
not a stored flag: see :meth:`Mailbox.claim_recent`.
"""

from __future__ import annotations

import abc
import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from asimap.imap.responses import Encoded
from asimap.message.model import Message
from asimap.message.wire import encode_summary_value
from asimap.store.feed import ChangeFeed
from asimap.store.objectid import emailid_of, threadid_of

log = logging.getLogger(__name__)

#: The system flags a store keeps (RFC 3501 section 2.3.2), minus \Recent.
SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})


class StoreError(Exception):
    """Base of every error a store raises on purpose.

    The message is safe to show to the client (no paths, ASCII, one line).
    """


class MailboxNotFound(StoreError):
    """The mailbox does not exist (NO [NONEXISTENT] or NO [TRYCREATE])."""


class MailboxExists(StoreError):
    """CREATE or RENAME onto an existing name (NO [ALREADYEXISTS])."""


class InvalidMailboxName(StoreError):
    """A name the store refuses (escapes the root, bad characters...)."""


class MailboxHasChildren(StoreError):
    """DELETE of a \\Noselect mailbox that has inferiors (RFC 3501 6.3.4)."""


class OperationNotPermitted(StoreError):
    """For example DELETE INBOX (NO [CANNOT])."""


class OverQuota(StoreError):
    """The operation would exceed a quota (NO [OVERQUOTA], RFC 9208)."""


class StorageDenied(StoreError):
    """The file system refused a write (EACCES, EPERM, EROFS: a read-only
    folder or file system): NO [NOPERM] (RFC 5530 section 3)."""


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """The account's limits (RFC 9208 section 5): None = no limit.

    ``storage`` is in octets here; RFC 9208 section 5.1 counts STORAGE in
    units of 1024 octets, a conversion the session makes on the wire.
    """

    storage: int | None = None
    messages: int | None = None

    @property
    def limited(self) -> bool:
        """Whether any resource is limited (else there is no quota root)."""
        return self.storage is not None or self.messages is not None


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """What the account uses now: every message of every mailbox."""

    storage: int  # octets
    messages: int


#: No limits at all: what a store has until it is told otherwise.
NO_QUOTA = QuotaLimits()


def check_quota(
    limits: QuotaLimits, usage: QuotaUsage, messages: int, octets: int
) -> None:
    """Raise :class:`OverQuota` if adding ``messages`` totalling ``octets``
    would take the account past a limit.

    Shared by every store so that the rule is the same everywhere: the
    *result* must stay within the limit (RFC 9051 section 7.1, OVERQUOTA:
    "the user would be over quota after the operation"); an account already
    over (limits lowered in the configuration) can still remove mail.
    """
    if messages <= 0 and octets <= 0:
        return
    if limits.messages is not None and usage.messages + messages > limits.messages:
        raise OverQuota("Message count quota exceeded")
    if limits.storage is not None and usage.storage + octets > limits.storage:
        raise OverQuota("Storage quota exceeded")


class MessageGone(StoreError):
    """The UID was expunged meanwhile (FETCH of it answers NO/omits it)."""


class MessageUnreadable(StoreError):
    """The message exists but its content cannot be read now (its file is
    unreadable to the server: EACCES, EIO...).  The session answers NO for
    that message and goes on (RFC 5530 UNAVAILABLE)."""

    def __init__(self, uid: int, reason: str) -> None:
        super().__init__(f"Message UID {uid} cannot be read: {reason}")
        self.uid = uid
        self.reason = reason


class NotSupported(StoreError):
    """This store does not offer the operation (NO [CANNOT])."""


class MetadataTooLarge(StoreError):
    """A metadata value exceeds :data:`METADATA_MAX_VALUE` (RFC 5464
    section 4.3: NO [METADATA MAXSIZE n])."""


class MetadataTooMany(StoreError):
    """A mailbox would hold more than :data:`METADATA_MAX_ENTRIES` entries
    (RFC 5464 section 4.3: NO [METADATA TOOMANY])."""


#: Largest metadata value in octets (RFC 5464 lets a server choose; 64 KiB
#: is also the largest non-APPEND literal the reader accepts).
METADATA_MAX_VALUE = 64 * 1024

#: Most metadata entries per mailbox, and for the server (mailbox "").
METADATA_MAX_ENTRIES = 100


def apply_metadata_changes(
    current: Mapping[str, bytes], changes: Mapping[str, bytes | None]
) -> dict[str, bytes]:
    """The entries after ``changes`` (None removes), within the limits.

    Shared by every store so that the limits are the same everywhere;
    raises before anything is changed, so SETMETADATA is all or nothing.
    """
    result = dict(current)
    for entry, value in changes.items():
        if value is None:
            result.pop(entry, None)
            continue
        if len(value) > METADATA_MAX_VALUE:
            raise MetadataTooLarge(
                f"Metadata values are limited to {METADATA_MAX_VALUE} octets"
            )
        result[entry] = bytes(value)
    if len(result) > METADATA_MAX_ENTRIES and len(result) > len(current):
        raise MetadataTooMany(f"At most {METADATA_MAX_ENTRIES} metadata entries")
    return result


class StoreMode(enum.Enum):
    """How :meth:`Mailbox.store` changes flags."""

    REPLACE = "replace"
    ADD = "add"
    REMOVE = "remove"


def apply_store_mode(
    current: frozenset[str], mode: StoreMode, given: frozenset[str]
) -> frozenset[str]:
    """The flags after a STORE in ``mode`` (RFC 3501 section 6.4.6), for
    every store."""
    if mode is StoreMode.REPLACE:
        return given
    if mode is StoreMode.ADD:
        return current | given
    return current - given


@dataclass(frozen=True, slots=True)
class MessageState:
    """The mutable state of one message: its flags and their MODSEQ."""

    uid: int
    flags: frozenset[str]
    modseq: int


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """The immutable facts of one message."""

    uid: int
    internaldate: datetime  # timezone-aware
    size: int  # exactly len(raw bytes), what RFC822.SIZE reports
    #: When the message was put into this mailbox (RFC 8514 section 3:
    #: APPEND, COPY, MOVE, delivery); None where the store does not know
    #: (MH rows older than the column).
    savedate: datetime | None = None


#: Header fields a :class:`MessageSummary` keeps for header SEARCH and SORT
#: (lower-cased; the common ones clients search and sort on).
SUMMARY_HEADERS = (
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "reply-to",
    "sender",
)


#: Version of how :func:`summarize` derives a summary from a message.  A
#: store that caches summaries drops those made by another version, so a
#: fixed derivation (say, of ENVELOPE groups) is never answered from a
#: cache filled by the old code.  Bump it whenever the output changes
#: (3: a NUL in a header field is sent as U+FFFD; 4: hostile messages are
#: interpreted only up to :mod:`asimap.message.limits`; 5: words without
#: "@" in an address field are a display name, not a glued local part;
#: 6: the MH store caches header-only summaries, with an empty
#: BODYSTRUCTURE, which older code would serve as it is).
SUMMARY_VERSION = 6


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """What FETCH ENVELOPE/BODY/BODYSTRUCTURE/RFC822.SIZE/INTERNALDATE and
    header SEARCH need, without the message itself.

    A store may cache summaries (the MH store keeps them in its database),
    so that a 100,000-message folder is parsed once, ever.  ``envelope``,
    ``bodystructure`` and ``body`` are wire bytes encoded with
    ``utf8=False`` (valid in both modes); ``headers`` maps each field of
    :data:`SUMMARY_HEADERS` present in the message to its decoded values.
    ``emailid`` and ``threadid`` are the RFC 8474 identifiers (derived from
    the content, see :mod:`asimap.store.objectid`, hence cacheable with the
    rest); ``savedate`` is :attr:`MessageInfo.savedate`.
    """

    uid: int
    size: int
    internaldate: datetime
    envelope: Encoded
    bodystructure: Encoded
    body: Encoded
    headers: Mapping[str, tuple[str, ...]]
    emailid: str = ""
    threadid: str = ""
    savedate: datetime | None = None


def summarize(info: MessageInfo, message: Message) -> MessageSummary:
    """Build a summary from a parsed message (what a cache stores).

    The MH store calls this once per message of a folder on its first
    header SEARCH/SORT/THREAD, so it is a hot path: the values are encoded
    with :func:`encode_summary_value` (the same bytes as ``encode_value``
    with ``utf8=False``, cheaper on these trees).
    """
    headers = {
        name: tuple(values)
        for name in SUMMARY_HEADERS
        if (values := message.header_values(name))
    }
    return MessageSummary(
        uid=info.uid,
        size=info.size,
        internaldate=info.internaldate,
        envelope=Encoded(encode_summary_value(message.envelope())),
        bodystructure=Encoded(encode_summary_value(message.bodystructure(True))),
        body=Encoded(encode_summary_value(message.bodystructure(False))),
        headers=headers,
        emailid=(emailid := emailid_of(message.raw)),
        threadid=threadid_of(message.header_values, emailid),
        savedate=info.savedate,
    )


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """What STATUS and SELECT report (RFC 3501 section 6.3.10, RFC 7162)."""

    uidvalidity: int
    uidnext: int
    messages: int
    unseen: int  # messages without \Seen
    recent: int
    highestmodseq: int
    size: int  # total octets, RFC 8438 STATUS=SIZE
    deleted: int  # messages with \Deleted, RFC 9051 STATUS DELETED
    #: Octets of the messages with \Deleted (RFC 9208 section 4.2.2
    #: DELETED-STORAGE, reported in units of 1024 octets by the session).
    deleted_storage: int = 0
    #: RFC 8474 section 4 MAILBOXID: kept by RENAME, new after DELETE and
    #: CREATE, stable across restarts (see :mod:`asimap.store.objectid`).
    mailboxid: str = ""


@dataclass(frozen=True, slots=True)
class Changes:
    """Everything that happened after some MODSEQ.

    ``changed`` holds the current state of every message whose MODSEQ is
    greater than the one asked about, ascending by UID -- new messages and
    messages whose flags changed alike (the session tells them apart by
    whether it already knows the UID).  ``expunged`` holds, ascending, the
    UIDs expunged after that MODSEQ.  A store may forget expunges older
    than some point; then ``expunged_complete`` is False and a QRESYNC
    client must be told about expunges by comparing UID lists instead.
    """

    highestmodseq: int
    changed: tuple[MessageState, ...]
    expunged: tuple[int, ...]
    expunged_complete: bool = True


@dataclass(frozen=True, slots=True)
class StoreResult:
    """Result of :meth:`Mailbox.store`.

    ``updated`` holds the new state of every message whose flags actually
    changed (a no-op store does not bump MODSEQ).  ``conflicts`` holds the
    UIDs refused because their MODSEQ exceeded UNCHANGEDSINCE (RFC 7162
    section 3.1.3, the MODIFIED response code).
    """

    updated: tuple[MessageState, ...]
    conflicts: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message of :meth:`Mailbox.append_all`: its bytes (kept byte for
    byte), flags and INTERNALDATE (None: now)."""

    data: bytes
    flags: frozenset[str] = frozenset()
    internaldate: datetime | None = None


class Opening(NamedTuple):
    """A mailbox as SELECT or EXAMINE finds it (:meth:`Mailbox.opening`)."""

    status: MailboxStatus
    states: tuple[MessageState, ...]
    keywords: frozenset[str]
    recent: frozenset[int]


@dataclass(frozen=True, slots=True)
class MailboxEntry:
    """One line of LIST: a name, its attributes, whether subscribed.

    ``attributes`` are IMAP attribute names (``\\Noselect``,
    ``\\HasChildren``, ``\\HasNoChildren``, ``\\Sent``, ``\\Trash``...).
    A name that exists only as a parent of others has ``\\Noselect`` (or
    ``\\NonExistent`` with LIST-EXTENDED).
    """

    name: str
    attributes: frozenset[str]
    subscribed: bool


class Mailbox(abc.ABC):
    """One open mailbox.  Methods are coroutines; blocking I/O is the
    store's business to move off the event loop."""

    name: str
    uidvalidity: int

    @abc.abstractmethod
    async def status(self) -> MailboxStatus:
        """Current counts and identifiers."""

    @abc.abstractmethod
    async def states(self) -> tuple[MessageState, ...]:
        """The state of every message, ascending by UID (SELECT, resync)."""

    @abc.abstractmethod
    async def changes_since(self, modseq: int) -> Changes:
        """Every change after ``modseq`` (see :class:`Changes`)."""

    @abc.abstractmethod
    async def wait_for_change(self, modseq: int) -> None:
        """Return once HIGHESTMODSEQ exceeds ``modseq`` (at once if it does).

        Callers bound the wait with :func:`asyncio.timeout`; cancellation
        must be safe.
        """

    @abc.abstractmethod
    async def claim_recent(self) -> frozenset[int]:
        """UIDs that are \\Recent for the caller (RFC 3501 section 2.3.2).

        The first session to claim a message gets it as recent; later claims
        do not.  Read-only (EXAMINE) sessions must not call this: they
        use :meth:`peek_recent`.
        """

    @abc.abstractmethod
    async def peek_recent(self) -> frozenset[int]:
        """UIDs no session has claimed as \\Recent yet, left unclaimed.

        EXAMINE answers like SELECT but must not clear \\Recent (RFC 3501
        section 6.3.2), so a read-only session reads the set without
        taking it: the next read-write SELECT still gets these messages.
        """

    @abc.abstractmethod
    async def keywords(self) -> frozenset[str]:
        """Keywords in use in this mailbox (for the FLAGS response)."""

    async def opening(self, *, claim: bool) -> Opening:
        """What SELECT (``claim``: takes \\Recent) or EXAMINE needs, in
        this order: :meth:`status`, :meth:`states`, :meth:`keywords` and
        :meth:`claim_recent` or :meth:`peek_recent`.  A store that can
        answer them together (one job of its thread) overrides this."""
        status = await self.status()
        states = await self.states()
        keywords = await self.keywords()
        recent = await (self.claim_recent() if claim else self.peek_recent())
        return Opening(status, states, keywords, recent)

    @abc.abstractmethod
    async def info(self, uid: int) -> MessageInfo:
        """Immutable facts of a message; :class:`MessageGone` if expunged."""

    @abc.abstractmethod
    async def message(self, uid: int) -> Message:
        """The parsed message (cached); :class:`MessageGone` if expunged."""

    async def summaries(
        self, uids: Sequence[int], *, structure: bool = True
    ) -> list[MessageSummary]:
        """Summaries of ``uids`` in the order given, skipping expunged ones.

        With ``structure=False`` the caller reads only the header part
        (UID, size, dates, ``envelope``, ``headers``): a store may then
        leave ``bodystructure`` and ``body`` empty and the ids "", which
        spares it parsing more than each message's header block (header
        SEARCH, SORT, THREAD, FETCH ENVELOPE).

        This default parses each message; stores with a cache override it
        to answer from the cache in one batch.
        """
        result: list[MessageSummary] = []
        for uid in uids:
            try:
                info = await self.info(uid)
                message = await self.message(uid)
            except MessageGone:
                continue
            result.append(summarize(info, message))
        return result

    async def load(
        self, uids: Sequence[int], *, content: bool = False
    ) -> list[tuple[MessageInfo, Message | None]]:
        """``(info, message)`` of each of ``uids`` still there, in the order
        given; the message only when ``content`` (else None).

        SEARCH on sizes, dates or the text loads a batch at a time; this
        default asks one message at a time, a store may read the batch in
        one go (the MH store: one job, not two per message).
        """
        out: list[tuple[MessageInfo, Message | None]] = []
        for uid in uids:
            try:
                info = await self.info(uid)
                message = await self.message(uid) if content else None
            except MessageGone:
                continue
            out.append((info, message))
        return out

    @abc.abstractmethod
    async def append(
        self,
        data: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> int:
        """Store a new message durably and return its UID.

        ``data`` is kept byte for byte.  Returns only after the message is
        safe (written, fsynced, renamed where the backend has files).
        """

    async def append_all(self, messages: Sequence[NewMessage]) -> list[int]:
        """Store every message durably, or none of them (MULTIAPPEND, RFC
        3502 section 6.3.11: "If the server is unable to append all of the
        messages, then no messages are appended"); their UIDs in order.

        This default appends one at a time and takes back the ones stored
        when a later one fails; a store that can write them together (one
        transaction, one sync) does so.
        """
        uids: list[int] = []
        try:
            for message in messages:
                uids.append(
                    await self.append(message.data, message.flags, message.internaldate)
                )
        except BaseException:
            await self.take_back(uids)
            raise
        return uids

    async def take_back(self, uids: Sequence[int]) -> None:
        """Expunge messages this command just appended, whatever their
        flags, because the command as a whole failed.  Best effort: the
        store may be the thing failing, so errors are logged, not raised."""
        if not uids:
            return
        try:
            await self.store(uids, StoreMode.ADD, ["\\Deleted"])
            await self.expunge(uids)
        except Exception:
            log.exception("could not take back %d appended messages", len(uids))

    @abc.abstractmethod
    async def store(
        self,
        uids: Sequence[int],
        mode: StoreMode,
        flags: Iterable[str],
        unchanged_since: int | None = None,
    ) -> StoreResult:
        """Change flags of existing messages (UIDs already expunged are
        skipped silently)."""

    @abc.abstractmethod
    async def expunge(self, uids: Sequence[int] | None = None) -> tuple[int, ...]:
        """Remove messages flagged \\Deleted (only among ``uids`` if given).

        Returns the expunged UIDs, ascending.
        """

    @abc.abstractmethod
    async def copy_to(
        self, uids: Sequence[int], destination: Mailbox
    ) -> tuple[tuple[int, int], ...]:
        """Copy messages with their flags and INTERNALDATE.

        Returns ``(source uid, new uid)`` pairs in source-UID order.
        """

    @abc.abstractmethod
    async def move_to(
        self, uids: Sequence[int], destination: Mailbox
    ) -> tuple[tuple[int, int], ...]:
        """Copy then expunge the sources, as one step (RFC 6851)."""


class Store(abc.ABC):
    """All the mailboxes of one account."""

    delimiter: str = "/"

    @property
    def feed(self) -> ChangeFeed:
        """The account-wide change feed (:mod:`asimap.store.feed`), made on
        first use so that stores need no constructor cooperation.  Every
        store publishes on it after each change it makes or discovers."""
        feed: ChangeFeed | None = self.__dict__.get("_change_feed")
        if feed is None:
            feed = self.__dict__["_change_feed"] = ChangeFeed()
        return feed

    @abc.abstractmethod
    async def list_mailboxes(self) -> tuple[MailboxEntry, ...]:
        """Every mailbox (and every implied parent), sorted by name."""

    @abc.abstractmethod
    async def create(self, name: str, special_use: Iterable[str] = ()) -> None:
        """Create a mailbox and any missing parents (RFC 3501 6.3.3)."""

    @abc.abstractmethod
    async def delete(self, name: str) -> None:
        """Delete per RFC 3501 6.3.4 (a parent keeps living as \\Noselect)."""

    @abc.abstractmethod
    async def rename(self, old: str, new: str) -> None:
        """Rename with inferiors; renaming INBOX moves its messages
        (RFC 3501 6.3.5)."""

    @abc.abstractmethod
    async def subscribe(self, name: str) -> None: ...

    @abc.abstractmethod
    async def unsubscribe(self, name: str) -> None: ...

    @abc.abstractmethod
    async def mailbox(self, name: str) -> Mailbox:
        """Open a selectable mailbox; :class:`MailboxNotFound` otherwise.

        Opening the same name twice returns objects that see each other's
        changes (normally the same object).
        """

    async def mailbox_status(self, name: str) -> tuple[Mailbox, MailboxStatus]:
        """:meth:`mailbox` and its :meth:`Mailbox.status` (STATUS, LIST
        RETURN STATUS); a store that can do both at once overrides this."""
        mailbox = await self.mailbox(name)
        return mailbox, await mailbox.status()

    async def prepare_feed(self) -> None:
        """Called before subscribing to :attr:`feed`: a store that learns of
        some changes by comparing snapshots (the MH store and folders that
        nmh tools create) takes its snapshot here.  Default: nothing."""
        return None

    async def get_metadata(self, mailbox: str) -> dict[str, bytes]:
        """Every metadata entry of ``mailbox`` (RFC 5464), ``""`` being the
        server's own entries.

        Entry names are lower-case and begin with ``/private/`` or
        ``/shared/``.  :class:`MailboxNotFound` for a mailbox that cannot be
        opened.  Stores without metadata keep this default.
        """
        raise NotSupported("This store does not keep metadata")

    async def set_metadata(
        self, mailbox: str, changes: Mapping[str, bytes | None]
    ) -> None:
        """Apply ``changes`` to ``mailbox``'s entries (None removes one),
        all or nothing, within the limits of :func:`apply_metadata_changes`.

        RENAME carries a mailbox's entries along; DELETE drops them.
        """
        raise NotSupported("This store does not keep metadata")

    #: The account's limits (RFC 9208); see :meth:`set_quota_limits`.
    quota_limits: QuotaLimits = NO_QUOTA

    def set_quota_limits(self, limits: QuotaLimits) -> None:
        """Limit the account (from the configuration, when the store is
        opened).

        From then on :meth:`Mailbox.append` and :meth:`Mailbox.copy_to`
        raise :class:`OverQuota` -- before anything is stored -- when the
        result would exceed a limit.  :meth:`Mailbox.move_to` within the
        store never does: the account's usage does not change, and RFC 6851
        section 4.1 lets a MOVE succeed where a COPY would overrun.
        """
        self.quota_limits = limits

    async def quota_usage(self) -> QuotaUsage:
        """Messages and octets of the whole account (every mailbox).

        Stores keep this incrementally: it is asked on every APPEND, and an
        account may hold 100,000 messages in 1,000 folders.
        """
        raise NotSupported("This store does not count usage")

    async def close(self) -> None:
        """Release resources (file watchers, database handles)."""
        return None
