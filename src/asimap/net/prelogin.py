"""Invalid commands before login: the third one ends the connection.

A client that has not logged in and sends commands the server cannot run
(unknown, malformed, not allowed before login, a line or literal over the
limits) is either broken or probing.  Answering each costs little, but
such a client holds one of the pre-login slots (:mod:`asimap.net.admission`)
for as long as its login deadline allows, and a protocol-confused client
(an HTTP request sent to the IMAP port, a mail client talking IMAP to
POP3) never gets better.  So, as Dovecot does (its ``bad_counter``, three
in ``login-common``), the third invalid command before login ends the
connection:

* IMAP: each gets its tagged (or untagged) ``BAD`` as before; after the
  third, ``* BYE Too many invalid commands`` and the connection closes
  (RFC 3501 section 7.1.5 lets the server send BYE at any time).  A
  cancelled AUTHENTICATE (RFC 3501 section 6.2.2, ``BAD`` by rule) is the
  client's right, not an invalid command, and does not count; a refused
  login is ``NO`` and is the throttle's business (docs/security.md).
* POP3: the first two get their ``-ERR``; the third is answered
  ``-ERR Too many invalid commands`` and the connection closes (RFC 1939
  has no unsolicited responses: the one line is the reason).  A wrong
  password (``-ERR [AUTH]``) does not count.

After login nothing is counted: a logged-in user's client may be buggy,
but it is theirs, and closing would cost them their session state.
"""

from __future__ import annotations

#: The invalid command before login that closes the connection.
MAX_INVALID_COMMANDS = 3

#: The reason given (IMAP ``* BYE``, POP3 ``-ERR``).
TOO_MANY_TEXT = "Too many invalid commands"


class InvalidCommands:
    """One connection's count (a single int: one per connection)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def note(self) -> bool:
        """One more invalid command before login; True when it is the one
        that closes the connection."""
        self.count += 1
        return self.count >= MAX_INVALID_COMMANDS
