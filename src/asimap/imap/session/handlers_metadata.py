"""GETMETADATA and SETMETADATA (RFC 5464: METADATA, server and mailbox).

Entries live in the store (:meth:`asimap.store.base.Store.get_metadata`);
the mailbox ``""`` names the server's own entries (section 3.2.1).  An
account belongs to one user, so ``/private/...`` and ``/shared/...`` are
simply two name spaces of entries (both kept: ``[METADATA NOPRIVATE]`` is
never needed).  Entry names are case-insensitive (we store them
lower-case, as Dovecot does).

Choices the RFC leaves open, made explicit:

* an entry asked for by name that has no value (and, with DEPTH, no
  descendant with one) is answered ``NIL``, as Cyrus and Dovecot do, so a
  client always gets the METADATA response section 4.2 announces;
* values are limited to :data:`~asimap.store.base.METADATA_MAX_VALUE`
  octets (``NO [METADATA MAXSIZE n]``) and each mailbox to
  :data:`~asimap.store.base.METADATA_MAX_ENTRIES` entries
  (``NO [METADATA TOOMANY]``), section 4.3;
* only names under ``/private/`` or ``/shared/`` can hold a value
  (section 3.2); SETMETADATA of any other name is BAD.
"""

from __future__ import annotations

from asimap.imap import commands as c
from asimap.imap.responses import Atom, Code, Literal8, Status, Tagged, Untagged, Value
from asimap.imap.session.context import Context
from asimap.imap.session.errors import CommandFailed, bad, store_error_response
from asimap.imap.session.naming import mailbox_name, wire_name
from asimap.store.base import (
    METADATA_MAX_VALUE,
    MetadataTooLarge,
    MetadataTooMany,
    StoreError,
)

_SETTABLE_PREFIXES = ("/private/", "/shared/")


def _mailbox(raw: bytes) -> str:
    """``""`` is the server (RFC 5464 section 3.2.1); anything else a mailbox."""
    return "" if raw == b"" else mailbox_name(raw)


def _value(value: bytes | None) -> Value:
    """NIL, a string, or -- for a value with NUL -- a literal8 (section 5
    ``value = nstring / literal8``)."""
    if value is None:
        return None
    return Literal8(value) if b"\x00" in value else value


def _found(
    stored: dict[str, bytes], entry: str, depth: int
) -> list[tuple[str, bytes | None]]:
    """The entry itself and, per DEPTH (section 4.2.2), its descendants."""
    found: list[tuple[str, bytes | None]] = []
    if entry in stored:
        found.append((entry, stored[entry]))
    if depth != 0:
        prefix = entry + "/"
        for key in sorted(stored):
            if key.startswith(prefix) and (depth < 0 or "/" not in key[len(prefix) :]):
                found.append((key, stored[key]))
    return found or [(entry, None)]


async def handle_getmetadata(ctx: Context, cmd: c.GetMetadata) -> Tagged:
    """RFC 5464 section 4.2, with MAXSIZE (4.2.1) and DEPTH (4.2.2)."""
    name = _mailbox(cmd.mailbox)
    try:
        stored = await ctx.require_store().get_metadata(name)
    except StoreError as exc:
        raise store_error_response(exc) from exc
    values: list[Value] = []
    seen: set[str] = set()
    longest = 0
    for requested in cmd.entries:
        for entry, value in _found(stored, requested.lower(), cmd.depth):
            if entry in seen:
                continue
            seen.add(entry)
            too_long = cmd.maxsize is not None and len(value or b"") > cmd.maxsize
            if value is not None and too_long:
                # 4.2.1: left out; the largest such size goes back in the
                # LONGENTRIES response code.
                longest = max(longest, len(value))
                continue
            values += [entry, _value(value)]
    if values:
        await ctx.io.send(Untagged((Atom("METADATA"), wire_name(name), values)))
    code = Code("METADATA", (Atom("LONGENTRIES"), longest)) if longest else None
    return Tagged(cmd.tag, Status.OK, "Getmetadata completed", code)


def _metadata_failure(text: str, *args: Value) -> CommandFailed:
    return CommandFailed(Status.NO, text, Code("METADATA", args))


async def handle_setmetadata(ctx: Context, cmd: c.SetMetadata) -> Tagged:
    """RFC 5464 section 4.3: all entries are set, or none."""
    name = _mailbox(cmd.mailbox)
    changes: dict[str, bytes | None] = {}
    for entry, value in cmd.values:
        folded = entry.lower()
        if not folded.startswith(_SETTABLE_PREFIXES):
            raise bad("Metadata entries begin with /private/ or /shared/")
        changes[folded] = value  # the last value given for an entry wins
    too_large = (Atom("MAXSIZE"), METADATA_MAX_VALUE)
    if any(v is not None and len(v) > METADATA_MAX_VALUE for v in changes.values()):
        raise _metadata_failure("Metadata value too large", *too_large)
    try:
        await ctx.require_store().set_metadata(name, changes)
    except MetadataTooLarge as exc:
        raise _metadata_failure(str(exc), *too_large) from exc
    except MetadataTooMany as exc:
        raise _metadata_failure(str(exc), Atom("TOOMANY")) from exc
    except StoreError as exc:
        raise store_error_response(exc) from exc
    return Tagged(cmd.tag, Status.OK, "Setmetadata completed")
