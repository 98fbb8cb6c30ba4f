"""The data sets of ``bench.mh_large``: one huge folder, and a many-folder account.

Both are written once, straight to disk (never APPENDed over IMAP: 100,000
APPENDs would take longer than the benchmark), and cached under a directory
that survives between runs.  Each data set exists twice with the *same
message files*: as an MH root (numbered files, ``.mh_sequences``) for
asimap and as a Maildir++ tree (``cur/`` files named with their flags) for
Dovecot.  The Maildir file is a hard link to the MH file, so the two servers
read the very same bytes from the very same inode, and the cache costs the
disk once.

Every measured account is a *fresh copy* made of hard links
(:func:`link_tree`): a server may add its own files (asimap's database,
Dovecot's indexes and ``dovecot-uidlist``) or rewrite ``.mh_sequences``
(atomically, i.e. a new inode), but message files are only ever read, so
the cache stays pristine and a copy of 100,000 messages takes seconds.

Flags are realistic for an old, well-read folder: everything seen except
the newest 1 %, every 40th message flagged and every 15th answered.  MH
writes them as asimap 2.x leaves them (``Seen``/``unseen`` complementary,
``flagged``, ``replied``); Maildir as ``:2,`` info letters (``F``, ``R``,
``S``), with ``S=`` (size) and ``W=`` (size with CRLF line ends) in the
file name as Dovecot's own deliveries have.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from asimap.store.mh.sequences import format_ranges
from bench.imapload.corpus import DEFAULT_CORPUS, load_corpus

#: Dovecot's mail processes run as nobody when we are root.
NOBODY = 65534

#: A fixed epoch for file mtimes (INTERNALDATE for both servers): one
#: message a minute, ending well in the past, so nothing is "racy".
_BASE_TIME = 1_600_000_000


@dataclass(frozen=True, slots=True)
class DataSet:
    """Where one cached data set lives."""

    mh: Path  # the MH root (inbox/ and folders)
    maildir: Path  # the Maildir++ root (cur/ new/ tmp/ and .folders)
    folders: tuple[str, ...]  # IMAP names, INBOX first
    per_folder: int


def corpus_messages(path: Path = DEFAULT_CORPUS) -> list[bytes]:
    """The corpus with LF line ends, as MH and Maildir files have on disk
    (both servers add the CRs on the wire)."""
    return [m.replace(b"\r\n", b"\n") for m in load_corpus(path)]


def flags_of(number: int, total: int) -> str:
    """Maildir info letters of message ``number`` (1-based) of ``total``."""
    letters = ""
    if number % 40 == 0:
        letters += "F"
    if number % 15 == 0:
        letters += "R"
    if number <= total - max(1, total // 100):
        letters += "S"
    return letters


def mh_sequences_text(total: int) -> str:
    """``.mh_sequences`` matching :func:`flags_of`, in the sorted order
    asimap writes (so that serving the folder rewrites nothing)."""
    seen_upto = total - max(1, total // 100)
    sequences = {
        "Seen": range(1, seen_upto + 1),
        "flagged": range(40, total + 1, 40),
        "replied": range(15, total + 1, 15),
        "unseen": range(seen_upto + 1, total + 1),
    }
    return "".join(
        f"{name}: {format_ranges(numbers)}\n"
        for name, numbers in sorted(sequences.items())
        if numbers
    )


def _write_folder(
    mh_folder: Path,
    maildir_folder: Path,
    messages: Sequence[bytes],
    count: int,
    offset: int,
) -> None:
    """``count`` messages (corpus order, starting at ``offset``, wrapping)
    as MH files ``1..count`` plus Maildir links with the same flags."""
    mh_folder.mkdir(parents=True, exist_ok=True)
    for sub in ("cur", "new", "tmp"):
        (maildir_folder / sub).mkdir(parents=True, exist_ok=True)
    for number in range(1, count + 1):
        data = messages[(offset + number - 1) % len(messages)]
        path = mh_folder / str(number)
        path.write_bytes(data)
        moment = _BASE_TIME + (offset + number) * 60
        os.utime(path, (moment, moment))
        vsize = len(data) + data.count(b"\n")
        name = (
            f"{moment}.M{number}P{offset}.bench,S={len(data)},W={vsize}"
            f":2,{flags_of(number, count)}"
        )
        os.link(path, maildir_folder / "cur" / name)
    (mh_folder / ".mh_sequences").write_text(mh_sequences_text(count))


def build(
    cache: Path, name: str, folders: int, per_folder: int, messages: Sequence[bytes]
) -> DataSet:
    """The data set ``name`` under ``cache``, written if not there yet.

    ``folders`` folders (INBOX and ``folder0001``...) of ``per_folder``
    messages each.  A ``.complete`` marker is written last, so an
    interrupted build is redone rather than half used.
    """
    base = cache / f"{name}-{folders}x{per_folder}"
    names = ("INBOX", *(f"folder{i:04d}" for i in range(1, folders)))
    data = DataSet(base / "mh", base / "maildir", names, per_folder)
    if (base / ".complete").exists():
        return data
    shutil.rmtree(base, ignore_errors=True)
    for index, folder in enumerate(names):
        mh_name = "inbox" if folder == "INBOX" else folder
        maildir = data.maildir if folder == "INBOX" else data.maildir / f".{folder}"
        _write_folder(
            data.mh / mh_name, maildir, messages, per_folder, index * per_folder
        )
    if os.geteuid() == 0:
        # The files are shared with every copy; Dovecot reads them as nobody.
        for path in _walk(data.maildir):
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    (base / ".complete").write_text("ok\n")
    return data


def _walk(root: Path) -> Iterator[Path]:
    for directory, dirnames, filenames in os.walk(root):
        yield Path(directory)
        for entry in (*dirnames, *filenames):
            yield Path(directory) / entry


def link_tree(source: Path, target: Path, owner: int | None = None) -> None:
    """A copy of ``source`` at ``target``: new directories, hard-linked files.

    ``owner`` (uid=gid) is given to the new directories, so that a server
    running as that user can add its own files.  Files whose names start
    with a dot (``.mh_sequences``) are real copies owned by ``owner``: a
    server may rewrite them in place (as nmh does), which through a hard
    link would change the cache and every other copy, and must be allowed
    to, as the account's owner is.
    """
    for directory, _dirnames, filenames in os.walk(source):
        relative = Path(directory).relative_to(source)
        made = target / relative
        made.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            os.chown(made, owner, owner)
        for filename in filenames:
            if filename.startswith("."):
                shutil.copy2(Path(directory) / filename, made / filename)
                if owner is not None:
                    os.chown(made / filename, owner, owner)
            else:
                os.link(Path(directory) / filename, made / filename)
