"""SASL for POP3 AUTH (RFC 5034): PLAIN (RFC 4616) and LOGIN.

LOGIN is not standardised (draft-murchison-sasl-login) but fetchmail and
many others use it; Dovecot offers both.  Both carry a password in the
clear, so they are only offered under TLS.
"""

from __future__ import annotations

import binascii

from asimap.pop3.errors import Pop3Error
from asimap.pop3.responses import Code

MECHANISMS = ("PLAIN", "LOGIN")

#: The LOGIN mechanism's challenges.
LOGIN_CHALLENGES = (b"Username:", b"Password:")

FAILED = "Authentication failed"


def decode_response(data: bytes) -> bytes:
    """One client response (RFC 5034 section 4): ``*`` cancels, ``=`` as
    an initial response means empty, anything else must be base64."""
    data = data.strip(b" ")
    if data == b"*":
        raise Pop3Error("Authentication cancelled")
    if data == b"=":
        return b""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        raise Pop3Error("Invalid base64 in SASL response") from None


def utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Pop3Error(FAILED, Code.AUTH) from None


def parse_plain(message: bytes) -> tuple[str, str]:
    """RFC 4616 section 2: ``[authzid] NUL authcid NUL passwd``.

    Acting as another user is not supported: an authzid must be empty or
    the authcid itself; anything else fails like a wrong password.
    """
    parts = message.split(b"\x00")
    if len(parts) != 3:
        raise Pop3Error(FAILED, Code.AUTH)
    authzid, authcid, password = (utf8(part) for part in parts)
    if authzid and authzid != authcid:
        raise Pop3Error(FAILED, Code.AUTH)
    return authcid, password
