"""Mailbox names <-> folder directories, never leaving the MH root.

GUIDE section 4 rule 3: no path ever leaves the user's mail root.  Names
are validated twice: :func:`asimap.store.names.check_name` (shared by all
stores) and here, where the resolved path must lie inside the resolved
root and no component may be a symlink pointing out of it.  INBOX is the
directory ``inbox`` (asimap 2.x and nmh's ``Inbox:`` default).
"""

from __future__ import annotations

from pathlib import Path

from asimap.store.base import InvalidMailboxName
from asimap.store.names import DELIMITER, INBOX, check_name

INBOX_DIR = "inbox"


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
    head, sep, tail = name.partition(DELIMITER)
    if head == INBOX:
        return INBOX_DIR + sep + tail
    return name


def name_of_relpath(relpath: str) -> str:
    """Canonical mailbox name of a folder path relative to the root."""
    head, sep, tail = relpath.partition(DELIMITER)
    if head == INBOX_DIR:
        return INBOX + sep + tail
    return relpath


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
    """Directory entries that are mailboxes: not hidden, not all digits,
    and at the top no other spelling of ``inbox`` (it would be a second
    INBOX)."""
    if not part or part.startswith(".") or part.isdigit():
        return False
    return not (top and part.upper() == INBOX and part != INBOX_DIR)
