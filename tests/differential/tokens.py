"""Responses as trees of tokens, and a canonical rendering of those trees.

Two servers may spell the same value differently where the grammar gives
the choice (RFC 9051 section 4.3: a string is quoted or a literal; an
``astring`` may also be an atom), so the comparison is made on a parsed
form.  The parser is forgiving on purpose: it never fails, and anything it
does not understand stays an atom, compared octet for octet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Atom:
    """An atom, a number, NIL, a flag, or an item name such as
    ``BODY[HEADER.FIELDS (FROM)]<0>`` (a section is part of its atom)."""

    value: bytes


@dataclass(frozen=True)
class String:
    """A quoted string or a literal (``binary`` for ``~{n}``)."""

    value: bytes
    binary: bool = False


@dataclass(frozen=True)
class Group:
    """A parenthesised list ``(...)`` or a response code ``[...]``."""

    items: tuple[Node, ...]
    bracket: bool = False


Node = Atom | String | Group

_LITERAL = re.compile(rb"(~?)\{(\d+)\+?\}\r\n")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def parse_list(self, closer: int) -> tuple[Node, ...]:
        items: list[Node] = []
        while self.pos < len(self.data):
            char = self.data[self.pos]
            if char == closer:
                self.pos += 1
                return tuple(items)
            if char in b" \r\n":
                self.pos += 1
                continue
            items.append(self.parse_one())
        return tuple(items)

    def parse_one(self) -> Node:
        char = self.data[self.pos]
        if char == ord("("):
            self.pos += 1
            return Group(self.parse_list(ord(")")))
        if char == ord("["):
            self.pos += 1
            return Group(self.parse_list(ord("]")), bracket=True)
        if char == ord('"'):
            return self.parse_quoted()
        match = _LITERAL.match(self.data, self.pos)
        if match is not None:
            start = match.end()
            end = start + int(match[2])
            self.pos = end
            return String(self.data[start:end], binary=bool(match[1]))
        return self.parse_atom()

    def parse_quoted(self) -> String:
        out = bytearray()
        self.pos += 1
        while self.pos < len(self.data):
            char = self.data[self.pos]
            self.pos += 1
            if char == ord("\\") and self.pos < len(self.data):
                hex_escape = re.match(
                    rb"x([0-9a-f]{2})", self.data[self.pos : self.pos + 3]
                )
                if hex_escape:  # only in canonical text (see _show)
                    out.append(int(hex_escape[1], 16))
                    self.pos += 3
                    continue
                out.append(self.data[self.pos])
                self.pos += 1
            elif char == ord('"'):
                break
            else:
                out.append(char)
        return String(bytes(out))

    def parse_atom(self) -> Atom:
        """Up to a space or parenthesis; a ``[`` inside an atom (a FETCH
        section) runs to its ``]`` whatever it holds."""
        start = self.pos
        depth = 0
        while self.pos < len(self.data):
            char = self.data[self.pos]
            if char == ord("["):
                depth += 1
            elif char == ord("]"):
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and char in b" ()\r\n":
                break
            self.pos += 1
        if self.pos == start:  # a stray closer: keep it, move on
            self.pos += 1
        return Atom(self.data[start : self.pos])


def parse(response: bytes) -> tuple[Node, ...]:
    """Every token of one response (without its final CRLF)."""
    return _Reader(response).parse_list(-2)


def parse_text_tail(response: bytes) -> tuple[tuple[Node, ...], bytes]:
    """A status response: the tokens up to and including its response
    code, and the human text after it (RFC 9051 section 7.1)."""
    match = re.match(
        rb"(\S+ (?:\d+ )?\S+)(?: (\[.*?\]))?(?: (.*))?\r\n\Z", response, re.S
    )
    if match is None:
        return parse(response), b""
    head = match[1] + (b" " + match[2] if match[2] else b"")
    return parse(head), match[3] or b""


def _quoted_ok(value: bytes) -> bool:
    return len(value) < 1000 and not re.search(rb"[\x00\r\n\x80-\xff]", value)


def render(node: Node) -> str:
    """One canonical spelling: strings quoted when they can be, otherwise
    shown as a literal; non-ASCII octets escaped so a diff shows them."""
    if isinstance(node, Atom):
        return _show(node.value)
    if isinstance(node, String):
        if _quoted_ok(node.value):
            escaped = node.value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
            return '"' + _show(escaped) + '"'
        # RFC 3516 section 4.3: literal8 is required only where NUL is.
        marker = "~" if node.binary and b"\x00" in node.value else ""
        return f"{marker}{{{len(node.value)}}}{_show(node.value)}"
    inner = " ".join(render(item) for item in node.items)
    return f"[{inner}]" if node.bracket else f"({inner})"


def render_all(nodes: tuple[Node, ...]) -> str:
    return " ".join(render(node) for node in nodes)


def _show(data: bytes) -> str:
    """Octets as text: printable ASCII as is, the rest as ``\\xNN``; CRLF
    kept as line breaks inside literals so long bodies diff by line."""
    text = data.decode("latin-1")
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char == "\n":
            out.append("\\n\n")
        elif char == "\r":
            out.append("\\r")
        elif 32 <= code < 127:
            out.append(char)
        else:
            out.append(f"\\x{code:02x}")
    return "".join(out)
