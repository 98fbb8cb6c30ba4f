"""The whole corpus served end to end, read back by two independent parsers.

All 1,990 messages of the real corpus are appended over IMAPS with
IMAPClient, whose own response parser is an independent check that our
syntax is valid, then fetched back: ALL, FULL, BODYSTRUCTURE, the exact
bytes (``BODY[]`` and ``RFC822.SIZE``), and for every part that the
BODYSTRUCTURE names ``BODY[part]``, ``BODY[part.MIME]`` and, for leaf
parts, ``BINARY[part]`` (RFC 3516), whose content is checked against
Python's own base64 and quoted-printable decoders.  Finally imaplib reads
``BODYSTRUCTURE`` of every message and a small strict checker of the RFC
3501 ``body`` grammar parses each response (balanced parentheses, exact
literals, single spaces, and no space between the adjacent bodies of a
multipart).
"""

from __future__ import annotations

import base64
import binascii
import imaplib
import quopri
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.response_parser import parse_fetch_response
from imapclient.response_types import BodyData

from conftest import PASSWORD, USER, ServerThread, TlsFiles
from imap_grammar import Strict
from test_message_corpus import CORPUS, load_corpus

MAILBOX = "corpus"
BATCH = 100


@pytest.fixture(scope="module")
def corpus() -> list[bytes]:
    if not CORPUS.exists():
        pytest.fail(f"corpus missing: {CORPUS}")
    messages = load_corpus()
    assert len(messages) == 1990
    return messages


def _client(server: ServerThread, tls_files: TlsFiles) -> IMAPClient:
    client = IMAPClient(
        server.host,
        port=server.imaps_port,
        ssl=True,
        ssl_context=tls_files.client_context(),
        timeout=60,
    )
    # imaplib writes a literal and its closing CRLF separately: with
    # Nagle's algorithm on, the CRLF waits for the server's delayed ACK
    # (~40 ms per APPEND on Linux loopback), a client-side artefact.
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.login(USER, PASSWORD)
    return client


def _fetch_macro(client: IMAPClient, macro: str) -> dict[int, dict[bytes, Any]]:
    """``UID FETCH 1:* <macro>``, parsed by IMAPClient's own parser.

    IMAPClient.fetch always puts the items in parentheses, but a macro
    (ALL, FULL, FAST) must stand alone (RFC 3501 section 6.4.5 and the
    ``fetch`` rule of section 9), so the command is sent a level lower.
    """
    imap = client._imap
    tag = imap._command("UID", "FETCH", "1:*", macro)
    typ, data = imap._command_complete("FETCH", tag)
    assert typ == "OK", data
    typ, data = imap._untagged_response(typ, data, "FETCH")
    parsed: dict[int, dict[bytes, Any]] = parse_fetch_response(data, True, True)
    return parsed


def _append_all(client: IMAPClient, corpus: list[bytes]) -> list[int]:
    """Append every message; the UIDs in append order (RFC 3501 2.3.1.1:
    UIDs ascend, so sorted UIDs are the append order)."""
    client.create_folder(MAILBOX)
    for raw in corpus:
        client.append(MAILBOX, raw)
    info = client.select_folder(MAILBOX)
    assert info[b"EXISTS"] == len(corpus)
    uids = sorted(client.search(["ALL"]))
    assert len(uids) == len(corpus)
    return uids


def _parts(node: BodyData, name: str | None = None) -> Iterator[tuple[str, BodyData]]:
    """Every part a BODYSTRUCTURE names, with its structure (RFC 3501
    6.4.5): children of a multipart are numbered from 1; a single-part
    message is part 1; the body inside a MESSAGE/RFC822 part N has the
    parts N.1, N.2, ... if multipart, else it is N.1.  ``name`` is None
    for the message itself, which is no part when multipart."""
    if node.is_multipart:
        if name is not None:
            yield name, node
        for number, child in enumerate(node[0], start=1):
            yield from _parts(child, f"{name}.{number}" if name else str(number))
        return
    own = name or "1"
    yield own, node
    if node[0].upper() == b"MESSAGE" and node[1].upper() in (b"RFC822", b"GLOBAL"):
        inner = BodyData.create(node[8])
        if inner.is_multipart:
            for number, child in enumerate(inner[0], start=1):
                yield from _parts(child, f"{own}.{number}")
        else:
            yield from _parts(inner, f"{own}.1")


