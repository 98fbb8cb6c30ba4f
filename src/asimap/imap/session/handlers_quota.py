"""GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208 section 4.1).

The quota root model is in :mod:`asimap.imap.session.quota`: one root,
``""``, for the whole account, present only when the configuration sets a
limit.
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Status, Tagged, Untagged, Value
from asimap.imap.session.context import Context
from asimap.imap.session.errors import no, store_error_response
from asimap.imap.session.naming import mailbox_name, wire_name
from asimap.imap.session.quota import ROOT, quota_response
from asimap.store.base import StoreError


async def handle_getquota(ctx: Context, cmd: c.GetQuota) -> Tagged:
    """RFC 9208 section 4.1.1: the usage and limits of one quota root;
    ``NO`` for a root that does not exist."""
    store = ctx.require_store()
    if cmd.root != ROOT.encode() or not store.quota_limits.limited:
        raise no("No such quota root", "NONEXISTENT")
    await ctx.io.send(await quota_response(store))
    return Tagged(cmd.tag, Status.OK, "Getquota completed")


async def handle_getquotaroot(ctx: Context, cmd: c.GetQuotaRoot) -> Tagged:
    """RFC 9208 section 4.1.2: ``* QUOTAROOT mailbox root...`` and then a
    ``* QUOTA`` response for each root; the mailbox must exist."""
    name = mailbox_name(cmd.mailbox)
    store = ctx.require_store()
    try:
        await store.mailbox(name)
    except StoreError as exc:
        raise store_error_response(exc) from exc
    roots: tuple[Value, ...] = (ROOT,) if store.quota_limits.limited else ()
    await ctx.io.send(Untagged((Atom("QUOTAROOT"), wire_name(name), *roots)))
    if roots:
        await ctx.io.send(await quota_response(store))
    return Tagged(cmd.tag, Status.OK, "Getquotaroot completed")


async def handle_setquota(ctx: Context, cmd: c.SetQuota) -> Tagged:
    """RFC 9208 section 4.1.3 lets a server refuse SETQUOTA ("NO -
    setquota error: can't set that data"), and only servers advertising
    QUOTASET accept it.  Our limits come from the server configuration,
    so the answer is always NO -- [CANNOT] (RFC 5530): no user can ever
    change them over IMAP."""
    del ctx, cmd
    raise no("Quota limits are set by the server configuration", "CANNOT")
