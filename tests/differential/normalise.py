"""What may differ between two correct servers, removed before comparing.

Every rule here is one the RFCs leave to the server; each says which.
Nothing else is touched: whatever a rule does not name is compared octet
for octet (after :mod:`tokens` has made quoted strings and literals one
spelling, RFC 9051 section 4.3).  The rules are data, :data:`RULES`, so
the report can list them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .tokens import Atom, Group, Node, String, parse, parse_text_tail, render_all

#: Why each normalisation is legitimate (shown in docs/compliance.md).
RULES: tuple[tuple[str, str], ...] = (
    (
        "quoted string, literal or atom",
        "RFC 9051 section 4.3: a string may be sent quoted or as a literal, "
        "an astring (mailbox names) also as an atom",
    ),
    (
        "human-readable text",
        "RFC 9051 section 7.1: the text after OK/NO/BAD/BYE and a response "
        "code is for humans; the status and the code are compared",
    ),
    (
        "CAPABILITY lists and ID",
        "each server lists its own extensions (RFC 9051 section 7.2.2); "
        "the sessions only use extensions both offer",
    ),
    (
        "UIDVALIDITY, MODSEQ and HIGHESTMODSEQ values",
        "chosen by each server (RFC 9051 section 2.3.1.1, RFC 7162 section "
        "3.1.1): compared as present/absent, and fed back through "
        "${UIDVALIDITY}/${HIGHESTMODSEQ} in the scripts",
    ),
    (
        "MAILBOXID / EMAILID / THREADID",
        "RFC 8474 OBJECTID values are opaque; Dovecot 2.3 does not offer "
        "OBJECTID, so asimap's MAILBOXID response codes are dropped",
    ),
    (
        "order of FETCH items, STATUS items, flags, ENABLED and SEARCH numbers",
        "RFC 9051 sections 7.5.2, 7.2.4, 2.3.2 and 7.3.4 give no order",
    ),
    (
        "case of MIME type, subtype, encoding, parameter and disposition names",
        "case-insensitive (RFC 2045 sections 5.1 and 6.1, RFC 2183 section "
        "2); Dovecot lowercases, asimap uppercases defaults",
    ),
    (
        "INTERNALDATE zone",
        "RFC 9051 section 2.3.3: the internal date is an instant; Dovecot "
        "shows it in its own zone, asimap in the zone APPEND gave; compared "
        "in UTC",
    ),
    (
        "literal8 or literal",
        "RFC 3516 section 4.3: ~{n} is needed only for content with NUL",
    ),
    (
        "child and special-use attributes an extended LIST did not ask for",
        "RFC 5258 section 4 and RFC 6154 section 2: a server may add them "
        "to any LIST; compared where the command asks (CHILDREN, "
        "SPECIAL-USE) and in plain LIST",
    ),
    (
        "order of LIST and LSUB replies",
        "RFC 9051 section 6.3.9 gives no order",
    ),
    (
        "sequence-set spelling in ESEARCH and VANISHED",
        "RFC 4731 section 3.1 and RFC 7162 section 3.2.10 allow any "
        "sequence-set for the same numbers",
    ),
)

Canonical = list[str]


@dataclass(frozen=True)
class Exchange:
    """One command and both servers' normalised answers."""

    session: str
    index: int
    command: bytes
    ours: Canonical
    theirs: Canonical

    @property
    def same(self) -> bool:
        return self.ours == self.theirs

    @property
    def label(self) -> str:
        return label_of(self.session, self.index, self.command)


def label_of(session: str, index: int, command: bytes) -> str:
    """``"<session> #<n> <command>"``: how tests and known.py name a
    command (an APPEND shows its first line only)."""
    line = command.split(b"\r\n", 1)[0]
    if len(line) > 120:
        line = line[:117] + b"..."
    return f"{session} #{index} {line.decode('latin-1')}"


