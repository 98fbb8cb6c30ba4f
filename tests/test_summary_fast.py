"""The fast summary path serves exactly what the straightforward one did.

Building a :class:`MessageSummary` is what the MH store does for every
message of a folder on its first header SEARCH, SORT or THREAD, so its
pieces were made cheaper: header fields split by one regex and unfolded
lazily, address tokens read by a regex where that gives the same tokens,
BODYSTRUCTURE and BODY built in one walk, a type-dispatched encoder, and
memos for recurring values.  Not a byte of what is served may change, so
each piece is compared here with a straightforward reference -- the code as
it was before (kept below as the oracle), or the general function it
replaces -- on every message of the real corpus, CRLF and LF, plus odd
inputs that take the slow paths.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from asimap.imap.encoder import encode_value
from asimap.imap.responses import Adjacent, Atom, Encoded, Value
from asimap.imap.threading import message_ids
from asimap.message import addresses, envelope, params, wire
from asimap.message.bodystructure import (
    _b,
    _disposition,
    _encoding,
    _language,
    _params,
    body_structures,
)
from asimap.message.decode import bytes_to_text, decode_words
from asimap.message.headers import Headers
from asimap.message.mime import Part
from asimap.message.model import Message
from asimap.store.base import SUMMARY_HEADERS, MessageInfo, MessageSummary, summarize
from store_conformance import ODD_MESSAGES
from test_message_corpus import CORPUS, load_corpus

# -- the oracle: BODYSTRUCTURE and BODY built in two walks, as before ---------


def _single(part: Part, extensible: bool) -> list[Value]:
    is_text = part.type == "text"
    fields: list[Value] = [
        _b(part.type.upper()),
        _b(part.subtype.upper()),
        _params(part.content_type, text_default=is_text),
        part.headers.value("Content-ID"),
        part.headers.value("Content-Description"),
        _encoding(part),
        part.body_size,
    ]
    if part.message is not None:
        # RFC 3501 body-type-msg: envelope, body, lines of the encapsulated msg.
        fields.append(envelope.envelope(part.message.headers))
        fields.append(body_structure(part.message, extensible))
        fields.append(part.body_lines())
    elif is_text:
        fields.append(part.body_lines())
    if extensible:
        fields.extend(
            (
                part.headers.value("Content-MD5"),
                _disposition(part),
                _language(part),
                part.headers.value("Content-Location"),
            )
        )
    return fields


def _multi(part: Part, extensible: bool) -> list[Value]:
    # RFC 3501 section 9: body-type-mpart = 1*body SP media-subtype -- the
    # parts follow each other with no SP between them.
    parts = tuple(body_structure(c, extensible) for c in part.children)
    fields: list[Value] = [Adjacent(parts)]
    fields.append(_b(part.subtype.upper()))
    if extensible:
        fields.extend(
            (
                _params(part.content_type),
                _disposition(part),
                _language(part),
                part.headers.value("Content-Location"),
            )
        )
    return fields


def body_structure(part: Part, extensible: bool = True) -> Value:
    """BODYSTRUCTURE (``extensible``) or BODY of a part, one walk each."""
    if part.is_multipart:
        return _multi(part, extensible)
    return _single(part, extensible)


# -- the oracle: header fields as they were parsed before ----------------------

_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_LINE_ENDS = re.compile(rb"[\r\n]+")


def reference_field(raw: bytes) -> tuple[str, bytes, bytes]:
    """``(name, raw, unfolded value)`` of one field, eagerly (the old code)."""
    colon = raw.find(b":")
    name = b""
    value = raw
    if colon > 0:
        candidate = raw[:colon].rstrip(b" \t")
        if candidate and not any(c <= 32 or c == 127 for c in candidate):
            name = candidate
            value = raw[colon + 1 :]
    unfolded = _LINE_ENDS.sub(b" ", _FOLD.sub(b"", value)).strip(b" \t\r\n")
    return name.decode("latin-1"), raw, unfolded


def reference_fields(block: bytes) -> list[tuple[str, bytes, bytes]]:
    """Split a header block line by line (the old code)."""
    fields: list[tuple[str, bytes, bytes]] = []
    current_start = -1
    pos = 0
    length = len(block)
    while pos < length:
        newline = block.find(b"\n", pos)
        line_end = length if newline < 0 else newline + 1
        if block[pos] not in (0x20, 0x09) or current_start < 0:
            if current_start >= 0:
                fields.append(reference_field(block[current_start:pos]))
            current_start = pos
        pos = line_end
    if current_start >= 0:
        fields.append(reference_field(block[current_start:length]))
    return fields


def reference_tokenize(text: str) -> list[addresses.Token]:
    """The address tokenizer one character at a time (no regex fast path)."""
    tokens: list[addresses.Token] = []
    pos = 0
    while pos < len(text):
        token, pos = addresses._slow_token(text, pos)
        if token is not None:
            tokens.append(token)
    return tokens


def reference_quoted(text: str, pos: int) -> tuple[str, int]:
    """A quoted-string read character by character (the old code)."""
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
            continue
        if char == '"':
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    return "".join(out), pos


def reference_summary(info: MessageInfo, raw: bytes) -> MessageSummary:
    """A summary built the straightforward way: the general encoder, two
    separate BODYSTRUCTURE walks, header values from the old field parser,
    the object ids computed right here from RFC 8474's definitions as
    :mod:`asimap.store.objectid` documents them."""
    message = Message(raw)
    root = message.root
    fields = reference_fields(raw[: root.header_end])

    def values(name: str) -> list[str]:
        return [
            decode_words(bytes_to_text(value))
            for field_name, _, value in fields
            if field_name and field_name.lower() == name
        ]

    emailid = "M" + hashlib.sha256(raw).hexdigest()[:24]
    root_id: str | None = None
    for field in ("references", "in-reply-to", "message-id"):
        ids = message_ids(" ".join(values(field)))
        if ids:
            root_id = ids[0]
            break
    key = f"<{root_id}>" if root_id is not None else emailid
    threadid = "T" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    return MessageSummary(
        uid=info.uid,
        size=info.size,
        internaldate=info.internaldate,
        envelope=Encoded(encode_value(envelope.envelope(root.headers), utf8=False)),
        bodystructure=Encoded(encode_value(body_structure(root, True), utf8=False)),
        body=Encoded(encode_value(body_structure(root, False), utf8=False)),
        headers={name: tuple(v) for name in SUMMARY_HEADERS if (v := values(name))},
        emailid=emailid,
        threadid=threadid[:25],
        savedate=info.savedate,
    )


# -- inputs --------------------------------------------------------------------

#: Messages that take the slow paths: folded and odd header lines, quoted
#: pairs, nested comments, unterminated quotes, groups, 8-bit names.
ODD_HEADERS = (
    b"",
    b"\n",
    b"Subject: x",
    b" leading continuation\r\nFrom: a@b\r\n\r\nbody",
    b"From:\r\n\r\n",
    b"X:\ry\r\n\tz\r\n \r\n\r\n",
    b"From mbox line\r\nFrom : spaced <a@b>\r\nTo\t: tabbed@c\r\n\r\n",
    b"N\xe4me: 8-bit name\r\nSUBJECT: upper\r\nsubject: lower\r\n\r\n",
    b"Bad name: x\r\n:colon first\r\nx\x7fy: del\r\n\r\n",
    b'From: "Quoted \\"pair\\"" <a\\@b@c> (nested (comment) \\) here)\r\n\r\n',
    b'To: "unterminated <a@b>\r\nCc: (unterminated comment a@b\r\n\r\n',
    b'To: group: a@b, "c" <c@d>;, [1.2.3.4], x]y, a)b, <@r1,@r2:m@h>\r\n\r\n',
    b"Bcc: undisclosed-recipients:;\r\nSender: <>\r\nReply-To: @\r\n\r\n",
    b'Content-Type: multipart/mixed; boundary="a\\"b"\r\n\r\n--a"b\r\n'
    b'Content-Type: text/plain; name="x\\\\y"; charset="unterminated\r\n\r\n'
    b'hi\r\n--a"b--\r\n',
    b"Content-Type: message/rfc822\r\n\r\nFrom: inner@x\r\nSubject: in\r\n\r\nbody",
    b"Content-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: a@b\n\nx\n--d--\n",
    b"Subject: =?utf-8?q?caf=C3=A9?= \xc3\xa9\r\n\tfolded\r\n\r\n",
)


@pytest.fixture(scope="module")
def messages() -> list[bytes]:
    """Every corpus message with CRLF (as APPENDed) and LF (as in MH
    files), the conformance suite's odd messages, and the ones above."""
    if not CORPUS.exists():
        pytest.fail(f"corpus missing: {CORPUS}")
    crlf = load_corpus()
    lf = [raw.replace(b"\r\n", b"\n") for raw in crlf]
    return [*crlf, *lf, *ODD_MESSAGES, *ODD_HEADERS]


