"""How a handler says "this command fails": raise :class:`CommandFailed`.

The dispatcher turns it into the tagged response.  Store errors are mapped
to NO with the response codes of RFC 5530 (and RFC 9051 section 7.1) in
:func:`store_error_response`, so every handler reports them the same way.
"""

from __future__ import annotations

from asimap.imap.responses import Code, Status
from asimap.store import base


class CommandFailed(Exception):
    """Ends a command with ``tag NO|BAD [code] text``."""

    def __init__(self, status: Status, text: str, code: Code | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code


def no(text: str, code: str | None = None) -> CommandFailed:
    """Shorthand for a NO failure with an optional argument-less code."""
    return CommandFailed(Status.NO, text, Code(code) if code else None)


def bad(text: str) -> CommandFailed:
    """Shorthand for a BAD failure (syntax or state, RFC 3501 7.1.3)."""
    return CommandFailed(Status.BAD, text)


def store_error_response(
    error: base.StoreError, *, trycreate: bool = False
) -> CommandFailed:
    """Map a store error to ``NO [code] message``.

    ``trycreate`` is for APPEND/COPY/MOVE, where a missing target mailbox
    is answered with ``[TRYCREATE]`` (RFC 3501 sections 6.3.11, 6.4.7).
    """
    text = str(error) or "Operation failed"
    code: str | None
    if isinstance(error, base.MailboxNotFound):
        code = "TRYCREATE" if trycreate else "NONEXISTENT"
    elif isinstance(error, base.MailboxExists):
        code = "ALREADYEXISTS"
    elif isinstance(error, base.InvalidMailboxName | base.OperationNotPermitted):
        code = "CANNOT"
    elif isinstance(error, base.OverQuota):
        # Also a full disk or file system quota (store/mh/space.py).
        code = "OVERQUOTA"
    elif isinstance(error, base.StorageDenied):
        # RFC 5530 section 3: the user may not do this here; Dovecot
        # answers a read-only folder the same way.
        code = "NOPERM"
    elif isinstance(error, base.MailboxHasChildren):
        code = "HASCHILDREN"
    elif isinstance(error, base.MessageGone):
        code = "EXPUNGEISSUED"
    elif isinstance(error, base.MessageUnreadable):
        # RFC 5530 section 3: UNAVAILABLE is a temporary server-side
        # failure the client may retry later -- a message file the server
        # cannot read until an administrator repairs it.  Not NOPERM (the
        # user's own rights, RFC 4314), not CORRUPTION (the data may be
        # intact), not SERVERBUG (no bug: the file system refused).
        code = "UNAVAILABLE"
    else:
        code = None
    return no(text, code)
