"""Capabilities as data: each one with a predicate over the connection.

RFC 3501 section 6.1.1 (and RFC 9051 section 6.1.1): the list may change
with the connection's state -- STARTTLS disappears once TLS is on,
LOGINDISABLED and the AUTH= mechanisms depend on whether plaintext
authentication is allowed (RFC 3501 section 6.2.3, RFC 9051 section
11.1), and the post-login list is what LOGIN/AUTHENTICATE report in their
tagged OK's CAPABILITY response code.

Only what is implemented completely is listed; advertising a half-done
extension breaks clients worse than not advertising it.  IMAP4rev2 is
offered only while every extension RFC 9051 folded in (appendix E item 2)
is offered too, so it appears by itself once the last of them lands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from asimap.auth import mechanisms
from asimap.imap.session.context import Context
from asimap.imap.session.handlers_conn import unauthenticate_possible
from asimap.imap.session.literal_limits import append_limit
from asimap.imap.session.state import SessionState


def _always(ctx: Context) -> bool:
    del ctx
    return True


def _authentication_possible(ctx: Context) -> bool:
    """True where LOGIN/AUTHENTICATE may be used (TLS, or allowed plain)."""
    return ctx.io.tls_active or ctx.services.allow_plaintext_auth


def _before_auth(ctx: Context) -> bool:
    return ctx.state is SessionState.NOT_AUTHENTICATED


def _starttls(ctx: Context) -> bool:
    return _before_auth(ctx) and ctx.io.starttls_available and not ctx.io.tls_active


def _logindisabled(ctx: Context) -> bool:
    return _before_auth(ctx) and not _authentication_possible(ctx)


def _auth_mechanism(ctx: Context) -> bool:
    return _before_auth(ctx) and _authentication_possible(ctx)


def _auth_scram(ctx: Context) -> bool:
    """SCRAM-SHA-256 needs an authenticator holding salted passwords
    (``asimap.auth.mechanisms``); offered where PLAIN is."""
    return _auth_mechanism(ctx) and mechanisms.supports_scram(
        ctx.services.authenticator
    )


def _authenticated(ctx: Context) -> bool:
    return ctx.state in (SessionState.AUTHENTICATED, SessionState.SELECTED)


def _unauthenticate(ctx: Context) -> bool:
    """RFC 8437: where the command can run (authenticated states) and the
    session can leave its process (not in a worker under COMPRESS)."""
    return _authenticated(ctx) and unauthenticate_possible(ctx)


def _literal_plus(ctx: Context) -> bool:
    return not ctx.services.limits.literal_minus


def _literal_minus(ctx: Context) -> bool:
    return ctx.services.limits.literal_minus


#: Extensions RFC 9051 made part of IMAP4rev2 that are not offered
#: unconditionally by every asimap connection yet (appendix E items 2-3).
REV2_REQUIRES = ("ESEARCH", "SEARCHRES", "LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE")


def _imap4rev2(ctx: Context) -> bool:
    offered = {e.name for e in CAPABILITIES if e.name != "IMAP4rev2" and e.offered(ctx)}
    return all(name in offered for name in REV2_REQUIRES)


def _appendlimit(ctx: Context) -> str:
    """RFC 7889 section 2: one limit for every mailbox, ``APPENDLIMIT=n``."""
    return f"APPENDLIMIT={append_limit(ctx)}"


def _quota(ctx: Context) -> bool:
    """RFC 9208: once logged in, when the account has a limit (otherwise
    there is no quota root to report)."""
    return ctx.store is not None and ctx.store.quota_limits.limited


def _quota_storage(ctx: Context) -> bool:
    """RFC 9208 section 5.1: STORAGE is limited."""
    return ctx.store is not None and ctx.store.quota_limits.storage is not None


def _quota_messages(ctx: Context) -> bool:
    """RFC 9208 section 5.2: MESSAGE is limited."""
    return ctx.store is not None and ctx.store.quota_limits.messages is not None


@dataclass(frozen=True, slots=True)
class CapabilityEntry:
    name: str
    offered: Callable[[Context], bool]
    #: How the capability is spelled on this connection when it carries a
    #: value (``APPENDLIMIT=n``); None = ``name`` itself.
    spelled: Callable[[Context], str] | None = None


#: Every capability we may announce, in the order announced.
CAPABILITIES: tuple[CapabilityEntry, ...] = (
    CapabilityEntry("IMAP4rev1", _always),
    CapabilityEntry("IMAP4rev2", _imap4rev2),  # RFC 9051 appendix A
    # RFC 7888 section 5: LITERAL+ or LITERAL-, never both.
    CapabilityEntry("LITERAL+", _literal_plus),
    CapabilityEntry("LITERAL-", _literal_minus),
    CapabilityEntry("SASL-IR", _always),  # RFC 4959
    CapabilityEntry("ENABLE", _always),  # RFC 5161
    CapabilityEntry("ID", _always),  # RFC 2971
    CapabilityEntry("IDLE", _always),  # RFC 2177
    # RFC 4978: COMPRESS is an authenticated-state command (formal
    # syntax: command-auth), so it is offered there, like Dovecot does.
    CapabilityEntry("COMPRESS=DEFLATE", _authenticated),
    # RFC 8437; not in a worker once COMPRESS is on (handlers_conn).
    CapabilityEntry("UNAUTHENTICATE", _unauthenticate),
    CapabilityEntry("NAMESPACE", _always),  # RFC 2342
    CapabilityEntry("UNSELECT", _always),  # RFC 3691
    CapabilityEntry("UIDPLUS", _always),  # RFC 4315
    CapabilityEntry("MULTIAPPEND", _always),  # RFC 3502 (all or nothing)
    CapabilityEntry("MOVE", _always),  # RFC 6851
    CapabilityEntry("CHILDREN", _always),  # RFC 3348
    CapabilityEntry("SPECIAL-USE", _always),  # RFC 6154
    CapabilityEntry("CREATE-SPECIAL-USE", _always),  # RFC 6154 section 3
    CapabilityEntry("LIST-EXTENDED", _always),  # RFC 5258
    CapabilityEntry("LIST-STATUS", _always),  # RFC 5819
    CapabilityEntry("STATUS=SIZE", _always),  # RFC 8438
    CapabilityEntry("METADATA", _always),  # RFC 5464 (server and mailboxes)
    CapabilityEntry("NOTIFY", _always),  # RFC 5465 (no AnnotationChange)
    CapabilityEntry("CONDSTORE", _always),  # RFC 7162 section 3.1
    CapabilityEntry("QRESYNC", _always),  # RFC 7162 section 3.2
    CapabilityEntry("ESEARCH", _always),  # RFC 4731
    CapabilityEntry("SEARCHRES", _always),  # RFC 5182
    CapabilityEntry("PARTIAL", _always),  # RFC 9394 (SEARCH, SORT, UID FETCH)
    CapabilityEntry("SORT", _always),  # RFC 5256 section 3
    CapabilityEntry("SORT=DISPLAY", _always),  # RFC 5957
    # RFC 5267: SORT RETURN (section 3) and RETURN (UPDATE) contexts
    # (section 4), which work on a selected mailbox: offered once logged in.
    CapabilityEntry("ESORT", _authenticated),
    CapabilityEntry("CONTEXT=SEARCH", _authenticated),
    CapabilityEntry("CONTEXT=SORT", _authenticated),
    CapabilityEntry("THREAD=ORDEREDSUBJECT", _always),  # RFC 5256 section 3
    CapabilityEntry("THREAD=REFERENCES", _always),
    CapabilityEntry("THREAD=REFS", _always),  # draft-ietf-morg-inthread
    CapabilityEntry("APPENDLIMIT", _always, _appendlimit),  # RFC 7889
    CapabilityEntry("BINARY", _always),  # RFC 3516
    CapabilityEntry("UTF8=ACCEPT", _always),  # RFC 6855 (names, APPEND UTF8)
    CapabilityEntry("CATENATE", _always),  # RFC 4469 (same-user URLs only)
    CapabilityEntry("PREVIEW", _always),  # RFC 8970 (FETCH PREVIEW, LAZY)
    CapabilityEntry("OBJECTID", _always),  # RFC 8474
    CapabilityEntry("SAVEDATE", _always),  # RFC 8514
    CapabilityEntry("REPLACE", _always),  # RFC 8508
    CapabilityEntry("QUOTA", _quota),  # RFC 9208 (no QUOTASET: see SETQUOTA)
    CapabilityEntry("QUOTA=RES-STORAGE", _quota_storage),
    CapabilityEntry("QUOTA=RES-MESSAGE", _quota_messages),
    CapabilityEntry("STARTTLS", _starttls),  # RFC 3501 6.2.1
    CapabilityEntry("LOGINDISABLED", _logindisabled),  # RFC 3501 6.2.3
    CapabilityEntry("AUTH=PLAIN", _auth_mechanism),  # RFC 4616
    CapabilityEntry("AUTH=LOGIN", _auth_mechanism),  # draft-murchison-sasl-login
    CapabilityEntry("AUTH=SCRAM-SHA-256", _auth_scram),  # RFC 7677
)


def capabilities(ctx: Context) -> tuple[str, ...]:
    """The capabilities offered on this connection right now."""
    return tuple(
        entry.spelled(ctx) if entry.spelled is not None else entry.name
        for entry in CAPABILITIES
        if entry.offered(ctx)
    )
