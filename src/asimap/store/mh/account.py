"""Hierarchy operations of the MH store: LIST, CREATE, DELETE, RENAME.

A mailbox is a directory under the MH root (nmh's folders), INBOX is
``inbox/``, and nesting is directory nesting.  Directories are found by
walking the root on LIST (hidden and all-digit names are skipped: those
are ours, nmh's, or message numbers; an all-digit *mailbox* level lives in
an escaped directory, :mod:`asimap.store.mh.paths`).  The database adds what the file
system cannot say: subscriptions (which outlive their mailbox, RFC 3501
section 6.3.6), special-use attributes (RFC 6154), and which directories
are \\Noselect placeholders left by DELETE of a mailbox with inferiors
(RFC 3501 section 6.3.4).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from asimap.store.base import (
    InvalidMailboxName,
    MailboxEntry,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotFound,
    OperationNotPermitted,
)
from asimap.store.memory import NEW_ACCOUNT_FOLDERS, SPECIAL_USE
from asimap.store.mh import files, objectids, seqfile
from asimap.store.mh.core import Core
from asimap.store.mh.db import next_uidvalidity, transaction
from asimap.store.mh.freshness import WatchFeed
from asimap.store.mh.importer import import_legacy
from asimap.store.mh.legacy import LegacyAccount
from asimap.store.mh.paths import (
    INBOX_DIR,
    canonical,
    check_mh_name,
    escape_level,
    folder_path,
    is_folder_component,
    is_message_number,
    name_of_relpath,
)
from asimap.store.mh.profile import DEFAULT_PROTECTION, Protection
from asimap.store.names import DELIMITER, INBOX, MAX_DEPTH, is_inferior, parent_of
from asimap.store.objectid import new_mailboxid

log = logging.getLogger(__name__)


def _is_within(name: str, top: str) -> bool:
    return name == top or name.startswith(top + DELIMITER)


class Account(Core):
    """Every folder of one MH root (worker thread only)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        root: Path,
        unseen: tuple[str, ...],
        locking: bool,
        protection: Protection = DEFAULT_PROTECTION,
        feed: WatchFeed | None = None,
    ) -> None:
        super().__init__(conn, root, unseen, locking, feed)
        #: Modes of new folders and files (the profile's Folder-Protect
        #: and Msg-Protect).
        self.protection = protection
        self.message_mode = protection.file
        #: Folders already swept of temporary files by this process.
        self._swept: set[str] = set()

    # -- setting up ----------------------------------------------------------

    def initialise(self, lay_out: bool, legacy: LegacyAccount | None) -> None:
        """Make INBOX exist, adopt asimap 2.x state once, and (``lay_out``)
        create the special-use folders once.

        Each step commits together with its mark in the ``account`` table,
        so an interrupted first start is simply done again, and a finished
        one is never repeated.
        """
        files.make_folder(self.root / INBOX_DIR, self.protection.folder)
        done = self.conn.execute(
            "SELECT value FROM account WHERE key='initialised'"
        ).fetchone()
        if done is None:
            # Before the import, which looks the 2.x names up on disk.
            self._escape_digit_directories()
            with transaction(self.conn):
                if legacy is not None:
                    import_legacy(self, legacy)
                self.conn.execute(
                    "INSERT INTO account (key, value) VALUES ('initialised', 1)"
                )
        if lay_out:
            self._lay_out_special_use()

    def _escape_digit_directories(self) -> None:
        """Give directories named by digits only their escaped name, once.

        asimap 2.x (Python's ``mailbox.MH``) made the IMAP name
        ``Archive/2024`` the directory ``Archive/2024``, which nmh takes for
        message 2024 of ``Archive`` and which our mapping never looks at
        (:mod:`asimap.store.mh.paths`).  Renaming it to ``Archive/#2024``
        keeps its IMAP name and makes it a folder for nmh too.  A directory
        whose escaped name is taken is left alone (and stays invisible).
        Runs at the first serve of a root only: it walks the whole tree.
        """
        stack = [(self.root, 1)]
        while stack:
            directory, depth = stack.pop()
            if depth > MAX_DEPTH:
                continue
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if not entry.is_dir(follow_symlinks=False):
                    continue
                path = Path(entry.path)
                if is_message_number(entry.name):
                    target = path.with_name(escape_level(entry.name))
                    if os.path.lexists(target):
                        log.warning("%s not renamed: %s exists", path, target.name)
                        continue
                    try:
                        os.rename(path, target)
                    except OSError as exc:
                        log.warning("%s not renamed to %s: %s", path, target, exc)
                        continue
                    log.info("folder %s renamed to %s for nmh", path, target.name)
                    path = target
                stack.append((path, depth + 1))

    def _lay_out_special_use(self) -> None:
        """asimap 2.x's special-use folders (docs/mh-layout.md): ``Junk``
        (\\Junk), ``Archive`` (\\Archive), ``Sent Messages`` (\\Sent),
        ``Drafts`` (\\Drafts) and ``Deleted Messages`` (\\Trash).

        asimap 2.x made the missing ones at every start; we do it the first
        time we serve a root -- a new account, an nmh root with only
        ``inbox``, a root asimap 2.x served -- and record that we did, so a
        folder the user deletes later stays deleted (2.x brought it back).
        A folder that already has one of these names just gets the
        attribute (RFC 6154 section 2), unless it has one already.
        """
        done = self.conn.execute(
            "SELECT value FROM account WHERE key='special_use_laid_out'"
        ).fetchone()
        if done is not None:
            return
        complete = True
        for name, _ in NEW_ACCOUNT_FOLDERS:
            try:
                files.make_folder(folder_path(self.root, name), self.protection.folder)
            except InvalidMailboxName as exc:
                # A link out of the root under that name: never followed,
                # never replaced; the account works without the folder.
                log.warning("special-use folder %s not made: %s", name, exc)
            except OSError as exc:
                # Perhaps passing (a full disk): log in anyway, try again
                # at the next start.
                log.warning("special-use folder %s not made: %s", name, exc)
                complete = False
        with transaction(self.conn):
            self.conn.executemany(
                "INSERT OR IGNORE INTO special_use (name, attributes) VALUES (?, ?)",
                NEW_ACCOUNT_FOLDERS,
            )
            if complete:
                self.conn.execute(
                    "INSERT INTO account (key, value) "
                    "VALUES ('special_use_laid_out', 1)"
                )

    # -- the folder tree -------------------------------------------------------

    def folder_names(self) -> set[str]:
        """Every directory that is a mailbox (or a \\Noselect placeholder)."""
        names: set[str] = set()

        def visit(directory: Path, prefix: str, depth: int) -> None:
            if depth > MAX_DEPTH:
                return
            try:
                entries = list(os.scandir(directory))
            except OSError:
                return
            for entry in entries:
                if not is_folder_component(entry.name, depth == 1):
                    continue
                if not entry.is_dir(follow_symlinks=False):
                    continue
                relpath = prefix + entry.name
                name = name_of_relpath(relpath)
                if name is None:
                    continue
                try:
                    check_mh_name(name)
                except InvalidMailboxName:
                    continue  # not representable as an IMAP name
                names.add(name)
                visit(Path(entry.path), relpath + DELIMITER, depth + 1)

        visit(self.root, "", 1)
        return names

    def _noselect(self) -> set[str]:
        return {n for (n,) in self.conn.execute("SELECT name FROM noselect")}

    def _forget_vanished(self, names: set[str]) -> None:
        """Drop rows of folders removed behind our back (``rmf``)."""
        stale = [
            (mailbox_id, name)
            for mailbox_id, name in self.conn.execute("SELECT id, name FROM mailboxes")
            if name not in names
        ]
        for mailbox_id, _ in stale:
            self.forget_mailbox(mailbox_id)
        with transaction(self.conn):
            self.conn.executemany(
                "DELETE FROM noselect WHERE name=?",
                [(n,) for n in self._noselect() - names],
            )

    def list_mailboxes(self) -> tuple[MailboxEntry, ...]:
        names = self.folder_names()
        self._forget_vanished(names)
        noselect = self._noselect()
        uses = dict(self.conn.execute("SELECT name, attributes FROM special_use"))
        subscribed = {n for (n,) in self.conn.execute("SELECT name FROM subscriptions")}
        parents = {parent_of(name) for name in names}
        entries: dict[str, MailboxEntry] = {}
        for name in names:
            attributes: set[str] = set()
            if name in noselect:
                attributes.add("\\Noselect")
            else:
                attributes.update(uses.get(name, "").split())
            # RFC 3348 / RFC 5258 section 4: child information.
            attributes.add("\\HasChildren" if name in parents else "\\HasNoChildren")
            entries[name] = MailboxEntry(
                name, frozenset(attributes), name in subscribed
            )
        for name in subscribed - names:
            entries[name] = MailboxEntry(
                name, frozenset({"\\NonExistent", "\\Noselect"}), True
            )
        return tuple(entries[name] for name in sorted(entries))

    # -- opening ---------------------------------------------------------------

    def open_mailbox(self, name: str) -> tuple[int, str, int]:
        """(id, canonical name, UIDVALIDITY) of a selectable mailbox."""
        name = check_mh_name(name)
        folder = folder_path(self.root, name)
        if not folder.is_dir() or folder.is_symlink() or name in self._noselect():
            raise MailboxNotFound(f"Mailbox {name} does not exist")
        if name not in self._swept:
            # A worker killed between writing a temporary file and linking
            # it leaves the file behind; it is never a message (files.py).
            # One worker serves an account, so none of ours is in flight.
            files.remove_temporary_files(folder)
            self._swept.add(name)
        row = self.conn.execute(
            "SELECT id, uidvalidity FROM mailboxes WHERE name=?", (name,)
        ).fetchone()
        if row is None:
            with transaction(self.conn):
                uidvalidity = next_uidvalidity(self.conn)
                # The MAILBOXID given here rather than on first use
                # (objectids.mailboxid): a first login's STATUS of every
                # folder would otherwise commit once more per folder.
                cursor = self.conn.execute(
                    "INSERT INTO mailboxes "
                    "(name, uidvalidity, uidnext, highestmodseq, objectid) "
                    "VALUES (?, ?, 1, 1, ?)",
                    (name, uidvalidity, new_mailboxid()),
                )
                mailbox_id = cursor.lastrowid
            assert mailbox_id is not None
            return mailbox_id, name, uidvalidity
        return int(row[0]), name, int(row[1])

    # -- CREATE / DELETE / RENAME ------------------------------------------------

    def create(self, name: str, special_use: Iterable[str]) -> None:
        name = check_mh_name(name)
        uses: set[str] = set()
        for attr in special_use:
            canonical_use = SPECIAL_USE.get(attr.lower())
            if canonical_use is None:
                # RFC 6154 section 3: answered NO [USEATTR].
                raise OperationNotPermitted(f"Unsupported special-use {attr}")
            uses.add(canonical_use)
        folder = folder_path(self.root, name)
        noselect = self._noselect()
        if name == INBOX or (folder.is_dir() and name not in noselect):
            raise MailboxExists(f"Mailbox {name} already exists")
        # RFC 3501 section 6.3.3: missing superiors are created too.
        try:
            created = files.make_folders(folder, self.protection.folder)
        except (FileExistsError, NotADirectoryError):
            raise OperationNotPermitted(
                f"Cannot create {name}: a file in the MH root has its name"
            ) from None
        try:
            if not folder.is_dir():
                raise OperationNotPermitted(
                    f"Cannot create {name}: a file in the MH root has its name"
                )
            # One transaction for every row, the mailbox's own included:
            # CREATE is all or nothing (a full disk refusing the COMMIT
            # leaves neither rows nor directories behind).
            with transaction(self.conn):
                self.conn.execute("DELETE FROM noselect WHERE name=?", (name,))
                for (mailbox_id,) in self.conn.execute(
                    "SELECT id FROM mailboxes WHERE name=?", (name,)
                ).fetchall():
                    self.conn.execute("DELETE FROM mailboxes WHERE id=?", (mailbox_id,))
                    self.touched[mailbox_id] = 2**63 - 1
                if uses:
                    self.conn.execute(
                        "INSERT OR REPLACE INTO special_use (name, attributes) "
                        "VALUES (?, ?)",
                        (name, " ".join(sorted(uses))),
                    )
                self.open_mailbox(name)
        except BaseException:
            files.remove_folders(created)
            raise

    def delete(self, name: str) -> None:
        name = check_mh_name(name)
        if name == INBOX:
            raise OperationNotPermitted("INBOX cannot be deleted")
        names = self.folder_names()
        if name not in names:
            raise MailboxNotFound(f"Mailbox {name} does not exist")
        folder = folder_path(self.root, name)
        has_children = any(is_inferior(other, name) for other in names)
        noselect = name in self._noselect()
        if noselect and has_children:
            # Already \Noselect: only a leaf may go (RFC 3501 section 6.3.4).
            raise MailboxHasChildren(f"Mailbox {name} has inferior mailboxes")
        row = self.conn.execute(
            "SELECT id FROM mailboxes WHERE name=?", (name,)
        ).fetchone()
        if has_children:
            # Its messages go, the name stays as \Noselect (RFC 3501 6.3.4).
            with seqfile.locked(folder, self.locking), files.folder_fd(folder) as fd:
                # Through the folder's descriptor: a level swapped for a
                # symlink since the check is never deleted through.
                for entry in os.scandir(fd):
                    if entry.is_dir(follow_symlinks=False):
                        continue
                    if _is_message_or_ours(entry.name):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.name, dir_fd=fd)
            with transaction(self.conn):
                self.conn.execute(
                    "INSERT OR IGNORE INTO noselect (name) VALUES (?)", (name,)
                )
        else:
            # A leaf: everything in it belongs to the folder.
            files.remove_tree(folder)
            with transaction(self.conn):
                self.conn.execute("DELETE FROM noselect WHERE name=?", (name,))
        with transaction(self.conn):
            self.conn.execute("DELETE FROM special_use WHERE name=?", (name,))
        if row is not None:
            self.forget_mailbox(int(row[0]))

    def rename(self, old: str, new: str) -> None:
        old, new = check_mh_name(old), check_mh_name(new)
        names = self.folder_names()
        if old not in names:
            raise MailboxNotFound(f"Mailbox {old} does not exist")
        if new in names or new == INBOX:
            raise MailboxExists(f"Mailbox {new} already exists")
        target = folder_path(self.root, new)
        if old == INBOX:
            # RFC 3501 section 6.3.5: INBOX's messages move to a new
            # mailbox; INBOX stays, empty, and keeps its inferiors.
            self.create(new, ())
            inbox_id = self.open_mailbox(INBOX)[0]
            target_id = self.open_mailbox(new)[0]
            self.refresh(inbox_id)
            uids = [
                uid
                for (uid,) in self.conn.execute(
                    "SELECT uid FROM messages WHERE mailbox_id=? ORDER BY uid",
                    (inbox_id,),
                )
            ]
            self.copy(inbox_id, uids, target_id, move=True)
            objectids.hand_over(self.conn, inbox_id, target_id)
            return
        if is_inferior(new, old):
            raise OperationNotPermitted("Cannot rename a mailbox under itself")
        source = folder_path(self.root, old)
        created = files.make_folders(target.parent, self.protection.folder)
        try:
            files.rename_folder(source, target)
        except BaseException:
            files.remove_folders(created)
            raise
        length = len(old)
        try:
            with transaction(self.conn):
                for table in ("mailboxes", "special_use", "noselect"):
                    self.conn.execute(
                        f"UPDATE {table} SET name = ? || substr(name, ?) "
                        "WHERE name = ? OR substr(name, 1, ?) = ?",
                        (new, length + 1, old, length + 1, old + DELIMITER),
                    )
        except BaseException:
            # The rows still say ``old`` (a full disk refused the COMMIT):
            # so must the directory, or the next scan would see a new
            # mailbox with new UIDs.  RENAME is all or nothing.
            files.rename_folder(target, source)
            files.remove_folders(created)
            raise

    # -- subscriptions -------------------------------------------------------

    def subscribe(self, name: str) -> None:
        # Subscribing a name that does not exist is allowed (RFC 3501
        # section 6.3.6 lets servers accept it; Dovecot does).
        name = canonical(check_mh_name(name))
        with transaction(self.conn):
            self.conn.execute(
                "INSERT OR IGNORE INTO subscriptions (name) VALUES (?)", (name,)
            )

    def unsubscribe(self, name: str) -> None:
        name = canonical(check_mh_name(name))
        with transaction(self.conn):
            cursor = self.conn.execute(
                "DELETE FROM subscriptions WHERE name=?", (name,)
            )
        if cursor.rowcount == 0:
            raise MailboxNotFound(f"Mailbox {name} is not subscribed")

    def mailbox_names(self) -> dict[int, str]:
        """Current name of every mailbox row (after a RENAME)."""
        return {
            int(i): str(n)
            for i, n in self.conn.execute("SELECT id, name FROM mailboxes")
        }


def _is_message_or_ours(name: str) -> bool:
    """Files DELETE removes from a folder that keeps its inferiors:
    messages, nmh's ``,N`` backups, the sequences file and our temp files."""
    return (
        name.isdigit()
        or (name.startswith(",") and name[1:].isdigit())
        or name == seqfile.SEQUENCES_FILE
        or name.startswith(".asimap-tmp-")
    )
