"""The bits of the MH profile that change how a folder's files read.

nmh finds its profile through ``$MH`` or ``~/.mh_profile`` (``mh-profile(5)``).
These entries matter to us:

* ``Path:`` -- the MH root (relative paths are relative to ``$HOME``);
* ``Unseen-Sequence:`` -- the sequence(s) ``inc`` adds new mail to and
  ``show`` removes read mail from.  We maintain all of them as the
  complement of ``\\Seen``;
* ``Folder-Protect:`` / ``Msg-Protect:`` -- octal modes of new folders and
  new message files (nmh's defaults: 700 and 600).  Mail is private, so we
  create folders, message files *and* our database files (which hold the
  From/To/Subject of every message) with them, whatever the umask.

A server serves many roots, so a profile applies only to the root its
``Path:`` names; every other root uses asimap 2.x's fixed ``unseen`` and
nmh's default modes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: What asimap 2.x used, and nmh's conventional setting.
DEFAULT_UNSEEN: tuple[str, ...] = ("unseen",)

#: nmh's defaults for ``Folder-Protect`` and ``Msg-Protect`` (mh-profile(5)).
DEFAULT_FOLDER_PROTECT = 0o700
DEFAULT_MSG_PROTECT = 0o600


@dataclass(frozen=True, slots=True)
class Protection:
    """Modes of what the store creates: folders, and files (messages,
    temporary files, the database and its ``-wal``/``-shm``).

    The owner always keeps read and write (and search, for folders): the
    store could not work otherwise, so a profile that takes them away is
    overridden for those bits only.
    """

    folder: int = DEFAULT_FOLDER_PROTECT
    file: int = DEFAULT_MSG_PROTECT

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", (self.folder & 0o777) | 0o700)
        object.__setattr__(self, "file", (self.file & 0o777) | 0o600)


#: nmh's defaults, for roots without a profile of their own.
DEFAULT_PROTECTION = Protection()


@dataclass(frozen=True, slots=True)
class Profile:
    """The profile entries we honour."""

    path: Path | None
    unseen: tuple[str, ...]
    protection: Protection = DEFAULT_PROTECTION


def parse_mode(text: str | None, default: int) -> int:
    """An octal mode as nmh reads it (``atooi``); ``default`` when the
    entry is missing or is not an octal number of at most 0o777."""
    if not text:
        return default
    try:
        mode = int(text.strip(), 8)
    except ValueError:
        return default
    return mode if 0 <= mode <= 0o777 else default


def parse_profile(text: str, home: Path) -> Profile:
    """Parse profile text (``Name: value`` lines, whitespace continuations)."""
    entries: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and last is not None:
            entries[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            last = None
            continue
        last = name.strip().casefold()
        entries[last] = value.strip()
    path_text = entries.get("path")
    path: Path | None = None
    if path_text:
        path = Path(path_text).expanduser()
        if not path.is_absolute():
            path = home / path
    unseen = tuple(entries.get("unseen-sequence", "").split())
    protection = Protection(
        folder=parse_mode(entries.get("folder-protect"), DEFAULT_FOLDER_PROTECT),
        file=parse_mode(entries.get("msg-protect"), DEFAULT_MSG_PROTECT),
    )
    return Profile(path=path, unseen=unseen or DEFAULT_UNSEEN, protection=protection)


def find_profile(environ: Mapping[str, str] | None = None) -> Profile | None:
    """The profile named by ``$MH``, else ``~/.mh_profile``, if readable."""
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    name = env.get("MH")
    candidate = Path(name).expanduser() if name else home / ".mh_profile"
    if not candidate.is_absolute():
        candidate = Path.cwd() / candidate
    try:
        text = candidate.read_text("utf-8", "replace")
    except OSError:
        return None
    return parse_profile(text, home)


def unseen_sequences_for(root: Path, profile: Profile | None) -> tuple[str, ...]:
    """Unseen sequence names for ``root``: the profile's when it is the
    profile of this root, asimap 2.x's ``unseen`` otherwise."""
    if profile is None or profile.path is None:
        return DEFAULT_UNSEEN
    try:
        same = profile.path.resolve() == root.resolve()
    except OSError:
        return DEFAULT_UNSEEN
    return profile.unseen if same else DEFAULT_UNSEEN


def protection_for(root: Path, profile: Profile | None) -> Protection:
    """Modes for ``root``: the profile's when it is the profile of this
    root, nmh's defaults otherwise."""
    if profile is None or profile.path is None:
        return DEFAULT_PROTECTION
    try:
        same = profile.path.resolve() == root.resolve()
    except OSError:
        return DEFAULT_PROTECTION
    return profile.protection if same else DEFAULT_PROTECTION
