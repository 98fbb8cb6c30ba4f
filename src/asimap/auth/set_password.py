"""``asimapd_set_password``: create or update an account in the password file.

Usage (design.md section 2, unchanged from asimap 2.x)::

    asimapd_set_password [--pwfile=F] <user> [<password>] [<maildir>]

* The password file is found like ``asimapd`` finds it: ``--pwfile``, else
  ``PWFILE`` (from the environment or a ``.env`` file in the current
  directory), else ``/opt/asimap/pwfile``.
* Without a password argument, on a terminal, the password is asked twice
  (``getpass``); off a terminal, or if the answer is empty, the account gets
  an *unusable* password (``!`` + random): "no password at all" can never
  mean "any password".  The password is hashed with Django's default
  hasher (``asimap.auth.hashers.make_password``).
* The maildir defaults to the existing one for an existing user, else to
  ``<user>`` (relative, so it lives beside the password file).

The file is rewritten atomically (design.md section 4, rule 1): a temporary
file in the same directory is written, fsynced, given the old file's mode
(0600 for a new file) and renamed over the original, so the server -- which
re-reads the file when it changes -- sees either the old or the new
content, never half of it.  Comments, blank lines, other accounts and even
malformed lines are kept exactly as they were.  A lock file beside the
password file serialises concurrent runs, so two updates cannot lose one
another.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import getpass
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from asimap.auth import hashers
from asimap.auth.pwfile import is_ignored_line, is_valid_username
from asimap.cli import environment_with_dotenv
from asimap.config import Config

_NEW_FILE_MODE = 0o600


class SetPasswordError(Exception):
    """A problem to report to the user (exit status 1)."""


@dataclass(frozen=True, slots=True)
class Update:
    """What ``update_account`` did."""

    created: bool
    maildir: str


def resolve_pwfile(flag: str | None, environ: Mapping[str, str]) -> Path:
    """Same resolution as ``asimapd``: flag > env > ``.env`` > default."""
    if flag:
        return Path(flag)
    value = environment_with_dotenv(environ).get("PWFILE", "").strip()
    return Path(value) if value else Config().pwfile


def _split_fields(line: str) -> list[str] | None:
    """The fields of an account line, or None for lines we must not touch."""
    if is_ignored_line(line):
        return None
    fields = [f.strip() for f in line.strip().split(":", 2)]
    return fields if len(fields) == 3 else None


def _render(username: str, password_hash: str, maildir: str) -> str:
    return f"{username}:{password_hash}:{maildir}\n"


def updated_lines(
    lines: Sequence[str], username: str, password_hash: str, maildir: str | None
) -> tuple[list[str], Update]:
    """The file's lines with ``username``'s account set (pure function).

    The first line for the user is replaced (the one the server uses);
    everything else is kept byte for byte.  A missing maildir keeps the
    user's current one, or defaults to the username.
    """
    result = list(lines)
    for index, line in enumerate(result):
        fields = _split_fields(line)
        if fields is None or fields[0] != username:
            continue
        new_maildir = maildir if maildir is not None else fields[2]
        result[index] = _render(username, password_hash, new_maildir or username)
        return result, Update(created=False, maildir=new_maildir or username)
    if result and not result[-1].endswith("\n"):
        result[-1] += "\n"
    new_maildir = maildir if maildir is not None else username
    result.append(_render(username, password_hash, new_maildir))
    return result, Update(created=True, maildir=new_maildir)


@contextlib.contextmanager
def _locked(pwfile: Path) -> Iterator[None]:
    # The password file itself is replaced by rename, so a lock on it would
    # be lost; lock a stable sidecar file instead.
    lock_path = pwfile.with_name(f".{pwfile.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, _NEW_FILE_MODE)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: temp file, fsync, rename, fsync dir."""
    try:
        old = os.stat(path)
        mode, owner = old.st_mode & 0o7777, (old.st_uid, old.st_gid)
    except FileNotFoundError:
        mode, owner = _NEW_FILE_MODE, None
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if owner is not None and os.geteuid() == 0:
                os.fchown(f.fileno(), *owner)
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def update_account(
    pwfile: Path, username: str, password_hash: str, maildir: str | None
) -> Update:
    """Set ``username``'s hash (and maildir) in ``pwfile``, creating either."""
    if not is_valid_username(username):
        raise SetPasswordError(f"invalid username {username!r} (no ':' or controls)")
    if maildir is not None and (not maildir.strip() or "\n" in maildir):
        raise SetPasswordError(f"invalid maildir {maildir!r}")
    if ":" in password_hash or any(c.isspace() for c in password_hash):
        raise SetPasswordError("hash must not contain ':' or spaces")
    if not pwfile.parent.is_dir():
        raise SetPasswordError(f"directory does not exist: {pwfile.parent}")
    with _locked(pwfile):
        try:
            lines = pwfile.read_text(encoding="utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            lines = []
        except (OSError, UnicodeDecodeError) as exc:
            raise SetPasswordError(f"cannot read {pwfile}: {exc}") from exc
        new_lines, update = updated_lines(lines, username, password_hash, maildir)
        write_atomically(pwfile, "".join(new_lines))
    return update


def _ask_password(username: str) -> str:
    """Prompt twice on the terminal; an empty answer means no password."""
    first = getpass.getpass(f"Password for {username}: ")
    if not first:
        return ""
    if getpass.getpass("Again: ") != first:
        raise SetPasswordError("passwords do not match; nothing changed")
    return first


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asimapd_set_password",
        description="Create or update an account in the asimapd password file.",
    )
    parser.add_argument("--pwfile", help="password file (PWFILE; /opt/asimap/pwfile)")
    parser.add_argument("user")
    parser.add_argument(
        "password",
        nargs="?",
        help="omit to be asked (on a terminal); no password sets an unusable one",
    )
    parser.add_argument(
        "maildir", nargs="?", help="default: unchanged, or <user> for a new account"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asimapd_set_password``."""
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    pwfile = resolve_pwfile(args.pwfile, os.environ)
    try:
        password: str | None = args.password
        if password is None:
            password = _ask_password(args.user) if sys.stdin.isatty() else ""
        password_hash = (
            hashers.make_password(password)
            if password
            else hashers.make_unusable_password()
        )
        update = update_account(pwfile, args.user, password_hash, args.maildir)
    except (SetPasswordError, OSError) as exc:
        print(f"asimapd_set_password: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("\nasimapd_set_password: cancelled; nothing changed", file=sys.stderr)
        return 1
    verb = "created" if update.created else "updated"
    note = "" if password else " with an unusable password (login disabled)"
    print(f"{verb} account {args.user!r} in {pwfile}{note}; maildir {update.maildir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
