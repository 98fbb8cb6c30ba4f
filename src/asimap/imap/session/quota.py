"""Quota as the client sees it (RFC 9208): one quota root per account.

The store keeps the limits and the usage (:meth:`Store.quota_limits`,
:meth:`Store.quota_usage`) and refuses what would exceed them; this module
turns them into wire values and answers the questions the session asks
before a message is uploaded.

* One quota root, named ``""``, governs every mailbox of the account, like
  Dovecot's per-user "User quota".  It exists only when the configuration
  limits something; otherwise mailboxes have no quota root at all (RFC 9208
  section 4.1.2 allows a mailbox without one).
* STORAGE is reported in units of 1024 octets (RFC 9208 section 5.1),
  usage rounded *up*, so a usage at or under the limit on the wire means
  the same in octets; MESSAGE counts messages (section 5.2).
"""

from __future__ import annotations

from asimap.imap.responses import Atom, Untagged, Value
from asimap.store.base import QuotaLimits, QuotaUsage, Store

#: The name of the account's quota root.
ROOT = ""

#: RFC 9208 section 5.1: STORAGE counts units of 1024 octets.
UNIT = 1024


def units(octets: int) -> int:
    """Octets as 1024-octet units, rounded up."""
    return -(-octets // UNIT)


def quota_list(limits: QuotaLimits, usage: QuotaUsage) -> list[Value]:
    """``resource-name usage limit`` triples of the limited resources
    (RFC 9208 section 4.3.1 ``quota-list``)."""
    values: list[Value] = []
    if limits.storage is not None:
        values += [Atom("STORAGE"), units(usage.storage), limits.storage // UNIT]
    if limits.messages is not None:
        values += [Atom("MESSAGE"), usage.messages, limits.messages]
    return values


async def quota_response(store: Store) -> Untagged:
    """``* QUOTA "" (STORAGE u l MESSAGE u l)`` (RFC 9208 section 4.3.1)."""
    usage = await store.quota_usage()
    return Untagged((Atom("QUOTA"), ROOT, quota_list(store.quota_limits, usage)))


async def room_for(store: Store, octets: int, first: bool) -> bool:
    """Whether a message literal of ``octets`` could still fit.

    Asked before the literal is read, so an APPEND that cannot fit is
    refused without uploading it (as APPENDLIMIT's ``[TOOBIG]`` is, RFC
    7889 section 4).  A literal larger than the storage left cannot fit,
    whatever else the message is made of (CATENATE parts, MULTIAPPEND);
    ``first`` (the command's first literal) also checks the message count.
    The store's own check at write time stays the rule.
    """
    limits = store.quota_limits
    if not limits.limited:
        return True
    usage = await store.quota_usage()
    if limits.storage is not None and usage.storage + octets > limits.storage:
        return False
    return not (
        first and limits.messages is not None and usage.messages + 1 > limits.messages
    )
