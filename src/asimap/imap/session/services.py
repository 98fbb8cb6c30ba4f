"""What a session needs from the server around it, passed in explicitly.

The driver (``asimap.imap.driver``) builds one :class:`Services` per server
(or worker) and hands it to every session, so sessions never reach for
globals and tests can assemble a session from in-memory parts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from asimap.auth.account import Account, Authenticator
from asimap.imap.limits import DEFAULT_LIMITS, Limits
from asimap.store.base import Store


@dataclass(frozen=True, slots=True)
class Services:
    authenticator: Authenticator
    #: Opens (or returns the already open) store of an account.
    open_store: Callable[[Account], Awaitable[Store]]
    limits: Limits = DEFAULT_LIMITS
    #: Shown in the greeting and in ID.
    server_name: str = "asimap"
    #: Whether LOGIN/AUTHENTICATE may be used without TLS.  Never True in
    #: production; tests of plaintext behaviour set it explicitly.
    allow_plaintext_auth: bool = False
