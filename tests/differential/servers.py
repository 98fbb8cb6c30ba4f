"""The two servers under comparison, both real processes on loopback.

asimap runs as in production: ``python -m asimap.cli`` with the MH store
and one worker process per user (the default), its mail root owned by an
unprivileged user when we are root.  Dovecot is the private instance of
``bench.dovecot`` with what it needs to look like the same account: ``/``
as the hierarchy delimiter (asimap's, from the MH directory tree) and the
special-use mailboxes asimap creates for a new account (RFC 6154), made
and subscribed on first login as asimap does.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.dovecot import DovecotServer
from bench.imapload.runner import Credentials

from asimap.tls import generate_self_signed
from conftest import require_tool
from worker_harness import PASSWORDS, Asimapd, mail_setup

from .wire import RawClient

#: nmh's delivery agent (not on PATH: nmh keeps it in its lib directory).
RCVSTORE = Path("/usr/lib/mh/rcvstore")

USER = "demo"
PASSWORD = PASSWORDS[USER]

#: Special-use mailboxes of a new asimap account (RFC 6154 attributes).
SPECIAL_USE = {
    "Junk": "\\Junk",
    "Archive": "\\Archive",
    "Sent Messages": "\\Sent",
    "Drafts": "\\Drafts",
    "Deleted Messages": "\\Trash",
}

_MAILBOXES = "".join(
    f'  mailbox "{name}" {{\n    special_use = {use}\n    auto = create\n  }}\n'
    for name, use in SPECIAL_USE.items()
)

#: Appended to bench.dovecot's configuration (later settings win).
DOVECOT_EXTRA = (
    """
mail_location = maildir:{root}/mail/%u:LAYOUT=fs
namespace inbox {
  inbox = yes
  separator = /
  prefix =
"""
    + _MAILBOXES
    + "}\n"
)


@dataclass(frozen=True)
class Endpoint:
    """Where one server listens, how to reach it, and how a message is put
    into the user's INBOX without IMAP (as a delivery agent does)."""

    name: str
    host: str
    port: int
    security: str  # "tls" or "starttls"
    deliver: Callable[[bytes], None]

    def connect(self) -> RawClient:
        return RawClient(self.host, self.port, security=self.security)


_delivered = itertools.count(1)


def _place(folder: Path, name: str, data: bytes) -> None:
    """``data`` as ``folder/name``, written aside and renamed in (as a
    Maildir delivery agent does), owned like the folder."""
    owner = folder.stat()
    temp = folder.parent / f".delivery-{name}"
    temp.write_bytes(data)
    os.chown(temp, owner.st_uid, owner.st_gid)
    temp.chmod(0o600)
    temp.rename(folder / name)


def _mh_deliver(root: Path, base: Path) -> Callable[[bytes], None]:
    """nmh's own delivery agent, ``rcvstore +inbox``, run as the owner of
    the mail root (whom the worker runs as), with the unseen sequence a
    user's profile names: new mail, exactly as an MTA would hand it over."""
    rcvstore = RCVSTORE if RCVSTORE.exists() else Path(require_tool("rcvstore"))
    owner = root.stat()
    home = base / "nmh-home"
    home.mkdir(mode=0o755, exist_ok=True)
    profile = home / "mh_profile"
    profile.write_text(f"Path: {root}\nUnseen-Sequence: unseen\n")
    profile.chmod(0o644)
    os.chown(home, owner.st_uid, owner.st_gid)

    def deliver(data: bytes) -> None:
        subprocess.run(
            [str(rcvstore), "+inbox"],
            input=data,
            env={"PATH": "/usr/bin:/bin", "MH": str(profile), "HOME": str(home)},
            capture_output=True,
            timeout=30,
            check=True,
            user=owner.st_uid,
            group=owner.st_gid,
            extra_groups=[] if os.geteuid() == 0 else None,
        )

    return deliver


def _maildir_deliver(home: Path) -> Callable[[bytes], None]:
    def deliver(data: bytes) -> None:
        _place(home / "new", f"{next(_delivered)}.M1P{os.getpid()}.differential", data)

    return deliver


@contextlib.contextmanager
def asimap_server(*, workers: bool = True) -> Iterator[Endpoint]:
    """asimapd with the MH store, as deployed (worker mode by default)."""
    with mail_setup() as setup:
        cert, key = setup.base / "cert.pem", setup.base / "key.pem"
        generate_self_signed(cert, key, ["127.0.0.1"])
        args = [] if workers else ["--workers=off"]
        server = Asimapd(setup, cert, key, *args)
        try:
            yield Endpoint(
                "asimap",
                "127.0.0.1",
                server.ports["imaps"],
                "tls",
                _mh_deliver(setup.roots[USER], setup.base),
            )
        except BaseException:
            tail = "\n".join(server.log().splitlines()[-40:])
            sys.stderr.write(f"asimapd log (last lines):\n{tail}\n")
            raise
        finally:
            try:
                server.stop()
            except Exception:
                server.kill()
                raise


@contextlib.contextmanager
def dovecot_server() -> Iterator[Endpoint]:
    """A private Dovecot with the same account layout."""
    with DovecotServer(
        [Credentials(USER, PASSWORD)], extra_config=DOVECOT_EXTRA
    ) as dovecot:
        assert dovecot.root is not None
        yield Endpoint(
            "dovecot",
            dovecot.host,
            dovecot.port,
            "starttls",
            _maildir_deliver(dovecot.root / "mail" / USER),
        )
