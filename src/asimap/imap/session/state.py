"""The session state machine, written as a table.

RFC 3501 section 3 (and RFC 9051 section 3) describes four states::

    NOT_AUTHENTICATED --LOGIN/AUTHENTICATE--> AUTHENTICATED
    AUTHENTICATED     --SELECT/EXAMINE------> SELECTED
    SELECTED          --CLOSE/UNSELECT/failed SELECT--> AUTHENTICATED
    any               --LOGOUT/connection lost--> LOGOUT

Which command is legal in which state is data, not code: :data:`ALLOWED`
maps every command class we implement to the states it may run in.  The
session consults it before dispatching; a command outside its states is
answered with a tagged ``BAD`` and the connection stays usable (RFC 3501
section 7.1.3: BAD is for commands "not valid in the current state").
A command class missing from the table is one we do not implement; it is
answered with ``BAD`` as an unknown command, whatever the state.
"""

from __future__ import annotations

import enum

from asimap.imap import commands as c


class SessionState(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


_ANY = frozenset(
    {
        SessionState.NOT_AUTHENTICATED,
        SessionState.AUTHENTICATED,
        SessionState.SELECTED,
    }
)
_NOT_AUTH = frozenset({SessionState.NOT_AUTHENTICATED})
_AUTH = frozenset({SessionState.AUTHENTICATED, SessionState.SELECTED})
_AUTH_ONLY = frozenset({SessionState.AUTHENTICATED})
_SELECTED = frozenset({SessionState.SELECTED})

#: Command class -> the states in which it is valid (RFC 3501 sections
#: 6.1-6.4; RFC 5161 section 3.1: ENABLE only in the authenticated state).
ALLOWED: dict[type[c.Command], frozenset[SessionState]] = {
    # RFC 3501 6.1: any state.
    c.Capability: _ANY,
    c.Noop: _ANY,
    c.Logout: _ANY,
    c.Id: _ANY,  # RFC 2971 section 3.1
    # RFC 3501 6.2: not authenticated.
    c.StartTLS: _NOT_AUTH,
    c.Authenticate: _NOT_AUTH,
    c.Login: _NOT_AUTH,
    # RFC 3501 6.3: authenticated (and therefore selected too).
    c.Enable: _AUTH_ONLY,
    c.Select: _AUTH,
    c.Create: _AUTH,
    c.Delete: _AUTH,
    c.Rename: _AUTH,
    c.Subscribe: _AUTH,
    c.Unsubscribe: _AUTH,
    c.List: _AUTH,
    c.Lsub: _AUTH,
    c.Namespace: _AUTH,
    c.Status: _AUTH,
    c.Append: _AUTH,
    c.GetMetadata: _AUTH,  # RFC 5464 section 4
    c.SetMetadata: _AUTH,
    c.Notify: _AUTH,  # RFC 5465 section 8: command-auth
    c.Idle: _AUTH,  # RFC 2177: valid whenever a mailbox *could* be selected
    c.GetQuota: _AUTH,  # RFC 9208 section 4.1
    c.GetQuotaRoot: _AUTH,
    c.SetQuota: _AUTH,
    c.Compress: _AUTH,  # RFC 4978 formal syntax: command-auth
    c.Unauthenticate: _AUTH,  # RFC 8437 section 3
    # RFC 3501 6.4: selected.
    c.Check: _SELECTED,
    c.Close: _SELECTED,
    c.Unselect: _SELECTED,
    c.Expunge: _SELECTED,
    c.Search: _SELECTED,
    c.Fetch: _SELECTED,
    c.Store: _SELECTED,
    c.Copy: _SELECTED,
    c.Move: _SELECTED,
    c.Sort: _SELECTED,  # RFC 5256 section 3
    c.Thread: _SELECTED,
    c.CancelUpdate: _SELECTED,  # RFC 5267 section 5: command-select
    c.Replace: _SELECTED,  # RFC 8508 section 3
}


def allowed(command: c.Command, state: SessionState) -> bool | None:
    """Whether ``command`` may run in ``state``; None if not implemented."""
    states = ALLOWED.get(type(command))
    if states is None:
        return None
    return state in states


#: Wire command names -> command classes, so that a command whose literal
#: is still pending (``PendingCommand.name``) can be checked against
#: :data:`ALLOWED` before its literal is read.
COMMAND_NAMES: dict[str, type[c.Command]] = {
    "CAPABILITY": c.Capability,
    "NOOP": c.Noop,
    "LOGOUT": c.Logout,
    "ID": c.Id,
    "STARTTLS": c.StartTLS,
    "AUTHENTICATE": c.Authenticate,
    "LOGIN": c.Login,
    "ENABLE": c.Enable,
    "SELECT": c.Select,
    "EXAMINE": c.Select,
    "CREATE": c.Create,
    "DELETE": c.Delete,
    "RENAME": c.Rename,
    "SUBSCRIBE": c.Subscribe,
    "UNSUBSCRIBE": c.Unsubscribe,
    "LIST": c.List,
    "LSUB": c.Lsub,
    "NAMESPACE": c.Namespace,
    "STATUS": c.Status,
    "APPEND": c.Append,
    "GETMETADATA": c.GetMetadata,
    "SETMETADATA": c.SetMetadata,
    "NOTIFY": c.Notify,
    "IDLE": c.Idle,
    "COMPRESS": c.Compress,
    "UNAUTHENTICATE": c.Unauthenticate,
    "CHECK": c.Check,
    "CLOSE": c.Close,
    "UNSELECT": c.Unselect,
    "EXPUNGE": c.Expunge,
    "SEARCH": c.Search,
    "FETCH": c.Fetch,
    "STORE": c.Store,
    "COPY": c.Copy,
    "MOVE": c.Move,
    "SORT": c.Sort,
    "THREAD": c.Thread,
    "CANCELUPDATE": c.CancelUpdate,
    "REPLACE": c.Replace,
    "GETQUOTA": c.GetQuota,
    "GETQUOTAROOT": c.GetQuotaRoot,
    "SETQUOTA": c.SetQuota,
}


def allowed_by_name(name: str, state: SessionState) -> bool | None:
    """Like :func:`allowed` for a command known only by its name
    (``"UID FETCH"`` counts as ``FETCH``); None if unknown."""
    if name.startswith("UID "):
        name = name[4:]
    cls = COMMAND_NAMES.get(name)
    if cls is None or cls not in ALLOWED:
        return None
    return state in ALLOWED[cls]
