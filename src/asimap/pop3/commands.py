"""Parse one POP3 command line into a typed command (pure, total).

RFC 1939 section 3: a command is a case-insensitive keyword, then
arguments separated by single spaces.  Every line yields either a command
or a :class:`CommandError` whose text is safe to send after ``-ERR``;
nothing raises.

Message numbers (RFC 1939 section 5, "msg") are decimal digits naming a
message counted from 1; we refuse signs, zero, leading ``+``/``-`` and
numbers longer than :data:`MAX_NUMBER_DIGITS` here, and leave "does that
message exist" to the session.  ``PASS`` takes the rest of the line, so
a password may contain spaces (as Dovecot and most servers do; RFC 1939
section 7 only says "string").
"""

from __future__ import annotations

from dataclasses import dataclass

#: Enough for any real message number or line count, small enough that
#: int() never sees a huge digit string.
MAX_NUMBER_DIGITS = 10


@dataclass(frozen=True, slots=True)
class User:
    name: bytes


@dataclass(frozen=True, slots=True)
class Pass:
    password: bytes


@dataclass(frozen=True, slots=True)
class Auth:
    """``AUTH`` alone lists mechanisms; otherwise RFC 5034 section 4."""

    mechanism: str | None
    initial_response: bytes | None = None


@dataclass(frozen=True, slots=True)
class Capa:
    pass


@dataclass(frozen=True, slots=True)
class Stls:
    pass


@dataclass(frozen=True, slots=True)
class Stat:
    pass


@dataclass(frozen=True, slots=True)
class List:
    msg: int | None


@dataclass(frozen=True, slots=True)
class Uidl:
    msg: int | None


@dataclass(frozen=True, slots=True)
class Retr:
    msg: int


@dataclass(frozen=True, slots=True)
class Dele:
    msg: int


@dataclass(frozen=True, slots=True)
class Top:
    msg: int
    lines: int


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


Command = (
    User
    | Pass
    | Auth
    | Capa
    | Stls
    | Stat
    | List
    | Uidl
    | Retr
    | Dele
    | Top
    | Noop
    | Rset
    | Quit
)


@dataclass(frozen=True, slots=True)
class CommandError:
    """The line is not a valid command; ``text`` follows ``-ERR``."""

    text: str


class _Invalid(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _number(word: bytes, what: str, *, allow_zero: bool = False) -> int:
    if not word.isdigit() or not word.isascii():
        raise _Invalid(f"Invalid {what}: not a number")
    if len(word) > MAX_NUMBER_DIGITS:
        raise _Invalid(f"Invalid {what}: too large")
    value = int(word)
    if value == 0 and not allow_zero:
        raise _Invalid(f"Invalid {what}: must be at least 1")
    return value


def _arity(args: list[bytes], low: int, high: int) -> None:
    if len(args) < low:
        raise _Invalid("Missing argument")
    if len(args) > high:
        raise _Invalid("Too many arguments")


def _no_args(args: list[bytes], command: Command) -> Command:
    _arity(args, 0, 0)
    return command


def _optional_msg(args: list[bytes]) -> int | None:
    _arity(args, 0, 1)
    return _number(args[0], "message number") if args else None


def _one_msg(args: list[bytes]) -> int:
    _arity(args, 1, 1)
    return _number(args[0], "message number")


def _auth(args: list[bytes]) -> Auth:
    _arity(args, 0, 2)
    if not args:
        return Auth(None)
    mechanism = args[0].decode("ascii", "replace").upper()
    return Auth(mechanism, args[1] if len(args) == 2 else None)


def _top(args: list[bytes]) -> Top:
    _arity(args, 2, 2)
    msg = _number(args[0], "message number")
    return Top(msg, _number(args[1], "line count", allow_zero=True))


def _build(keyword: bytes, args: list[bytes], rest: bytes) -> Command:
    match keyword:
        case b"USER":
            _arity(args, 1, 1)
            return User(args[0])
        case b"PASS":
            if not rest:
                raise _Invalid("Missing argument")
            return Pass(rest)
        case b"AUTH":
            return _auth(args)
        case b"CAPA":
            return _no_args(args, Capa())
        case b"STLS":
            return _no_args(args, Stls())
        case b"STAT":
            return _no_args(args, Stat())
        case b"LIST":
            return List(_optional_msg(args))
        case b"UIDL":
            return Uidl(_optional_msg(args))
        case b"RETR":
            return Retr(_one_msg(args))
        case b"DELE":
            return Dele(_one_msg(args))
        case b"TOP":
            return _top(args)
        case b"NOOP":
            return _no_args(args, Noop())
        case b"RSET":
            return _no_args(args, Rset())
        case b"QUIT":
            return _no_args(args, Quit())
    raise _Invalid("Unknown command")


def parse_line(line: bytes) -> Command | CommandError:
    """Parse one line (without CRLF); never raises."""
    keyword, _space, rest = line.partition(b" ")
    # Trailing spaces are common (some clients send "STAT "); tolerate them,
    # but not empty arguments in the middle.
    args = rest.rstrip(b" ").split(b" ") if rest.strip(b" ") else []
    try:
        if not keyword or b"\x00" in line:
            raise _Invalid("Unknown command")
        if any(not arg for arg in args):
            raise _Invalid("Arguments must be separated by a single space")
        return _build(keyword.upper(), args, rest)
    except _Invalid as invalid:
        return CommandError(invalid.text)
