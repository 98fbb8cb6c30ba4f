"""The IMAP session: one connection's state machine and command dispatch.

The session is transport-agnostic and never writes wire syntax: it receives
typed commands (:mod:`asimap.imap.commands`), sends typed responses
(:mod:`asimap.imap.responses`) through :class:`ClientIO`, and talks to the
account's store.  Dispatch is two tables:

* :data:`asimap.imap.session.state.ALLOWED` -- which states a command may
  run in (wrong state -> tagged BAD, connection kept);
* :data:`HANDLERS` -- which function runs it.

Around every handler the dispatcher does the same things, so handlers need
not: it turns :class:`CommandFailed` into the tagged NO/BAD, turns any
other exception into ``NO [SERVERBUG]`` (RFC 5530) after logging it, and,
when a mailbox is selected, reports the mailbox's pending changes before
the tagged response -- withholding expunges during FETCH, STORE, SEARCH and
COPY by sequence number (RFC 3501 section 7.4.1).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asimap.imap import commands as c
from asimap.imap.clientio import ClientIO
from asimap.imap.parser import PendingCommand
from asimap.imap.responses import (
    Atom,
    Code,
    Response,
    Status,
    Tagged,
    UntaggedStatus,
    Value,
)
from asimap.imap.session import (
    condstore,
    enable,
    extensions,
    handlers_any,
    handlers_auth,
    handlers_conn,
    handlers_context,
    handlers_fetch,
    handlers_list,
    handlers_mailbox,
    handlers_metadata,
    handlers_quota,
    handlers_replace,
    handlers_search,
    handlers_select,
    handlers_selected,
    handlers_sort,
    handlers_thread,
    literal_limits,
    notify,
)
from asimap.imap.session.capabilities import capabilities
from asimap.imap.session.context import Context
from asimap.imap.session.errors import CommandFailed, store_error_response
from asimap.imap.session.literal_limits import append_limit
from asimap.imap.session.naming import mailbox_name, names_in_utf8
from asimap.imap.session.notifier import refresh_selected
from asimap.imap.session.quota import room_for
from asimap.imap.session.services import Services
from asimap.imap.session.state import SessionState, allowed, allowed_by_name
from asimap.store.base import MailboxNotFound, StoreError
from asimap.store.feed import ORIGIN

log = logging.getLogger(__name__)

Handler = Callable[[Context, Any], Awaitable[Tagged | None]]

#: Command class -> handler.  Every class here also appears in ALLOWED.
HANDLERS: dict[type[c.Command], Handler] = {
    c.Capability: handlers_any.handle_capability,
    c.Noop: handlers_any.handle_noop,
    c.Logout: handlers_any.handle_logout,
    c.Id: handlers_any.handle_id,
    c.StartTLS: handlers_auth.handle_starttls,
    c.Login: handlers_auth.handle_login,
    c.Authenticate: handlers_auth.handle_authenticate,
    c.Enable: enable.handle_enable,
    c.Compress: handlers_conn.handle_compress,
    c.Unauthenticate: handlers_conn.handle_unauthenticate,
    c.Select: handlers_select.handle_select,
    c.Idle: handlers_select.handle_idle,
    c.Create: handlers_mailbox.handle_create,
    c.Delete: handlers_mailbox.handle_delete,
    c.Rename: handlers_mailbox.handle_rename,
    c.Subscribe: handlers_mailbox.handle_subscribe,
    c.Unsubscribe: handlers_mailbox.handle_unsubscribe,
    c.Append: handlers_mailbox.handle_append,
    c.List: handlers_list.handle_list,
    c.Lsub: handlers_list.handle_lsub,
    c.Namespace: handlers_list.handle_namespace,
    c.Status: handlers_list.handle_status,
    c.GetMetadata: handlers_metadata.handle_getmetadata,
    c.SetMetadata: handlers_metadata.handle_setmetadata,
    c.Notify: notify.handle_notify,
    c.Check: handlers_selected.handle_check,
    c.Close: handlers_selected.handle_close,
    c.Unselect: handlers_selected.handle_unselect,
    c.Expunge: handlers_selected.handle_expunge,
    c.Store: handlers_selected.handle_store,
    c.Copy: handlers_selected.handle_copy,
    c.Move: handlers_selected.handle_move,
    c.Fetch: handlers_fetch.handle_fetch,
    c.Search: handlers_search.handle_search,
    c.Sort: handlers_sort.handle_sort,
    c.Thread: handlers_thread.handle_thread,
    c.CancelUpdate: handlers_context.handle_cancelupdate,  # RFC 5267
    c.Replace: handlers_replace.handle_replace,  # RFC 8508
    c.GetQuota: handlers_quota.handle_getquota,  # RFC 9208
    c.GetQuotaRoot: handlers_quota.handle_getquotaroot,
    c.SetQuota: handlers_quota.handle_setquota,
}

#: Commands that name messages by sequence number (when not UID): expunges
#: must not be announced while they run (RFC 3501 7.4.1, RFC 9051 7.5.1;
#: RFC 5256 section 3 for SORT and THREAD).
_SEQUENCE_COMMANDS = (c.Fetch, c.Store, c.Search, c.Copy, c.Sort, c.Thread)

#: Commands that add messages themselves: no NOTIFY MessageNew FETCH for
#: what they created (RFC 5465 section 5.2).
_CREATING_COMMANDS = (c.Append, c.Copy, c.Move)


def _expunges_allowed(command: c.Command) -> bool:
    if isinstance(command, _SEQUENCE_COMMANDS):
        return command.uid
    return True


def _is_uid_command(command: c.Command) -> bool:
    return bool(getattr(command, "uid", False)) or (
        isinstance(command, c.Expunge) and command.uids is not None
    )


class Session:
    """One IMAP connection's session (see the module docstring)."""

    def __init__(self, io: ClientIO, services: Services) -> None:
        self._ctx = Context(io=io, services=services)

    @property
    def state(self) -> SessionState:
        return self._ctx.state

    def greeting(self) -> Response:
        """``* OK [CAPABILITY ...] asimap ready`` (RFC 3501 7.1.1)."""
        caps: tuple[Value, ...] = tuple(Atom(n) for n in capabilities(self._ctx))
        name = self._ctx.services.server_name
        return UntaggedStatus(Status.OK, f"{name} ready", Code("CAPABILITY", caps))

    async def handle(self, command: c.Command | c.ParseError) -> bool:
        """Run one command to its tagged response; False = close now."""
        try:
            return await self._handle(command)
        finally:
            # What check_literal opened belongs to this command only.
            self._ctx.append_target = None

    async def _handle(self, command: c.Command | c.ParseError) -> bool:
        if isinstance(command, c.ParseError):
            await self._ctx.io.send(_parse_error_response(command))
            return True
        # Store changes made by this command carry this connection as their
        # origin, so NOTIFY does not report them back (RFC 5465 section 5).
        origin = ORIGIN.set(self._ctx)
        condstore_before = extensions.condstore(self._ctx.enabled)
        try:
            tagged = await self._run(command)
            if tagged is not None:
                updates = await self._updates(command)
                updates += condstore.announce_if_enabled(
                    self._ctx, condstore_before, command
                )
                # What the handler held goes first, all in one write.
                held = self._ctx.take_held()
                await self._ctx.io.send(*held, *updates, tagged)
            elif self._ctx.held:
                await self._ctx.io.send(*self._ctx.take_held())
        finally:
            ORIGIN.reset(origin)
        return self._ctx.state is not SessionState.LOGOUT

    async def _run(self, command: c.Command) -> Tagged | None:
        state = self._ctx.state
        permitted = allowed(command, state)
        name = type(command).__name__.upper()
        if permitted is None:
            return Tagged(command.tag, Status.BAD, "Command not supported")
        if not permitted:
            return Tagged(
                command.tag,
                Status.BAD,
                f"{name} not allowed in the {state.value} state",
            )
        handler = HANDLERS[type(command)]
        try:
            with names_in_utf8(extensions.utf8(self._ctx.enabled)):
                return await handler(self._ctx, command)
        except CommandFailed as failure:
            return Tagged(command.tag, failure.status, failure.text, failure.code)
        except MemoryError:
            # The worker's memory limit (asimap.worker.memory): this command
            # needed more.  What it built is garbage now; collect it, so
            # that the next command starts from where this one did.
            gc.collect()
            log.warning("%s ran out of memory (the worker's limit)", name)
            return Tagged(
                command.tag,
                Status.NO,
                "Not enough memory for this command",
                Code("LIMIT"),
            )
        except StoreError as error:
            # A store error a handler did not map itself (a full disk met
            # while reading, store/mh/space.py): still NO with its code.
            mapped = store_error_response(error)
            return Tagged(command.tag, mapped.status, mapped.text, mapped.code)
        except Exception:
            log.exception("%s failed", name)
            return Tagged(command.tag, Status.NO, "Internal error", Code("SERVERBUG"))

    async def _updates(self, command: c.Command) -> list[Response]:
        """Pending mailbox changes to send before the tagged response."""
        view = self._ctx.selected
        if view is None or self._ctx.state is not SessionState.SELECTED:
            return []
        try:
            with names_in_utf8(extensions.utf8(self._ctx.enabled)):
                return await refresh_selected(
                    self._ctx,
                    allow_expunge=_expunges_allowed(command),
                    with_uid=_is_uid_command(command),
                    unsolicited=False,
                    fetch_new=not isinstance(command, _CREATING_COMMANDS),
                )
        except StoreError as error:
            # Logged where it arose (a full disk: store/mh/space.py); the
            # changes are reported with the next command.
            log.debug("could not report mailbox changes: %s", error)
            return []
        except Exception:
            log.exception("could not report mailbox changes")
            return []

    async def check_literal(
        self, pending: PendingCommand, size: int, synchronizing: bool
    ) -> Response | None:
        """Accept (None) or refuse a literal before it is read.

        Refusals: a command not valid in this state (BAD), APPEND larger
        than APPENDLIMIT (``NO [TOOBIG]``, RFC 7889), a literal of any other
        command above ``max_small_literal`` (so a 60 MB "password" is never
        read into memory), APPEND or REPLACE of a message the account's
        quota cannot take (``NO [OVERQUOTA]``, RFC 9208), APPEND or REPLACE
        to a mailbox that does not exist (``NO [TRYCREATE]``, RFC 3501
        6.3.11, RFC 8508 section 3) -- the client learns it without
        uploading the message.
        """
        del synchronizing
        tag = pending.tag
        if tag is None:
            return None  # the reader's own cap applies; the parser says BAD
        if pending.name is None:
            return literal_limits.check_small_literal(self._ctx, tag, "", size)
        if allowed_by_name(pending.name, self._ctx.state) is False:
            return Tagged(tag, Status.BAD, f"{pending.name} not allowed in this state")
        if pending.name not in literal_limits.MESSAGE_COMMANDS:
            return literal_limits.check_small_literal(
                self._ctx, tag, pending.name, size
            )
        if size > append_limit(self._ctx):
            # RFC 7889 section 4: NO [TOOBIG], before the client uploads.
            return Tagged(tag, Status.NO, "Message too large", Code("TOOBIG"))
        store = self._ctx.store
        if store is None:
            return None
        try:
            fits = await room_for(store, size, first=pending.literal_index == 0)
        except StoreError:
            fits = True  # the command itself will report it properly
        if not fits:
            return Tagged(tag, Status.NO, "Over quota", Code("OVERQUOTA"))
        if pending.mailbox is None or pending.literal_index != 0:
            return None
        try:
            with names_in_utf8(extensions.utf8(self._ctx.enabled)):
                target = await store.mailbox(mailbox_name(pending.mailbox))
        except CommandFailed as failure:
            return Tagged(tag, failure.status, failure.text, failure.code)
        except MailboxNotFound:
            return Tagged(tag, Status.NO, "Mailbox does not exist", Code("TRYCREATE"))
        except StoreError:
            return None  # APPEND itself will report it properly
        # The handler of this command appends to it without opening it
        # again (one job of the store's thread less per APPEND).
        self._ctx.append_target = (pending.mailbox, target)
        return None

    # Asynchronous output (NOTIFY, RFC 5465) ---------------------------------

    @property
    def notifying(self) -> bool:
        """Whether responses may come between commands (NOTIFY SET is in
        effect, or its overflow notice is still to be sent)."""
        return self._ctx.notifier is not None

    async def wait_unsolicited(self) -> None:
        """Return once :meth:`unsolicited` has something to say."""
        notifier = self._ctx.notifier
        if notifier is None:
            await asyncio.Future()  # never: nothing will come
            return
        await notifier.wait()

    async def unsolicited(self) -> list[Response]:
        """Responses to send now, between commands (may be empty).

        RFC 5465 section 3.1: with NOTIFY the client "listens for event
        notifications all the time (even when no command is in progress)".
        """
        notifier = self._ctx.notifier
        if notifier is None or self._ctx.state is SessionState.LOGOUT:
            return []
        try:
            return await notifier.collect()
        except Exception:
            log.exception("could not build notifications")
            return []

    async def close(self) -> None:
        """The connection is gone: drop the selected view."""
        notify.stop_notifier(self._ctx)
        self._ctx.selected = None
        self._ctx.state = SessionState.LOGOUT


def _parse_error_response(error: c.ParseError) -> Response:
    if error.tag is None:
        return UntaggedStatus(Status.BAD, error.message)
    return Tagged(error.tag, Status.BAD, error.message)
