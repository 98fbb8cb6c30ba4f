"""The command table: command name -> argument parser.

Data, not code paths (design.md section 5): adding a command is adding a row.
Each handler receives the reader positioned just after the command name,
the tag, and whether the command was prefixed with ``UID``; it parses the
arguments up to the end of the command.

``UID_COMMANDS`` lists the commands that accept the UID prefix (RFC 3501
section 6.4.8, RFC 4315, RFC 6851, RFC 5256).
"""

from __future__ import annotations

from collections.abc import Callable

from asimap.imap import commands as c
from asimap.imap.parser import (
    append,
    basic,
    context,
    fetch,
    listing,
    mailbox,
    metadata,
    notify,
    quota,
    search,
    store,
)
from asimap.imap.parser.tokens import Reader, fail

Handler = Callable[[Reader, str, bool], c.Command]


def _catenate(reader: Reader, tag: str, uid: bool) -> c.Command:
    fail("CATENATE not supported")


COMMANDS: dict[str, Handler] = {
    # Any state (RFC 3501 section 6.1, RFC 2971, RFC 5161 is authenticated).
    "CAPABILITY": basic.no_arguments(c.Capability),
    "NOOP": basic.no_arguments(c.Noop),
    "LOGOUT": basic.no_arguments(c.Logout),
    "ID": basic.parse_id,
    # Not authenticated (RFC 3501 section 6.2).
    "STARTTLS": basic.no_arguments(c.StartTLS),
    "AUTHENTICATE": basic.parse_authenticate,
    "LOGIN": basic.parse_login,
    # Authenticated (RFC 3501 section 6.3).
    "ENABLE": basic.parse_enable,
    "SELECT": mailbox.parse_select,
    "EXAMINE": mailbox.parse_examine,
    "CREATE": mailbox.parse_create,
    "DELETE": mailbox.parse_delete,
    "RENAME": mailbox.parse_rename,
    "SUBSCRIBE": mailbox.parse_subscribe,
    "UNSUBSCRIBE": mailbox.parse_unsubscribe,
    "LIST": listing.parse_list,
    "LSUB": listing.parse_lsub,
    "NAMESPACE": basic.no_arguments(c.Namespace),
    "STATUS": mailbox.parse_status,
    "GETMETADATA": metadata.parse_getmetadata,  # RFC 5464
    "SETMETADATA": metadata.parse_setmetadata,
    "NOTIFY": notify.parse_notify,  # RFC 5465
    "APPEND": append.parse_append,
    "REPLACE": append.parse_replace,  # RFC 8508
    "GETQUOTA": quota.parse_getquota,  # RFC 9208
    "GETQUOTAROOT": quota.parse_getquotaroot,
    "SETQUOTA": quota.parse_setquota,
    "IDLE": basic.no_arguments(c.Idle),
    "UNAUTHENTICATE": basic.no_arguments(c.Unauthenticate),
    "COMPRESS": basic.parse_compress,
    # Selected (RFC 3501 section 6.4).
    "CHECK": basic.no_arguments(c.Check),
    "CLOSE": basic.no_arguments(c.Close),
    "UNSELECT": basic.no_arguments(c.Unselect),
    "EXPUNGE": basic.parse_expunge,
    "SEARCH": search.parse_search,
    "FETCH": fetch.parse_fetch,
    "STORE": store.parse_store,
    "COPY": mailbox.parse_copy,
    "MOVE": mailbox.parse_move,
    "SORT": search.parse_sort,
    "THREAD": search.parse_thread,
    "CANCELUPDATE": context.parse_cancelupdate,  # RFC 5267 section 4.3.5
    # RFC 4469 is not in the command contract yet.
    "CATENATE": _catenate,
}

UID_COMMANDS = frozenset(
    {
        "FETCH",
        "STORE",
        "COPY",
        "MOVE",
        "SEARCH",
        "EXPUNGE",
        "SORT",
        "THREAD",
        "REPLACE",  # RFC 8508 section 6
    }
)
