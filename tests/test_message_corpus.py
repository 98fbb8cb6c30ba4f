"""Every message of the real corpus through every part of the message model.

The corpus (1,990 list messages with HTML, attachments, odd charsets and
broken MIME) is the best evidence that nothing raises on mail in the wild.
Beyond "no exception", each message is checked for internal consistency:
part sizes in BODYSTRUCTURE equal the section lengths, HEADER + TEXT is the
whole message, and every value encodes to valid IMAP syntax.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from asimap.imap.commands import Section, SectionText
from asimap.imap.encoder import encode_value
from asimap.imap.responses import Adjacent, Value
from asimap.message.model import Message, PartNotFound, UnknownTransferEncoding

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "usrp-users.mbox.gz"
_FROM_LINE = re.compile(rb"^From .*\n", re.MULTILINE)


def load_corpus() -> list[bytes]:
    """Split the mbox on its ``From`` lines and store each message CRLF."""
    data = gzip.decompress(CORPUS.read_bytes())
    starts = [m for m in _FROM_LINE.finditer(data)]
    messages: list[bytes] = []
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(data)
        body = data[match.end() : end]
        body = re.sub(rb"\r?\n", b"\r\n", body)
        messages.append(body)
    return messages


@pytest.fixture(scope="module")
def corpus() -> list[bytes]:
    if not CORPUS.exists():
        pytest.fail(f"corpus missing: {CORPUS}")
    return load_corpus()


@pytest.fixture(scope="module")
def parsed(corpus: list[bytes]) -> list[Message]:
    """One Message per corpus message, shared so caches are reused."""
    return [Message(raw) for raw in corpus]


def _is_multipart(structure: Sequence[Value]) -> bool:
    # A multipart starts with its adjacent parts (RFC 3501 body-type-mpart).
    return isinstance(structure[0], Adjacent)


def leaf_paths(
    structure: Sequence[Value], prefix: tuple[int, ...], root: bool
) -> Iterator[tuple[tuple[int, ...], Sequence[Value]]]:
    """Part numbers of every part the structure names, with its structure.

    Derived from the BODYSTRUCTURE value alone, so that it checks the
    numbering of :meth:`Message.section` independently.
    """
    if _is_multipart(structure):
        first = structure[0]
        assert isinstance(first, Adjacent)
        children: list[Sequence[Value]] = []
        for item in first.values:
            assert isinstance(item, list | tuple)
            children.append(item)
        for number, child in enumerate(children, start=1):
            yield from leaf_paths(child, (*prefix, number), False)
        return
    path = (1,) if root else prefix
    yield path, structure
    if structure[0] == b"MESSAGE" and structure[1] in (b"RFC822", b"GLOBAL"):
        inner = structure[8]
        assert isinstance(inner, list | tuple)
        if _is_multipart(inner):
            yield from leaf_paths(inner, path, False)
        else:
            yield (*path, 1), inner


def test_corpus_has_all_messages(corpus: list[bytes]) -> None:
    assert len(corpus) == 1990


def test_every_message_every_part(parsed: list[Message]) -> None:
    parts_seen = 0
    unknown_cte = 0
    for message in parsed:
        raw = message.raw
        assert message.size == len(raw)
        assert message.section(None) == raw
        header = message.section(Section((), SectionText.HEADER))
        text = message.section(Section((), SectionText.TEXT))
        assert header + text == raw
        encode_value(message.envelope())
        encode_value(message.bodystructure(False))
        structure = message.bodystructure(True)
        encode_value(structure, utf8=True)
        assert isinstance(structure, list | tuple)
        for path, part in leaf_paths(structure, (), True):
            parts_seen += 1
            body = message.section(Section(path))
            assert len(body) == part[6], (path, part)
            mime = message.section(Section(path, SectionText.MIME))
            if path != (1,) or _is_multipart(structure):
                assert mime.endswith(b"\n") or mime == b""
            if part[0] == b"MESSAGE":
                inner_header = message.section(Section(path, SectionText.HEADER))
                inner_text = message.section(Section(path, SectionText.TEXT))
                assert inner_header + inner_text == body
            try:
                decoded = message.binary(path)
            except UnknownTransferEncoding:
                unknown_cte += 1
            else:
                assert message.binary_size(path) == len(decoded)
        with pytest.raises(PartNotFound):
            message.binary((999,))
        message.header_text()
        message.body_text()
        assert len(message.preview()) <= 256  # RFC 8970 section 3.1
        message.sent_date()
        message.subject()
        message.references()
    assert parts_seen > len(parsed)
    assert unknown_cte == 0


def test_corpus_search_text_is_decoded(parsed: list[Message]) -> None:
    """Base64 text parts are searched as their decoded text, never as the
    encoded form: the first encoded line is absent from the search text
    and the decoded words are present."""
    checked = 0
    for message in parsed:
        structure = message.bodystructure()
        assert isinstance(structure, list | tuple)
        for path, part in leaf_paths(structure, (), True):
            if part[0] != b"TEXT" or part[5] != b"BASE64" or part[6] < 100:
                continue
            encoded_line = message.section(Section(path)).split(b"\r\n")[0]
            words = message.binary(path).decode("utf-8", "replace").split()
            text = message.body_text()
            assert encoded_line.decode("ascii") not in text
            assert all(word in text for word in words[:5] if "\ufffd" not in word)
            checked += 1
    assert checked > 10


def test_corpus_dates_mostly_parse(parsed: list[Message]) -> None:
    dated = sum(1 for message in parsed if message.sent_date() is not None)
    assert dated >= len(parsed) * 0.99
