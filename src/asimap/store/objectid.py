"""Object identifiers of RFC 8474 (OBJECTID): MAILBOXID, EMAILID, THREADID.

RFC 8474 section 3 gives them one syntax, ``objectid = 1*255(ALPHA /
DIGIT / "_" / "-")``, and asks that they be unique within the server
(section 3: "it MUST be unique", and never reused for a different object).

Why each is made the way it is:

* **MAILBOXID** (section 4) is random: an ``F`` and 96 random bits in hex.
  It belongs to the mailbox, not its name, so a store keeps it with the
  mailbox's record and RENAME carries it (4.2), while a mailbox deleted and
  created again gets a fresh one (4.1).  Randomness keeps it unique across
  databases rebuilt from scratch, which a counter would not.
* **EMAILID** (section 5.1) must be the same for a message after COPY and
  MOVE and across restarts, and must differ for messages with different
  content.  It is derived from the content: ``M`` and the first 96 bits of
  the SHA-256 of the exact message octets (as Cyrus does with its GUID).
  Copies keep their bytes, hence their id, in every mailbox and every store
  without any table to keep in step; byte-identical messages share an id,
  which section 5.1 allows ("the same EMAILID for ... the same message
  content") -- they are the same email.
* **THREADID** (section 5.2) must be the same for every message of a
  thread, in every mailbox.  It is derived from the thread's root msg-id:
  the first id of References, else In-Reply-To, else the message's own
  Message-ID (RFC 5322 section 3.6.4: References starts with the root of
  the conversation).  A message with none of them is a thread of its own,
  keyed by its EMAILID.  Every message thus gets a real THREADID, never
  NIL (NIL is only for servers that do not thread at all, 5.2).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable

from asimap.imap.threading import message_ids

#: RFC 8474 section 3, ``objectid``.
OBJECTID_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")

#: Hex digits kept from a hash (96 bits: collisions need ~2**48 messages).
_DIGITS = 24


def is_objectid(text: str) -> bool:
    """Whether ``text`` has RFC 8474 ``objectid`` syntax."""
    return OBJECTID_RE.fullmatch(text) is not None


def new_mailboxid() -> str:
    """A fresh, random MAILBOXID (section 4)."""
    return "F" + secrets.token_hex(_DIGITS // 2)


def emailid_of(raw: bytes) -> str:
    """The EMAILID of a message with exactly these octets (section 5.1)."""
    return "M" + hashlib.sha256(raw).hexdigest()[:_DIGITS]


def thread_root(header_values: Callable[[str], list[str]]) -> str | None:
    """The msg-id naming the thread of a message, None if it has none.

    ``header_values`` returns the decoded values of a header field (as
    :meth:`asimap.message.model.Message.header_values` does).
    """
    for field in ("references", "in-reply-to", "message-id"):
        ids = message_ids(" ".join(header_values(field)))
        if ids:
            return ids[0]
    return None


def threadid_of(header_values: Callable[[str], list[str]], emailid: str) -> str:
    """The THREADID of a message (section 5.2); see the module doc."""
    root = thread_root(header_values)
    key = ("<" + root + ">") if root is not None else emailid
    return (
        "T"
        + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:_DIGITS]
    )
