"""The authenticated identity that the rest of the server works with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Account:
    """A user who proved who they are, and where their mail lives."""

    username: str
    maildir: Path


class Authenticator(Protocol):
    """Checks credentials; implemented by ``asimap.auth.authenticator``.

    ``authenticate`` returns the account on success and None on *any*
    failure (unknown user, wrong password, unusable password),
    so that the answer never tells whether a user exists.  Password hashing
    runs off the event loop.
    """

    async def authenticate(
        self, username: str, password: str, peer_host: str
    ) -> Account | None: ...
