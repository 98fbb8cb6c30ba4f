"""A message file the server cannot read: one clean error, one log line.

A file made unreadable (``chmod 000`` by a careless ``chmod -R``, a file
left by another user's tool, a failing disk: EACCES, EPERM, EIO) is not a
bug in the server and must not end as ``NO [SERVERBUG]`` with a traceback.
The read raises :class:`~asimap.store.base.MessageUnreadable` naming the
message and the reason, which the session answers with ``NO
[UNAVAILABLE]`` for that message alone.  The administrator needs to hear of
it once, not at every retry of every client: each (file, error) is logged
the first time only, in a bounded memory of what was already reported.
"""

from __future__ import annotations

import errno
import logging
import os
from collections import OrderedDict
from pathlib import Path

from asimap.store.base import MessageUnreadable

log = logging.getLogger(__name__)

#: How many (file, error) pairs are remembered as already logged.
REMEMBERED = 1024

_reported: OrderedDict[tuple[str, int], None] = OrderedDict()


def unreadable(uid: int, path: Path | str, exc: OSError) -> MessageUnreadable:
    """The error to raise for ``exc`` reading message ``uid`` at ``path``,
    logged once per file and error number."""
    code = exc.errno if exc.errno is not None else 0
    reason = os.strerror(code).lower() if code else "read error"
    key = (str(path), code)
    if key not in _reported:
        _reported[key] = None
        while len(_reported) > REMEMBERED:
            _reported.popitem(last=False)
        log.error(
            "message UID %d cannot be read (%s): %s",
            uid,
            errno.errorcode.get(code, code),
            path,
        )
    return MessageUnreadable(uid, reason)
