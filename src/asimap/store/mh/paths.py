"""Mailbox names <-> folder directories, never leaving the MH root.

design.md section 4 rule 3: no path ever leaves the user's mail root.  Names
are validated twice: :func:`asimap.store.names.check_name` (shared by all
stores) and here, where the resolved path must lie inside the resolved
root and no component may be a symlink pointing out of it.  INBOX is the
directory ``inbox`` (asimap 2.x and nmh's ``Inbox:`` default).

All-digit levels (``Archive/2024``, which Thunderbird's archive and mbsync
users bring from other servers) cannot be directories of the same name: to
nmh an all-digit entry of a folder is a message number (``scan +Archive``
would try to read the directory ``2024`` as message 2024, and ``folders``
would not list it).  Such a level is stored with :data:`ESCAPE` in front
(``Archive/#2024``), which nmh lists as an ordinary folder.  The escape is
reversible because it is applied to exactly the levels made of *k* ``#``
then digits (*k* >= 0), adding one ``#``; reading a directory made of *k*
``#`` then digits with *k* >= 1 removes one.  Every
other level is its own directory name, so folders that nmh users made
(``#misc``, ``_2023``) keep their names.  docs/mh-layout.md tells users.
"""

from __future__ import annotations

from pathlib import Path

from asimap.store.base import InvalidMailboxName
from asimap.store.names import DELIMITER, INBOX, check_name

INBOX_DIR = "inbox"

#: Put in front of a level that is all digits (and of one that already
#: looks escaped), so that nmh sees a folder, not a message number.
ESCAPE = "#"


def is_message_number(part: str) -> bool:
    """True if a directory entry is a message number to nmh: ASCII digits
    only (nmh's ``isdigit`` in the C locale)."""
    return part.isascii() and part.isdigit()


def _needs_escape(level: str) -> bool:
    """*k* ``#`` then digits, *k* >= 0: what :func:`escape_level` changes."""
    return is_message_number(level.lstrip(ESCAPE))


def escape_level(level: str) -> str:
    """The directory name of one mailbox-name level."""
    return ESCAPE + level if _needs_escape(level) else level


def unescape_level(entry: str) -> str | None:
    """The mailbox-name level of a directory name; None for a message
    number (which is never a folder)."""
    if is_message_number(entry):
        return None
    if entry.startswith(ESCAPE) and _needs_escape(entry):
        return entry[len(ESCAPE) :]
    return entry


def canonical(name: str) -> str:
    """Spell a leading INBOX level ``INBOX`` whatever its case.

    Both ``INBOX/a`` and ``inbox/a`` live in the directory ``inbox/a``, so
    the MH store gives them one spelling (RFC 3501 section 5.1 leaves the
    case of inferiors of INBOX to the server).
    """
    head, sep, tail = name.partition(DELIMITER)
    if head.upper() == INBOX:
        return INBOX + sep + tail
    return name


def folder_relpath(name: str) -> str:
    """Relative folder path of a canonical mailbox name."""
    levels = [escape_level(level) for level in name.split(DELIMITER)]
    if levels[0] == INBOX:
        levels[0] = INBOX_DIR
    return DELIMITER.join(levels)


def name_of_relpath(relpath: str) -> str | None:
    """Canonical mailbox name of a folder path relative to the root, or
    None for a path that is no folder (see :func:`is_folder_component`)."""
    levels: list[str] = []
    for depth, entry in enumerate(relpath.split(DELIMITER)):
        level = unescape_level(entry)
        if level is None or not is_folder_component(entry, depth == 0):
            return None
        levels.append(level)
    if levels[0] == INBOX_DIR:
        levels[0] = INBOX
    return DELIMITER.join(levels)


def check_mh_name(name: str) -> str:
    """:func:`check_name` plus the refusals that matter on a file system."""
    if "\x00" in name:
        raise InvalidMailboxName("Mailbox name contains NUL")
    name = canonical(check_name(name))
    for part in name.split(DELIMITER):
        if part.startswith("."):
            # Hidden entries are ours (database, temp files) or nmh's.
            raise InvalidMailboxName("Mailbox name has a level starting with .")
    return name


def folder_path(root: Path, name: str) -> Path:
    """The directory of mailbox ``name`` (checked), guaranteed in ``root``.

    ``root`` must already be resolved.  Symlinks inside the root are
    followed only if they stay inside it.
    """
    name = check_mh_name(name)
    path = root / folder_relpath(name)
    # Resolve what exists (a missing tail is fine: CREATE makes it).
    resolved = path.resolve(strict=False)
    if not resolved.is_relative_to(root) or resolved == root:
        raise InvalidMailboxName("Mailbox name leaves the mail root")
    # Every existing component must itself stay inside the root.
    current = root
    for part in folder_relpath(name).split(DELIMITER):
        current = current / part
        if current.is_symlink():
            target = current.resolve(strict=False)
            if not target.is_relative_to(root) or target == root:
                raise InvalidMailboxName("Mailbox name leaves the mail root")
    return path


def is_folder_component(part: str, top: bool) -> bool:
    """Directory entries that are mailboxes: not hidden, not all digits
    (a message number), and at the top no other spelling of ``inbox`` (it
    would be a second INBOX)."""
    if not part or part.startswith(".") or is_message_number(part):
        return False
    return not (top and part.upper() == INBOX and part != INBOX_DIR)
