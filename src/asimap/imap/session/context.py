"""The per-connection state that every command handler works on.

Handlers are plain functions ``(ctx, command) -> Tagged | None`` registered
in a table (see :mod:`asimap.imap.session.session`); :class:`Context` is the
one object they share.  Keeping it a small data holder (no behaviour beyond
convenience accessors) keeps handlers independent of each other and of the
dispatcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from asimap.auth.account import Account
from asimap.imap.clientio import ClientIO
from asimap.imap.responses import Response
from asimap.imap.session.selected import SelectedMailbox
from asimap.imap.session.services import Services
from asimap.imap.session.state import SessionState
from asimap.store.base import Mailbox, Store

if TYPE_CHECKING:
    from asimap.imap.session.notifier import Notifier


#: Responses :meth:`Context.hold` keeps before sending them anyway.
HOLD_MAX = 256


@dataclass(eq=False, slots=True)
class Context:
    io: ClientIO
    services: Services
    state: SessionState = SessionState.NOT_AUTHENTICATED
    account: Account | None = None
    store: Store | None = None
    selected: SelectedMailbox | None = None
    #: Capabilities the client turned on with ENABLE (RFC 5161).
    enabled: set[str] = field(default_factory=set)
    #: What the client said about itself in ID (RFC 2971), for logs.
    client_id: tuple[tuple[str, str | None], ...] | None = None
    #: NOTIFY's per-connection notifier while NOTIFY SET is in effect
    #: (RFC 5465); None before NOTIFY and after NOTIFY NONE.
    notifier: Notifier | None = None
    #: Untagged responses a handler left to go out with its tagged one
    #: (:meth:`hold`); None when there are none.
    held: list[Response] | None = None
    #: The mailbox ``Session.check_literal`` opened for the APPEND or
    #: REPLACE being read (its raw name, as the command spells it), so the
    #: handler of the same command does not open it again; None between
    #: commands.
    append_target: tuple[bytes, Mailbox] | None = None

    async def hold(self, *responses: Response) -> None:
        """Send ``responses`` with the command's tagged response, in one
        write: every write on a worker's socket is a syscall, a wakeup of
        the main process and a TLS record for the client, and a FETCH or a
        STATUS used to cost two.  Past :data:`HOLD_MAX` held responses they
        go out now, so memory stays bounded.  A handler that holds sends
        everything else it has to say through :meth:`hold` too (order)."""
        held = self.held
        if held is None:
            held = self.held = []
        held.extend(responses)
        if len(held) >= HOLD_MAX:
            await self.io.send(*self.take_held())

    def take_held(self) -> list[Response]:
        """The held responses, now no longer held."""
        held, self.held = self.held, None
        return held or []

    def require_store(self) -> Store:
        """The account's store; only called in authenticated states."""
        if self.store is None:  # pragma: no cover - guarded by the state table
            raise RuntimeError("no store outside the authenticated states")
        return self.store

    def require_selected(self) -> SelectedMailbox:
        """The selected view; only called in the selected state."""
        if self.selected is None:  # pragma: no cover - guarded by the table
            raise RuntimeError("no mailbox selected")
        return self.selected
