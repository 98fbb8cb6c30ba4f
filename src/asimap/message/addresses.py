"""RFC 5322 address lists parsed into IMAP envelope addresses.

``email.utils.getaddresses`` flattens groups, and IMAP needs them
(RFC 3501 section 7.4.2: a group is ``(NIL NIL "name" NIL)`` ... members ...
``(NIL NIL NIL NIL)``), so this is a small tolerant tokenizer and parser of
its own.  It works on latin-1 text and returns bytes, so 8-bit names come
back exactly as stored.  Display names are *not* RFC 2047 decoded: the
client does that.

Where an address lacks its local part or domain we write ``MISSING_MAILBOX``
/ ``MISSING_DOMAIN`` as Dovecot does: a NIL host would tell the client that
a group starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from asimap.message.limits import MAX_ADDRESSES

MISSING_MAILBOX = b"MISSING_MAILBOX"
MISSING_DOMAIN = b"MISSING_DOMAIN"

_SPECIALS = ",:;<>@"


class Token(NamedTuple):
    """``kind`` is "atom", "quoted", "comment", "literal" or the special char.

    A named tuple rather than a frozen dataclass: a header has dozens of
    tokens, and a tuple is several times cheaper to make."""

    kind: str
    text: str


def _read_delimited(
    text: str, pos: int, close: str, nest: str | None
) -> tuple[str, int]:
    """Read up to the matching ``close`` (``pos`` is after the opener);
    backslash quotes the next character; ``nest`` opens a nested level."""
    out: list[str] = []
    depth = 1
    length = len(text)
    while pos < length:
        char = text[pos]
        if char == "\\" and pos + 1 < length:
            out.append(text[pos + 1])
            pos += 2
            continue
        if nest is not None and char == nest:
            depth += 1
        elif char == close:
            depth -= 1
            if depth == 0:
                return "".join(out), pos + 1
        out.append(char)
        pos += 1
    return "".join(out), pos


#: The common tokens in one regex (groups: atom, quoted, comment, domain
#: literal, special): a quoted string, comment or domain literal without
#: backslashes and, for comments, without nesting.  Anything else (quoted
#: pairs, nested or unterminated comments and quotes, a stray ``]`` or
#: ``)``) is left to the character loop of :func:`_slow_token`, which
#: defines the tokenizer; this only skips it where the result is the same.
_FAST_TOKEN = re.compile(
    r"[ \t\r\n]+"
    r'|([^ \t\r\n"()\[\],:;<>@]+)'
    r'|"([^"\\]*)"'
    r"|\(([^()\\]*)\)"
    r"|\[([^\]\\]*)\]"
    r"|([,:;<>@])"
)
_FAST_KINDS = ("atom", "quoted", "comment", "literal")


def _slow_token(text: str, pos: int) -> tuple[Token | None, int]:
    """The token at ``pos`` (None for whitespace) and the position after it."""
    length = len(text)
    char = text[pos]
    if char in " \t\r\n":
        return None, pos + 1
    if char == '"':
        value, pos = _read_delimited(text, pos + 1, '"', None)
        return Token("quoted", value), pos
    if char == "(":
        value, pos = _read_delimited(text, pos + 1, ")", "(")
        return Token("comment", value), pos
    if char == "[":
        value, pos = _read_delimited(text, pos + 1, "]", None)
        return Token("literal", "[" + value + "]"), pos
    if char in _SPECIALS:
        return Token(char, char), pos + 1
    end = pos
    while end < length and text[end] not in ' \t\r\n"()[]' + _SPECIALS:
        end += 1
    if end == pos:  # a stray "]" or ")"
        end += 1
    return Token("atom", text[pos:end]), end


def iter_tokens(text: str) -> Iterator[Token]:
    """The tokens of an address header value, one at a time (RFC 5322
    section 3.2): a parser that stops after :data:`MAX_ADDRESSES` never
    tokenizes the rest of a huge field."""
    pos = 0
    length = len(text)
    fast = _FAST_TOKEN.match
    while pos < length:
        match = fast(text, pos)
        if match is None:
            token, pos = _slow_token(text, pos)
            if token is not None:
                yield token
            continue
        pos = match.end()
        index = match.lastindex
        if index is None:
            continue  # whitespace
        value = match.group(index)
        if index == 5:
            yield Token(value, value)
        elif index == 4:
            yield Token("literal", "[" + value + "]")
        else:
            yield Token(_FAST_KINDS[index - 1], value)


def tokenize(text: str) -> list[Token]:
    """Split an address header value into tokens (RFC 5322 section 3.2)."""
    return list(iter_tokens(text))


@dataclass(frozen=True, slots=True)
class Address:
    name: bytes | None
    route: bytes | None
    mailbox: bytes
    host: bytes


@dataclass(frozen=True, slots=True)
class Group:
    name: bytes
    members: tuple[Address, ...]


def _enc(text: str) -> bytes:
    return text.encode("latin-1", errors="replace")


def _phrase(tokens: list[Token]) -> bytes | None:
    words = [t.text for t in tokens if t.kind in ("atom", "quoted")]
    return _enc(" ".join(words)) if words else None


def _local_part(tokens: list[Token]) -> str:
    pieces: list[str] = []
    for token in tokens:
        if token.kind == "quoted":
            escaped = token.text.replace("\\", "\\\\").replace('"', '\\"')
            pieces.append(f'"{escaped}"')
        elif token.kind in ("atom", "literal"):
            pieces.append(token.text)
    return "".join(pieces)


def _is_phrase(tokens: list[Token]) -> bool:
    """Two words side by side with no "." between them (a dot-atom or an
    obsolete local part always has one)."""
    previous: Token | None = None
    for token in tokens:
        if token.kind not in ("atom", "quoted"):
            continue
        if previous is not None and not (
            previous.text.endswith(".") or token.text.startswith(".")
        ):
            return True
        previous = token
    return False


def _addr_spec(
    tokens: list[Token], name: bytes | None, route: bytes | None
) -> Address | None:
    """Build an address from the tokens of ``local@domain``; None when
    there is none.

    Tokens that are only CFWS (comments) make no address: ``group2: (foo)
    ;`` is a group without members (RFC 5322 section 3.4), not a mailbox
    named "foo".
    """
    if name is None and route is None and all(t.kind == "comment" for t in tokens):
        return None
    comments = [t.text for t in tokens if t.kind == "comment"]
    if name is None and comments and comments[-1].strip():
        name = _enc(comments[-1].strip())  # obsolete "user@host (Name)"
    at = next((i for i, t in enumerate(tokens) if t.kind == "@"), -1)
    if at < 0 and _is_phrase(tokens):
        # "invalid address without at": words, not a local part (RFC 5322
        # section 3.4.1 joins words only with "."); keep them readable.
        return Address(name or _phrase(tokens), route, MISSING_MAILBOX, MISSING_DOMAIN)
    if at < 0:
        local, domain = _local_part(tokens), ""
    else:
        local = _local_part(tokens[:at])
        domain = "".join(
            t.text for t in tokens[at + 1 :] if t.kind in ("atom", "literal")
        )
    if not local and not domain:
        return Address(name, route, b"", b"")
    return Address(
        name,
        route,
        _enc(local) if local else MISSING_MAILBOX,
        _enc(domain) if domain else MISSING_DOMAIN,
    )


def _angle(tokens: list[Token], name: bytes | None) -> Address | None:
    """Parse the inside of ``<[route:]local@domain>``."""
    route: bytes | None = None
    colon = next((i for i, t in enumerate(tokens) if t.kind == ":"), -1)
    if colon >= 0 and tokens and tokens[0].kind == "@":
        route = _enc("".join(t.text for t in tokens[:colon] if t.kind != "comment"))
        tokens = tokens[colon + 1 :]
    address = _addr_spec([t for t in tokens if t.kind != "comment"], name, route)
    if address is None:
        return Address(name, route, b"", b"")  # "<>": the null address
    return address


def _mailbox(tokens: list[Token]) -> Address | None:
    """One mailbox: ``phrase <addr>`` or a bare ``addr-spec``."""
    if any(t.kind == "<" for t in tokens):
        open_at = next(i for i, t in enumerate(tokens) if t.kind == "<")
        close_at = next(
            (i for i, t in enumerate(tokens) if t.kind == ">" and i > open_at),
            len(tokens),
        )
        name = _phrase(tokens[:open_at])
        if name is None:
            after = [t.text for t in tokens[close_at + 1 :] if t.kind == "comment"]
            if after and after[0].strip():
                name = _enc(after[0].strip())
        return _angle(tokens[open_at + 1 : close_at], name)
    return _addr_spec(tokens, None, None)


def parse_addresses(
    text: str, limit: int = MAX_ADDRESSES, truncated: bool = False
) -> list[Address | Group]:
    """Parse an address list, groups included; junk is skipped, not fatal.

    At most ``limit`` addresses are parsed (group members count, group
    markers do not); an open group is then closed.  ``truncated`` says
    that ``text`` is the start of a longer value, so its last, possibly
    cut, mailbox is dropped rather than reported half.
    """
    items: list[Address | Group] = []
    group_name: bytes | None = None
    members: list[Address] = []
    current: list[Token] = []
    in_angle = False
    count = 0

    def flush() -> None:
        nonlocal count
        address = _mailbox(current) if current else None
        current.clear()
        if address is None or count >= limit:
            return
        count += 1
        if group_name is not None:
            members.append(address)
        else:
            items.append(address)

    for token in iter_tokens(text):
        if count >= limit:
            break
        kind = token.kind
        if kind == "<":
            in_angle = True
        elif kind == ">":
            in_angle = False
        if in_angle and kind in ",;:":
            current.append(token)  # inside <...>: part of a route or junk
            continue
        if kind == ",":
            flush()
        elif kind == ":" and group_name is None:
            group_name = _phrase(current) or b""
            current.clear()
        elif kind == ";" and group_name is not None:
            flush()
            items.append(Group(group_name, tuple(members)))
            group_name, members = None, []
        else:
            current.append(token)
    if truncated:
        current.clear()  # the cut-off end of the value
    flush()
    if group_name is not None:  # unterminated group: close it anyway
        items.append(Group(group_name, tuple(members)))
    return items
