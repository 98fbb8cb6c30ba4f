"""Commands of any state, session set-up and the argument-less commands.

RFC 3501 sections 6.1-6.2 and 6.4.1-6.4.3, RFC 2971 (ID), RFC 4959
(SASL-IR), RFC 5161 (ENABLE), RFC 4978 (COMPRESS), RFC 4315 (UID EXPUNGE).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from asimap.imap.commands import (
    Authenticate,
    Command,
    Compress,
    Enable,
    Expunge,
    Id,
    Login,
)
from asimap.imap.parser.sequence import parse_sequence_set
from asimap.imap.parser.tokens import RPAREN, Reader, decode_text, fail

# RFC 4959 section 7: initial-response = base64 / "="
_BASE64_RE = re.compile(
    rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
)

# RFC 2971 section 3.3 limits.
ID_MAX_PAIRS = 30
ID_MAX_KEY = 30
ID_MAX_VALUE = 1024


def no_arguments(factory: Callable[[str], Command]) -> Callable[..., Command]:
    """Handler for a command that takes no argument (CAPABILITY, NOOP...)."""

    def parse(reader: Reader, tag: str, uid: bool) -> Command:
        reader.expect_end()
        return factory(tag)

    return parse


def parse_authenticate(reader: Reader, tag: str, uid: bool) -> Authenticate:
    """authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")]."""
    reader.space()
    mechanism = reader.keyword("SASL mechanism")
    initial: bytes | None = None
    if reader.try_space():
        rest = reader.line[reader.pos :]
        if rest != b"=" and (not rest or _BASE64_RE.fullmatch(rest) is None):
            fail("Invalid base64 initial response")
        initial = rest
        reader.pos = len(reader.line)
    reader.expect_end()
    return Authenticate(tag, mechanism, initial)


def parse_login(reader: Reader, tag: str, uid: bool) -> Login:
    reader.space()
    user = reader.astring("user name")
    reader.space()
    password = reader.astring("password")
    reader.expect_end()
    return Login(tag, user, password)


def parse_id(reader: Reader, tag: str, uid: bool) -> Id:
    """id = "ID" SP id-params-list (RFC 2971 section 4)."""
    reader.space()
    if reader.peek() != 0x28:
        if reader.keyword("ID parameters") != "NIL":
            fail("Expected ID parameter list or NIL")
        reader.expect_end()
        return Id(tag, None)
    reader.pos += 1
    pairs: list[tuple[str, str | None]] = []
    while reader.peek() != RPAREN:
        if pairs:
            reader.space()
        key = reader.string("ID field name")
        reader.space()
        value = reader.nstring("ID field value")
        if len(key) > ID_MAX_KEY:
            fail("ID field name too long")
        if value is not None and len(value) > ID_MAX_VALUE:
            fail("ID field value too long")
        pairs.append((decode_text(key), None if value is None else decode_text(value)))
        if len(pairs) > ID_MAX_PAIRS:
            fail("Too many ID fields")
    reader.pos += 1
    reader.expect_end()
    return Id(tag, tuple(pairs))


def parse_enable(reader: Reader, tag: str, uid: bool) -> Enable:
    """enable = "ENABLE" 1*(SP capability) (RFC 5161 section 4)."""
    capabilities: list[str] = []
    reader.space()
    while True:
        capabilities.append(reader.keyword("capability"))
        if len(capabilities) > reader.limits.max_items:
            fail("Too many capabilities")
        if not reader.try_space():
            break
    reader.expect_end()
    return Enable(tag, tuple(capabilities))


def parse_compress(reader: Reader, tag: str, uid: bool) -> Compress:
    """compress = "COMPRESS" SP algorithm (RFC 4978 section 4)."""
    reader.space()
    mechanism = reader.keyword("compression algorithm")
    reader.expect_end()
    return Compress(tag, mechanism)


def parse_expunge(reader: Reader, tag: str, uid: bool) -> Expunge:
    """EXPUNGE, or UID EXPUNGE SP sequence-set (RFC 4315 section 2.1)."""
    if not uid:
        reader.expect_end()
        return Expunge(tag)
    reader.space()
    uids = parse_sequence_set(reader)
    reader.expect_end()
    return Expunge(tag, uids)
