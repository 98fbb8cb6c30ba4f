"""Building FETCH responses (RFC 3501 6.4.5 and 7.4.2, RFC 3516 BINARY,
RFC 8970 PREVIEW, RFC 8474 EMAILID/THREADID, RFC 8514 SAVEDATE).

:func:`fetch_message` turns one message and the requested items into the
item list of a ``* n FETCH (...)`` response.  Data items that need the
parsed message or its immutable facts load them lazily and once.  Message
contents always go out as literals (``Literal`` / ``Literal8``), so the
encoder never has to guess and large bodies never become quoted strings.

A plain literal never carries NUL (see :func:`textual_literal`); only
``BINARY[...]`` sends the exact octets, in a literal8 when they hold NUL.
"""

from __future__ import annotations

import functools
from datetime import datetime

from asimap.imap.commands import FetchAtt, FetchKind, Partial, Section, SectionText
from asimap.imap.encoder import encode_value
from asimap.imap.responses import Atom, Encoded, Literal, Literal8, Raw, Value
from asimap.imap.session.errors import bad, no
from asimap.imap.session.reading import read_message
from asimap.imap.session.selected import SelectedMailbox, flag_atoms
from asimap.message.model import Message, PartNotFound, UnknownTransferEncoding
from asimap.store.base import MessageInfo, MessageSummary
from asimap.store.objectid import emailid_of, threadid_of

#: Items a :class:`~asimap.store.base.MessageSummary` answers without the
#: message (the store may cache summaries, so they cost no parsing).
SUMMARY_KINDS = frozenset(
    {
        FetchKind.INTERNALDATE,
        FetchKind.RFC822_SIZE,
        FetchKind.ENVELOPE,
        FetchKind.BODY,
        FetchKind.BODYSTRUCTURE,
        FetchKind.EMAILID,
        FetchKind.THREADID,
        FetchKind.SAVEDATE,
    }
)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip

#: ``PREVIEW (LAZY)`` builds a preview only for messages up to this many
#: octets (RFC 8970 section 3.2: with LAZY the server MAY answer NIL when
#: generating the preview is expensive).  Small messages are cheap to parse
#: and a NIL costs the client a second round trip, so they get one; large
#: ones answer NIL unless this FETCH already parsed them.
LAZY_PREVIEW_MAX_SIZE = 64 * 1024

#: Characters allowed in an echoed header field name written as an atom.
_FIELD_SPECIALS = frozenset('(){ %*"\\]')


@functools.lru_cache(maxsize=4096)
def _encoded_flags(flags: frozenset[str], recent: bool) -> Encoded:
    """The wire form of a flag list, computed once per distinct set.

    A folder has few distinct flag sets, and ``UID FETCH 1:* (FLAGS)``
    over 100,000 messages would otherwise build and validate the same
    atoms 100,000 times (design.md section 8: no per-message Python work on hot
    paths).  Flags are atoms, identical in UTF-8 mode and out of it.
    """
    return Encoded(encode_value(flag_atoms(flags, recent)))


def flags_value(view: SelectedMailbox, uid: int) -> Encoded:
    """FLAGS of ``uid`` as the client should see them (see
    :meth:`SelectedMailbox.flag_list`), pre-encoded."""
    return _encoded_flags(view.flags.get(uid, frozenset()), view.shows_recent(uid))


def sets_seen(att: FetchAtt) -> bool:
    """RFC 3501 6.4.5: BODY[...] (not PEEK), BINARY[...] (not PEEK),
    RFC822 and RFC822.TEXT set \\Seen."""
    if att.kind in (FetchKind.BODY_SECTION, FetchKind.BINARY):
        return not att.peek
    return att.kind in (FetchKind.RFC822, FetchKind.RFC822_TEXT)


def asks_modseq(items: tuple[FetchAtt, ...]) -> bool:
    """FETCH MODSEQ is a CONDSTORE enabling command (RFC 7162 3.1)."""
    return any(att.kind is FetchKind.MODSEQ for att in items)


def validate(items: tuple[FetchAtt, ...]) -> None:
    """Refuse, before touching any message, what we cannot answer."""
    for att in items:
        if att.section is not None:
            for name in att.section.fields:
                if not name or not all(0x20 < ord(ch) < 0x7F for ch in name):
                    raise bad("Invalid header field name")
                if ":" in name:
                    raise bad("Invalid header field name")


