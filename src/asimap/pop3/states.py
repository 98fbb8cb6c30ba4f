"""The POP3 states and which commands each one accepts, as data.

RFC 1939 section 3: a session starts in AUTHORIZATION, enters TRANSACTION
once the client has identified itself, and enters UPDATE when it issues
QUIT from TRANSACTION.  RFC 2449 allows CAPA in both working states;
STLS (RFC 2595 section 4) and AUTH (RFC 5034 section 4) only before
login.  A command outside its states gets ``-ERR`` and the session goes
on.
"""

from __future__ import annotations

import enum

from asimap.pop3 import commands as c


class State(enum.Enum):
    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    #: After QUIT: the session is over (RFC 1939 section 6).
    UPDATE = "update"


_AUTHORIZATION = frozenset({c.User, c.Pass, c.Auth, c.Capa, c.Stls, c.Quit})
_TRANSACTION = frozenset(
    {c.Capa, c.Stat, c.List, c.Uidl, c.Retr, c.Dele, c.Top, c.Noop, c.Rset, c.Quit}
)

ALLOWED: dict[State, frozenset[type[c.Command]]] = {
    State.AUTHORIZATION: _AUTHORIZATION,
    State.TRANSACTION: _TRANSACTION,
    State.UPDATE: frozenset(),
}


def allowed(state: State, command: c.Command) -> bool:
    return type(command) in ALLOWED[state]
