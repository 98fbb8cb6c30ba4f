"""NOTIFY (RFC 5465): the command.

``NOTIFY NONE`` stops notifications; ``NOTIFY SET [STATUS] groups``
replaces them (section 3.1: "NOTIFY SET replaces the current list of
interesting events with a new list of events").  The work between commands
is :mod:`asimap.imap.session.notifier`'s; the matching rules are in
:mod:`asimap.imap.session.notify_spec`.

Errors: the syntax rules of sections 5, 6.1 and 8 are BAD from the parser;
events we do not deliver (AnnotationChange: we have no ANNOTATE, and any
unknown ``event-ext``) are ``NO [BADEVENT (supported events)]`` (section
3.1: "the server MUST refuse the command with a tagged NO response (not a
BAD).  This response SHOULD contain the BADEVENT response code, which MUST
list names of all events supported by the server").

A successful NOTIFY SET "implies an implicit NOOP command" (section 3.1):
the dispatcher reports the selected mailbox's pending changes before every
tagged OK anyway, expunges included (NOTIFY is not a sequence-number
command).
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Code, Status, Tagged
from asimap.imap.session import fetch
from asimap.imap.session.context import Context
from asimap.imap.session.errors import CommandFailed
from asimap.imap.session.naming import mailbox_name
from asimap.imap.session.notifier import Notifier
from asimap.imap.session.notify_spec import (
    SUPPORTED_EVENTS,
    compile_spec,
    unsupported_events,
)


def _decode(raw: bytes) -> str | None:
    """A NOTIFY mailbox name, or None for one that cannot exist (ignored,
    section 3.1)."""
    try:
        return mailbox_name(raw)
    except CommandFailed:
        return None


def stop_notifier(ctx: Context) -> None:
    if ctx.notifier is not None:
        ctx.notifier.stop()
        ctx.notifier = None


async def handle_notify(ctx: Context, cmd: c.Notify) -> Tagged:
    if cmd.groups is None:
        stop_notifier(ctx)
        return Tagged(cmd.tag, Status.OK, "NOTIFY NONE completed")
    if unsupported_events(cmd.groups):
        code = Code("BADEVENT", ([Atom(event) for event in SUPPORTED_EVENTS],))
        return Tagged(cmd.tag, Status.NO, "Unsupported NOTIFY event", code)
    for group in cmd.groups:
        fetch.validate(group.fetch_atts)
    spec = compile_spec(cmd, _decode)
    stop_notifier(ctx)
    notifier = Notifier(ctx, spec)
    responses = await notifier.start(send_status=cmd.status)
    ctx.notifier = notifier
    if responses:
        await ctx.io.send(*responses)
    return Tagged(cmd.tag, Status.OK, "NOTIFY completed")