def format_internaldate(moment: datetime) -> str:
    """RFC 3501 ``date-time``: ``"17-Jul-1996 02:44:25 -0700"``."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f"{moment.day:02d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


def _field_token(name: str) -> str:
    """A header field name as echoed: upper-cased like Dovecot, quoted when
    it is not an atom (names were validated as printable ASCII)."""
    upper = name.upper()
    if any(ch in _FIELD_SPECIALS for ch in upper):
        escaped = upper.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return upper


def section_spec(section: Section | None) -> str:
    """The text inside the brackets of ``BODY[...]`` (RFC 3501 ``section``)."""
    if section is None:
        return ""
    parts = [".".join(str(p) for p in section.part)] if section.part else []
    if section.text is not None:
        text = section.text.value
        if section.text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
            text += " (" + " ".join(_field_token(f) for f in section.fields) + ")"
        parts.append(text)
    return ".".join(parts)


def _partial_suffix(partial: Partial | None) -> str:
    """RFC 3501 7.4.2: the response echoes only the origin octet."""
    return f"<{partial.start}>" if partial is not None else ""


#: What a NUL octet of stored message data becomes outside ``BINARY[...]``.
#: The same one-octet stand-in as Dovecot 2.3 sends, so every size the
#: client was told (RFC822.SIZE, BODYSTRUCTURE, a partial's origin) stays
#: exact.
NUL_STAND_IN = b"\x80"


def textual_literal(data: bytes) -> Literal:
    """Message data for ``BODY[...]``, ``RFC822``, ``RFC822.HEADER`` and
    ``RFC822.TEXT``: a plain literal, every NUL replaced by
    :data:`NUL_STAND_IN`.

    No plain literal may hold NUL: RFC 3501 and RFC 9051 section 9 (``CHAR8
    = %x01-ff``; "the ASCII NUL character, %x00, MUST NOT be used anywhere,
    with the exception of the OCTET production"), and section 4.3.1 of both
    ("unencoded binary strings are not permitted, unless returned in a
    <literal8> in response to a BINARY.PEEK[...]/BINARY[...] FETCH data
    item").  APPEND never stores a NUL these items could show
    (:mod:`asimap.message.reencode`), but a message that nmh's
    ``rcvstore``, a delivery agent or any MH tool wrote into a folder holds
    whatever octets it was given, and the file is the truth.

    Section 4.3.1 asks for binary data in a textual form "such as base64";
    re-encoding a part here would contradict RFC822.SIZE and BODYSTRUCTURE,
    which describe the stored octets (RFC 9051 section 7.5.2: the sizes a
    client uses to fetch partially), and refusing with RFC 3516's ``NO
    [UNKNOWN-CTE]`` would hide the whole message from every client without
    BINARY.  So each NUL becomes one permitted octet, as Dovecot 2.3 does:
    every size stays exact, only octets that 7bit and 8bit data may not
    hold anyway (RFC 2045 sections 2.7 and 2.8) or a ``binary`` part's
    differ, and ``BINARY[...]`` still returns the exact octets in a literal8.
    """
    if b"\x00" in data:
        data = data.replace(b"\x00", NUL_STAND_IN)
    return Literal(data)


def _cut(data: bytes, partial: Partial | None) -> bytes:
    if partial is None:
        return data
    return data[partial.start : partial.start + partial.length]


class MessageData:
    """Lazily loaded facts of one message for one FETCH response."""

    def __init__(
        self, view: SelectedMailbox, uid: int, summary: MessageSummary | None = None
    ) -> None:
        self.view = view
        self.uid = uid
        self.summary = summary
        self._info: MessageInfo | None = None
        self._message: Message | None = None

    async def info(self) -> MessageInfo:
        if self._info is None:
            self._info = await self.view.mailbox.info(self.uid)
        return self._info

    @property
    def message_loaded(self) -> bool:
        """Whether an earlier item of this FETCH already parsed the message."""
        return self._message is not None

    async def message(self) -> Message:
        if self._message is None:
            # Not taken for expunged while an MH tool renames its file.
            self._message = await read_message(self.view.mailbox, self.uid)
        return self._message


async def fetch_message(
    view: SelectedMailbox,
    uid: int,
    items: tuple[FetchAtt, ...],
    *,
    with_uid: bool,
    with_flags: bool,
    with_modseq: bool = False,
    summary: MessageSummary | None = None,
) -> list[Value]:
    """The item list for one message.

    ``with_uid`` adds UID when the command is UID FETCH (RFC 3501 6.4.8);
    ``with_flags`` adds FLAGS when this FETCH just set \\Seen (6.4.5);
    ``with_modseq`` adds MODSEQ when CHANGEDSINCE asked for it implicitly
    or CONDSTORE is on and \\Seen was just set (RFC 7162 3.1.4.2, 3.1).
    ``summary``, when the caller loaded it in a batch, answers the
    :data:`SUMMARY_KINDS` items without touching the message.
    Raises :class:`asimap.store.base.MessageGone` if the message vanished.
    """
    data = MessageData(view, uid, summary)
    out: list[Value] = []
    kinds = {att.kind for att in items}
    if with_uid and FetchKind.UID not in kinds:
        out += [Atom("UID"), uid]
    for att in items:
        out += await _item(data, att)
    if with_flags and FetchKind.FLAGS not in kinds:
        out += [Atom("FLAGS"), flags_value(view, uid)]
    if with_modseq and FetchKind.MODSEQ not in kinds:
        out += view.modseq_item(uid)
    return out


#: Items :func:`fast_items` answers from the session's own state.
FAST_KINDS = frozenset({FetchKind.UID, FetchKind.FLAGS})


def fast_items(
    view: SelectedMailbox,
    uid: int,
    items: tuple[FetchAtt, ...],
    *,
    with_uid: bool,
    with_flags: bool,
) -> Encoded | None:
    """The item list of :func:`fetch_message`, already encoded, when every
    item is UID or FLAGS (the sync of a big folder: ``UID FETCH 1:* (UID
    FLAGS)``); None for anything else.

    Byte for byte what the encoder makes of :func:`fetch_message`'s list,
    without building and walking a list of values per message.
    """
    parts: list[bytes] = []
    kinds: set[FetchKind] = set()
    for att in items:
        if att.kind not in FAST_KINDS:
            return None
        kinds.add(att.kind)
    if with_uid and FetchKind.UID not in kinds:
        parts.append(b"UID %d" % uid)
    for att in items:
        if att.kind is FetchKind.UID:
            parts.append(b"UID %d" % uid)
        else:
            parts.append(b"FLAGS " + flags_value(view, uid).data)
    if with_flags and FetchKind.FLAGS not in kinds:
        parts.append(b"FLAGS " + flags_value(view, uid).data)
    return Encoded(b"(" + b" ".join(parts) + b")")


def _from_summary(kind: FetchKind, summary: MessageSummary) -> list[Value]:
    """A :data:`SUMMARY_KINDS` item from a (possibly cached) summary."""
    if kind is FetchKind.INTERNALDATE:
        return [Atom("INTERNALDATE"), format_internaldate(summary.internaldate)]
    if kind is FetchKind.RFC822_SIZE:
        return [Atom("RFC822.SIZE"), summary.size]
    if kind is FetchKind.ENVELOPE:
        return [Atom("ENVELOPE"), summary.envelope]
    if kind is FetchKind.BODY:
        return [Atom("BODY"), summary.body]
    if kind is FetchKind.EMAILID:
        return _objectid_item("EMAILID", summary.emailid)
    if kind is FetchKind.THREADID:
        return _objectid_item("THREADID", summary.threadid)
    if kind is FetchKind.SAVEDATE:
        return _savedate_item(summary.savedate)
    return [Atom("BODYSTRUCTURE"), summary.bodystructure]


def _objectid_item(name: str, value: str) -> list[Value]:
    """RFC 8474 section 7: ``EMAILID (id)`` / ``THREADID (id)``; THREADID
    may be NIL (we always have one, see :mod:`asimap.store.objectid`)."""
    return [Atom(name), [Atom(value)] if value else None]


def _savedate_item(moment: datetime | None) -> list[Value]:
    """RFC 8514 section 4.1: ``SAVEDATE date-time``, NIL when unknown."""
    return [Atom("SAVEDATE"), format_internaldate(moment) if moment else None]


async def _preview(data: MessageData, lazy: bool) -> list[Value]:
    """RFC 8970 section 3: ``PREVIEW`` with an nstring.

    Without LAZY the preview is always generated (3.1: MUST).  A message
    with no inline text part gets the empty string, not NIL: NIL means
    "not generated (yet)" and invites the client to ask again without
    LAZY, while "" says there is nothing to preview.  With LAZY, NIL is
    returned for a large message this FETCH has not parsed anyway (see
    :data:`LAZY_PREVIEW_MAX_SIZE`).  The string is sent as ``str``: the
    encoder quotes it when the connection may carry UTF-8 (RFC 6855) and
    makes it a literal otherwise.  PREVIEW never sets \\Seen (3.1).
    """
    if lazy and not data.message_loaded:
        size = data.summary.size if data.summary is not None else None
        if size is None:
            size = (await data.info()).size
        if size > LAZY_PREVIEW_MAX_SIZE:
            return [Atom("PREVIEW"), None]
    message = await data.message()
    return [Atom("PREVIEW"), message.preview()]


async def _item(data: MessageData, att: FetchAtt) -> list[Value]:
    kind = att.kind
    if kind is FetchKind.UID:
        return [Atom("UID"), data.uid]
    if kind is FetchKind.FLAGS:
        return [Atom("FLAGS"), flags_value(data.view, data.uid)]
    if kind is FetchKind.MODSEQ:
        return data.view.modseq_item(data.uid)
    summary = data.summary
    if summary is not None and kind in SUMMARY_KINDS:
        return _from_summary(kind, summary)
    if kind is FetchKind.INTERNALDATE:
        info = await data.info()
        return [Atom("INTERNALDATE"), format_internaldate(info.internaldate)]
    if kind is FetchKind.RFC822_SIZE:
        return [Atom("RFC822.SIZE"), (await data.info()).size]
    if kind is FetchKind.PREVIEW:
        return await _preview(data, att.lazy)
    if kind is FetchKind.SAVEDATE:
        return _savedate_item((await data.info()).savedate)
    message = await data.message()
    if kind is FetchKind.EMAILID:
        return _objectid_item("EMAILID", emailid_of(message.raw))
    if kind is FetchKind.THREADID:
        emailid = emailid_of(message.raw)
        return _objectid_item("THREADID", threadid_of(message.header_values, emailid))
    if kind is FetchKind.ENVELOPE:
        return [Atom("ENVELOPE"), message.envelope()]
    if kind is FetchKind.BODY:
        return [Atom("BODY"), message.bodystructure(False)]
    if kind is FetchKind.BODYSTRUCTURE:
        return [Atom("BODYSTRUCTURE"), message.bodystructure(True)]
    if kind is FetchKind.RFC822:
        return [Atom("RFC822"), textual_literal(message.section(None))]
    if kind is FetchKind.RFC822_HEADER:
        header = message.section(Section(text=SectionText.HEADER))
        return [Atom("RFC822.HEADER"), textual_literal(header)]
    if kind is FetchKind.RFC822_TEXT:
        text = message.section(Section(text=SectionText.TEXT))
        return [Atom("RFC822.TEXT"), textual_literal(text)]
    if kind is FetchKind.BODY_SECTION:
        name = f"BODY[{section_spec(att.section)}]{_partial_suffix(att.partial)}"
        body = _cut(message.section(att.section), att.partial)
        return [Raw(name), textual_literal(body)]
    part = att.section.part if att.section is not None else ()
    spec = ".".join(str(p) for p in part)
    try:
        if kind is FetchKind.BINARY_SIZE:
            return [Raw(f"BINARY.SIZE[{spec}]"), message.binary_size(part)]
        decoded = _cut(message.binary(part), att.partial)
    except UnknownTransferEncoding:
        # RFC 3516 section 4.2.
        raise no("Unknown Content-Transfer-Encoding", "UNKNOWN-CTE") from None
    except PartNotFound:
        raise no("No such message part") from None
    name = f"BINARY[{spec}]{_partial_suffix(att.partial)}"
    # RFC 3516 4.3: literal8 only when the data needs it (contains NUL).
    value: Value = Literal8(decoded) if b"\x00" in decoded else Literal(decoded)
    return [Raw(name), value]