def _decoded(encoding: bytes, body: bytes) -> bytes | None:
    """The content as Python decodes it; None where no reference exists."""
    cte = encoding.upper()
    if cte in (b"7BIT", b"8BIT", b"BINARY"):
        return body
    if cte == b"BASE64":
        try:
            return base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", body))
        except binascii.Error:
            return None
    if cte == b"QUOTED-PRINTABLE":
        # RFC 2045 6.7 rule 3: whitespace ending a line was added in
        # transport and is deleted (quopri keeps it).
        return quopri.decodestring(re.sub(rb"[ \t]+(\r?\n|$)", rb"\1", body))
    return None


def test_the_whole_corpus_through_imapclient(
    imap_server: ServerThread, tls_files: TlsFiles, corpus: list[bytes]
) -> None:
    client = _client(imap_server, tls_files)
    uids = _append_all(client, corpus)
    imap = _imaplib_client(imap_server, tls_files)
    imap.select(MAILBOX, readonly=True)
    raw_by_uid = dict(zip(uids, corpus, strict=True))

    # ALL and FULL are macros (RFC 3501 6.4.5): every item must be there.
    everything = _fetch_macro(client, "ALL")
    full = _fetch_macro(client, "FULL")
    structures = client.fetch(uids, ["BODYSTRUCTURE"])
    assert set(everything) == set(full) == set(structures) == set(uids)
    for uid in uids:
        size = len(raw_by_uid[uid])
        for item in (b"FLAGS", b"INTERNALDATE", b"ENVELOPE"):
            assert item in everything[uid] and item in full[uid]
        assert everything[uid][b"RFC822.SIZE"] == size
        assert full[uid][b"RFC822.SIZE"] == size
        assert isinstance(full[uid][b"BODY"], BodyData)
        assert isinstance(structures[uid][b"BODYSTRUCTURE"], BodyData)

    # The exact bytes, in batches.
    for start in range(0, len(uids), BATCH):
        batch = uids[start : start + BATCH]
        fetched = client.fetch(batch, ["BODY.PEEK[]", "RFC822.SIZE"])
        for uid in batch:
            assert fetched[uid][b"BODY[]"] == raw_by_uid[uid], uid
            assert fetched[uid][b"RFC822.SIZE"] == len(raw_by_uid[uid])

    # Every part, its MIME header, and its decoded content.
    parts_seen = binary_checked = unknown_cte = 0
    for uid in uids:
        structure = structures[uid][b"BODYSTRUCTURE"]
        parts = list(_parts(structure))
        items = []
        for name, _node in parts:
            items += [f"BODY.PEEK[{name}]", f"BODY.PEEK[{name}.MIME]"]
        data = client.fetch([uid], items)[uid]
        leaves = [name for name, node in parts if not node.is_multipart]
        binaries = _fetch_binary(imap, uid, leaves)
        if binaries is None:
            unknown_cte += 1
            binaries = {}
        for name, node in parts:
            parts_seen += 1
            body = data[f"BODY[{name}]".encode()]
            mime = data[f"BODY[{name}.MIME]".encode()]
            assert isinstance(body, bytes) and isinstance(mime, bytes), (uid, name)
            assert mime == b"" or mime.endswith(b"\r\n"), (uid, name, mime[-20:])
            if node.is_multipart:
                continue
            assert len(body) == node[6], (uid, name, len(body), node[6])
            binary = binaries.get(f"BINARY[{name}]".encode())
            if binary is None:
                continue
            expected = _decoded(node[5] or b"7BIT", body)
            if expected is not None:
                assert binary == expected, (uid, name, node[5])
                binary_checked += 1
    assert parts_seen > len(uids)
    assert binary_checked > len(uids)
    assert unknown_cte == 0  # the model decodes every CTE in the corpus
    client.logout()
    imap.logout()


