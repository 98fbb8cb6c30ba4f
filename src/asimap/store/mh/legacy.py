"""Read the state asimap 2.x left in ``asimap.db`` so an account keeps its UIDs.

Why: an IMAP client caches messages by (UIDVALIDITY, UID).  If we gave a
mailbox a new UIDVALIDITY when an account moves from asimap 2.x, every
client would throw its cache away and download the whole account again
(RFC 3501 section 2.3.1.1).  asimap 2.x kept, per mailbox, the UIDVALIDITY,
the next UID and two parallel range strings: the UIDs and the MH message
numbers they belong to.  This module turns that into plain values the MH
store adopts on first start.

Rules this module keeps:

* The database is opened read-only (SQLite URI ``mode=ro``) and never
  written: ``asimap.db`` stays exactly as 2.x left it, so a rollback to
  asimap 2.x still works.
* Corrupt content never raises.  A mailbox whose mapping is inconsistent
  (lengths differ, garbage, duplicates, zero or negative numbers, a UID not
  below ``next_uid`` or beyond 32 bits) loses only its mapping, logged with
  its name: it keeps its UIDVALIDITY, and its ``next_uid`` is raised above
  every UID that appears in the row, so no UID a client may have cached is
  ever given to a different message (RFC 3501 section 2.3.1.1: UIDs are
  strictly ascending and never reused within one UIDVALIDITY).
* When a mailbox's UIDVALIDITY or next UID is itself unusable (missing,
  not a positive 32-bit number, or the same name appears twice), nobody can
  tell which UIDs were already handed out, so the mailbox gets a *new*
  UIDVALIDITY above every value 2.x handed out (clients then resync that
  mailbox once), keeping its subscription and attributes.
* Ranges are parsed without materialising absurd ranges: more than
  :data:`MAX_RANGE` numbers in one string is corrupt.
* Transient trouble (the file is locked by a running 2.x, unreadable for
  lack of permission, an I/O error) raises :class:`LegacyDbUnreadable`
  rather than returning ``None``: treating it as "no legacy state" would
  make the store hand out new UIDVALIDITYs for good.

Everything here is synchronous; the MH store runs it in a worker thread
(design.md section 3: SQLite never runs on the event loop thread).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

#: Largest UID and UIDVALIDITY: both are 32-bit ``nz-number`` values
#: (RFC 3501 section 9; RFC 9051 section 9).
MAX_UID = 2**32 - 1

#: Most numbers one range string may stand for.  No real mailbox comes near
#: it; a row that claims more is corrupt and must not eat the worker's memory.
MAX_RANGE = 10_000_000

#: The name asimap 2.x gives the MH folder that holds INBOX.
_MH_INBOX = "inbox"

#: One element of a range string: ``n`` or ``a-b``, ASCII digits only
#: (``int()`` alone would accept ``+5``, ``1_0`` and non-ASCII digits).
_ELEMENT = re.compile(r"([0-9]{1,19})(?:-([0-9]{1,19}))?")

#: Element separators: 2.x writes ``,``; sequences may use spaces.
_SEPARATOR = re.compile(r"[,\s]+")

#: Digit runs, for finding the largest UID a corrupt row mentions.
_DIGITS = re.compile(r"[0-9]+")

#: Seconds to wait for a running asimap 2.x to finish a write before giving
#: up with :class:`LegacyDbUnreadable`.
BUSY_TIMEOUT = 5.0

#: SQLite primary result codes that say "not now" rather than "never"
#: (https://sqlite.org/rescode.html); anything else is damaged content.
_TRANSIENT_CODES = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_INTERRUPT,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOLFS,
        sqlite3.SQLITE_AUTH,
    }
)

#: Columns of ``mailboxes`` that later 2.x migrations added; an older
#: database lacks some of them and reads them as NULL.
_OPTIONAL_COLUMNS = ("uids", "msg_keys", "attributes", "subscribed")
_REQUIRED_COLUMNS = {
    "mailboxes": frozenset({"id", "name", "uid_vv", "next_uid"}),
    "user_server": frozenset({"uid_vv"}),
}


class LegacyDbUnreadable(Exception):
    """``asimap.db`` exists but cannot be read right now (locked, permissions).

    Distinct from "no usable legacy state" (``None``), so that the caller
    can refuse to start rather than throw away every client's cache.
    """


@dataclass(frozen=True, slots=True)
class LegacyMailbox:
    """What asimap 2.x knew about one mailbox."""

    name: str  # IMAP name: "INBOX" for MH folder "inbox", else the folder path
    uid_vv: int
    next_uid: int
    uid_by_key: dict[int, int]  # MH number -> UID
    subscribed: bool
    attributes: frozenset[str]
    sequences: dict[str, tuple[int, ...]]  # MH numbers, as 2.x saw them


@dataclass(frozen=True, slots=True)
class LegacyAccount:
    """The account-wide UIDVALIDITY counter and every mailbox 2.x knew."""

    uid_vv: int
    mailboxes: dict[str, LegacyMailbox]


def parse_ranges(text: str | None) -> list[int]:
    """Expand a 2.x range string such as ``1-3,6-7`` into ``[1, 2, 3, 6, 7]``.

    Order is kept (the i-th UID belongs to the i-th MH number), so nothing
    is sorted or merged.  Plain comma lists and space-separated lists (older
    2.x versions, sequences) parse too.  ``None`` and the empty string are
    the empty list.

    Raises :class:`ValueError` for anything else: a non-number, a zero (UIDs
    and MH message numbers both start at 1), a descending range, or more
    than :data:`MAX_RANGE` numbers in total (checked before expanding).
    """
    if text is None:
        return []
    result: list[int] = []
    for element in _SEPARATOR.split(text):
        if not element:
            continue  # leading or trailing separator
        match = _ELEMENT.fullmatch(element)
        if match is None:
            raise ValueError(f"not a number or range: {element[:40]!r}")
        first = int(match[1])
        last = first if match[2] is None else int(match[2])
        if first < 1:
            raise ValueError("zero in a range string")
        if last < first:
            raise ValueError(f"descending range {element!r}")
        if len(result) + (last - first + 1) > MAX_RANGE:
            raise ValueError(f"more than {MAX_RANGE} numbers")
        if last == first:
            result.append(first)
        else:
            result.extend(range(first, last + 1))
    return result


def read_legacy_db(path: Path) -> LegacyAccount | None:
    """Read asimap 2.x's ``asimap.db`` at ``path``, without modifying it.

    Returns ``None`` when the file is missing, is not SQLite, is damaged
    beyond reading, or is not an asimap 2.x database.  Raises
    :class:`LegacyDbUnreadable` for transient trouble (see the module text).
    """
    if not path.is_file():
        return None
    # Percent-encode the path: "?" or "#" in a maildir path would otherwise
    # end the file name inside the URI (SQLite decodes %XX in URI paths).
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    try:
        with contextlib.closing(
            sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT)
        ) as connection:
            # Bytes, not str: sqlite3 raises on invalid UTF-8 in a TEXT value
            # while fetching, which would lose every other row too.
            connection.text_factory = bytes
            return _read(connection, path)
    except sqlite3.Error as error:
        if getattr(error, "sqlite_errorcode", 0) & 0xFF in _TRANSIENT_CODES:
            raise LegacyDbUnreadable(f"cannot read {path}: {error}") from error
        # SQLITE_NOTADB, SQLITE_CORRUPT, a mangled schema (SQLITE_ERROR)...:
        # the content itself is unusable.
        log.warning("ignoring %s: not a readable SQLite database (%s)", path, error)
        return None
    except UnicodeDecodeError as error:
        # sqlite3 cannot decode an error message that quotes a damaged schema.
        log.warning("ignoring %s: damaged SQLite schema (%s)", path, error)
        return None


@dataclass(slots=True)
class _Row:
    """One ``mailboxes`` row, still raw (values as SQLite returned them)."""

    id: object
    name: object
    uid_vv: object
    next_uid: object
    uids: object
    msg_keys: object
    attributes: object
    subscribed: object


@dataclass(slots=True)
class _Draft:
    """A mailbox being assembled; ``reissue`` means "needs a new UIDVALIDITY"."""

    name: str
    uid_vv: int
    next_uid: int
    uid_by_key: dict[int, int]
    subscribed: bool
    attributes: frozenset[str]
    sequences: dict[str, tuple[int, ...]] = field(default_factory=dict)
    reissue: bool = False


def _read(connection: sqlite3.Connection, path: Path) -> LegacyAccount | None:
    columns = {table: _columns(connection, table) for table in _REQUIRED_COLUMNS}
    for table, required in _REQUIRED_COLUMNS.items():
        if not required <= columns[table]:
            log.warning("ignoring %s: not an asimap 2.x database (%s)", path, table)
            return None
    account_vv = max(
        (
            vv
            for (value,) in connection.execute("SELECT uid_vv FROM user_server")
            if (vv := _number(value, MAX_UID)) is not None
        ),
        default=0,
    )
    selected = ", ".join(
        name if name in columns["mailboxes"] else f"NULL AS {name}"
        for name in _OPTIONAL_COLUMNS
    )
    rows = [
        _Row(*row)
        for row in connection.execute(
            f"SELECT id, name, uid_vv, next_uid, {selected} FROM mailboxes ORDER BY id"
        )
    ]
    sequences = _read_sequences(connection)
    drafts = _merge_duplicates(
        draft
        for row in rows
        if (draft := _draft(row, sequences.get(_number(row.id, None) or 0, {})))
        is not None
    )
    # Every value 2.x handed out counts, including those of rows dropped or
    # merged below, so that a new UIDVALIDITY never repeats one.
    highest_vv = max(
        (vv for row in rows if (vv := _number(row.uid_vv, MAX_UID)) is not None),
        default=0,
    )
    return _finish(max(account_vv, highest_vv), drafts)


def _columns(connection: sqlite3.Connection, table: str) -> frozenset[str]:
    """Column names of ``table`` (empty if it does not exist)."""
    # PRAGMA arguments cannot be bound; ``table`` is one of our constants.
    rows = connection.execute(f"PRAGMA table_info({table})").fetchall()
    return frozenset(_text(row[1]) or "" for row in rows)


def _read_sequences(
    connection: sqlite3.Connection,
) -> dict[int, dict[str, tuple[int, ...]]]:
    """Sequences by mailbox id; informational, so bad rows are just skipped."""
    if not {"name", "mailbox_id", "sequence"} <= _columns(connection, "sequences"):
        return {}
    result: dict[int, dict[str, tuple[int, ...]]] = {}
    query = "SELECT mailbox_id, name, sequence FROM sequences ORDER BY rowid"
    for raw_id, raw_name, raw_members in connection.execute(query):
        mailbox_id, name = _number(raw_id, None), _text(raw_name)
        if mailbox_id is None or not name:
            continue
        try:
            members = _parse_column(raw_members)
        except ValueError as error:
            log.warning(
                "asimap.db: sequence %r of mailbox id %s skipped: %s",
                name,
                mailbox_id,
                error,
            )
            continue
        result.setdefault(mailbox_id, {})[name] = tuple(members)
    return result


def _draft(row: _Row, sequences: dict[str, tuple[int, ...]]) -> _Draft | None:
    """Check one row; drop, repair or flag it according to the module rules."""
    folder = _text(row.name)
    if not folder:
        log.warning("asimap.db: mailbox row %r without a usable name skipped", row.id)
        return None
    name = "INBOX" if folder == _MH_INBOX else folder
    uid_vv = _number(row.uid_vv, MAX_UID)
    # next_uid may be MAX_UID + 1: every UID used, the store must reissue.
    next_uid = _number(row.next_uid, MAX_UID + 1)
    draft = _Draft(
        name=name,
        uid_vv=uid_vv or 0,
        next_uid=next_uid or 1,
        uid_by_key={},
        subscribed=isinstance(row.subscribed, int) and row.subscribed != 0,
        attributes=frozenset(
            part.strip() for part in (_text(row.attributes) or "").split(",")
        )
        - {""},
        sequences=sequences,
    )
    if uid_vv is None or next_uid is None:
        log.warning(
            "asimap.db: mailbox %r has no valid UIDVALIDITY/next UID "
            "(%r, %r); it gets a new UIDVALIDITY",
            name,
            row.uid_vv,
            row.next_uid,
        )
        draft.reissue = True
        return draft
    problem = _map(draft, row.uids, row.msg_keys)
    if problem is not None:
        seen = _largest_number(row.uids)
        draft.uid_by_key = {}
        draft.next_uid = max(draft.next_uid, seen + 1)
        if draft.next_uid > MAX_UID + 1:
            draft.reissue = True
        log.warning(
            "asimap.db: mailbox %r: UID mapping dropped (%s); "
            "its messages get new UIDs from %d",
            name,
            problem,
            draft.next_uid,
        )
    return draft


def _map(draft: _Draft, raw_uids: object, raw_keys: object) -> str | None:
    """Fill ``draft.uid_by_key``; return why the mapping is unusable, or None."""
    try:
        uids = _parse_column(raw_uids)
        keys = _parse_column(raw_keys)
    except ValueError as error:
        return str(error)
    if len(uids) != len(keys):
        return f"{len(uids)} UIDs for {len(keys)} messages"
    if not uids:
        return None
    if len(set(uids)) != len(uids):
        return "duplicate UIDs"
    if len(set(keys)) != len(keys):
        return "duplicate message numbers"
    highest = max(uids)
    if highest > MAX_UID:
        return f"UID {highest} beyond 32 bits"
    if highest >= draft.next_uid:
        return f"UID {highest} not below next UID {draft.next_uid}"
    draft.uid_by_key = dict(zip(keys, uids, strict=True))
    return None


def _merge_duplicates(drafts: Iterable[_Draft]) -> list[_Draft]:
    """Collapse rows with the same name (the 2.x schema does not forbid them).

    Which row clients saw is unknowable, so the survivor gets a new
    UIDVALIDITY; it is subscribed if any row was.
    """
    by_name: dict[str, _Draft] = {}
    for draft in drafts:
        earlier = by_name.get(draft.name)
        if earlier is not None:
            log.warning(
                "asimap.db: mailbox %r appears twice; it gets a new UIDVALIDITY",
                draft.name,
            )
            draft.subscribed = draft.subscribed or earlier.subscribed
            draft.reissue = True
        by_name[draft.name] = draft
    return list(by_name.values())


def _finish(account_vv: int, drafts: Sequence[_Draft]) -> LegacyAccount:
    """Give flagged mailboxes fresh UIDVALIDITYs and freeze the result.

    ``account_vv`` is already at least every value 2.x handed out, so a new
    value above it collides with nothing a client may have cached.
    """
    mailboxes: dict[str, LegacyMailbox] = {}
    for draft in drafts:
        if draft.reissue:
            if account_vv >= MAX_UID:
                log.warning("asimap.db: no UIDVALIDITY left for %r", draft.name)
                continue
            account_vv += 1
            draft.uid_vv, draft.next_uid, draft.uid_by_key = account_vv, 1, {}
        mailboxes[draft.name] = LegacyMailbox(
            name=draft.name,
            uid_vv=draft.uid_vv,
            next_uid=draft.next_uid,
            uid_by_key=draft.uid_by_key,
            subscribed=draft.subscribed,
            attributes=draft.attributes,
            sequences=draft.sequences,
        )
    return LegacyAccount(uid_vv=account_vv, mailboxes=mailboxes)


def _text(value: object) -> str | None:
    """A TEXT value as ``str``; None for NULL, non-text and invalid UTF-8."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a lone number stored with INTEGER affinity
    return None


def _parse_column(value: object) -> list[int]:
    """:func:`parse_ranges` of a raw column; a non-NULL non-text is corrupt."""
    text = _text(value)
    if text is None and value is not None:
        raise ValueError("not UTF-8 text")
    return parse_ranges(text)


def _number(value: object, limit: int | None) -> int | None:
    """A positive INTEGER value not above ``limit``, else None."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return None
    if limit is not None and value > limit:
        return None
    return value


def _largest_number(value: object) -> int:
    """Largest digit run in a (possibly corrupt) UID string; 0 if none.

    Runs longer than ten digits count as :data:`MAX_UID` + 1 (exhausted)
    without being converted, so garbage cannot cost time or memory.
    """
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return 0
    largest = 0
    for run in _DIGITS.findall(value):
        if len(run) > 10:
            return MAX_UID + 1
        largest = max(largest, int(run))
    return largest
