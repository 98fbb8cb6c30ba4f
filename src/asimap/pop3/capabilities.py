"""CAPA's answer (RFC 2449 section 5), as data with a rule per connection.

Before TLS on the plain port the list shows STLS and neither USER nor
SASL, because neither may be used there (RFC 2595 section 4, like
IMAP's LOGINDISABLED); under TLS it shows USER and ``SASL PLAIN LOGIN``
(plus SCRAM-SHA-256 where the authenticator supports it, RFC 5034
section 3) until login.  PIPELINING is true: commands are answered
strictly in order and STLS drops anything pipelined after it.
"""

from __future__ import annotations

from asimap.auth import mechanisms
from asimap.pop3.context import Context
from asimap.pop3.states import State

_ALWAYS = ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING")


def may_authenticate(ctx: Context) -> bool:
    """Whether USER/PASS and AUTH may be used on this connection now."""
    return ctx.io.tls_active or ctx.services.allow_plaintext_auth


def capabilities(ctx: Context) -> list[str]:
    names = ["CAPA", *_ALWAYS]
    if ctx.state is State.AUTHORIZATION:
        if ctx.io.stls_available and not ctx.io.tls_active:
            names.append("STLS")
        if may_authenticate(ctx):
            names.append("USER")
            offered = mechanisms.offered(ctx.services.authenticator)
            names.append("SASL " + " ".join(offered))
    names.append(f"IMPLEMENTATION {ctx.services.server_name}")
    return names
