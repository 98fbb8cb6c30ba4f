"""Hostile messages are interpreted only up to documented limits
(``asimap.message.limits``, docs/reliability.md "Limits on hostile messages").

Each test builds the kind of message that made a worker hold gigabytes or
answer inconsistently -- a To: of 200,000 addresses, 12,000 MIME parts,
multiparts nested 2,000 deep -- and checks that what is served is bounded,
valid under the strict RFC 3501 grammar checker, and consistent between
BODYSTRUCTURE, ``BODY[section]``, BINARY and SEARCH.
"""

from __future__ import annotations

import imaplib
import re
import socket

import pytest

from asimap.imap.encoder import encode_value
from asimap.message import envelope as envelope_module
from asimap.message import params
from asimap.message.envelope_addresses import first_wire_address, wire_field
from asimap.message.limits import (
    MAX_ADDRESSES,
    MAX_FIELD_BYTES,
    MAX_HEADER_FIELDS,
    MAX_MIME_DEPTH,
    MAX_MIME_PARTS,
)
from asimap.message.model import Message
from asimap.message.wire import encode_summary_value
from conftest import PASSWORD, USER, ServerThread, TlsFiles
from imap_grammar import check_body, check_envelope

imaplib._MAXLINE = 50_000_000  # type: ignore[attr-defined]


def many_addresses(count: int, cc: int = 3) -> bytes:
    """A message whose To: holds ``count`` addresses, then a short Cc:."""
    to = b",\r\n\t".join(
        b'"Person %07d" <p%07d@example.org>' % (i, i) for i in range(count)
    )
    ccs = b", ".join(b"c%d@example.org" % i for i in range(cc))
    return (
        b"From: a@example.org\r\nSubject: many\r\nTo: "
        + to
        + b"\r\nCc: "
        + ccs
        + b"\r\nMessage-ID: <many@example.org>\r\n\r\nhello\r\n"
    )


def nested(depth: int) -> bytes:
    """Multiparts nested ``depth`` levels deep, one text leaf at the bottom."""
    head = [b"From: a@example.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"]
    tail = []
    for level in range(depth):
        boundary = b"b%d" % level
        head.append(
            b'Content-Type: multipart/mixed; boundary="%s"\r\n\r\n--%s\r\n'
            % (boundary, boundary)
        )
        tail.append(b"\r\n--%s--\r\n" % boundary)
    head.append(b"Content-Type: text/plain\r\n\r\nthe bottom line\r\n")
    return b"".join(head) + b"".join(reversed(tail))


def many_parts(count: int) -> bytes:
    out = [
        b"From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
    ]
    out += [
        b"--B\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(count)
    ]
    out.append(b"--B--\r\n")
    return b"".join(out)


# -- addresses and header fields ---------------------------------------------


def test_an_address_field_gives_its_first_max_addresses() -> None:
    message = Message(many_addresses(200_000))
    envelope = message.envelope()
    to = message.addresses("to")
    assert len(to) == MAX_ADDRESSES
    assert to[0] == (b"Person 0000000", None, b"p0000000", b"example.org")
    assert to[-1][2] == b"p%07d" % (MAX_ADDRESSES - 1)
    # The limit is per field: the Cc: after the huge To: is still there.
    assert [a[2] for a in message.addresses("cc")] == [b"c0", b"c1", b"c2"]
    encoded = encode_value(envelope)
    check_envelope(encoded)
    assert encode_summary_value(envelope) == encoded
    # SEARCH and SORT read the same list back from the cached wire form.
    assert wire_field(encoded, "to") == to
    assert first_wire_address(encoded, "to") == to[0]


def test_a_cut_address_is_dropped_not_reported_half() -> None:
    # One field longer than MAX_FIELD_BYTES, with fewer than MAX_ADDRESSES
    # addresses in its first MAX_FIELD_BYTES: the cut one is left out.
    local = b"x" * 1000
    count = MAX_FIELD_BYTES // 1000 + 50
    to = b", ".join(local + b"%d@example.org" % i for i in range(count))
    message = Message(b"To: " + to + b"\r\n\r\nbody\r\n")
    addresses = message.addresses("to")
    assert 0 < len(addresses) < count
    assert all(a[3] == b"example.org" for a in addresses)
    field = message.root.headers.first("To")
    assert field is not None and field.truncated
    assert len(field.value) <= MAX_FIELD_BYTES
    # The field is still served whole, verbatim.
    assert field.raw == b"To: " + to + b"\r\n"


def test_only_the_first_max_header_fields_are_indexed() -> None:
    fields = b"".join(
        b"X-Field-%d: %d\r\n" % (i, i) for i in range(3 * MAX_HEADER_FIELDS)
    )
    raw = b"Subject: first\r\n" + fields + b"Subject: late\r\n\r\nbody\r\n"
    message = Message(raw)
    assert len(message.root.headers.fields) == MAX_HEADER_FIELDS
    assert message.header_values("Subject") == ["first"]
    assert message.root.headers.first(f"X-Field-{2 * MAX_HEADER_FIELDS}") is None
    # BODY[HEADER] is still the whole header.
    assert message.root.header_bytes == raw[: raw.index(b"\r\n\r\n") + 4]


