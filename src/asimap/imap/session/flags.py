"""Validation and normalisation of flags sent by clients (STORE, APPEND).

RFC 3501 section 2.3.2: system flags begin with a backslash and are a fixed
set (matched case-insensitively, stored in canonical spelling); keywords
are atoms.  ``\\Recent`` is session state, never stored, so a client cannot
set it (RFC 3501 6.4.6).  Anything else is refused with BAD rather than
silently stored, so a typo does not become a permanent keyword.
"""

from __future__ import annotations

from collections.abc import Iterable

from asimap.imap.session.errors import bad
from asimap.store.base import SYSTEM_FLAGS

_CANONICAL = {flag.upper(): flag for flag in SYSTEM_FLAGS}

#: RFC 3501 section 9: atom-specials, plus "]" (resp-specials) -- a
#: keyword must be a plain atom.
_NOT_IN_ATOM = frozenset('(){ %*"\\]')


def is_keyword(flag: str) -> bool:
    """Whether ``flag`` is a valid keyword atom (printable ASCII only)."""
    return bool(flag) and all(
        0x20 < ord(ch) < 0x7F and ch not in _NOT_IN_ATOM for ch in flag
    )


def normalize_flags(flags: Iterable[str]) -> frozenset[str]:
    """Canonical flags, or :class:`CommandFailed` BAD for an invalid one."""
    result: set[str] = set()
    for flag in flags:
        if flag.startswith("\\"):
            canonical = _CANONICAL.get(flag.upper())
            if canonical is None:
                raise bad(f"Invalid system flag {flag[:40]!r}")
            result.add(canonical)
        elif is_keyword(flag):
            result.add(flag)
        else:
            raise bad("Invalid keyword")
    return frozenset(result)
