"""Commands valid in any state: CAPABILITY, NOOP, LOGOUT, ID (RFC 3501 6.1).

NOOP needs no code of its own for mailbox updates: the dispatcher reports
pending changes before every tagged response (RFC 3501 section 6.1.2).
"""

from __future__ import annotations

from asimap import __version__
from asimap.imap import commands as c
from asimap.imap.responses import Atom, Status, Tagged, Untagged, UntaggedStatus, Value
from asimap.imap.session.capabilities import capabilities
from asimap.imap.session.context import Context
from asimap.imap.session.state import SessionState


def capability_response(ctx: Context) -> Untagged:
    """``* CAPABILITY ...`` for the connection as it is now."""
    values: list[Value] = [Atom("CAPABILITY")]
    values.extend(Atom(name) for name in capabilities(ctx))
    return Untagged(tuple(values))


async def handle_capability(ctx: Context, cmd: c.Capability) -> Tagged:
    await ctx.io.send(capability_response(ctx))
    return Tagged(cmd.tag, Status.OK, "Capability completed")


async def handle_noop(ctx: Context, cmd: c.Noop) -> Tagged:
    del ctx
    return Tagged(cmd.tag, Status.OK, "NOOP completed")


async def handle_logout(ctx: Context, cmd: c.Logout) -> Tagged:
    """RFC 3501 6.1.3: BYE first, then the tagged OK; then we close."""
    await ctx.io.send(UntaggedStatus(Status.BYE, "Logging out"))
    ctx.state = SessionState.LOGOUT
    return Tagged(cmd.tag, Status.OK, "Logout completed")


async def handle_id(ctx: Context, cmd: c.Id) -> Tagged:
    """RFC 2971: we tell who we are whatever the client says; what it
    says is kept for the logs (a worker learns it at handoff)."""
    ctx.client_id = cmd.parameters
    info: list[Value] = ["name", ctx.services.server_name, "version", __version__]
    await ctx.io.send(Untagged((Atom("ID"), info)))
    return Tagged(cmd.tag, Status.OK, "ID completed")
