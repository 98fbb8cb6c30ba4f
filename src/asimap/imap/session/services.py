"""What a session needs from the server around it, passed in explicitly.

The driver (``asimap.imap.driver``) builds one :class:`Services` per server
(or worker) and hands it to every session, so sessions never reach for
globals and tests can assemble a session from in-memory parts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from asimap.auth.account import Account, Authenticator
from asimap.imap.limits import DEFAULT_LIMITS, Limits
from asimap.store.base import Store


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    """A connection that just logged in, to be served by the user's worker.

    The connection itself (socket, unparsed input) is taken from the
    session's I/O object by the handoff function; this is what the session
    knows: who logged in, the tag to answer (IMAP), and the client's ID
    parameters (RFC 2971) for the worker's logs.
    """

    protocol: Literal["imap", "pop3"]
    account: Account
    tag: str | None = None
    client_id: tuple[tuple[str, str | None], ...] | None = None


class HandoffRefused(Exception):
    """No worker can take the connection now (too many workers, or one
    could not start); the login is answered ``NO [UNAVAILABLE]`` (RFC 5530)
    or ``-ERR [SYS/TEMP]`` (RFC 3206) and the client may try again."""


#: Hands a logged-in connection to the user's worker process: called with
#: the session's I/O object and the request; returns once the worker owns
#: the connection (the main session then ends without another word), or
#: raises :class:`HandoffRefused` before taking anything.
Handoff = Callable[[object, HandoffRequest], Awaitable[None]]


#: Worker mode, in the worker: gives a connection that just answered
#: UNAUTHENTICATE (RFC 8437) back to the main process, which resumes a
#: not-authenticated session on it (a worker runs with one user's
#: privileges and can authenticate nobody).  Called with the session's I/O
#: object once the tagged OK is written; the worker's session then ends.
GiveBack = Callable[[object], Awaitable[None]]


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
    #: Set in the main process of worker mode (``asimap.worker``): after
    #: LOGIN/AUTHENTICATE (POP3 PASS/AUTH) the connection goes to the
    #: user's worker instead of opening a store here.  None = serve here.
    handoff: Handoff | None = None
    #: Set in a worker: see :data:`GiveBack`.  None = UNAUTHENTICATE keeps
    #: the connection in this process.
    give_back: GiveBack | None = None
