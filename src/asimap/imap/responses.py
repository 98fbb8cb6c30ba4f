"""Typed IMAP responses: what the session produces and the encoder serialises.

The session never writes wire syntax.  It builds responses from *values*,
and the encoder (``asimap.imap.encoder``) decides how each value is written,
so that no byte string chosen by a client or found in a message can ever
produce invalid syntax.

Values (``Value``):

* ``None`` is ``NIL``.
* ``int`` is a number (must be >= 0).
* ``str`` and ``bytes`` are *strings*: the encoder writes them quoted when
  that is legal and a literal otherwise (CR, LF, NUL, 8-bit outside UTF-8
  mode, or very long).
* :class:`Atom` is written verbatim after validation (flags like ``\\Seen``,
  keywords, ``BODY[1.2]`` item names, ``UIDVALIDITY``); it may not contain
  SP, CR, LF, ``(``, ``)``, ``{``, ``"`` or controls -- except that
  brackets and the content of a section spec are allowed, see the encoder.
* :class:`Literal` always becomes a literal (``{n}``), :class:`Literal8`
  a ``~{n}`` literal8 (RFC 3516) -- used for message data.
* ``list`` / ``tuple`` is a parenthesised list of values.
* :class:`Adjacent` writes its values with no separator (multipart bodies,
  envelope address lists).
* :class:`Raw` is trusted, pre-formatted ASCII produced by *our* code only
  (for example a FETCH item name echoing ``BODY[HEADER.FIELDS (FROM)]``);
  it is never built from unvalidated client or message bytes.
* :class:`Encoded` is pre-encoded wire bytes produced by our own encoder,
  written verbatim (a cached ENVELOPE or BODYSTRUCTURE).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Atom:
    """An atom-like token written verbatim (validated by the encoder)."""

    text: str


@dataclass(frozen=True, slots=True)
class Raw:
    """Trusted ASCII written verbatim; built only by asimap's own code."""

    text: str


@dataclass(frozen=True, slots=True)
class Literal:
    """Bytes always sent as a ``{n}`` literal (message data)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Literal8:
    """Bytes always sent as a ``~{n}`` literal8 (RFC 3516 BINARY)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Encoded:
    """Pre-encoded wire bytes produced by our own encoder, written verbatim.

    Stores cache ENVELOPE and BODYSTRUCTURE this way so that FETCH never
    parses a message again.  They are encoded with ``utf8=False``, which
    is valid whether or not the client enabled UTF8=ACCEPT (8-bit strings
    then go out as literals).  Never built from anything but
    :func:`asimap.imap.encoder.encode_value` output.
    """

    data: bytes


@dataclass(frozen=True, slots=True)
class Adjacent:
    """Values written one after another with *no* separator.

    The formal syntax has two places where list members are not separated
    by SP: the parts of a multipart body (RFC 3501 section 9,
    ``body-type-mpart = 1*body SP media-subtype``) and the addresses of an
    envelope address list (``"(" 1*address ")"``).  Strict parsers reject
    the spaced form, so those places wrap their members in ``Adjacent``.
    """

    values: tuple[Value, ...]


Value = (
    None
    | int
    | str
    | bytes
    | Atom
    | Raw
    | Literal
    | Literal8
    | Encoded
    | Adjacent
    | Sequence["Value"]
)


class Status(enum.Enum):
    OK = "OK"
    NO = "NO"
    BAD = "BAD"
    PREAUTH = "PREAUTH"
    BYE = "BYE"


@dataclass(frozen=True, slots=True)
class Code:
    """A response code: ``[NAME]`` or ``[NAME args]``.

    ``args`` are values written after the name separated by spaces, e.g.
    ``Code("UIDVALIDITY", (42,))``, ``Code("PERMANENTFLAGS",
    ([Atom("\\\\Seen"), Atom("\\\\*")],))``, ``Code("COPYUID", (7, Raw("1:3"),
    Raw("10:12")))``.
    """

    name: str
    args: tuple[Value, ...] = ()


@dataclass(frozen=True, slots=True)
class Tagged:
    """``tag OK|NO|BAD [code] text``."""

    tag: str
    status: Status
    text: str
    code: Code | None = None


@dataclass(frozen=True, slots=True)
class Untagged:
    """``* value value ...`` for data responses.

    Examples: ``Untagged((3, Atom("EXISTS")))``,
    ``Untagged((Atom("FLAGS"), [Atom("\\\\Seen")]))``,
    ``Untagged((12, Atom("FETCH"), [Atom("UID"), 40, Atom("FLAGS"), []]))``,
    ``Untagged((Atom("LIST"), [Atom("\\\\HasNoChildren")], "/", "INBOX"))``.
    """

    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class UntaggedStatus:
    """``* OK|NO|BAD|PREAUTH|BYE [code] text``."""

    status: Status
    text: str
    code: Code | None = None


@dataclass(frozen=True, slots=True)
class Continuation:
    """``+ text`` (or ``+ base64`` for a SASL challenge when ``data`` set)."""

    text: str = ""
    data: bytes | None = None


Response = Tagged | Untagged | UntaggedStatus | Continuation
