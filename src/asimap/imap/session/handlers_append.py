"""APPEND, with the extensions that change what a message is made of.

RFC 3501 section 6.3.11 (APPEND), RFC 3502 (MULTIAPPEND: all or nothing),
RFC 4315 (``[APPENDUID]``), RFC 3516 (literal8 data), RFC 7889
(APPENDLIMIT: ``NO [TOOBIG]``), RFC 6855 section 4 (``UTF8 (~{n}...)``
data, only once UTF8=ACCEPT is enabled), RFC 4469 (CATENATE, assembled by
:mod:`asimap.imap.session.catenate`), RFC 9208 (``NO [OVERQUOTA]`` when
the account would exceed its quota: checked for the whole command before
the first message is stored, and by the store on each write).

The handler works in two phases so that a MULTIAPPEND is all or nothing:
:func:`prepare` checks and assembles *every* message (flags, size, UTF-8
mode, CATENATE parts) before :func:`store_all` hands them to the store
together (:meth:`asimap.store.base.Mailbox.append_all`: the MH store
writes them as one job -- one transaction, one ``.mh_sequences`` rewrite,
one directory sync -- and a failure part-way stores none).  The phases
are separate functions so that REPLACE (RFC 8508) can reuse them.
"""

from __future__ import annotations

from collections.abc import Sequence

from asimap.imap import commands as c
from asimap.imap.responses import Code, Raw, Status, Tagged
from asimap.imap.session import extensions
from asimap.imap.session.catenate import assemble
from asimap.imap.session.context import Context
from asimap.imap.session.errors import bad, no, store_error_response
from asimap.imap.session.flags import normalize_flags
from asimap.imap.session.literal_limits import append_limit
from asimap.imap.session.naming import mailbox_name
from asimap.imap.session.uidset import format_uid_list
from asimap.message.reencode import reencode_binary_parts
from asimap.store.base import (
    Mailbox,
    MailboxNotFound,
    NewMessage,
    OverQuota,
    StoreError,
    check_quota,
)


async def open_for_append(ctx: Context, raw_name: bytes) -> Mailbox:
    """The target of APPEND/COPY/MOVE, or NO [TRYCREATE] (RFC 3501 6.3.11)."""
    target = ctx.append_target
    if target is not None and target[0] == raw_name:
        # Opened by Session.check_literal for this very command, before
        # its message literal was read.
        return target[1]
    name = mailbox_name(raw_name)
    try:
        return await ctx.require_store().mailbox(name)
    except StoreError as exc:
        raise store_error_response(exc, trycreate=True) from exc


async def message_bytes(ctx: Context, message: c.AppendMessage) -> bytes:
    """The bytes of one append-data: the literal, or a CATENATE assembly."""
    if message.utf8 and not extensions.utf8(ctx.enabled):
        # RFC 6855 section 4: UTF8 data only after ENABLE UTF8=ACCEPT.
        raise bad("APPEND UTF8 requires ENABLE UTF8=ACCEPT")
    if message.catenate is None:
        return message.data
    return await assemble(ctx, message.catenate)


async def prepare(
    ctx: Context, messages: Sequence[c.AppendMessage]
) -> list[NewMessage]:
    """Check and assemble every message before any is stored."""
    limit = append_limit(ctx)
    prepared: list[NewMessage] = []
    for message in messages:
        flags = normalize_flags(message.flags)
        data = await message_bytes(ctx, message)
        if not data:
            raise no("Cannot append an empty message")
        if len(data) > limit:
            raise no("Message too large", "TOOBIG")  # RFC 7889 section 4
        if message.binary or b"\x00" in data:
            # RFC 3516 4.3: binary parts are stored base64-encoded, so that
            # BODY[]/RFC822 never carry NUL in a plain literal.
            data = reencode_binary_parts(data)
            if b"\x00" in data:
                # Left in a header, a preamble or an encoded part: no
                # encoding can carry it, and RFC 5322 allows it nowhere.
                raise no("Message has a NUL byte outside a binary body part")
        prepared.append(NewMessage(data, flags, message.internaldate))
    return prepared


async def check_room(ctx: Context, prepared: Sequence[NewMessage]) -> None:
    """``NO [OVERQUOTA]`` if the account cannot take every message of the
    command (RFC 9208; RFC 9051 section 7.1: "the user would be over quota
    after the operation"), so a MULTIAPPEND is refused before anything is
    stored rather than rolled back."""
    store = ctx.require_store()
    if not store.quota_limits.limited:
        return
    octets = sum(len(message.data) for message in prepared)
    try:
        check_quota(
            store.quota_limits, await store.quota_usage(), len(prepared), octets
        )
    except OverQuota as exc:
        raise store_error_response(exc) from exc


async def store_all(mailbox: Mailbox, prepared: Sequence[NewMessage]) -> list[int]:
    """Store every message, or none of them (RFC 3502 section 6.3.11)."""
    try:
        return await mailbox.append_all(prepared)
    except StoreError as exc:
        raise store_error_response(exc, trycreate=True) from exc


async def store_checked(
    ctx: Context, raw_name: bytes, mailbox: Mailbox, prepared: Sequence[NewMessage]
) -> tuple[Mailbox, list[int]]:
    """:func:`store_all` into ``mailbox``, from :func:`open_for_append`.

    If ``Session.check_literal`` opened it before the literal was read and
    it was deleted (perhaps created again) since, nothing was stored (all
    or nothing): the name is opened afresh, ``NO [TRYCREATE]`` if it is
    still missing."""
    target = ctx.append_target
    if target is None or target[1] is not mailbox:
        return mailbox, await store_all(mailbox, prepared)
    try:
        return mailbox, await mailbox.append_all(prepared)
    except MailboxNotFound:
        ctx.append_target = None
    except StoreError as exc:
        raise store_error_response(exc, trycreate=True) from exc
    mailbox = await open_for_append(ctx, raw_name)
    return mailbox, await store_all(mailbox, prepared)


def appenduid(mailbox: Mailbox, uids: Sequence[int]) -> Code:
    """RFC 4315 section 3: ``[APPENDUID uidvalidity uid-set]``."""
    return Code("APPENDUID", (mailbox.uidvalidity, Raw(format_uid_list(uids))))


async def handle_append(ctx: Context, cmd: c.Append) -> Tagged:
    """APPEND / MULTIAPPEND, all or nothing.  When the target is the
    selected mailbox, the dispatcher's refresh sends EXISTS before the
    tagged OK."""
    mailbox = await open_for_append(ctx, cmd.mailbox)
    prepared = await prepare(ctx, cmd.messages)
    await check_room(ctx, prepared)
    mailbox, uids = await store_checked(ctx, cmd.mailbox, mailbox, prepared)
    return Tagged(cmd.tag, Status.OK, "Append completed", appenduid(mailbox, uids))
