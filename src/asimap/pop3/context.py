"""The per-connection state shared by the POP3 command handlers."""

from __future__ import annotations

from dataclasses import dataclass

from asimap.auth.account import Account
from asimap.imap.session.services import Services
from asimap.pop3.io import Pop3IO
from asimap.pop3.maildrop import Maildrop
from asimap.pop3.states import State


@dataclass(eq=False, slots=True)
class Context:
    io: Pop3IO
    services: Services
    state: State = State.AUTHORIZATION
    #: The name given by USER, waiting for PASS (RFC 1939 section 7).
    pending_user: str | None = None
    account: Account | None = None
    maildrop: Maildrop | None = None

    def require_maildrop(self) -> Maildrop:
        """The snapshot; only called in TRANSACTION (guarded by the table)."""
        if self.maildrop is None:  # pragma: no cover - guarded by ALLOWED
            raise RuntimeError("no maildrop outside TRANSACTION")
        return self.maildrop
