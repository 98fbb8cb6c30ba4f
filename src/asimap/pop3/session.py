"""The POP3 session: one connection's state machine and command dispatch.

Transport-agnostic like the IMAP session: it receives typed commands
(:mod:`asimap.pop3.commands`), writes bytes through :class:`Pop3IO`, and
talks to the account's store.  Dispatch is two tables --
:data:`asimap.pop3.states.ALLOWED` (which states accept a command) and
:data:`HANDLERS` (which function runs it) -- and around every handler the
dispatcher does the same things: a :class:`Pop3Error` becomes ``-ERR``,
a store error ``-ERR [SYS/TEMP]``, any other exception is logged and
answered ``-ERR [SYS/TEMP] Internal error``.  The connection survives all
of them (design.md section 4, rule 2).

Bad input is answered with ``-ERR``.  Before login, the third unknown,
malformed or not-yet-allowed command (or over-long line) is answered
``-ERR Too many invalid commands`` and ends the connection, as Dovecot's
login process does (:mod:`asimap.net.prelogin`); after login a command is
never punished with a disconnect (Dovecot drops a logged-in client after
20 bad commands): a user's buggy client keeps its session.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asimap.imap.session.services import Services
from asimap.net.prelogin import TOO_MANY_TEXT, InvalidCommands
from asimap.pop3 import commands as c
from asimap.pop3 import handlers_auth, handlers_mail
from asimap.pop3.context import Context
from asimap.pop3.errors import Pop3Error
from asimap.pop3.io import Pop3IO
from asimap.pop3.responses import Code, err, ok
from asimap.pop3.states import State, allowed
from asimap.store.base import StoreError

log = logging.getLogger(__name__)

Handler = Callable[[Context, Any], Awaitable[bytes | None]]

#: Command class -> handler; every class here also appears in ALLOWED.
HANDLERS: dict[type[c.Command], Handler] = {
    c.Capa: handlers_auth.handle_capa,
    c.Stls: handlers_auth.handle_stls,
    c.User: handlers_auth.handle_user,
    c.Pass: handlers_auth.handle_pass,
    c.Auth: handlers_auth.handle_auth,
    c.Stat: handlers_mail.handle_stat,
    c.List: handlers_mail.handle_list,
    c.Uidl: handlers_mail.handle_uidl,
    c.Retr: handlers_mail.handle_retr,
    c.Top: handlers_mail.handle_top,
    c.Dele: handlers_mail.handle_dele,
    c.Rset: handlers_mail.handle_rset,
    c.Noop: handlers_mail.handle_noop,
    c.Quit: handlers_mail.handle_quit,
}


class Pop3Session:
    """One POP3 connection's session (see the module docstring)."""

    def __init__(self, io: Pop3IO, services: Services) -> None:
        self._ctx = Context(io=io, services=services)
        self._invalid = InvalidCommands()

    @property
    def state(self) -> State:
        return self._ctx.state

    @property
    def authenticated(self) -> bool:
        return self._ctx.state is not State.AUTHORIZATION

    def greeting(self) -> bytes:
        """RFC 1939 section 4.  No APOP timestamp: APOP needs the clear
        password on the server, and our password file holds only hashes."""
        return ok(f"{self._ctx.services.server_name} POP3 ready")

    async def handle(self, command: c.Command | c.CommandError) -> bool:
        """Answer one command; False once the session is over (QUIT, or
        too many invalid commands before login)."""
        invalid = isinstance(command, c.CommandError) or not allowed(
            self._ctx.state, command
        )
        if invalid and not await self.note_invalid():
            return False
        reply = await self._answer(command)
        if reply:
            await self._ctx.io.send(reply)
        return self._ctx.state is not State.UPDATE

    async def note_invalid(self) -> bool:
        """An invalid command (or line): before login, the third one gets
        the closing ``-ERR`` here; False when the connection must end."""
        if self.authenticated or not self._invalid.note():
            return True
        log.info("%s: pop3 %s before login", self._ctx.io.peer_host, TOO_MANY_TEXT)
        await self._ctx.io.send(err(TOO_MANY_TEXT))
        return False

    async def _answer(self, command: c.Command | c.CommandError) -> bytes:
        if isinstance(command, c.CommandError):
            return err(command.text)
        if not allowed(self._ctx.state, command):
            return err(f"{type(command).__name__.upper()} not allowed now")
        try:
            reply = await HANDLERS[type(command)](self._ctx, command)
        except Pop3Error as failure:
            return err(failure.text, failure.code)
        except StoreError as exc:
            log.warning("pop3 store error: %s", exc)
            return err(str(exc), Code.SYS_TEMP)
        except (ConnectionError, TimeoutError):
            raise
        except MemoryError:
            # The worker's memory limit (asimap.worker.memory).
            gc.collect()
            log.warning("pop3: %s ran out of memory", type(command).__name__)
            return err("Not enough memory for this command", Code.SYS_TEMP)
        except Exception:
            log.exception("pop3: internal error in %r", command)
            return err("Internal error", Code.SYS_TEMP)
        return reply if reply is not None else b""

    async def close(self) -> None:
        """Nothing to release: an unfinished session commits nothing."""
        self._ctx.maildrop = None
