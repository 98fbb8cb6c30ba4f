"""Parsing of MIME structured header values (Content-Type and friends).

``type/subtype; name=value; name="quoted value"`` (RFC 2045 section 5.1)
and ``disposition; name=value`` (RFC 2183).  Values come back unquoted but
otherwise as written: RFC 2231 continuations (``name*0*=``) are returned as
the raw parameters they are, which RFC 3501 allows clients to reassemble.

The parser works on latin-1 text (one character per byte) so that callers
get the exact bytes back with ``encode("latin-1")``, and it is total: any
input gives some answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from asimap.message.memo import ShortMemo

_TOKEN = re.compile(r"""[^\s()<>@,;:\\"/\[\]?=]+""")


def _skip_space_and_comments(text: str, pos: int) -> int:
    """Skip whitespace and (nested) comments (RFC 5322 section 3.2.2)."""
    length = len(text)
    while pos < length:
        char = text[pos]
        if char in " \t\r\n":
            pos += 1
        elif char == "(":
            depth = 0
            while pos < length:
                char = text[pos]
                if char == "\\":
                    pos += 1
                elif char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                    if depth == 0:
                        pos += 1
                        break
                pos += 1
        else:
            break
    return pos


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted-string starting after its opening quote."""
    close = text.find('"', pos)
    if close >= 0 and text.find("\\", pos, close) < 0:
        return text[pos:close], close + 1  # no quoted-pair: nothing to undo
    out: list[str] = []
    length = len(text)
    while pos < length:
        char = text[pos]
        if char == "\\" and pos + 1 < length:
            out.append(text[pos + 1])
            pos += 2
            continue
        if char == '"':
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    return "".join(out), pos  # unterminated: take the rest


@dataclass(frozen=True, slots=True)
class StructuredValue:
    """A parsed ``value; name=value ...`` header."""

    value: str
    params: tuple[tuple[str, str], ...]

    def param(self, name: str) -> str | None:
        """The first parameter called ``name`` (case-insensitive)."""
        wanted = name.lower()
        for key, val in self.params:
            if key.lower() == wanted:
                return val
        return None


def parse_params(text: str, pos: int) -> tuple[tuple[str, str], ...]:
    """Parse ``; name=value`` pairs from ``pos`` on, skipping junk."""
    params: list[tuple[str, str]] = []
    length = len(text)
    while pos < length:
        semi = text.find(";", pos)
        if semi < 0:
            break
        pos = _skip_space_and_comments(text, semi + 1)
        match = _TOKEN.match(text, pos)
        if not match:
            continue
        name = match.group()
        pos = _skip_space_and_comments(text, match.end())
        if pos >= length or text[pos] != "=":
            continue
        pos = _skip_space_and_comments(text, pos + 1)
        if pos < length and text[pos] == '"':
            value, pos = _quoted(text, pos + 1)
        else:
            end = pos
            while end < length and text[end] not in ";\t\r\n ":
                end += 1
            value, pos = text[pos:end], end
        params.append((name, value))
    return tuple(params)


@ShortMemo
def parse_content_type(text: str | None) -> tuple[str, str, StructuredValue] | None:
    """Parse Content-Type into ``(type, subtype, value)``, lower-cased type
    and subtype; None when absent or unparseable, in which case RFC 2045
    section 5.2 says to assume ``text/plain; charset=us-ascii``.

    Memoised (the result is immutable): every part of every message is
    parsed when a folder is first summarised, and a few values
    (``text/plain; charset=us-ascii``...) make up most of them; long
    values are not kept (:class:`~asimap.message.memo.ShortMemo`)."""
    if text is None:
        return None
    pos = _skip_space_and_comments(text, 0)
    main = _TOKEN.match(text, pos)
    if not main:
        return None
    pos = _skip_space_and_comments(text, main.end())
    if pos >= len(text) or text[pos] != "/":
        return None
    pos = _skip_space_and_comments(text, pos + 1)
    sub = _TOKEN.match(text, pos)
    if not sub:
        return None
    maintype, subtype = main.group().lower(), sub.group().lower()
    params = parse_params(text, sub.end())
    return maintype, subtype, StructuredValue(f"{maintype}/{subtype}", params)


@ShortMemo
def parse_disposition(text: str | None) -> StructuredValue | None:
    """Parse Content-Disposition (RFC 2183); None when absent or empty."""
    if text is None:
        return None
    pos = _skip_space_and_comments(text, 0)
    match = _TOKEN.match(text, pos)
    if not match:
        return None
    return StructuredValue(match.group(), parse_params(text, match.end()))
