"""SASL PLAIN and LOGIN, independent of the protocol that carries them.

IMAP AUTHENTICATE (RFC 3501 section 6.2.2, RFC 4959 section 3) and POP3
AUTH (RFC 5034 section 4) frame a SASL exchange the same way: the server
sends base64 challenges, the client answers one base64 line each, ``*``
cancels, and an initial response of ``=`` means "empty".  Only the words
around a failure differ (IMAP ``BAD`` / ``NO [AUTHENTICATIONFAILED]``,
POP3 ``-ERR`` / ``-ERR [AUTH]``), so this module raises small neutral
exceptions and each protocol maps them to its own answer.

Why three exceptions: a cancel and a malformed response are protocol
errors the client should see as such (RFC 3501 6.2.2: BAD), whereas every
reason credentials are unusable -- bad UTF-8, a missing NUL, acting as
another user -- must look exactly like a wrong password, so the answer
never tells which (RFC 5530 AUTHENTICATIONFAILED, RFC 3206 [AUTH]).

LOGIN is not standardised (draft-murchison-sasl-login) but fetchmail,
Outlook and many others use it; Dovecot offers both.  Both mechanisms
carry the password in the clear, so the protocols offer them only under
TLS.  SCRAM-SHA-256, which needs no plaintext and has steps of its own,
is in ``asimap.auth.scram`` and ``asimap.auth.scram_exchange``; it raises
these same exceptions.
"""

from __future__ import annotations

import binascii
from collections.abc import Awaitable, Callable

#: What we offer, in the order POP3 ``AUTH`` lists them.
MECHANISMS = ("PLAIN", "LOGIN")

#: The LOGIN mechanism's two challenges (draft-murchison-sasl-login);
#: on the wire they are base64 of these bytes.
LOGIN_CHALLENGES = (b"Username:", b"Password:")

#: The one text every failed authentication gets, whatever the reason.
FAILED = "Authentication failed"


class SaslError(Exception):
    """Base of the exceptions below; ``str(exc)`` is the text for the client."""


class SaslCancelled(SaslError):
    """The client answered ``*`` (RFC 3501 6.2.2, RFC 5034 section 4)."""

    def __init__(self) -> None:
        super().__init__("Authentication cancelled")


class SaslMalformed(SaslError):
    """A response was not strict base64: a protocol error, not a failure."""

    def __init__(self) -> None:
        super().__init__("Invalid base64 in SASL response")


class SaslFailed(SaslError):
    """The credentials are unusable; answered exactly like a wrong password."""

    def __init__(self) -> None:
        super().__init__(FAILED)


#: Sends one challenge (raw bytes; the protocol base64-encodes them) and
#: returns the client's raw response line, not yet decoded.
Challenge = Callable[[bytes], Awaitable[bytes]]


def decode_response(data: bytes) -> bytes:
    """Decode one client response line.

    ``*`` cancels (RFC 3501 6.2.2, RFC 5034 section 4); ``=`` is an empty
    initial response (RFC 4959 section 3, RFC 5034 section 4); anything
    else must be strict base64.  Surrounding spaces are tolerated.
    """
    data = data.strip(b" ")
    if data == b"*":
        raise SaslCancelled
    if data == b"=":
        return b""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        raise SaslMalformed from None


def utf8(data: bytes) -> str:
    """A username or password as text; bytes that are not UTF-8 fail like a
    wrong password (RFC 4616 section 2 requires UTF-8)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslFailed from None


def parse_plain(message: bytes) -> tuple[str, str]:
    """RFC 4616 section 2: ``[authzid] NUL authcid NUL passwd``.

    Acting as another user is not supported: an authzid must be empty or
    the authcid itself; anything else fails like a wrong password.
    """
    parts = message.split(b"\x00")
    if len(parts) != 3:
        raise SaslFailed
    authzid, authcid, password = (utf8(part) for part in parts)
    if authzid and authzid != authcid:
        raise SaslFailed
    return authcid, password


async def exchange(
    mechanism: str, initial_response: bytes | None, challenge: Challenge
) -> tuple[str, str]:
    """Run a PLAIN or LOGIN exchange and return ``(username, password)``.

    ``mechanism`` must be one of :data:`MECHANISMS` (upper case); the
    caller refuses others in its own words.  ``initial_response`` is the
    still-encoded response sent with the command (RFC 4959, RFC 5034);
    ``challenge`` performs one round trip.  RFC 4959 allows an initial
    response for LOGIN too: it is the username.
    """
    if mechanism == "PLAIN":
        if initial_response is not None:
            response = decode_response(initial_response)
        else:
            response = decode_response(await challenge(b""))
        return parse_plain(response)
    if mechanism != "LOGIN":
        raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
    if initial_response is not None:
        user_bytes = decode_response(initial_response)
    else:
        user_bytes = decode_response(await challenge(LOGIN_CHALLENGES[0]))
    password_bytes = decode_response(await challenge(LOGIN_CHALLENGES[1]))
    return utf8(user_bytes), utf8(password_bytes)
