"""Whatever the bytes, the message model answers and never raises.

Random bytes alone rarely reach the interesting code (MIME boundaries,
encapsulated messages), so the second strategy assembles messages from
fragments that *look* like MIME: header lines, boundaries, encodings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asimap.imap.commands import Section, SectionText
from asimap.imap.encoder import encode_value
from asimap.message.mime import Part
from asimap.message.model import Message, PartNotFound, UnknownTransferEncoding


def part_paths(
    part: Part, prefix: tuple[int, ...], depth: int = 0
) -> Iterator[tuple[int, ...]]:
    """Every part number reachable in ``part`` (bounded for deep messages)."""
    if depth > 20:
        return
    for number, child in enumerate(part.numbered_children(), start=1):
        path = (*prefix, number)
        yield path
        if child is not part:
            yield from part_paths(child, path, depth + 1)


def exercise(raw: bytes) -> None:
    """Call every public method; only the documented exceptions may occur."""
    message = Message(raw)
    assert message.size == len(raw)
    assert message.section(None) == raw
    header = message.section(Section((), SectionText.HEADER))
    assert header + message.section(Section((), SectionText.TEXT)) == raw
    message.section(Section((), SectionText.HEADER_FIELDS, ("From", "Subject")))
    message.section(Section((), SectionText.HEADER_FIELDS_NOT, ("From",)))
    for extensible in (True, False):
        encode_value(message.bodystructure(extensible))
        encode_value(message.bodystructure(extensible), utf8=True)
    encode_value(message.envelope())
    paths = [(1,), (2,), (1, 1), (3, 2, 1), *part_paths(message.root, ())]
    for path in paths[:60]:
        for text in (None, SectionText.MIME, SectionText.HEADER, SectionText.TEXT):
            message.section(Section(path, text))
        with contextlib.suppress(UnknownTransferEncoding, PartNotFound):
            assert message.binary_size(path) == len(message.binary(path))
    message.header_text()
    message.body_text()
    assert len(message.preview()) <= 256  # RFC 8970 section 3.1
    message.sent_date()
    message.header_values("from")
    message.message_id()
    message.references()
    message.in_reply_to()
    message.subject()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    exercise(raw)


_FRAGMENTS = [
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: multipart/digest; boundary=c\r\n",
    b"Content-Type: message/rfc822\r\n",
    b'Content-Type: text/plain; charset="utf-8"; name*0*=x\r\n',
    b"Content-Type: text/html; charset=bogus-charset\r\n",
    b"Content-Type: /\r\n",
    b"Content-Type: text/plain; charset=\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Transfer-Encoding: x-weird\r\n",
    b'Content-Disposition: attachment; filename="a\\"b"\r\n',
    b"Content-Disposition: ;;;=\r\n",
    b"Content-Language: en, de\r\n",
    b'From: "a\\" <b>" <x@y>, g: ;, (c) <@r:q@s>\r\n',
    b'To: ,,<>,@,:;,"unterminated\r\n',
    b"Subject: =?utf-8?b?w6k=?= =?x?q?=ZZ?= \xff\xfe\r\n",
    b"Date: 31 Feb 99 25:61 +9999\r\n",
    b" continuation\r\n",
    b"\tcontinuation\n",
    b"no colon line\r\n",
    b"\r\n",
    b"\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"--c\r\n",
    b"--c--  \r\n",
    b"aGVsbG8=\r\n",
    b"=E9=\r\n",
    b"\x00\x01\x80\xff",
    b"body text\r\n",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=40))
def test_mime_like_messages_never_raise(fragments: list[bytes]) -> None:
    exercise(b"".join(fragments))


def test_deep_multipart_nesting() -> None:
    """1000 nested multiparts: capped, not a RecursionError."""
    raw = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(1000)
    )
    exercise(raw + b"\r\ninnermost\r\n")
