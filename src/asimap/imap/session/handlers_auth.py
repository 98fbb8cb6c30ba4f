"""Not-authenticated state: STARTTLS, LOGIN, AUTHENTICATE (RFC 3501 6.2).

Every failure to authenticate gets the same answer, ``NO
[AUTHENTICATIONFAILED] Authentication failed`` (RFC 5530), whether the user
is unknown, the password wrong or the bytes not UTF-8, so the answer never
tells which.  Before TLS, unless the server explicitly allows plaintext,
both commands are refused with ``NO [PRIVACYREQUIRED]`` without looking at
the credentials (RFC 3501 section 6.2.3, RFC 9051 section 6.2.3; the
capability list then says LOGINDISABLED).
"""

from __future__ import annotations

import logging
from functools import partial

from asimap.auth import mechanisms, sasl, scram, scram_exchange
from asimap.auth.account import Account
from asimap.imap import commands as c
from asimap.imap.responses import Atom, Code, Continuation, Status, Tagged
from asimap.imap.session.capabilities import capabilities
from asimap.imap.session.context import Context
from asimap.imap.session.errors import CommandFailed, bad, no
from asimap.imap.session.services import Handoff, HandoffRefused, HandoffRequest
from asimap.imap.session.state import SessionState

log = logging.getLogger(__name__)

_FAILED = sasl.FAILED


async def handle_starttls(ctx: Context, cmd: c.StartTLS) -> Tagged | None:
    """RFC 3501 6.2.1: OK first, then the handshake; nothing else is sent.

    The capabilities are recomputed from ``io.tls_active`` on the next
    CAPABILITY, so nothing needs resetting here.
    """
    if not ctx.io.starttls_available or ctx.io.tls_active:
        raise bad("STARTTLS not available")
    await ctx.io.send(Tagged(cmd.tag, Status.OK, "Begin TLS negotiation now"))
    await ctx.io.start_tls()
    return None


def _require_privacy(ctx: Context) -> None:
    if not (ctx.io.tls_active or ctx.services.allow_plaintext_auth):
        raise no("Plaintext authentication disallowed", "PRIVACYREQUIRED")


async def handle_login(ctx: Context, cmd: c.Login) -> Tagged | None:
    _require_privacy(ctx)
    try:
        username = cmd.username.decode("utf-8")
        password = cmd.password.decode("utf-8")
    except UnicodeDecodeError:
        raise no(_FAILED, "AUTHENTICATIONFAILED") from None
    return await _authenticate(ctx, cmd.tag, username, password)


async def handle_authenticate(ctx: Context, cmd: c.Authenticate) -> Tagged | None:
    _require_privacy(ctx)
    mechanism = cmd.mechanism.upper()
    authenticator = ctx.services.authenticator
    if mechanism not in mechanisms.offered(authenticator):
        raise no("Unsupported authentication mechanism")
    challenge = partial(_challenge, ctx)
    try:
        if mechanism == scram.MECHANISM and isinstance(
            authenticator, scram_exchange.ScramAuthenticator
        ):
            account = await scram_exchange.exchange(
                cmd.initial_response, challenge, authenticator, ctx.io.peer_host
            )
            return await _logged_in(ctx, cmd.tag, account)
        username, password = await sasl.exchange(
            mechanism, cmd.initial_response, challenge
        )
    except sasl.SaslFailed as exc:
        # The text is "Authentication failed", or for a SCRAM protocol
        # error that reveals nothing about the account, that and its code.
        raise no(str(exc), "AUTHENTICATIONFAILED") from None
    except sasl.SaslError as exc:
        # RFC 3501 6.2.2: a cancelled exchange, like a malformed
        # response, is answered BAD.
        raise bad(str(exc)) from None
    return await _authenticate(ctx, cmd.tag, username, password)


async def _challenge(ctx: Context, challenge: bytes) -> bytes:
    """Send ``+ base64(challenge)`` and return the client's answer line."""
    await ctx.io.send(Continuation(data=challenge))
    line = await ctx.io.read_line()
    if line is None:
        # The client is gone; the dispatcher's caller will notice.
        raise bad("Authentication aborted")
    return line


async def _authenticate(
    ctx: Context, tag: str, username: str, password: str
) -> Tagged | None:
    account = await ctx.services.authenticator.authenticate(
        username, password, ctx.io.peer_host
    )
    if account is None:
        raise CommandFailed(Status.NO, _FAILED, Code("AUTHENTICATIONFAILED"))
    return await _logged_in(ctx, tag, account)


async def _logged_in(ctx: Context, tag: str, account: Account) -> Tagged | None:
    """After any successful authentication: hand the connection to the
    user's worker, or open the store here and answer OK."""
    handoff = ctx.services.handoff
    if handoff is not None:
        await _hand_off(ctx, handoff, tag, account)
        return None
    ctx.store = await ctx.services.open_store(account)
    ctx.account = account
    ctx.state = SessionState.AUTHENTICATED
    log.info("login %s from %s", account.username, ctx.io.peer_host)
    # Like Dovecot: the tagged OK carries the post-login capabilities, so
    # clients need not ask again (RFC 3501 section 7.1, CAPABILITY code).
    code = Code("CAPABILITY", tuple(Atom(name) for name in capabilities(ctx)))
    return Tagged(tag, Status.OK, "Logged in", code)


async def _hand_off(ctx: Context, handoff: Handoff, tag: str, account: Account) -> None:
    """Worker mode: the user's worker answers the tagged OK and serves the
    connection from now on; this session ends without another word."""
    request = HandoffRequest("imap", account, tag, ctx.client_id)
    try:
        await handoff(ctx.io, request)
    except HandoffRefused as exc:
        # RFC 5530: UNAVAILABLE -- a temporary failure, try again later.
        raise CommandFailed(Status.NO, str(exc), Code("UNAVAILABLE")) from None
    ctx.account = account
    ctx.state = SessionState.LOGOUT
    log.info(
        "login %s from %s: handed to its worker", account.username, ctx.io.peer_host
    )
    return None
