"""Tag, command name and dispatch; the total entry points of the parser.

RFC 3501 section 9 / RFC 9051 section 9::

    command = tag SP (command-any / command-auth / command-nonauth /
              command-select) CRLF
    tag     = 1*<any ASTRING-CHAR except "+">
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from asimap.imap.commands import Command, ParseError
from asimap.imap.limits import DEFAULT_LIMITS, Limits
from asimap.imap.parser.commands_table import COMMANDS, UID_COMMANDS
from asimap.imap.parser.tokens import (
    ATOM_RE,
    SP,
    TAG_RE,
    ParseFailure,
    Reader,
    echo,
)

_SAFE_MESSAGE_RE = re.compile(r"[^\x20-\x7e]")
_SEQ_NUMBER_RE = re.compile(rb"[0-9]+|\*")


@dataclass(frozen=True, slots=True)
class PendingCommand:
    """What is known about a command whose literal is not read yet."""

    tag: str | None
    #: Upper-cased command name, "UID FETCH" style for UID commands.
    name: str | None
    #: For APPEND and REPLACE: the mailbox argument if already complete (so
    #: the session can answer NO [TRYCREATE] before reading the message
    #: literal).
    mailbox: bytes | None
    #: 0 for the first literal of the command.
    literal_index: int


class _Head:
    """The tag and command name read so far (for error reports)."""

    __slots__ = ("name", "tag")

    def __init__(self) -> None:
        self.tag: str | None = None
        self.name: str | None = None


def _read_head(reader: Reader, head: _Head) -> None:
    """Read ``tag SP name`` (and ``UID SP name``) into ``head``."""
    if reader.at_end():
        raise ParseFailure("Empty command")
    raw_tag = reader.match(TAG_RE)
    if raw_tag is None or (not reader.at_end() and reader.peek() != SP):
        raise ParseFailure("Invalid tag")
    if len(raw_tag) > reader.limits.max_tag:
        raise ParseFailure("Tag too long")
    head.tag = raw_tag.decode("ascii")
    if reader.at_end():
        raise ParseFailure("Missing command name")
    reader.pos += 1
    raw_name = reader.match(ATOM_RE)
    if raw_name is None:
        raise ParseFailure("Invalid command name")
    name = raw_name.decode("ascii").upper()
    if name == "UID":
        head.name = name
        reader.space()
        raw_sub = reader.match(ATOM_RE)
        if raw_sub is None:
            raise ParseFailure("Missing command after UID")
        name = "UID " + raw_sub.decode("ascii").upper()
    head.name = name[:64]


def _check_framing(lines: Sequence[bytes], literals: Sequence[bytes]) -> str | None:
    if not lines or len(lines) != len(literals) + 1:
        return "Malformed command framing"
    for line in lines:
        if b"\x00" in line:
            # RFC 3501 section 9: NUL is not a CHAR; no production allows it.
            return "NUL character in command"
    return None


def _parse(
    lines: Sequence[bytes], literals: Sequence[bytes], limits: Limits, head: _Head
) -> Command:
    """Parse, raising ParseFailure on any syntax error (no other exception
    may escape: the property tests call this directly to prove it)."""
    reader = Reader(lines, literals, limits)
    _read_head(reader, head)
    name = head.name or ""
    uid = name.startswith("UID ")
    base = name[4:] if uid else name
    if uid and base not in UID_COMMANDS:
        raise ParseFailure(f"Unknown command {echo(name.encode())}")
    handler = COMMANDS.get(base)
    if handler is None:
        raise ParseFailure(f"Unknown command {echo(name.encode())}")
    return handler(reader, head.tag or "", uid)


def _error(head: _Head, message: str) -> ParseError:
    # ParseError messages are echoed in BAD responses: ASCII, no CR/LF.
    return ParseError(head.tag, _SAFE_MESSAGE_RE.sub("?", message), head.name)


def parse_unchecked(
    lines: Sequence[bytes],
    literals: Sequence[bytes],
    limits: Limits = DEFAULT_LIMITS,
) -> Command | ParseError:
    """Like :func:`parse_command` but without the last-resort guard.

    Any exception other than a syntax error escapes, so tests can prove the
    parser is total without the guard hiding bugs.
    """
    head = _Head()
    problem = _check_framing(lines, literals)
    if problem is not None:
        reader = Reader(lines or (b"",), (), limits)
        with contextlib.suppress(ParseFailure):
            _read_head(reader, head)
        return _error(head, problem)
    try:
        return _parse(lines, literals, limits, head)
    except ParseFailure as failure:
        return _error(head, failure.message)


def parse_command(
    lines: Sequence[bytes],
    literals: Sequence[bytes],
    limits: Limits = DEFAULT_LIMITS,
) -> Command | ParseError:
    """Parse one complete command; never raises (design.md section 3)."""
    try:
        return parse_unchecked(lines, literals, limits)
    except Exception:  # pragma: no cover - last-resort guard, see tests
        return ParseError(None, "Internal parser error")


def describe_pending(
    lines: Sequence[bytes], literals: Sequence[bytes]
) -> PendingCommand:
    """Describe a command whose literal number ``len(literals)`` is pending.

    Never raises: whatever cannot be read is None.
    """
    head = _Head()
    mailbox: bytes | None = None
    try:
        if lines:
            reader = Reader(lines, literals, DEFAULT_LIMITS)
            _read_head(reader, head)
            if head.name in ("REPLACE", "UID REPLACE"):
                # RFC 8508: the target follows the message number.
                reader.space()
                if reader.match(_SEQ_NUMBER_RE) is None:
                    raise ParseFailure("Missing message number")
            if head.name in ("APPEND", "REPLACE", "UID REPLACE"):
                reader.space()
                mailbox = reader.mailbox()
                reader.space()  # the mailbox must be complete, not a prefix
    except ParseFailure:
        pass
    except Exception:  # pragma: no cover - last-resort guard
        pass
    return PendingCommand(head.tag, head.name, mailbox, len(literals))
