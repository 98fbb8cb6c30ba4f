"""Commands about the connection itself: COMPRESS (RFC 4978) and
UNAUTHENTICATE (RFC 8437).

Both change what carries the session rather than the mailbox: COMPRESS
puts a DEFLATE layer under the protocol (:mod:`asimap.net.deflate`, in the
pipe of the process that runs the session), UNAUTHENTICATE takes the
session back to the not-authenticated state so the client can log in
again, possibly as someone else.

UNAUTHENTICATE and COMPRESS in worker mode: the worker runs with its
user's privileges and cannot authenticate anyone, so after UNAUTHENTICATE
the connection must go back to the main process (``Services.give_back``).
The DEFLATE state (two zlib streams with their windows) cannot move
between processes, and RFC 4978 gives no way to stop
compression once started.  As we read RFC 8437 section 3, it returns the
*session* to the not-authenticated state and does not ask the server to
tear down layers below the protocol (TLS stays, and so would COMPRESS).  Keeping the
session in the worker would let a process holding one user's store serve
the next login, which design.md section 4 rule 3 forbids.  So in a worker,
once COMPRESS is active, UNAUTHENTICATE is no longer advertised
(capabilities follow the connection's state, RFC 3501 section 6.1.1) and
is refused with ``NO [CANNOT]`` (RFC 5530: it can never succeed on this
connection).  With ``--workers=off`` both work together.
"""

from __future__ import annotations

import logging

from asimap.imap import commands as c
from asimap.imap.responses import Status, Tagged
from asimap.imap.session import notify
from asimap.imap.session.context import Context
from asimap.imap.session.errors import bad, no
from asimap.imap.session.state import SessionState

log = logging.getLogger(__name__)

#: RFC 4978 section 3: the one mechanism defined.
MECHANISMS = frozenset({"DEFLATE"})


def unauthenticate_possible(ctx: Context) -> bool:
    """False only where the session cannot leave its process (module doc)."""
    return ctx.services.give_back is None or not ctx.io.compression_active


async def handle_compress(ctx: Context, cmd: c.Compress) -> Tagged | None:
    """RFC 4978 section 3: OK, then everything after it is compressed.

    An unknown mechanism is a bad argument: BAD, as RFC 4978 section 3's
    result list has it (Dovecot 2.3.19 answers NO there; the RFC wins).
    A second COMPRESS is refused with ``NO [COMPRESSIONACTIVE]`` (RFC 4978
    section 3), as Dovecot does too.  Our TLS
    never compresses (``ssl.OP_NO_COMPRESSION``), so TLS is no reason to
    refuse.
    """
    if cmd.mechanism.upper() not in MECHANISMS:
        raise bad(f"Unknown compression mechanism {cmd.mechanism}")
    if ctx.io.compression_active:
        raise no("DEFLATE is already active", "COMPRESSIONACTIVE")
    # The OK itself is the last uncompressed response (RFC 4978 section 3).
    await ctx.io.send(Tagged(cmd.tag, Status.OK, "DEFLATE active"))
    await ctx.io.start_compression()
    return None


async def handle_unauthenticate(ctx: Context, cmd: c.Unauthenticate) -> Tagged | None:
    """RFC 8437 section 3: back to the not-authenticated state.

    A selected mailbox is closed silently, without expunging (as UNSELECT,
    RFC 3691), and everything the login set up is forgotten: the store,
    the account, ENABLEd extensions (RFC 5161 section 3.1 ties them to
    the authenticated session) and with them UTF-8 output.  Layers below
    the protocol stay: TLS, and COMPRESS where the session stays here.
    """
    give_back = ctx.services.give_back
    if not unauthenticate_possible(ctx):
        raise no("UNAUTHENTICATE is not available once COMPRESS is active", "CANNOT")
    account = ctx.account
    # NOTIFY follows the account's store: stop it before anyone else may
    # log in on this connection (it would report the old user's mail).
    notify.stop_notifier(ctx)
    ctx.selected = None
    ctx.store = None
    ctx.account = None
    ctx.enabled.clear()
    ctx.io.set_utf8(False)
    ctx.state = SessionState.NOT_AUTHENTICATED
    log.info(
        "unauthenticate %s from %s",
        account.username if account is not None else "?",
        ctx.io.peer_host,
    )
    tagged = Tagged(cmd.tag, Status.OK, "Not authenticated now")
    if give_back is None:
        return tagged
    # Worker mode: the main process serves the not-authenticated session.
    await ctx.io.send(tagged)
    await give_back(ctx.io)
    ctx.state = SessionState.LOGOUT
    return None
