"""A strict checker of the RFC 3501 / RFC 9051 ``envelope`` and ``body``
grammar (section 9), shared by the corpus test and the fuzz targets.

Written from the formal syntax, independently of the encoder, and strict
where real client parsers are: exactly one SP between items and none
inside a multipart's run of bodies or an address list, quoted strings
without CR, LF or NUL (and 7-bit unless UTF-8 was enabled), literals of
exactly the announced length without NUL (``CHAR8``), numbers within 32
bits, and every field of the type the grammar names (a media type is a
string, never NIL; a size is a number).  Every error is a ValueError with
the offset of the first wrong byte.
"""

from __future__ import annotations

import re
from typing import Any

_LITERAL_RE = re.compile(rb"~?\{(\d+)\}\r\n")
_ATOMISH_RE = re.compile(rb"[^\s()\"{}\\%*\]]+")
_NUMBER_RE = re.compile(rb"[0-9]+")
_ITEM_NAME_RE = re.compile(rb"[A-Z0-9.]+(\[[^\]]*\](<\d+>)?)?")

#: RFC 3501 section 9: number = 1*DIGIT, an unsigned 32-bit integer.
MAX_NUMBER = 2**32 - 1


class Strict:
    """Recursive descent over ``envelope`` and ``body`` (RFC 3501 section 9)."""

    def __init__(self, data: bytes, *, utf8: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.utf8 = utf8

    def fail(self, what: str) -> ValueError:
        near = self.data[max(0, self.pos - 30) : self.pos + 30]
        return ValueError(f"{what} at {self.pos}: {near!r}")

    def peek(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("unexpected end")
        return self.data[self.pos]

    def at(self, token: bytes) -> bool:
        return self.data.startswith(token, self.pos)

    def expect(self, token: bytes) -> None:
        if not self.at(token):
            raise self.fail(f"expected {token!r}")
        self.pos += len(token)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self.fail("data after the value")

    # -- generic values ---------------------------------------------------

    def value(self) -> Any:
        """nil / number / quoted / literal / atom / parenthesised list."""
        char = self.peek()
        if char == ord("("):
            self.pos += 1
            items: list[Any] = []
            while self.peek() != ord(")"):
                if items:
                    self.expect(b" ")
                items.append(self.value())
            self.pos += 1
            return items
        if char == ord('"'):
            return self.quoted()
        if char in (ord("{"), ord("~")):  # literal, literal8 (RFC 3516)
            return self.literal(allow_nul=True)
        match = _ATOMISH_RE.match(self.data, self.pos)
        if match is None:
            raise self.fail("expected a value")
        self.pos = match.end()
        return match.group(0)

    def quoted(self) -> bytes:
        """RFC 3501 ``quoted``: QUOTED-CHARs (TEXT-CHAR, so no CR, LF or
        NUL), ``"`` and ``\\`` escaped; RFC 9051 / RFC 6855 add UTF-8."""
        self.expect(b'"')
        out = bytearray()
        while (c := self.peek()) != ord('"'):
            if c in (0, ord("\r"), ord("\n")):
                raise self.fail("CR, LF or NUL in quoted string")
            if c == ord("\\"):
                self.pos += 1
                if self.peek() not in (ord('"'), ord("\\")):
                    raise self.fail("bad escape")
            out.append(self.peek())
            self.pos += 1
        self.pos += 1
        if any(byte > 0x7F for byte in out):
            if not self.utf8:
                raise self.fail("8-bit in quoted string without UTF-8")
            try:
                bytes(out).decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail("invalid UTF-8 in quoted string") from None
        return bytes(out)

    def literal(self, *, allow_nul: bool = False) -> bytes:
        match = _LITERAL_RE.match(self.data, self.pos)
        if match is None:
            raise self.fail("bad literal")
        size = int(match.group(1))
        end = match.end() + size
        if end > len(self.data):
            raise self.fail("literal runs past the data")
        body = self.data[match.end() : end]
        if not allow_nul and b"\x00" in body:
            # RFC 3501 section 9: literal = "{" number "}" CRLF *CHAR8,
            # CHAR8 = %x01-ff.
            raise self.fail("NUL in a literal string")
        self.pos = end
        return body

    def string(self) -> bytes:
        """``string = quoted / literal``."""
        if self.at(b'"'):
            return self.quoted()
        if self.at(b"{"):
            return self.literal()
        raise self.fail("expected a string")

    def nstring(self) -> bytes | None:
        if self.at(b"NIL"):
            self.pos += 3
            return None
        return self.string()

    def number(self) -> int:
        match = _NUMBER_RE.match(self.data, self.pos)
        if match is None:
            raise self.fail("expected a number")
        value = int(match.group())
        if value > MAX_NUMBER:
            raise self.fail("number over 32 bits")
        self.pos = match.end()
        return value

    # -- envelope (RFC 3501 section 9) -------------------------------------

    def envelope(self) -> None:
        """``"(" env-date SP env-subject SP env-from SP env-sender SP
        env-reply-to SP env-to SP env-cc SP env-bcc SP env-in-reply-to SP
        env-message-id ")"``."""
        self.expect(b"(")
        self.nstring()
        self.expect(b" ")
        self.nstring()
        for _ in range(6):
            self.expect(b" ")
            self.address_list()
        self.expect(b" ")
        self.nstring()
        self.expect(b" ")
        self.nstring()
        self.expect(b")")

    def address_list(self) -> None:
        """``"(" 1*address ")" / nil``: addresses adjacent, no SP."""
        if self.at(b"NIL"):
            self.pos += 3
            return
        self.expect(b"(")
        self.address()
        while self.peek() != ord(")"):
            self.address()
        self.pos += 1

    def address(self) -> None:
        """``"(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"``."""
        self.expect(b"(")
        self.nstring()
        for _ in range(3):
            self.expect(b" ")
            self.nstring()
        self.expect(b")")

    # -- body (RFC 3501 / RFC 9051 section 9) ------------------------------

    def body(self) -> None:
        self.expect(b"(")
        if self.peek() == ord("("):
            # body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
            while self.peek() == ord("("):
                self.body()
            self.expect(b" ")
            self.string()  # media-subtype
            if self.at(b" "):
                self.pos += 1
                self.body_fld_param()
                self.extension_tail()
            self.expect(b")")
            return
        kind = self.string().upper()
        self.expect(b" ")
        subtype = self.string().upper()
        # body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP
        #               body-fld-enc SP body-fld-octets
        self.expect(b" ")
        self.body_fld_param()
        self.expect(b" ")
        self.nstring()
        self.expect(b" ")
        self.nstring()
        self.expect(b" ")
        self.string()
        self.expect(b" ")
        self.number()
        if kind == b"MESSAGE" and subtype in (b"RFC822", b"GLOBAL"):
            self.expect(b" ")
            self.envelope()
            self.expect(b" ")
            self.body()
            self.expect(b" ")
            self.number()  # body-fld-lines
        elif kind == b"TEXT":
            self.expect(b" ")
            self.number()  # body-fld-lines
        if self.at(b" "):
            # body-ext-1part = body-fld-md5 [SP body-fld-dsp ...]
            self.pos += 1
            self.nstring()
            self.extension_tail()
        self.expect(b")")

    def body_fld_param(self) -> None:
        """``"(" string SP string *(SP string SP string) ")" / nil``."""
        if self.at(b"NIL"):
            self.pos += 3
            return
        self.expect(b"(")
        self.string()
        self.expect(b" ")
        self.string()
        while self.at(b" "):
            self.pos += 1
            self.string()
            self.expect(b" ")
            self.string()
        self.expect(b")")

    def extension_tail(self) -> None:
        """``[SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc
        *(SP body-extension)]]]``."""
        if not self.at(b" "):
            return
        self.pos += 1
        # body-fld-dsp = "(" string SP body-fld-param ")" / nil
        if self.at(b"NIL"):
            self.pos += 3
        else:
            self.expect(b"(")
            self.string()
            self.expect(b" ")
            self.body_fld_param()
            self.expect(b")")
        if not self.at(b" "):
            return
        self.pos += 1
        # body-fld-lang = nstring / "(" string *(SP string) ")"
        if self.at(b"("):
            self.pos += 1
            self.string()
            while self.at(b" "):
                self.pos += 1
                self.string()
            self.expect(b")")
        else:
            self.nstring()
        if not self.at(b" "):
            return
        self.pos += 1
        self.nstring()  # body-fld-loc
        while self.at(b" "):
            self.pos += 1
            self.body_extension()

    def body_extension(self) -> None:
        """``nstring / number / "(" body-extension *(SP body-extension) ")"``."""
        if self.at(b"("):
            self.pos += 1
            self.body_extension()
            while self.at(b" "):
                self.pos += 1
                self.body_extension()
            self.expect(b")")
        elif _NUMBER_RE.match(self.data, self.pos):
            self.number()
        else:
            self.nstring()

    # -- FETCH responses as imaplib splits them ----------------------------

    def fetch_items(self) -> dict[bytes, Any]:
        """``N (NAME value NAME value ...)`` as imaplib hands it over."""
        match = re.compile(rb"\d+ \(").match(self.data)
        if match is None:
            raise self.fail("expected a FETCH response")
        self.pos = match.end()
        items: dict[bytes, Any] = {}
        while True:
            name = _ITEM_NAME_RE.match(self.data, self.pos)
            if name is None:
                raise self.fail("expected an item name")
            self.pos = name.end()
            self.expect(b" ")
            items[name.group(0)] = self.value()
            if self.peek() == ord(")"):
                self.pos += 1
                break
            self.expect(b" ")
        self.end()
        return items


def check_envelope(data: bytes, *, utf8: bool = False) -> None:
    """Raise ValueError unless ``data`` is exactly one ``envelope``."""
    checker = Strict(data, utf8=utf8)
    checker.envelope()
    checker.end()


def check_body(data: bytes, *, utf8: bool = False) -> None:
    """Raise ValueError unless ``data`` is exactly one ``body``."""
    checker = Strict(data, utf8=utf8)
    checker.body()
    checker.end()