_STATUS_WORDS = {b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"}
_PLACEHOLDER_CODES = {b"UIDVALIDITY", b"HIGHESTMODSEQ"}
_DROP_CODES = {b"MAILBOXID"}


def normalise(tag: bytes, responses: list[bytes], command: bytes = b"") -> Canonical:
    """Canonical lines for one command's responses.  A FETCH response
    becomes one line per item, so a diff points at the item."""
    out: Canonical = []
    listed: list[list[str]] = []
    optional = _optional_list_attributes(command)
    for response in responses:
        lines = _normalise_one(tag, response, command)
        if lines and lines[0].startswith(("* LIST ", "* LSUB ")):
            # RFC 9051 6.3.9: LIST replies in any order; RFC 5819 section
            # 2: each STATUS goes with the LIST before it.
            listed.append([_drop_attributes(lines[0], optional)])
            continue
        if lines and lines[0].startswith("* STATUS ") and listed:
            listed[-1].extend(lines)
            continue
        for group in sorted(listed):
            out.extend(group)
        listed = []
        out.extend(lines)
    return out


_CHILD_ATTRIBUTES = ("\\HasChildren", "\\HasNoChildren")
_SPECIAL_USE = (
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
)


def _optional_list_attributes(command: bytes) -> tuple[str, ...]:
    """Attributes an extended LIST may give unasked (RFC 5258 section 4:
    child attributes "MAY be returned in response to any LIST command";
    RFC 6154 section 2: special-use "even if the client does not specify
    the return option"), so compared only where the command asks."""
    upper = command.upper()
    if not upper.startswith(b"LIST "):
        return ()
    extended = (
        upper.startswith(b"LIST (") or b" RETURN " in upper or upper.endswith(b")")
    )
    if not extended:
        return ()
    optional: tuple[str, ...] = ()
    if b"CHILDREN" not in upper:
        optional += _CHILD_ATTRIBUTES
    if b"SPECIAL-USE" not in upper:
        optional += _SPECIAL_USE
    return optional


def _drop_attributes(line: str, optional: tuple[str, ...]) -> str:
    if not optional:
        return line
    match = re.match(r"(\* L(?:IST|SUB) \()([^)]*)(\).*)", line, re.S)
    if match is None:
        return line
    kept = [a for a in match[2].split() if a not in optional]
    return match[1] + " ".join(kept) + match[3]


def _normalise_one(tag: bytes, response: bytes, command: bytes) -> list[str]:
    words = response.split(b" ", 3)
    is_tagged = words[0] == tag
    if len(words) >= 2 and (
        (is_tagged and words[1] in _STATUS_WORDS)
        or (words[0] == b"*" and words[1] in _STATUS_WORDS)
    ):
        status = _status(response)
        return [] if status is None else [status]
    nodes = parse(response.removesuffix(b"\r\n"))
    if len(nodes) >= 2 and nodes[0] == Atom(b"*"):
        if nodes[1] == Atom(b"ESEARCH") and b"SORT " in command.upper():
            # RFC 5267 section 3.2: an ESORT ALL is in sort order.
            return [render_all(_esearch(nodes, ordered=True))]
        nodes = _untagged(nodes)
        if len(nodes) == 4 and nodes[2] == Atom(b"FETCH"):
            assert isinstance(nodes[3], Group)
            items = nodes[3].items
            return [render_all(nodes[:3])] + [
                "    " + render_all(items[i : i + 2]) for i in range(0, len(items), 2)
            ]
    return [render_all(nodes)]


def _status(response: bytes) -> str | None:
    nodes, _text = parse_text_tail(response)
    out: list[Node] = []
    for node in nodes:
        if isinstance(node, Group) and node.bracket:
            code = node.items[0] if node.items else Atom(b"")
            name = code.value.upper() if isinstance(code, Atom) else b""
            if name in _DROP_CODES:
                continue
            node = _code(name, node)
        out.append(node)
    if len(out) == 2 and out[0] == Atom(b"*") and out[1] == Atom(b"OK"):
        return None  # an untagged OK with neither code nor meaning (text only)
    return render_all(tuple(out))


def _code(name: bytes, node: Group) -> Group:
    items = node.items
    if name == b"CAPABILITY":
        return Group((items[0], Atom(b"<capabilities>")), bracket=True)
    if name in _PLACEHOLDER_CODES and len(items) == 2:
        return Group((items[0], Atom(b"<" + name.lower() + b">")), bracket=True)
    if name in (b"APPENDUID", b"COPYUID") and len(items) >= 2:
        return Group((items[0], Atom(b"<uidvalidity>"), *items[2:]), bracket=True)
    if name in (b"PERMANENTFLAGS",) and len(items) == 2 and isinstance(items[1], Group):
        return Group((items[0], _sorted_group(items[1])), bracket=True)
    return node


def _sorted_group(group: Group) -> Group:
    return Group(tuple(sorted(group.items, key=_key)), group.bracket)


def _key(node: Node) -> str:
    return render_all((node,)).upper()


def _untagged(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    first = nodes[1]
    if not isinstance(first, Atom):
        return nodes
    word = first.value.upper()
    if word.isdigit() and len(nodes) >= 4:
        kind = nodes[2].value.upper() if isinstance(nodes[2], Atom) else b""
        if kind == b"FETCH" and isinstance(nodes[3], Group):
            return (*nodes[:3], _fetch(nodes[3]))
        return nodes
    handler = _UNTAGGED.get(word)
    return handler(nodes) if handler is not None else nodes


def _capability(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    return (*nodes[:2], Atom(b"<capabilities>"))


def _flags(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    if len(nodes) == 3 and isinstance(nodes[2], Group):
        return (*nodes[:2], _sorted_group(nodes[2]))
    return nodes


def _as_string(node: Node) -> Node:
    """An astring mailbox name: an atom is the same name as a string."""
    return String(node.value) if isinstance(node, Atom) else node


def _list(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    if len(nodes) < 5:
        return nodes
    attributes = nodes[2]
    if isinstance(attributes, Group):
        attributes = _sorted_group(attributes)
    extended = tuple(
        Group(tuple(_as_string(n) if i == 0 else n for i, n in enumerate(e.items)))
        if isinstance(e, Group)
        else e
        for e in nodes[5:]
    )  # RFC 5258 mbox-list-extended-item-tag is an astring
    return (*nodes[:2], attributes, nodes[3], _as_string(nodes[4]), *extended)


_STATUS_PLACEHOLDERS = {b"UIDVALIDITY", b"HIGHESTMODSEQ"}


def _status_data(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    if len(nodes) != 4 or not isinstance(nodes[3], Group):
        return nodes
    pairs = _pairs(nodes[3].items)
    fixed = []
    for name, value in pairs:
        if isinstance(name, Atom) and name.value.upper() in _STATUS_PLACEHOLDERS:
            value = Atom(b"<" + name.value.lower() + b">")
        fixed.append((name, value))
    fixed.sort(key=lambda pair: _key(pair[0]))
    flat = tuple(node for pair in fixed for node in pair)
    return (*nodes[:2], _as_string(nodes[2]), Group(flat))


def _pairs(items: tuple[Node, ...]) -> list[tuple[Node, Node]]:
    return [(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]


def _search(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    numbers = [n for n in nodes[2:] if isinstance(n, Atom)]
    rest = [n for n in nodes[2:] if not isinstance(n, Atom)]
    numbers.sort(key=lambda n: int(n.value) if n.value.isdigit() else -1)
    fixed_rest: list[Node] = []
    for node in rest:  # (MODSEQ n), RFC 7162 section 3.1.5
        if isinstance(node, Group) and len(node.items) == 2:
            node = Group((node.items[0], Atom(b"<modseq>")))
        fixed_rest.append(node)
    return (*nodes[:2], *numbers, *fixed_rest)


def _esearch(nodes: tuple[Node, ...], ordered: bool = False) -> tuple[Node, ...]:
    out: list[Node] = list(nodes[:2])
    index = 2
    if index < len(nodes) and isinstance(nodes[index], Group):
        out.append(nodes[index])  # (TAG "x")
        index += 1
    if index < len(nodes) and nodes[index] == Atom(b"UID"):
        out.append(nodes[index])
        index += 1
    pairs = _pairs(nodes[index:])
    fixed: list[tuple[Node, Node]] = []
    for name, value in pairs:
        upper = name.value.upper() if isinstance(name, Atom) else b""
        if upper == b"ALL" and isinstance(value, Atom) and not ordered:
            value = Atom(canonical_set(value.value))
        elif upper == b"MODSEQ":
            value = Atom(b"<modseq>")
        fixed.append((name, value))
    fixed.sort(key=lambda pair: _key(pair[0]))
    return (*out, *(node for pair in fixed for node in pair))


def _vanished(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    last = nodes[-1]
    if isinstance(last, Atom):
        return (*nodes[:-1], Atom(canonical_set(last.value)))
    return nodes


def _enabled(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    return (*nodes[:2], *sorted(nodes[2:], key=_key))


_UNTAGGED: dict[bytes, Callable[[tuple[Node, ...]], tuple[Node, ...]]] = {
    b"CAPABILITY": _capability,
    b"ID": _capability,
    b"FLAGS": _flags,
    b"LIST": _list,
    b"LSUB": _list,
    b"STATUS": _status_data,
    b"SEARCH": _search,
    b"SORT": _search,
    b"ESEARCH": _esearch,
    b"VANISHED": _vanished,
    b"ENABLED": _enabled,
}


def canonical_set(text: bytes) -> bytes:
    """A sequence set of numbers as sorted, merged ranges (``*`` kept)."""
    numbers: set[int] = set()
    for part in text.split(b","):
        low, _, high = part.partition(b":")
        if not low.isdigit() or (high and not high.isdigit()):
            return text
        first, last = int(low), int(high or low)
        numbers.update(range(min(first, last), max(first, last) + 1))
    ranges: list[str] = []
    for number in sorted(numbers):
        if ranges and ranges[-1].endswith(f":{number - 1}"):
            ranges[-1] = ranges[-1].rsplit(":", 1)[0] + f":{number}"
        elif ranges and ranges[-1] == str(number - 1):
            ranges[-1] = f"{number - 1}:{number}"
        else:
            ranges.append(str(number))
    return ",".join(ranges).encode()


# -- FETCH ---------------------------------------------------------------------

_STRUCTURE_ITEMS = {b"BODYSTRUCTURE", b"BODY"}


def _fetch(group: Group) -> Group:
    pairs = _pairs(group.items)
    fixed: list[tuple[Node, Node]] = []
    for name, value in pairs:
        upper = name.value.upper() if isinstance(name, Atom) else b""
        if upper == b"FLAGS" and isinstance(value, Group):
            value = _sorted_group(value)
        elif upper == b"MODSEQ":
            value = Group((Atom(b"<modseq>"),))
        elif upper in (b"EMAILID", b"THREADID"):
            value = Group((Atom(b"<objectid>"),))
        elif upper in _STRUCTURE_ITEMS and isinstance(value, Group):
            value = _body(value)
        elif upper == b"INTERNALDATE" and isinstance(value, String):
            value = String(_utc(value.value))
        fixed.append((name, value))
    fixed.sort(key=lambda pair: _key(pair[0]))
    return Group(tuple(node for pair in fixed for node in pair))


def _lower(node: Node) -> Node:
    if isinstance(node, String):
        return String(node.value.lower(), node.binary)
    return node


_CHARSET = re.compile(rb"charset", re.I)


def _params(node: Node) -> Node:
    """Parameter names are case-insensitive (RFC 2045 section 5.1); so is
    a charset value (RFC 2046 section 4.1.2); other values are kept."""
    if not isinstance(node, Group):
        return node
    out: list[Node] = []
    for name, value in _pairs(node.items):
        lowered = _lower(name)
        if isinstance(name, String) and _CHARSET.fullmatch(name.value):
            value = _lower(value)
        out.extend((lowered, value))
    return Group(tuple(out))


def _disposition(node: Node) -> Node:
    if isinstance(node, Group) and len(node.items) == 2:
        return Group((_lower(node.items[0]), _params(node.items[1])))
    return node


def _body(group: Group) -> Group:
    """RFC 9051 section 7.5.2 ``body``: a multipart is its parts followed
    by the subtype; a single part starts with type and subtype strings."""
    items = list(group.items)
    if items and isinstance(items[0], Group):
        parts = [_body(i) if isinstance(i, Group) else i for i in items]
        count = 0
        while count < len(items) and isinstance(items[count], Group):
            count += 1
        # subtype, then extension data: params, disposition, language, location
        if count < len(parts):
            parts[count] = _lower(parts[count])
        if count + 1 < len(parts):
            parts[count + 1] = _params(parts[count + 1])
        if count + 2 < len(parts):
            parts[count + 2] = _disposition(parts[count + 2])
        return Group(tuple(parts))
    if len(items) < 7:
        return group
    items[0] = _lower(items[0])
    items[1] = _lower(items[1])
    items[2] = _params(items[2])
    items[5] = _lower(items[5])
    media = (_text(items[0]), _text(items[1]))
    # body-type-msg: envelope, body, lines follow the basic fields.
    extension_at = 7
    if media[0] == b"text":
        extension_at = 8
    elif media == (b"message", b"rfc822") or media == (b"message", b"global"):
        if len(items) > 8 and isinstance(items[8], Group):
            items[8] = _body(items[8])
        extension_at = 10
    # extension: md5, disposition, language, location
    if extension_at + 1 < len(items):
        items[extension_at + 1] = _disposition(items[extension_at + 1])
    return Group(tuple(items))


def _text(node: Node) -> bytes:
    return node.value if isinstance(node, String) else b""


def _utc(value: bytes) -> bytes:
    """The same instant in +0000: RFC 9051 section 2.3.3 makes the
    internal date an instant; the zone it is shown in is the server's."""
    try:
        when = datetime.strptime(value.decode().strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return value
    return when.astimezone(UTC).strftime("%d-%b-%Y %H:%M:%S +0000").encode()
