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
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from bench.dovecot import DovecotServer
from bench.imapload.runner import Credentials

from asimap.tls import generate_self_signed
from worker_harness import PASSWORDS, Asimapd, mail_setup

from .wire import RawClient

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
    """Where one server listens and how to reach it."""

    name: str
    host: str
    port: int
    security: str  # "tls" or "starttls"

    def connect(self) -> RawClient:
        return RawClient(self.host, self.port, security=self.security)


@contextlib.contextmanager
def asimap_server(*, workers: bool = True) -> Iterator[Endpoint]:
    """asimapd with the MH store, as deployed (worker mode by default)."""
    with mail_setup() as setup:
        cert, key = setup.base / "cert.pem", setup.base / "key.pem"
        generate_self_signed(cert, key, ["127.0.0.1"])
        args = [] if workers else ["--workers=off"]
        server = Asimapd(setup, cert, key, *args)
        try:
            yield Endpoint("asimap", "127.0.0.1", server.ports["imaps"], "tls")
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
        yield Endpoint("dovecot", dovecot.host, dovecot.port, "starttls")
