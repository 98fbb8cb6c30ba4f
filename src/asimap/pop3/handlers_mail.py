"""TRANSACTION state: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP and
QUIT's UPDATE step (RFC 1939 sections 5, 6 and 7).

Every answer comes from the login snapshot (:mod:`asimap.pop3.maildrop`):
numbers never change and deleted messages vanish from STAT/LIST/UIDL.  A
message expunged over IMAP during the session is still listed (its size
is known), but RETR/TOP of it answer ``-ERR`` and the session goes on.
"""

from __future__ import annotations

import logging

from asimap.pop3 import commands as c
from asimap.pop3.context import Context
from asimap.pop3.errors import Pop3Error
from asimap.pop3.maildrop import Entry, Maildrop
from asimap.pop3.responses import Code, err, multiline, ok
from asimap.pop3.states import State
from asimap.pop3.transfer import stuffed_chunks, top_end
from asimap.store.base import MessageGone, MessageUnreadable, StoreError, StoreMode

log = logging.getLogger(__name__)


def _entry(maildrop: Maildrop, msg: int) -> Entry:
    entry = maildrop.entry(msg)
    if entry is not None:
        return entry
    if msg in maildrop.deleted:
        raise Pop3Error(f"Message {msg} already deleted")
    raise Pop3Error(f"No such message, only {len(maildrop.entries)} in maildrop")


async def handle_stat(ctx: Context, _cmd: c.Stat) -> bytes:
    count, size = ctx.require_maildrop().totals()
    return ok(f"{count} {size}")


async def handle_list(ctx: Context, cmd: c.List) -> bytes:
    maildrop = ctx.require_maildrop()
    if cmd.msg is not None:
        return ok(f"{cmd.msg} {_entry(maildrop, cmd.msg).size}")
    count, size = maildrop.totals()
    lines = (f"{n} {entry.size}".encode() for n, entry in maildrop.live())
    return multiline(ok(f"{count} messages ({size} octets)"), lines)


async def handle_uidl(ctx: Context, cmd: c.Uidl) -> bytes:
    maildrop = ctx.require_maildrop()
    if cmd.msg is not None:
        return ok(f"{cmd.msg} {_entry(maildrop, cmd.msg).unique_id}")
    lines = (f"{n} {entry.unique_id}".encode() for n, entry in maildrop.live())
    return multiline(ok("Unique-ID listing follows"), lines)


async def _send_message(ctx: Context, msg: int, lines: int | None) -> Entry:
    """``+OK``, the (partial) message stuffed, the terminator."""
    maildrop = ctx.require_maildrop()
    entry = _entry(maildrop, msg)
    try:
        message = await maildrop.mailbox.message(entry.uid)
    except MessageGone:
        raise Pop3Error(f"Message {msg} no longer exists") from None
    except MessageUnreadable as exc:
        # RFC 3206 section 4: SYS/TEMP, a problem on the server that may
        # go away (an unreadable file); the session goes on.
        raise Pop3Error(f"Message {msg}: {exc}", Code.SYS_TEMP) from None
    raw = message.raw
    end = None if lines is None else top_end(raw, lines)
    await ctx.io.send(ok(f"{entry.size} octets" if lines is None else ""))
    for piece in stuffed_chunks(raw, end):
        await ctx.io.send(piece)
    return entry


async def handle_retr(ctx: Context, cmd: c.Retr) -> None:
    entry = await _send_message(ctx, cmd.msg, None)
    # Reading a message makes it \Seen for IMAP clients too (as Dovecot
    # does).  It is done at once, not deferred to QUIT: the client has the
    # message whether or not the session ends cleanly.
    try:
        await ctx.require_maildrop().mailbox.store(
            [entry.uid], StoreMode.ADD, ["\\Seen"]
        )
    except StoreError as exc:
        log.warning("pop3: could not mark uid %d seen: %s", entry.uid, exc)


async def handle_top(ctx: Context, cmd: c.Top) -> None:
    await _send_message(ctx, cmd.msg, cmd.lines)


async def handle_dele(ctx: Context, cmd: c.Dele) -> bytes:
    maildrop = ctx.require_maildrop()
    _entry(maildrop, cmd.msg)
    maildrop.deleted.add(cmd.msg)
    return ok(f"Message {cmd.msg} deleted")


async def handle_rset(ctx: Context, _cmd: c.Rset) -> bytes:
    maildrop = ctx.require_maildrop()
    maildrop.deleted.clear()
    count, size = maildrop.totals()
    return ok(f"Maildrop has {count} messages ({size} octets)")


async def handle_noop(_ctx: Context, _cmd: c.Noop) -> bytes:
    return ok()


async def handle_quit(ctx: Context, _cmd: c.Quit) -> bytes:
    """RFC 1939 section 6: QUIT from TRANSACTION commits the deletions."""
    if ctx.state is State.AUTHORIZATION:
        ctx.state = State.UPDATE
        return ok("Bye")
    ctx.state = State.UPDATE
    maildrop = ctx.require_maildrop()
    try:
        expunged = await maildrop.commit()
    except StoreError as exc:
        log.warning("pop3: deleting messages failed: %s", exc)
        return err("Some deleted messages not removed", Code.SYS_TEMP)
    left = len(maildrop.entries) - len(maildrop.deleted)
    log.info("pop3: expunged %d messages at QUIT", len(expunged))
    return ok(f"Logging out, {left} messages left")
