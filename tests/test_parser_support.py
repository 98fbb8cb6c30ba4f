"""Helpers shared by the parser tests: frame a raw command like the reader.

The framing reader hands the parser ``lines`` (no CRLF, literal marker kept)
and ``literals``; :func:`frame` builds exactly that from a wire transcript so
the tests read like RFC examples.
"""

from __future__ import annotations

import re

from asimap.imap.commands import Command, ParseError
from asimap.imap.parser import parse_command

_MARKER_RE = re.compile(rb"~?\{([0-9]+)\+?\}\r\n")


def frame(raw: bytes) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """Split ``raw`` (without the final CRLF) into lines and literals."""
    lines: list[bytes] = []
    literals: list[bytes] = []
    pos = 0
    while True:
        m = _MARKER_RE.search(raw, pos)
        if m is None:
            lines.append(raw[pos:])
            return tuple(lines), tuple(literals)
        size = int(m.group(1))
        lines.append(raw[pos : m.end() - 2])
        literals.append(raw[m.end() : m.end() + size])
        pos = m.end() + size


def parse(raw: bytes) -> Command | ParseError:
    lines, literals = frame(raw)
    return parse_command(lines, literals)


def ok(raw: bytes) -> Command:
    result = parse(raw)
    assert not isinstance(result, ParseError), result
    return result


def bad(raw: bytes, message: str | None = None) -> ParseError:
    result = parse(raw)
    assert isinstance(result, ParseError), result
    assert result.message.isascii()
    assert "\r" not in result.message and "\n" not in result.message
    if message is not None:
        assert message in result.message, result.message
    return result


def test_frame_splits_literals() -> None:
    assert frame(b"a LOGIN {3}\r\nbob {2+}\r\npw") == (
        (b"a LOGIN {3}", b" {2+}", b""),
        (b"bob", b"pw"),
    )
