"""The lexer: a cursor over the line segments and literals of one command.

A complete command arrives from the framing reader as ``lines`` and
``literals`` with ``len(lines) == len(literals) + 1``.  Every line but the
last ends with a literal marker (``{n}``, ``{n+}``, ``~{n}``, ``~{n+}``) and
``literals[i]`` holds the bytes that followed the marker ending ``lines[i]``.
The grammar only allows a literal where a *string* is allowed (RFC 3501
section 4.3), so the cursor crosses to the next line exactly when a string
production consumes a literal; everywhere else it works inside one line.

Every token is recognised with a compiled regular expression matched at the
cursor, never character by character in Python, because FETCH / STORE /
SEARCH lines are on the hot path.  Errors are raised as
:class:`ParseFailure` and turned into a :class:`~asimap.imap.commands.ParseError`
at the top of the parser, so this module never returns half-parsed values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NoReturn

from asimap.imap.limits import Limits

SP = 0x20
LPAREN = 0x28
RPAREN = 0x29
DQUOTE = 0x22
LBRACE = 0x7B
TILDE = 0x7E
LBRACKET = 0x5B
RBRACKET = 0x5D
LANGLE = 0x3C

# RFC 3501 section 9: ATOM-CHAR is any CHAR except atom-specials
# ("(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
# resp-specials).  ASTRING-CHAR adds "]"; a tag is ASTRING-CHAR minus "+"
# (RFC 9051 section 9); list-char adds the wildcards "%" and "*".
ATOM_CLASS = rb"\x21\x23\x24\x26\x27\x2b-\x5b\x5e-\x7a\x7c-\x7e"
ATOM_RE = re.compile(rb"[" + ATOM_CLASS + rb"]+")
ASTRING_ATOM_RE = re.compile(rb"[" + ATOM_CLASS + rb"\x5d]+")
TAG_RE = re.compile(rb"[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+")
LIST_CHARS_RE = re.compile(rb"[" + ATOM_CLASS + rb"\x5d\x25\x2a]+")
NUMBER_RE = re.compile(rb"[0-9]+")

# RFC 3501 section 4.3 / RFC 9051: a quoted string holds any TEXT-CHAR (no
# CR, LF or NUL) except the quoted-specials, which must be escaped.  8-bit
# bytes are allowed (UTF-8 under RFC 9051 / RFC 6855); validity is the
# session's business.
QUOTED_RE = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
QUOTED_UNESCAPE_RE = re.compile(rb"\\([\"\\])")

# RFC 7888 section 8 (literal+), RFC 3516 section 4.2 (literal8).
LITERAL_RE = re.compile(rb"(~?)\{([0-9]+)(\+?)\}")

#: Largest number / nz-number (RFC 3501 section 9: 32-bit unsigned).
MAX_NUMBER = 4294967295
#: Largest number64 / mod-sequence-value (RFC 9051, RFC 7162: 63-bit).
MAX_NUMBER64 = 9223372036854775807

#: Longest echo of client text in an error message.
_ECHO_MAX = 40


class ParseFailure(Exception):
    """Raised inside the parser; carries the ASCII message for the BAD."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def fail(message: str) -> NoReturn:
    raise ParseFailure(message)


def echo(raw: bytes) -> str:
    """Client bytes made safe to quote in an error message (ASCII, short)."""
    text = raw[:_ECHO_MAX].decode("ascii", "replace")
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text)
    return cleaned + ("..." if len(raw) > _ECHO_MAX else "")


def decode_text(raw: bytes) -> str:
    """Decode a client string; invalid UTF-8 is replaced, never an error.

    The session checks the CHARSET (RFC 3501 section 6.4.4) and decides
    what to do with it; the parser only guarantees a ``str``.
    """
    return raw.decode("utf-8", "replace")