def parts(raw: bytes) -> Iterator[Part]:
    yield from Message(raw).root.walk()


_INFO_TIME = datetime(2020, 1, 1, tzinfo=UTC)

# -- the tests -----------------------------------------------------------------


def test_summaries_equal_the_straightforward_construction(
    messages: list[bytes],
) -> None:
    for number, raw in enumerate(messages, start=1):
        info = MessageInfo(uid=number, internaldate=_INFO_TIME, size=len(raw))
        assert summarize(info, Message(raw)) == reference_summary(info, raw), number


def test_header_fields_equal_the_eager_parser(messages: list[bytes]) -> None:
    absent = ("x-absent", "", "from:", " from")
    for raw in messages:
        for part in parts(raw):
            block = part.data[part.start : part.header_end]
            expected = reference_fields(block)
            assert [(f.name, f.raw, f.value) for f in Headers(block).fields] == expected
            by_name: dict[str, list[tuple[str, bytes, bytes]]] = {}
            for field in expected:
                if field[0]:
                    by_name.setdefault(field[0].lower(), []).append(field)
            headers = Headers(block)  # lookups before .fields is ever built
            for name in (*by_name, *(n.upper() for n in by_name), *absent):
                wanted = by_name.get(name.lower(), [])
                found = [(f.name, f.raw, f.value) for f in headers.all(name)]
                assert found == wanted
                first = headers.first(name)
                got = None if first is None else (first.name, first.raw, first.value)
                assert got == (wanted[0] if wanted else None)