def _imaplib_client(server: ServerThread, tls_files: TlsFiles) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(
        server.host,
        server.imaps_port,
        ssl_context=tls_files.client_context(),
        timeout=60,
    )
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.login(USER, PASSWORD)
    return client


def _fetch_binary(
    imap: imaplib.IMAP4_SSL, uid: int, parts: list[str]
) -> dict[bytes, Any] | None:
    """``BINARY[part]`` of each part (RFC 3516), None on ``NO [UNKNOWN-CTE]``.

    Through imaplib and the strict checker, because BINARY content comes
    as ``literal8`` (``~{n}``), which IMAPClient 4.1 does not parse.
    """
    items = " ".join(f"BINARY.PEEK[{name}]" for name in parts)
    typ, data = imap.uid("FETCH", str(uid), f"({items})")
    if typ == "NO":
        assert b"[UNKNOWN-CTE]" in data[0], data  # RFC 3516 section 4.3
        return None
    assert typ == "OK", data
    (response,) = _imaplib_responses(data)
    found = Strict(response).fetch_items()
    assert found.pop(b"UID") == str(uid).encode()
    return found


# --- imaplib and the strict checker of the body grammar (imap_grammar) -----


def _imaplib_responses(data: list[Any]) -> list[bytes]:
    """Whole untagged FETCH responses from imaplib's split data: a tuple
    is (text ending in a literal marker, literal) and whatever follows it
    continues the same response."""
    responses: list[bytes] = []
    continuing = False
    for item in data:
        if isinstance(item, tuple):
            head, literal = item
            piece = head + b"\r\n" + literal
        else:
            piece = item
        if continuing:
            responses[-1] += piece
        else:
            responses.append(piece)
        continuing = isinstance(item, tuple)
    return responses


def test_every_bodystructure_parses_strictly_through_imaplib(
    imap_server: ServerThread, tls_files: TlsFiles, corpus: list[bytes]
) -> None:
    loader = _client(imap_server, tls_files)
    _append_all(loader, corpus)
    loader.logout()
    client = _imaplib_client(imap_server, tls_files)
    assert client.select(MAILBOX, readonly=True) == ("OK", [b"1990"])
    typ, data = client.fetch("1:*", "(BODYSTRUCTURE)")
    assert typ == "OK"
    responses = _imaplib_responses(data)
    assert len(responses) == len(corpus)
    multiparts = 0
    for number, response in enumerate(responses, start=1):
        prefix = b"%d (BODYSTRUCTURE " % number
        assert response.startswith(prefix), response[:60]
        checker = Strict(response)
        checker.pos = len(prefix)
        checker.body()
        assert response[checker.pos :] == b")", response[checker.pos :][:60]
        multiparts += response.startswith(prefix + b"((")
    assert multiparts > 100  # the adjacency rule was exercised
    client.logout()


def test_the_strict_checker_rejects_what_it_must() -> None:
    good = (
        b'(("TEXT" "PLAIN" NIL NIL NIL "7BIT" 1 1)'
        b'("TEXT" "HTML" NIL NIL NIL "7BIT" 2 1) "ALTERNATIVE")'
    )
    Strict(good).body()
    for bad in (
        good.replace(b")(", b") ("),
        good.replace(b"NIL NIL NIL", b"NIL  NIL NIL", 1),
        good[:-1],
        b'("TEXT" "PLAIN" NIL NIL NIL "7BIT" {5}\r\n12 1)',
        b'("TEXT" "PLAIN" ("A" "B\\x") NIL NIL "7BIT" 1 1)',
    ):
        with pytest.raises(ValueError):
            Strict(bad).body()