class Reader:
    """Cursor over one command's lines and literals."""

    __slots__ = ("index", "limits", "line", "lines", "literals", "pos")

    def __init__(
        self, lines: Sequence[bytes], literals: Sequence[bytes], limits: Limits
    ) -> None:
        self.lines = lines
        self.literals = literals
        self.limits = limits
        self.index = 0
        self.line = lines[0]
        self.pos = 0

    # -- position ----------------------------------------------------------

    def peek(self) -> int:
        """The byte at the cursor, or -1 at the end of the line."""
        if self.pos < len(self.line):
            return self.line[self.pos]
        return -1

    def at_end(self) -> bool:
        """True at the end of the command (only the last line can end here)."""
        return self.pos >= len(self.line)

    def startswith(self, prefix: bytes) -> bool:
        return self.line.startswith(prefix, self.pos)

    def expect_end(self) -> None:
        if self.pos < len(self.line):
            fail("Unexpected extra arguments")

    def space(self) -> None:
        """Consume the single SP that separates arguments."""
        if self.pos < len(self.line) and self.line[self.pos] == SP:
            self.pos += 1
            return
        self._missing("space")

    def try_space(self) -> bool:
        """Consume a SP if there is one (optional trailing arguments)."""
        if self.pos < len(self.line) and self.line[self.pos] == SP:
            self.pos += 1
            return True
        return False

    def byte(self, value: int, what: str) -> None:
        if self.peek() == value:
            self.pos += 1
            return
        self._missing(what)

    def open_paren(self) -> None:
        self.byte(LPAREN, '"("')

    def close_paren(self) -> None:
        self.byte(RPAREN, '")"')

    def _missing(self, what: str) -> NoReturn:
        if self.pos >= len(self.line):
            fail("Missing argument")
        if self.line[self.pos] == SP:
            fail("Unexpected extra space")
        fail(f"Expected {what} at {echo(self.line[self.pos :])!r}")

    # -- tokens --------------------------------------------------------------

    def match(self, pattern: re.Pattern[bytes]) -> bytes | None:
        m = pattern.match(self.line, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group()

    def atom(self, what: str = "atom") -> bytes:
        m = ATOM_RE.match(self.line, self.pos)
        if m is None:
            self._missing(what)
        self.pos = m.end()
        return m.group()

    def keyword(self, what: str = "keyword") -> str:
        """An atom, upper-cased: keywords are case-insensitive (RFC 3501 s9)."""
        return self.atom(what).decode("ascii").upper()

    def number(self, what: str = "number", maximum: int = MAX_NUMBER) -> int:
        m = NUMBER_RE.match(self.line, self.pos)
        if m is None:
            self._missing(what)
        digits = m.group()
        if len(digits) > 20 or int(digits) > maximum:
            fail(f"Number too large in {what}")
        self.pos = m.end()
        return int(digits)

    def nz_number(self, what: str = "number", maximum: int = MAX_NUMBER) -> int:
        value = self.number(what, maximum)
        if value == 0:
            fail(f"Zero is not a valid {what}")
        return value

    def quoted(self) -> bytes:
        m = QUOTED_RE.match(self.line, self.pos)
        if m is None:
            self._bad_quoted()
        self.pos = m.end()
        body = m.group(1)
        if b"\\" in body:
            body = QUOTED_UNESCAPE_RE.sub(rb"\1", body)
        return body

    def _bad_quoted(self) -> NoReturn:
        """Say precisely why the quoted string at the cursor is invalid."""
        i = self.pos + 1
        line = self.line
        while i < len(line):
            c = line[i]
            if c == DQUOTE:
                break
            if c == 0x5C:
                if i + 1 >= len(line) or line[i + 1] not in b'"\\':
                    fail("Invalid backslash escape in quoted string")
                i += 2
                continue
            if c in b"\r\n\x00":
                fail("Invalid character in quoted string")
            i += 1
        fail("Unterminated quoted string")

    def literal(self, allow_literal8: bool = False) -> tuple[bytes, bool]:
        """Consume a literal marker at the cursor and return its bytes.

        Returns ``(data, is_literal8)``.  The marker must end the line
        (RFC 3501 section 4.3: the literal follows the CRLF).
        """
        m = LITERAL_RE.match(self.line, self.pos)
        if m is None or m.end() != len(self.line):
            fail("Invalid literal")
        binary = m.group(1) == b"~"
        if binary and not allow_literal8:
            # RFC 3516 section 4.2: literal8 only in APPEND data / CATENATE.
            fail("Literal8 not allowed here")
        if self.index >= len(self.literals):
            fail("Literal data missing")
        data = self.literals[self.index]
        digits = m.group(2)
        if len(digits) > 20 or int(digits) != len(data):
            fail("Literal length does not match its announcement")
        if not binary and b"\x00" in data:
            # RFC 3501 section 9: CHAR8 excludes NUL; only literal8 may hold it.
            fail("NUL in literal")
        self.index += 1
        self.line = self.lines[self.index]
        self.pos = 0
        return data, binary

    def string(self, what: str = "string") -> bytes:
        c = self.peek()
        if c == DQUOTE:
            return self.quoted()
        if c in (LBRACE, TILDE):
            return self.literal()[0]
        self._missing(what)

    def astring(self, what: str = "string") -> bytes:
        """RFC 3501 ``astring``: 1*ASTRING-CHAR / string."""
        m = ASTRING_ATOM_RE.match(self.line, self.pos)
        if m is not None:
            self.pos = m.end()
            return m.group()
        return self.string(what)

    def nstring(self, what: str = "string") -> bytes | None:
        m = ATOM_RE.match(self.line, self.pos)
        if m is not None and m.group().upper() == b"NIL":
            self.pos = m.end()
            return None
        return self.string(what)

    def list_mailbox(self) -> bytes:
        """RFC 3501 ``list-mailbox``: 1*list-char / string."""
        m = LIST_CHARS_RE.match(self.line, self.pos)
        if m is not None:
            self.pos = m.end()
            return m.group()
        return self.string("mailbox pattern")

    def mailbox(self) -> bytes:
        return self.astring("mailbox name")
