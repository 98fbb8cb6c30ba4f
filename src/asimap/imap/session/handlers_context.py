"""RETURN (UPDATE) and CANCELUPDATE (RFC 5267 sections 4.3-4.3.5).

SEARCH and SORT call :func:`check_update_tag` before they search and
:func:`start_updates` once their ESEARCH response is out; the contexts
themselves live in :mod:`update_contexts`, on the selected view, so that
they end with the selection (section 4.3: "Updates will cease when the
mailbox is no longer selected").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from asimap.imap import commands as c
from asimap.imap.responses import Code, Status, Tagged, UntaggedStatus
from asimap.imap.session import esearch
from asimap.imap.session.context import Context
from asimap.imap.session.errors import bad, no
from asimap.imap.session.selected import SelectedMailbox
from asimap.imap.session.update_contexts import Contexts, make_context

log = logging.getLogger(__name__)

UPDATE = "UPDATE"


def wants_updates(return_options: tuple[str, ...] | None) -> bool:
    return return_options is not None and UPDATE in return_options


def _contexts(view: SelectedMailbox) -> Contexts | None:
    watcher = view.watcher
    return watcher if isinstance(watcher, Contexts) else None


def check_update_tag(view: SelectedMailbox, cmd: c.Search | c.Sort) -> None:
    """Section 4.3: UPDATE with the tag of a live context is BAD, and the
    command has no effect at all."""
    contexts = _contexts(view)
    if wants_updates(cmd.return_options) and contexts and cmd.tag in contexts:
        raise bad("Tag reuse")


async def start_updates(
    ctx: Context,
    view: SelectedMailbox,
    cmd: c.Search | c.Sort,
    found: Sequence[esearch.Found],
) -> None:
    """Keep an update context for ``cmd`` if it asked for one, or say
    ``* NO [NOUPDATE "tag"]`` when the connection holds too many (section
    4.3.1; the other return options were honoured all the same)."""
    if not wants_updates(cmd.return_options):
        return
    criteria = cmd.criteria if isinstance(cmd, c.Sort) else None
    context = make_context(
        cmd.tag, cmd.key, view, found, uid=cmd.uid, criteria=criteria
    )
    contexts = _contexts(view)
    if contexts is None:
        contexts = Contexts()
        view.watcher = contexts
    # RFC 5267 section 6: log context creation so that an administrator
    # can see who holds many.
    if not contexts.add(context):
        log.info("update context %r refused: %d live", cmd.tag, len(contexts))
        code = Code("NOUPDATE", (cmd.tag,))
        await ctx.io.send(UntaggedStatus(Status.NO, "Too many contexts", code))
        return
    log.debug(
        "update context %r: %d messages, %d live", cmd.tag, len(found), len(contexts)
    )


async def handle_cancelupdate(ctx: Context, cmd: c.CancelUpdate) -> Tagged:
    """Section 4.3.5: stop the named contexts.  A tag naming no live
    context is the client's mistake about the session's state, so the
    command fails with NO and cancels nothing (ACAP's FREECONTEXT, which
    the section borrows from, answers "NO no such context")."""
    view = ctx.require_selected()
    contexts = _contexts(view)
    unknown = [tag for tag in cmd.tags if contexts is None or tag not in contexts]
    if unknown:
        raise no("No update context has that tag")
    assert contexts is not None
    contexts.cancel(cmd.tags)
    return Tagged(cmd.tag, Status.OK, "No further updates")
