"""SASLprep (RFC 4013), the stringprep profile SCRAM applies to names.

RFC 5802 section 5.1 asks that the SCRAM username be prepared with
SASLprep so that one name typed differently (a full-width letter, a
no-break space, a soft hyphen) still names the same account.  Python
ships the stringprep tables of RFC 3454 (module ``stringprep``) but not
the profiles built on them, so the four steps of RFC 4013 section 2 are
spelled out here, table by table.

Why ``allow_unassigned``: RFC 3454 section 7 distinguishes *stored
strings* (unassigned code points prohibited, so a future Unicode version
cannot change what a stored name means) from *queries* (allowed).  A name
we look up is compared with names we store, so the safe default is the
stored-string rule; callers may relax it.
"""

from __future__ import annotations

import stringprep
import unicodedata
from collections.abc import Callable


class SaslprepError(ValueError):
    """The string cannot be prepared (a prohibited or unassigned code
    point, or a violation of the bidirectional rules)."""


#: RFC 4013 section 2.3: the prohibited-output tables.  C.1.2 (non-ASCII
#: space) is listed although step 1 already maps it away, exactly as the
#: RFC lists it; it costs nothing and mirrors the text.
_PROHIBITED: tuple[Callable[[str], bool], ...] = (
    stringprep.in_table_c12,  # non-ASCII space characters
    stringprep.in_table_c21,  # ASCII control characters
    stringprep.in_table_c22,  # non-ASCII control characters
    stringprep.in_table_c3,  # private use
    stringprep.in_table_c4,  # non-character code points
    stringprep.in_table_c5,  # surrogate codes
    stringprep.in_table_c6,  # inappropriate for plain text
    stringprep.in_table_c7,  # inappropriate for canonical representation
    stringprep.in_table_c8,  # change display properties / deprecated
    stringprep.in_table_c9,  # tagging characters
)


def saslprep(text: str, *, allow_unassigned: bool = False) -> str:
    """Prepare ``text`` per RFC 4013 section 2; raise :class:`SaslprepError`.

    An empty result is returned as is: whether an empty name is acceptable
    is the caller's decision (SCRAM refuses it).
    """
    # Step 1, mapping (RFC 4013 section 2.1): non-ASCII space (C.1.2) to
    # SPACE, "commonly mapped to nothing" (B.1) removed.
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch
        for ch in text
        if not stringprep.in_table_b1(ch)
    )
    # Step 2, normalisation (section 2.2): Unicode form KC.
    normalized = unicodedata.normalize("NFKC", mapped)
    for ch in normalized:
        # Step 3, prohibited output (section 2.3).
        if any(in_table(ch) for in_table in _PROHIBITED):
            raise SaslprepError(f"prohibited character U+{ord(ch):04X}")
        # Section 2.5: unassigned code points (table A.1).
        if not allow_unassigned and stringprep.in_table_a1(ch):
            raise SaslprepError(f"unassigned code point U+{ord(ch):04X}")
    _check_bidi(normalized)
    return normalized


def _check_bidi(text: str) -> None:
    """RFC 4013 section 2.4 applies RFC 3454 section 6: a string with any
    right-to-left character (D.1) must contain no left-to-right one (D.2)
    and must begin and end with a right-to-left character."""
    if not any(stringprep.in_table_d1(ch) for ch in text):
        return
    if any(stringprep.in_table_d2(ch) for ch in text):
        raise SaslprepError("mixes right-to-left and left-to-right characters")
    if not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1])):
        raise SaslprepError("right-to-left string must start and end with one")
