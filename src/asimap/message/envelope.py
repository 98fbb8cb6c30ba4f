"""FETCH ENVELOPE (RFC 3501 section 7.4.2, RFC 9051 section 7.5.2).

Fields are the raw, unfolded header values -- RFC 2047 words are left for
the client to decode -- handed over as ``bytes`` values so the encoder
quotes or literals them safely (asimap 2.x wrote them unescaped).
"""

from __future__ import annotations

from functools import lru_cache

from asimap.imap.responses import Adjacent, Value
from asimap.message.addresses import Address, Group, parse_addresses
from asimap.message.headers import Headers
from asimap.message.limits import MAX_MEMO_TEXT


def _address_value(address: Address) -> Value:
    return (address.name, address.route, address.mailbox, address.host)


def address_list(headers: Headers, name: str) -> list[Value] | None:
    """The envelope address list for field ``name``, or None (NIL) when the
    field is absent or holds no address.

    RFC 3501 section 9 writes the list as ``"(" 1*address ")"``: the
    addresses are adjacent, without SP between them.  A huge field gives
    its first :data:`~asimap.message.limits.MAX_ADDRESSES` addresses.
    """
    field = headers.first(name)
    if field is None:
        return None
    text = field.latin1()
    if field.truncated:
        parsed = _build_list(text, truncated=True)
    elif len(text) <= MAX_MEMO_TEXT:
        parsed = _parsed_list(text)
    else:
        parsed = _build_list(text)
    return None if parsed is None else [parsed]


@lru_cache(maxsize=4096)
def _parsed_list(text: str) -> Adjacent | None:
    """The addresses of one short field value, memoised: the same From:,
    To: and Cc: values recur across a folder (a list's address, the
    owner's own address), and parsing them is most of the cost of an
    ENVELOPE.  The result is immutable (tuples and frozen dataclasses), so
    sharing it is safe; the bound on entries and on their length
    (:data:`~asimap.message.limits.MAX_MEMO_TEXT`) keeps memory flat."""
    return _build_list(text)


def _build_list(text: str, truncated: bool = False) -> Adjacent | None:
    out: list[Value] = []
    for item in parse_addresses(text, truncated=truncated):
        if isinstance(item, Group):
            # RFC 3501 7.4.2: group start (NIL NIL name NIL), end all NIL.
            out.append((None, None, item.name, None))
            out.extend(_address_value(member) for member in item.members)
            out.append((None, None, None, None))
        else:
            out.append(_address_value(item))
    return Adjacent(tuple(out)) if out else None


def envelope(headers: Headers) -> Value:
    """The ENVELOPE structure of a message with these headers.

    Sender and Reply-To default to From when absent or empty (RFC 3501
    section 7.4.2).
    """
    sender_from = address_list(headers, "From")
    sender = address_list(headers, "Sender") or sender_from
    reply_to = address_list(headers, "Reply-To") or sender_from
    return (
        headers.value("Date"),
        headers.value("Subject"),
        sender_from,
        sender,
        reply_to,
        address_list(headers, "To"),
        address_list(headers, "Cc"),
        address_list(headers, "Bcc"),
        headers.value("In-Reply-To"),
        headers.value("Message-ID"),
    )
