"""The password file: ``username:hash:maildir``, one account a line.

design.md section 2 fixes the format, shared with asimap 2.x:

* blank lines and lines whose first non-blank character is ``#`` are ignored;
* a line is split on the first two ``:`` -- usernames may not contain ``:``,
  Django hashes never do, and the maildir (the rest) may;
* a relative maildir is relative to the directory holding the password file;
* the file is re-read when it changes, so an administrator (or
  ``asimapd_set_password``) edits accounts without restarting the server.

A malformed line is logged (with its line number, never its hash) and
skipped: one bad line must not lock every other user out, nor crash the
server.  A duplicated username keeps its first line, which is also the one
``asimapd_set_password`` updates.

The file is small and read synchronously; callers on an event loop run
:meth:`PasswordFile.lookup` in a thread (the authenticator does, together
with the hash verification).  Change detection compares the file's
(inode, device, size, mtime, ctime) at most once per ``check_interval``
seconds, so a burst of logins costs one ``stat`` per second, not one each.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Characters that can never be part of a username: the field separator and
#: anything that would break the one-line-per-account format or the log.
_FORBIDDEN_IN_USERNAME = frozenset(":\r\n\t\0")


@dataclass(frozen=True, slots=True)
class PasswordEntry:
    """One account line, with the maildir already made absolute."""

    username: str
    password_hash: str
    maildir: Path


class MalformedLine(ValueError):
    """A non-comment line that is not ``username:hash:maildir``."""


def is_valid_username(username: str) -> bool:
    """Whether ``username`` can be stored in the file (and so can log in)."""
    return bool(username) and not (_FORBIDDEN_IN_USERNAME & set(username))


def is_ignored_line(line: str) -> bool:
    """Blank and ``#`` comment lines carry no account."""
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def parse_line(line: str, base_dir: Path) -> PasswordEntry:
    """Parse one account line (not blank, not a comment).

    Raises :class:`MalformedLine` with a reason that is safe to log: it
    never quotes the hash.
    """
    fields = line.strip().split(":", 2)
    if len(fields) != 3:
        raise MalformedLine("expected username:hash:maildir")
    username, password_hash, maildir_text = (f.strip() for f in fields)
    if not is_valid_username(username):
        raise MalformedLine("empty or invalid username")
    if not password_hash or any(c.isspace() for c in password_hash):
        raise MalformedLine("empty hash or hash containing spaces")
    if not maildir_text:
        raise MalformedLine("empty maildir")
    maildir = Path(maildir_text)
    if not maildir.is_absolute():
        maildir = base_dir / maildir
    return PasswordEntry(username, password_hash, maildir)


def parse_pwfile(
    lines: Iterable[str], base_dir: Path, source: str
) -> dict[str, PasswordEntry]:
    """Map usernames to entries, logging and skipping malformed lines."""
    entries: dict[str, PasswordEntry] = {}
    for number, line in enumerate(lines, start=1):
        if is_ignored_line(line):
            continue
        try:
            entry = parse_line(line, base_dir)
        except MalformedLine as exc:
            log.error("%s:%d: skipping malformed line: %s", source, number, exc)
            continue
        if entry.username in entries:
            log.error(
                "%s:%d: duplicate user %r ignored (first line wins)",
                source,
                number,
                entry.username,
            )
            continue
        entries[entry.username] = entry
    return entries


def read_lines(path: Path) -> list[str]:
    """The file's lines, decoded one by one so that a line with invalid
    UTF-8 spoils only itself (it fails to parse and is skipped)."""
    data = path.read_bytes()
    return [raw.decode("utf-8", errors="replace") for raw in data.splitlines()]


_Signature = tuple[int, int, int, int, int]


def _signature(stat: os.stat_result) -> _Signature:
    return (stat.st_ino, stat.st_dev, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class PasswordFile:
    """The accounts of one password file, re-read when the file changes.

    ``generation`` grows every time the accounts are (re)loaded, so caches
    built on top (the authenticator's verification cache) can tell that
    they are stale.  Thread-safe: lookups come from a thread pool.
    """

    def __init__(
        self,
        path: Path,
        *,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path.absolute()
        self._check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, PasswordEntry] = {}
        self._signature: _Signature | None = None
        self._last_check: float | None = None
        self._missing_reported = False
        self.generation = 0

    def lookup(self, username: str) -> PasswordEntry | None:
        """The entry for ``username``, after re-reading the file if it
        changed (checked at most once per ``check_interval``).  Blocking."""
        self.refresh()
        with self._lock:
            return self._entries.get(username)

    def entries(self) -> tuple[PasswordEntry, ...]:
        """Every account, after re-reading the file if it changed (as
        :meth:`lookup`).  Blocking."""
        self.refresh()
        with self._lock:
            return tuple(self._entries.values())

    def refresh(self, force: bool = False) -> None:
        """Re-read the file if its signature changed since the last read."""
        with self._lock:
            now = self._clock()
            if (
                not force
                and self._last_check is not None
                and now - self._last_check < self._check_interval
            ):
                return
            self._last_check = now
            try:
                signature = _signature(os.stat(self.path))
            except OSError as exc:
                self._set_missing(exc)
                return
            if signature == self._signature and not force:
                return
            try:
                lines = read_lines(self.path)
            except OSError as exc:
                self._set_missing(exc)
                return
            self._entries = parse_pwfile(lines, self.path.parent, str(self.path))
            self._signature = signature
            self._missing_reported = False
            self.generation += 1
            log.info("loaded %d accounts from %s", len(self._entries), self.path)

    def _set_missing(self, exc: OSError) -> None:
        # An unreadable file means no account can log in; say so once, not
        # on every login attempt, and forget the accounts it had.
        if not self._missing_reported:
            log.error("cannot read password file %s: %s", self.path, exc)
            self._missing_reported = True
        if self._signature is not None or self._entries:
            self._entries = {}
            self._signature = None
            self.generation += 1
