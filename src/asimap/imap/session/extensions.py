"""Which protocol extensions a connection has turned on, and what follows.

Several extensions change the *shape* of responses once a client turns
them on, so every part of the session asks the same questions about the
same set (``Context.enabled``, shared by reference with the selected view):

* CONDSTORE (RFC 7162 section 3.1) -- turned on by ``ENABLE CONDSTORE`` or
  implicitly by any "CONDSTORE enabling command" (SELECT/EXAMINE with
  ``(CONDSTORE)``, STATUS HIGHESTMODSEQ, FETCH MODSEQ or CHANGEDSINCE,
  SEARCH MODSEQ, STORE UNCHANGEDSINCE).  From then on every untagged FETCH
  caused by a flag change carries UID and MODSEQ, and SELECT reports
  HIGHESTMODSEQ.
* QRESYNC (RFC 7162 section 3.2) -- only by ``ENABLE QRESYNC``; implies
  CONDSTORE, allows SELECT (QRESYNC ...) and UID FETCH (VANISHED), and
  replaces EXPUNGE responses by VANISHED.
* UTF8=ACCEPT (RFC 6855 section 3) -- mailbox names travel as UTF-8 in both
  directions and quoted strings may carry UTF-8.
* IMAP4rev2 (RFC 9051 appendix A) -- everything UTF8=ACCEPT does for names
  and strings (RFC 9051 section 5.1), plus the rev2 response forms: no
  RECENT responses or ``\\Recent`` flags, no UNSEEN response code, a LIST
  response at SELECT, UID in every unsolicited FETCH, ESEARCH for SEARCH.
"""

from __future__ import annotations

from collections.abc import Set

CONDSTORE = "CONDSTORE"
QRESYNC = "QRESYNC"
UTF8_ACCEPT = "UTF8=ACCEPT"
IMAP4REV2 = "IMAP4REV2"

#: What ENABLE may turn on (RFC 5161), as upper-cased capability names;
#: each still has to be advertised on the connection to be enabled.
ENABLEABLE = frozenset({CONDSTORE, QRESYNC, UTF8_ACCEPT, IMAP4REV2})


def condstore(enabled: Set[str]) -> bool:
    """CONDSTORE is on (QRESYNC implies it, RFC 7162 section 3.2.3)."""
    return CONDSTORE in enabled or QRESYNC in enabled


def qresync(enabled: Set[str]) -> bool:
    return QRESYNC in enabled


def rev2(enabled: Set[str]) -> bool:
    return IMAP4REV2 in enabled


def utf8(enabled: Set[str]) -> bool:
    """Mailbox names and quoted strings are UTF-8 (RFC 6855 section 3,
    RFC 9051 section 5.1 and appendix A)."""
    return UTF8_ACCEPT in enabled or IMAP4REV2 in enabled


def enable_condstore(enabled: set[str]) -> None:
    """Record a CONDSTORE enabling command (RFC 7162 section 3.1)."""
    enabled.add(CONDSTORE)
