"""Mailbox names between the wire and the store.

Clients send names as bytes in modified UTF-7 (RFC 3501 section 5.1.3);
stores take canonical ``str`` names (:func:`asimap.store.names.check_name`).
Every handler goes through :func:`mailbox_name`, so a name is decoded and
validated in exactly one way, and through :func:`wire_name` on the way out.
"""

from __future__ import annotations

from asimap.imap.mutf7 import decode_mutf7, encode_mutf7
from asimap.imap.session.errors import CommandFailed, no
from asimap.store.base import InvalidMailboxName
from asimap.store.names import check_name


def decode_name(raw: bytes) -> str:
    """Decode a client name or pattern from modified UTF-7.

    An invalid encoding is the client's error in the *name*, not in the
    command syntax, so it gets ``NO [CANNOT]`` like any other bad name.
    """
    try:
        return decode_mutf7(raw)
    except (ValueError, UnicodeError) as exc:
        raise no("Mailbox name is not valid modified UTF-7", "CANNOT") from exc


def mailbox_name(raw: bytes, *, create: bool = False) -> str:
    """Decode and validate a mailbox name; INBOX in any case -> ``INBOX``.

    ``create`` strips one trailing delimiter (RFC 3501 section 6.3.3).
    Raises :class:`CommandFailed` (``NO [CANNOT] reason``) when invalid.
    """
    name = decode_name(raw)
    try:
        return check_name(name, strip_trailing_delimiter=create)
    except InvalidMailboxName as exc:
        raise no(str(exc) or "Invalid mailbox name", "CANNOT") from exc


def wire_name(name: str) -> str:
    """A store name as sent to an IMAP4rev1 client (modified UTF-7)."""
    encoded = encode_mutf7(name)
    return encoded.decode("ascii") if isinstance(encoded, bytes) else encoded


__all__ = ["CommandFailed", "decode_name", "mailbox_name", "wire_name"]