def test_address_tokens_equal_the_character_loop(messages: list[bytes]) -> None:
    names = ("from", "to", "cc", "bcc", "sender", "reply-to", "content-type")
    texts = [
        field.latin1()
        for raw in messages
        for part in parts(raw)
        for name in names
        for field in part.headers.all(name)
    ]
    texts += ['a\\"b "c\\\\" (d(e)f) [g\\]h] ])', '"', "(", "[", "\\", "a@b]c)d"]
    assert len(texts) > 8000
    for text in texts:
        assert addresses.tokenize(text) == reference_tokenize(text), text


def test_quoted_strings_equal_the_character_loop() -> None:
    for text in ('"', 'abc"', 'a\\"b"c', "a\\\\", "no close", 'x"', '\\"', ""):
        for pos in range(len(text) + 1):
            assert params._quoted(text, pos) == reference_quoted(text, pos)


def test_one_walk_equals_two_walks(messages: list[bytes]) -> None:
    for raw in messages:
        root = Message(raw).root
        assert body_structures(root) == (
            body_structure(root, True),
            body_structure(root, False),
        )


def test_summary_encoder_equals_the_general_encoder(messages: list[bytes]) -> None:
    for attempt in range(2):  # memos cold, then warm
        wire.clear_memos()
        for raw in messages:
            message = Message(raw)
            for tree in (
                message.envelope(),
                message.bodystructure(True),
                message.bodystructure(False),
            ):
                expected = encode_value(tree, utf8=False)
                assert wire.encode_summary_value(tree) == expected, attempt


@pytest.mark.parametrize(
    "value",
    [
        None,
        0,
        7,
        b"",
        b'say "hi" \\ there',
        b"8-bit \xe9",
        b"nul \x00 cr \r lf \n",
        b"x" * 1000,
        b"x" * 1001,
        "str \u00e9",
        Atom("ATOM"),
        Encoded(b"(pre encoded)"),
        [b"a", [None, 1, (b"b",)], Adjacent(([b"c"], [b"d"]))],
        Adjacent(((b"n", None, b"m", b"h"), (None, None, None, None))),
        Adjacent(((b"n", [b"list inside"]),)),
        Adjacent(()),
        [Adjacent(((b"\xff", None),)), Adjacent(((b"\xff", None),))],
    ],
)
def test_summary_encoder_on_every_kind_of_value(value: Value) -> None:
    wire.clear_memos()
    assert wire.encode_summary_value(value) == encode_value(value, utf8=False)
    assert wire.encode_summary_value(value) == encode_value(value, utf8=False)


@pytest.mark.parametrize("value", [-1, True, [b"a", -2], object()])
def test_summary_encoder_refuses_what_the_general_one_refuses(value: Value) -> None:
    with pytest.raises((ValueError, TypeError)) as general:
        encode_value(value, utf8=False)
    with pytest.raises(general.type):
        wire.encode_summary_value(value)


def test_memoised_parsers_equal_the_parsers(messages: list[bytes]) -> None:
    envelope._parsed_list.cache_clear()
    params.parse_content_type.cache_clear()
    params.parse_disposition.cache_clear()
    for raw in messages:
        for part in parts(raw):
            for name in ("from", "to", "cc", "reply-to"):
                text = part.headers.latin1(name)
                if text is not None:
                    fresh = envelope._parsed_list.__wrapped__(text)
                    assert envelope._parsed_list(text) == fresh
            content_type = part.headers.latin1("Content-Type")
            assert params.parse_content_type(
                content_type
            ) == params.parse_content_type.__wrapped__(content_type)
            disposition = part.headers.latin1("Content-Disposition")
            assert params.parse_disposition(
                disposition
            ) == params.parse_disposition.__wrapped__(disposition)
    assert envelope._parsed_list.cache_info().hits > 0