def test_long_values_are_not_kept_by_the_parsers_memos() -> None:
    long_type = "text/plain; name=" + "x" * 100_000
    long_to = ", ".join(f"u{i}@example.org" for i in range(10_000))
    params.parse_content_type.cache_clear()
    envelope_module._parsed_list.cache_clear()
    message = Message(
        f"Content-Type: {long_type}\r\nTo: {long_to}\r\n\r\nbody\r\n".encode()
    )
    message.bodystructure()
    message.envelope()
    assert params.parse_content_type._cached.cache_info().currsize == 0
    assert envelope_module._parsed_list.cache_info().currsize == 0
    assert len(message.addresses("to")) == 10_000


# -- MIME structure ----------------------------------------------------------


def _depth(bodystructure: bytes) -> int:
    """How many multipart levels a BODYSTRUCTURE opens before its first leaf."""
    return len(bodystructure) - len(bodystructure.lstrip(b"(")) - 1


def test_nesting_stops_at_the_limit_as_one_opaque_leaf() -> None:
    raw = nested(2_000)
    message = Message(raw)
    encoded = encode_value(message.bodystructure())
    check_body(encoded)
    check_body(encode_value(message.bodystructure(extensible=False)))
    assert _depth(encoded) == MAX_MIME_DEPTH
    leaf = re.search(
        rb'\("APPLICATION" "OCTET-STREAM" NIL NIL NIL "7BIT" (\d+)', encoded
    )
    assert leaf is not None
    # The opaque leaf is the whole body of the container at the limit.
    path = (1,) * MAX_MIME_DEPTH
    opaque = message.binary(path)
    assert int(leaf.group(1)) == len(opaque)
    assert opaque.startswith(b"--b%d\r\n" % MAX_MIME_DEPTH)
    assert b"the bottom line" in opaque
    # Below the leaf, part numbers name the same leaf (RFC 3501 6.4.5: a
    # part that is not multipart has only part 1, itself).
    assert message.binary((*path, 1, 1)) == opaque
    # SEARCH reads the opaque bytes as text: the words are the message's.
    assert "the bottom line" in message.body_text()
    # The summary cache's encoder writes the same bytes.
    assert encode_summary_value(message.bodystructure()) == encoded


def test_encapsulated_messages_nest_to_the_same_limit() -> None:
    levels = [
        b"From: a@example.org\r\nSubject: level %d\r\n"
        b"Content-Type: message/rfc822\r\n\r\n" % level
        for level in range(2_000)
    ]
    raw = b"".join(levels) + b"From: b@example.org\r\n\r\nthe bottom line\r\n"
    message = Message(raw)
    encoded = encode_value(message.bodystructure())
    check_body(encoded)
    assert encode_summary_value(message.bodystructure()) == encoded
    assert encoded.count(b'"MESSAGE" "RFC822"') == MAX_MIME_DEPTH
    assert b'"APPLICATION" "OCTET-STREAM"' in encoded
    assert "the bottom line" in message.body_text()


def test_the_part_budget_gives_the_rest_to_one_opaque_part() -> None:
    raw = many_parts(12_000)
    message = Message(raw)
    root = message.root
    assert len(root.walk()) == MAX_MIME_PARTS
    last = root.children[-1]
    assert last.is_opaque
    # Part MAX_MIME_PARTS - 1 starts as the original did and takes the rest.
    body_of_last = message.binary((len(root.children),))
    assert body_of_last.startswith(b"part %d" % (MAX_MIME_PARTS - 2))
    assert body_of_last.endswith(b"part 11999\r\n--B--\r\n")
    with pytest.raises(Exception, match="10000"):
        message.binary((MAX_MIME_PARTS,))
    check_body(encode_value(message.bodystructure()))


# -- over the wire -------------------------------------------------------------


def _client(server: ServerThread, tls_files: TlsFiles) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(
        server.host,
        server.imaps_port,
        ssl_context=tls_files.client_context(),
        timeout=60,
    )
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.login(USER, PASSWORD)
    return client


def _item(data: list[object]) -> bytes:
    first = data[0]
    return first[1] if isinstance(first, tuple) else bytes(first)  # type: ignore[arg-type]


def test_a_2000_level_multipart_over_imap(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    client = _client(imap_server, tls_files)
    try:
        client.create("deep")
        raw = nested(2_000)
        assert client.append("deep", None, None, raw)[0] == "OK"
        client.select("deep")
        typ, data = client.fetch("1", "(BODYSTRUCTURE)")
        assert typ == "OK"
        line = bytes(data[0])  # type: ignore[arg-type]
        structure = line[line.index(b"BODYSTRUCTURE ") + 14 : -1]
        check_body(structure)
        assert _depth(structure) == MAX_MIME_DEPTH
        section = ".".join(["1"] * MAX_MIME_DEPTH)
        typ, data = client.fetch("1", f"(BODY.PEEK[{section}])")
        opaque = _item(data)
        assert opaque.startswith(b"--b%d\r\n" % MAX_MIME_DEPTH)
        typ, data = client.fetch("1", f"(BODY.PEEK[{section}.1])")
        assert _item(data) == opaque
        typ, data = client.fetch("1", f"(BINARY.PEEK[{section}])")
        assert typ == "OK" and _item(data) == opaque
        typ, data = client.uid("SEARCH", "BODY", '"the bottom line"')
        assert typ == "OK" and data[0] == b"1"
    finally:
        client.logout()
