"""Who a worker runs as: the owner of the user's mail root.

Started as root, asimapd gives each worker the identity of the owner of
the mail root it serves -- supplementary groups, then gid, then uid (the
only order that works: after ``setuid`` nothing else may be changed) --
before the worker touches any mail, and checks that there is no way back:
real, effective and saved ids all equal the target and ``setuid(0)``
fails.  asimap 2.x never dropped privileges (design.md section 2); here a
bug in one user's worker can reach only what that user's files allow.

The owner is read through the path as given, so a symlink on the way
that neither root nor that owner made is refused
(:func:`check_links_to_mail_root`): otherwise a user could point their
mail root at another user's and have the worker become that user.

A mail root owned by root is refused unless ``allow_root_mail`` is set:
serving it would mean a worker that stays root, which must be a decision,
not an accident of how the directory was made.  A mail root that does not
exist yet (a new account) takes the owner of its nearest existing parent,
so an administrator creates accounts by making the directory owned by the
user, or lets a user-owned parent decide.

Started as an ordinary user, nothing changes: every worker runs as that
user, like the main process.
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path


class PrivilegeError(Exception):
    """The worker cannot (or must not) take the mail root owner's identity."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The credentials a worker runs with."""

    uid: int
    gid: int
    groups: tuple[int, ...]


def mail_root_owner(maildir: Path) -> tuple[int, int]:
    """(uid, gid) of ``maildir``, or of its nearest existing parent."""
    path = maildir.absolute()
    while True:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if path.parent == path:
                raise PrivilegeError(f"no existing parent of {maildir}") from None
            path = path.parent
            continue
        except OSError as exc:
            raise PrivilegeError(f"cannot inspect mail root {maildir}: {exc}") from None
        return st.st_uid, st.st_gid


#: Most symlinks followed on the way to a mail root (Linux's own limit).
MAX_LINKS = 40


def check_links_to_mail_root(maildir: Path, owner: int) -> None:
    """Refuse a mail root reached through a symlink that someone other
    than root or the mail root's owner made.

    The worker becomes whoever owns the directory the path leads to.  A
    user who can write the directory holding their mail root (their home,
    typically) could replace the mail root by a symlink to another user's
    mail root, and the worker would become that user and serve their mail
    to the wrong person.  A symlink owned by root (an administrator moving
    mail elsewhere) or by the owner found at the end is trusted; any other
    raises :class:`PrivilegeError`.  Each link is followed as the kernel
    would, so links inside link targets are checked too.
    """
    parts = list(maildir.absolute().parts)
    current = Path(parts[0])
    index, followed = 1, 0
    while index < len(parts):
        candidate = current / parts[index]
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            return  # the rest is still to be made, by the worker as owner
        except OSError as exc:
            raise PrivilegeError(f"cannot inspect {candidate}: {exc}") from None
        if not stat.S_ISLNK(st.st_mode):
            current, index = candidate, index + 1
            continue
        if st.st_uid not in (0, owner):
            raise PrivilegeError(
                f"mail root {maildir} is reached through the symbolic link "
                f"{candidate}, owned by uid {st.st_uid} and not by the mail "
                f"root's owner (uid {owner}) or root; refusing to serve it"
            )
        followed += 1
        if followed > MAX_LINKS:
            raise PrivilegeError(f"too many symbolic links on the way to {maildir}")
        target = Path(os.readlink(candidate))
        base = target if target.is_absolute() else current / target
        parts = list(base.parts) + parts[index + 1 :]
        current, index = Path(parts[0]), 1


def target_identity(maildir: Path, *, allow_root_mail: bool) -> Identity | None:
    """The identity a worker for ``maildir`` must take; None = stay as is.

    Raises :class:`PrivilegeError` for a root-owned mail root without
    ``allow_root_mail`` (only when running as root: otherwise nothing can
    change and the file permissions decide).
    """
    if os.geteuid() != 0:
        return None
    uid, gid = mail_root_owner(maildir)
    check_links_to_mail_root(maildir, uid)
    if uid == 0:
        if not allow_root_mail:
            raise PrivilegeError(
                f"mail root {maildir} is owned by root; refusing to serve it "
                "as root (chown it to its user, or set ALLOW_ROOT_MAIL)"
            )
        return None
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        groups: tuple[int, ...] = (gid,)
    else:
        # The user's groups from the system databases (initgroups(3)).
        groups = tuple(sorted(set(os.getgrouplist(name, gid))))
    return Identity(uid, gid, groups)


def drop_privileges(identity: Identity) -> None:
    """Become ``identity`` for good, or raise :class:`PrivilegeError`.

    Order matters: supplementary groups and the gid can only be changed
    while still root.  ``setres[ug]id`` set the real, effective and saved
    ids at once, so no saved root id remains to return to.
    """
    try:
        os.setgroups(list(identity.groups))
        os.setresgid(identity.gid, identity.gid, identity.gid)
        os.setresuid(identity.uid, identity.uid, identity.uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot switch to uid {identity.uid}: {exc}") from exc
    verify_dropped(identity)


def verify_dropped(identity: Identity) -> None:
    """Check the switch took, and that root cannot be regained."""
    uids = os.getresuid()
    gids = os.getresgid()
    if uids != (identity.uid,) * 3 or gids != (identity.gid,) * 3:
        raise PrivilegeError(f"ids after the switch are {uids} / {gids}")
    if set(os.getgroups()) - set(identity.groups):
        raise PrivilegeError(f"unexpected supplementary groups {os.getgroups()}")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise PrivilegeError("setuid(0) succeeded after dropping privileges")
