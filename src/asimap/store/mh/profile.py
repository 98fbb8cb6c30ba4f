"""The bits of the MH profile that change how a folder's files read.

nmh finds its profile through ``$MH`` or ``~/.mh_profile`` (``mh-profile(5)``).
Two entries matter to us:

* ``Path:`` -- the MH root (relative paths are relative to ``$HOME``);
* ``Unseen-Sequence:`` -- the sequence(s) ``inc`` adds new mail to and
  ``show`` removes read mail from.  We maintain all of them as the
  complement of ``\\Seen``.

A server serves many roots, so a profile applies only to the root its
``Path:`` names; every other root uses asimap 2.x's fixed ``unseen``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: What asimap 2.x used, and nmh's conventional setting.
DEFAULT_UNSEEN: tuple[str, ...] = ("unseen",)


@dataclass(frozen=True, slots=True)
class Profile:
    """The profile entries we honour."""

    path: Path | None
    unseen: tuple[str, ...]


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
    return Profile(path=path, unseen=unseen or DEFAULT_UNSEEN)


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
