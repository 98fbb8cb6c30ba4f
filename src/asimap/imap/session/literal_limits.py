"""How big a literal each command may announce, decided before it is read.

The reader (:mod:`asimap.imap.reader`) only enforces hard caps; the session
answers every announced literal (``Session.check_literal``) with the limit
that fits the command, so that the refusal is the one the RFCs ask for and
no byte of an oversized literal is held in memory (design.md section 3):

* APPEND / REPLACE message data: APPENDLIMIT (RFC 7889), refused with
  ``NO [TOOBIG]``;
* SETMETADATA values: ``METADATA_MAX_VALUE``, refused with
  ``NO [METADATA MAXSIZE n]`` (RFC 5464 section 4.3);
* every other literal (LOGIN passwords, SEARCH strings, mailbox names...):
  ``Limits.max_small_literal``, refused with ``BAD [TOOBIG]`` like the
  reader's own literal limit (RFC 7888 section 4 allows BAD).
"""

from __future__ import annotations

from asimap.imap.responses import Atom, Code, Response, Status, Tagged
from asimap.imap.session.context import Context
from asimap.store.base import METADATA_MAX_VALUE

#: Commands (as ``PendingCommand.name`` spells them) whose literals are
#: messages, limited by APPENDLIMIT.
MESSAGE_COMMANDS = frozenset({"APPEND", "REPLACE", "UID REPLACE"})


def append_limit(ctx: Context) -> int:
    """The APPENDLIMIT of RFC 7889 for this connection: the largest message
    APPEND accepts, advertised as ``APPENDLIMIT=n`` and in STATUS."""
    return ctx.services.limits.max_literal


def check_small_literal(
    ctx: Context, tag: str, name: str, size: int
) -> Response | None:
    """Refuse a non-message literal above its limit; None = accept."""
    if name == "SETMETADATA":
        if size <= METADATA_MAX_VALUE:
            return None
        code = Code("METADATA", (Atom("MAXSIZE"), METADATA_MAX_VALUE))
        return Tagged(tag, Status.NO, "Metadata value too large", code)
    if size <= ctx.services.limits.max_small_literal:
        return None
    return Tagged(tag, Status.BAD, "literal too big", Code("TOOBIG"))
