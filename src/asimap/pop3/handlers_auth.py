"""AUTHORIZATION state: CAPA, STLS, USER/PASS, AUTH (RFC 1939 section 7,
RFC 2449, RFC 2595, RFC 5034).

Before TLS, unless the server explicitly allows plaintext, USER, PASS and
AUTH are refused with ``-ERR [AUTH]`` without looking at the credentials
(Dovecot answers the same way); CAPA then lists STLS only.  Every failed
login gets the same ``-ERR [AUTH] Authentication failed`` (RFC 3206
section 4), whether the user is unknown, the password wrong or the bytes
not UTF-8, and the authenticator delays repeated failures for POP3 and
IMAP alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from asimap.auth import mechanisms, sasl, scram, scram_exchange
from asimap.auth.account import Account
from asimap.imap.session.services import HandoffRefused, HandoffRequest
from asimap.pop3 import commands as c
from asimap.pop3.capabilities import capabilities, may_authenticate
from asimap.pop3.context import Context
from asimap.pop3.errors import Pop3Error
from asimap.pop3.maildrop import Maildrop
from asimap.pop3.responses import Code, continuation, multiline, ok
from asimap.pop3.states import State
from asimap.store.base import StoreError

log = logging.getLogger(__name__)

_PLAINTEXT = "Plaintext authentication disallowed on non-secure connections; use STLS"


def _require_privacy(ctx: Context) -> None:
    if not may_authenticate(ctx):
        raise Pop3Error(_PLAINTEXT, Code.AUTH)


@contextmanager
def _sasl_answers() -> Iterator[None]:
    """Answer the neutral SASL exceptions the POP3 way (RFC 5034 section 4):
    a cancel or malformed response is a plain ``-ERR``; unusable credentials
    get the same ``-ERR [AUTH]`` as a wrong password (RFC 3206 section 4)."""
    try:
        yield
    except sasl.SaslFailed as exc:
        # "Authentication failed", plus the code of a SCRAM protocol error.
        raise Pop3Error(str(exc), Code.AUTH) from None
    except sasl.SaslError as exc:
        raise Pop3Error(str(exc)) from None


async def handle_capa(ctx: Context, _cmd: c.Capa) -> bytes:
    lines = (name.encode("ascii") for name in capabilities(ctx))
    return multiline(ok("Capability list follows"), lines)


async def handle_stls(ctx: Context, _cmd: c.Stls) -> None:
    """RFC 2595 section 4: ``+OK``, then the handshake; the session state is
    unchanged and the client should ask CAPA again."""
    if ctx.io.tls_active or not ctx.io.stls_available:
        raise Pop3Error("STLS not available on this connection")
    await ctx.io.send(ok("Begin TLS negotiation now"))
    await ctx.io.start_tls()


async def handle_user(ctx: Context, cmd: c.User) -> bytes:
    _require_privacy(ctx)
    with _sasl_answers():
        ctx.pending_user = sasl.utf8(cmd.name)
    return ok("Send your password")


async def handle_pass(ctx: Context, cmd: c.Pass) -> bytes:
    _require_privacy(ctx)
    username, ctx.pending_user = ctx.pending_user, None
    if username is None:
        raise Pop3Error("No username given; send USER first")
    with _sasl_answers():
        password = sasl.utf8(cmd.password)
    return await login(ctx, username, password)


async def handle_auth(ctx: Context, cmd: c.Auth) -> bytes:
    _require_privacy(ctx)
    ctx.pending_user = None
    authenticator = ctx.services.authenticator
    offered = mechanisms.offered(authenticator)
    if cmd.mechanism is None:
        # Listing the mechanisms (the RFC 1734 form Dovecot and clients use).
        return multiline(ok("Mechanisms follow"), (m.encode() for m in offered))
    if cmd.mechanism not in offered:
        raise Pop3Error("Unsupported authentication mechanism")
    challenge = partial(_challenge, ctx)
    with _sasl_answers():
        if cmd.mechanism == scram.MECHANISM and isinstance(
            authenticator, scram_exchange.ScramAuthenticator
        ):
            account = await scram_exchange.exchange(
                cmd.initial_response, challenge, authenticator, ctx.io.peer_host
            )
            return await logged_in(ctx, account)
        username, password = await sasl.exchange(
            cmd.mechanism, cmd.initial_response, challenge
        )
    return await login(ctx, username, password)


async def _challenge(ctx: Context, challenge: bytes) -> bytes:
    """Send ``+ base64(challenge)`` and return the client's answer line."""
    await ctx.io.send(continuation(challenge))
    line = await ctx.io.read_line()
    if line is None:
        raise Pop3Error("Authentication aborted")
    return line


async def login(ctx: Context, username: str, password: str) -> bytes:
    """Check the credentials, open the store and snapshot INBOX."""
    account = await ctx.services.authenticator.authenticate(
        username, password, ctx.io.peer_host
    )
    if account is None:
        raise Pop3Error(sasl.FAILED, Code.AUTH)
    return await logged_in(ctx, account)


async def logged_in(ctx: Context, account: Account) -> bytes:
    """After any successful authentication: hand the connection to the
    user's worker, or open the store and snapshot INBOX here."""
    handoff = ctx.services.handoff
    if handoff is not None:
        # Worker mode: the user's worker sends the +OK and serves the
        # TRANSACTION and UPDATE states; this session ends silently.
        try:
            await handoff(ctx.io, HandoffRequest("pop3", account))
        except HandoffRefused as exc:
            raise Pop3Error(str(exc), Code.SYS_TEMP) from None
        ctx.account, ctx.state = account, State.UPDATE
        log.info(
            "pop3 login %s from %s: handed to its worker",
            account.username,
            ctx.io.peer_host,
        )
        return b""
    try:
        store = await ctx.services.open_store(account)
        maildrop = await Maildrop.snapshot(await store.mailbox("INBOX"))
    except StoreError as exc:
        log.warning("pop3: %s: cannot open INBOX: %s", account.username, exc)
        raise Pop3Error("Cannot open the mailbox", Code.SYS_TEMP) from None
    ctx.account, ctx.maildrop, ctx.state = account, maildrop, State.TRANSACTION
    count, size = maildrop.totals()
    log.info("pop3 login %s from %s", account.username, ctx.io.peer_host)
    return ok(f"Logged in, {count} messages ({size} octets)")
