"""Mailbox names between the wire and the store.

Clients send names as bytes in modified UTF-7 (RFC 3501 section 5.1.3),
or in UTF-8 once they enabled UTF8=ACCEPT (RFC 6855 section 3) or IMAP4rev2
(RFC 9051 section 5.1); stores take canonical ``str`` names
(:func:`asimap.store.names.check_name`).  Every handler goes through
:func:`mailbox_name`, so a name is decoded and validated in exactly one
way, and through :func:`wire_name` on the way out.

Which of the two encodings applies is a property of the connection, not of
the handler: the dispatcher runs each command inside :func:`names_in_utf8`,
so handlers keep calling these functions without passing the mode around.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

from asimap.imap.mutf7 import decode_mutf7, encode_mutf7
from asimap.imap.session.errors import CommandFailed, no
from asimap.store.base import InvalidMailboxName
from asimap.store.names import check_name

#: True while a command of a UTF-8 connection runs (see the module doc).
_UTF8_NAMES: ContextVar[bool] = ContextVar("asimap_utf8_names", default=False)


class names_in_utf8:
    """Decode and encode names as UTF-8 (True) or modified UTF-7 inside.

    A class with slots rather than a generator: it stays alive around
    every command, IDLE included, for as long as the command runs.
    """

    __slots__ = ("_enabled", "_token")

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._token: Token[bool] | None = None

    def __enter__(self) -> None:
        self._token = _UTF8_NAMES.set(self._enabled)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _UTF8_NAMES.reset(self._token)
            self._token = None


def decode_name(raw: bytes) -> str:
    """Decode a client name or pattern from modified UTF-7, or UTF-8.

    An invalid encoding is the client's error in the *name*, not in the
    command syntax, so it gets ``NO [CANNOT]`` like any other bad name.
    In UTF-8 mode ``&`` is an ordinary character (RFC 6855 section 3:
    no modified UTF-7 once UTF8=ACCEPT is enabled).
    """
    if _UTF8_NAMES.get():
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise no("Mailbox name is not valid UTF-8", "CANNOT") from exc
    try:
        return decode_mutf7(raw)
    except (ValueError, UnicodeError) as exc:
        raise no("Mailbox name is not valid modified UTF-7", "CANNOT") from exc


def decode_pattern(raw: bytes) -> str | None:
    """Decode a LIST/LSUB pattern or reference; ``None`` when its encoding
    is invalid.

    Such a pattern names no mailbox, so it simply matches nothing: LIST
    answers OK with no results (Dovecot does the same).  The RFC 3501
    section 5.1.3 requirement is on names a client creates or renames,
    which :func:`decode_name` enforces with ``NO [CANNOT]``.
    """
    try:
        return decode_name(raw)
    except CommandFailed:
        return None


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
    """A store name as sent to the client: itself for a UTF-8 connection
    (the encoder may then quote UTF-8), modified UTF-7 otherwise."""
    if _UTF8_NAMES.get():
        return name
    encoded = encode_mutf7(name)
    return encoded.decode("ascii") if isinstance(encoded, bytes) else encoded


__all__ = [
    "CommandFailed",
    "decode_name",
    "decode_pattern",
    "mailbox_name",
    "names_in_utf8",
    "wire_name",
]
