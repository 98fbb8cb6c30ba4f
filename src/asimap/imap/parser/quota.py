"""GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208 section 4.1).

RFC 9208 section 7 (formal syntax)::

    getquota          = "GETQUOTA" SP quota-root-name
    getquotaroot      = "GETQUOTAROOT" SP mailbox
    setquota          = "SETQUOTA" SP quota-root-name SP setquota-list
    setquota-list     = "(" [setquota-resource *(SP setquota-resource)] ")"
    setquota-resource = resource-name SP resource-limit
    quota-root-name   = astring
    resource-name     = "STORAGE" / "MESSAGE" / "MAILBOX" /
                        "ANNOTATION-STORAGE" / resource-name-ext
    resource-limit    = number64

Resource names are atoms compared case-insensitively; unknown ones are
syntactically fine (resource-name-ext) and the session decides.
"""

from __future__ import annotations

from asimap.imap.commands import GetQuota, GetQuotaRoot, SetQuota
from asimap.imap.parser.tokens import RPAREN, Reader, fail

#: number64 (RFC 9051 section 9): 0 <= n < 2^63.
_MAX_NUMBER64 = 2**63 - 1


def parse_getquota(reader: Reader, tag: str, uid: bool) -> GetQuota:
    reader.space()
    root = reader.astring("quota root")
    reader.expect_end()
    return GetQuota(tag, root)


def parse_getquotaroot(reader: Reader, tag: str, uid: bool) -> GetQuotaRoot:
    reader.space()
    mailbox = reader.mailbox()
    reader.expect_end()
    return GetQuotaRoot(tag, mailbox)


def parse_setquota(reader: Reader, tag: str, uid: bool) -> SetQuota:
    reader.space()
    root = reader.astring("quota root")
    reader.space()
    reader.open_paren()
    limits: list[tuple[str, int]] = []
    while reader.peek() != RPAREN:
        if limits:
            reader.space()
        name = reader.keyword("resource name")
        reader.space()
        limits.append((name, reader.number("resource limit", _MAX_NUMBER64)))
        if len(limits) > reader.limits.max_items:
            fail("Too many quota resources")
    reader.pos += 1
    reader.expect_end()
    return SetQuota(tag, root, tuple(limits))
