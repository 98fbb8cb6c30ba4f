"""Fuzz targets: one function per input surface, each taking any bytes.

A target returns normally for every input; anything it raises is a defect
(an exception escaping a parser that must be total, or a broken property:
an encoded value that does not parse back, a sequence file that does not
read back as written).  The same functions are driven three ways:

* coverage-guided by atheris (``tests/fuzz/run.py``, ``scripts/fuzz``),
  from the seed corpus kept in ``tests/fuzz/corpus/<target>/``;
* briefly in the default test suite (``tests/test_fuzz_targets.py``), both
  through atheris and as hypothesis properties over random bytes;
* on every file of the seed corpus, so a crash once found and added there
  stays fixed.

Targets read their parameters (chunk sizes, limits, modes) from the first
bytes of the input, so the fuzzer explores those too and every crash
reproduces from its input file alone.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from asimap.auth import sasl, scram, scram_exchange
from asimap.auth.account import Account
from asimap.auth.scram_exchange import ScramLookup
from asimap.imap.commands import ParseError, Section, SectionText
from asimap.imap.encoder import encode, encode_value
from asimap.imap.limits import Limits
from asimap.imap.mutf7 import decode_mutf7, encode_mutf7, is_valid_mutf7
from asimap.imap.parser import describe_pending
from asimap.imap.parser.command import parse_unchecked
from asimap.imap.reader import CommandFrame, CommandReader, Event, LiteralPending
from asimap.imap.responses import (
    Atom,
    Code,
    Literal,
    Literal8,
    Status,
    Tagged,
    Untagged,
    UntaggedStatus,
    Value,
)
from asimap.message import wire
from asimap.message.model import Message, PartNotFound, UnknownTransferEncoding
from asimap.pop3 import commands as pop3_commands
from asimap.pop3.reader import Line, LineReader, LineTooLong
from asimap.store.mh import sequences
from imap_grammar import check_body, check_envelope
from test_encoder import DecodeError, decode_all, decode_one, expected

Target = Callable[[bytes], None]

CORPUS_ROOT = Path(__file__).parent / "corpus"


class Source:
    """Reads parameters from the front of a fuzz input, deterministically;
    an exhausted source answers zeros, so every input is usable."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, size: int) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        self.pos += len(chunk)
        return chunk

    def rest(self) -> bytes:
        return self.take(len(self.data))


def _safe_text(text: str) -> None:
    """Error texts go on the wire after BAD / -ERR: one printable line."""
    assert text.isascii() and text.isprintable(), text


# -- IMAP: reader and parser ----------------------------------------------------

_SMALL_LIMITS = Limits(
    max_line=60,
    max_literal=80,
    max_small_literal=40,
    max_command=240,
    max_literals=4,
    max_depth=4,
    max_items=8,
    max_nonsync_literal=30,
    max_tag=12,
)


def _read_commands(
    chunks: list[bytes], limits: Limits, reject_mask: int, literal_plus: bool
) -> list[Event]:
    reader = CommandReader(limits, literal_plus=literal_plus)
    events: list[Event] = []

    def drain() -> None:
        while (event := reader.next_event()) is not None:
            events.append(event)
            if isinstance(event, LiteralPending):
                pending = describe_pending(event.lines, event.literals)
                assert pending.literal_index == len(event.literals)
                if (reject_mask >> (event.size % 8)) & 1:
                    reader.reject_literal()
                else:
                    reader.accept_literal()
        # The reader holds at most one chunk, the command so far and a line.
        assert reader.buffered <= 64 + limits.max_command + limits.max_line + 64

    for chunk in chunks:
        reader.feed(chunk)
        drain()
    reader.feed_eof()
    drain()
    return events


def imap_command(data: bytes) -> None:
    """Client bytes -> CommandReader events -> parser: total, bounded, and
    independent of how the bytes were split into reads."""
    source = Source(data)
    control = source.byte()
    reject_mask = source.byte()
    chunk = 1 + source.byte() % 17
    limits = _SMALL_LIMITS if control & 1 else Limits()
    literal_plus = not control & 2
    body = source.rest()
    whole = _read_commands([body], limits, reject_mask, literal_plus)
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    assert _read_commands(pieces, limits, reject_mask, literal_plus) == whole
    for event in whole:
        if not isinstance(event, CommandFrame):
            continue
        assert len(event.lines) == len(event.literals) + 1
        for parse_limits in (limits, _SMALL_LIMITS):
            result = parse_unchecked(event.lines, event.literals, parse_limits)
            if isinstance(result, ParseError):
                _safe_text(result.message)
                assert result.tag is None or result.tag.isascii()


# -- POP3: reader and command parser ------------------------------------------


def pop3_command(data: bytes) -> None:
    """Client bytes -> LineReader -> parse_line: total and bounded."""
    source = Source(data)
    chunk = 1 + source.byte() % 17
    max_line = 16 + source.byte() * 4
    body = source.rest()
    reader = LineReader(max_line)
    lines: list[bytes] = []
    for start in range(0, len(body) + 1, chunk):
        reader.feed(body[start : start + chunk])
        if start + chunk > len(body):
            reader.feed_eof()
        while (event := reader.next_event()) is not None:
            assert reader.buffered <= max_line + chunk
            if isinstance(event, Line):
                assert b"\n" not in event.data
                assert len(event.data) < max_line
                lines.append(event.data)
            elif isinstance(event, LineTooLong):
                assert event.limit == max_line
            else:
                break
    for line in lines:
        result = pop3_commands.parse_line(line)
        if isinstance(result, pop3_commands.CommandError):
            _safe_text(result.text)


# -- the response encoder --------------------------------------------------------

_ATOM_CHARS = b"!#$&'+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`az|}~"


def _value(source: Source, depth: int) -> Value:
    kind = source.byte()
    match kind % 9:
        case 0:
            return None
        case 1:
            # number64 (RFC 9051 section 9) at most.
            return int.from_bytes(source.take(1 + kind // 9 % 8), "big") >> 1
        case 2:
            size = source.byte() + (1000 if kind & 0x80 else 0)
            return source.take(size)
        case 3:
            return source.take(source.byte() % 48).decode("utf-8", "replace")
        case 4:
            size = 1 + source.byte() % 12
            text = "".join(
                chr(_ATOM_CHARS[b % len(_ATOM_CHARS)]) for b in source.take(size)
            )
            # Starts with a letter, so it is neither a number nor NIL.
            return Atom(("\\" if kind & 0x80 else "") + "x" + text)
        case 5:
            return Literal(source.take(source.byte() % 40))
        case 6:
            return Literal8(source.take(source.byte() % 40))
        case _ if depth < 4:
            return [_value(source, depth + 1) for _ in range(source.byte() % 6)]
        case _:
            return None


def _untagged(encoded: bytes, utf8: bool) -> list[Any]:
    """``* value SP value ... CRLF`` decoded with the reference decoder."""
    if not encoded.startswith(b"* ") or not encoded.endswith(b"\r\n"):
        raise DecodeError("not an untagged data line")
    data, pos, values = encoded[:-2], 2, []
    while True:
        value, pos = decode_one(data, pos, utf8)
        values.append(value)
        if pos == len(data):
            return values
        if data[pos : pos + 1] != b" ":
            raise DecodeError(f"expected SP at {pos}")
        pos += 1


def encoder(data: bytes) -> None:
    """Any value the session can build encodes to syntax that a strict
    decoder (tests/test_encoder.py) reads back as the same value."""
    source = Source(data)
    utf8 = bool(source.byte() & 1)
    value = _value(source, 0)
    assert decode_all(encode_value(value, utf8=utf8), utf8) == expected(value)
    values = (Atom("FETCH"), [Atom("UID"), 7, Atom("BODY[]"), value])
    line = encode(Untagged(values), utf8=utf8)
    assert _untagged(line, utf8) == [expected(v) for v in values]
    text = source.rest().decode("utf-8", "surrogateescape")
    tagged = encode(Tagged("a1", Status.NO, text, Code("ALERT")), utf8=utf8)
    assert tagged.startswith(b"a1 NO [ALERT] ") and tagged.endswith(b"\r\n")
    assert all(0x20 <= b <= 0x7E for b in tagged[:-2]), tagged
    # The empty list after the value keeps "]" away from an atom-like one.
    code = Code("X-FUZZ", (value, []))
    status = encode(UntaggedStatus(Status.OK, text, code), utf8=utf8)
    prefix = b"* OK [X-FUZZ "
    assert status.startswith(prefix)
    argument, end = decode_one(status, len(prefix), utf8)
    assert argument == expected(value)
    assert status[end : end + 5] == b" ()] " and status.endswith(b"\r\n")
    assert all(0x20 <= b <= 0x7E for b in status[end:-2]), status


# -- the message model ------------------------------------------------------------


def _part_paths(message: Message) -> list[tuple[int, ...]]:
    paths: list[tuple[int, ...]] = [(), (1,), (2,), (1, 1)]
    stack: list[tuple[Any, tuple[int, ...]]] = [(message.root, ())]
    while stack and len(paths) < 40:
        part, prefix = stack.pop()
        if len(prefix) > 8:
            continue
        for number, child in enumerate(part.numbered_children(), start=1):
            path = (*prefix, number)
            paths.append(path)
            if child is not part:
                stack.append((child, path))
    return paths


def message(data: bytes) -> None:
    """Any bytes as a stored message: every FETCH item and every SEARCH key
    answers without raising, and ENVELOPE, BODY and BODYSTRUCTURE are
    valid RFC 3501 syntax (both with and without UTF8=ACCEPT)."""
    msg = Message(data)
    items: list[Value] = [Atom("RFC822.SIZE"), msg.size]
    # The summary cache's fast encoder (what FETCH answers from in the MH
    # store) gives the same bytes as the general one.
    for value in (msg.envelope(), msg.bodystructure(True), msg.bodystructure(False)):
        assert wire.encode_summary_value(value) == encode_value(value)
    for utf8 in (False, True):
        check_envelope(encode_value(msg.envelope(), utf8=utf8), utf8=utf8)
        check_body(encode_value(msg.bodystructure(True), utf8=utf8), utf8=utf8)
        check_body(encode_value(msg.bodystructure(False), utf8=utf8), utf8=utf8)
    assert msg.section(None) == data
    header = msg.section(Section((), SectionText.HEADER))
    assert header + msg.section(Section((), SectionText.TEXT)) == data
    for section in (
        Section((), SectionText.HEADER_FIELDS, ("From", "Subject", "Date")),
        Section((), SectionText.HEADER_FIELDS_NOT, ("Received",)),
    ):
        items += [Atom("BODY[x]"), Literal(msg.section(section))]
    for path in _part_paths(msg):
        for text in (None, SectionText.MIME, SectionText.HEADER, SectionText.TEXT):
            if path or text is not SectionText.MIME:
                items += [Atom("BODY[x]"), Literal(msg.section(Section(path, text)))]
        with contextlib.suppress(PartNotFound, UnknownTransferEncoding):
            binary = msg.binary(path)
            assert msg.binary_size(path) == len(binary)
            items += [Atom("BINARY[x]"), Literal8(binary)]
    preview = msg.preview()
    assert len(preview) <= 256  # RFC 8970 section 3.1
    items += [Atom("PREVIEW"), preview]
    # The rest of the FETCH response reads back exactly (ENVELOPE and BODY
    # were checked above: their adjacent lists need the grammar checker).
    assert decode_all(encode_value(items)) == expected(items)
    # SEARCH and SORT / THREAD keys.
    msg.header_text()
    msg.body_text()
    msg.sent_date()
    for field in ("from", "to", "cc", "bcc", "sender", "reply-to"):
        msg.addresses(field)
    for name in ("From", "Subject", "Message-ID", "X-Anything"):
        msg.header_values(name)
    msg.message_id()
    msg.references()
    msg.in_reply_to()
    msg.subject()


# -- modified UTF-7 mailbox names --------------------------------------------------


def mutf7(data: bytes) -> None:
    """Decoding is total (ValueError or a name) and canonical; any name
    encodes to printable ASCII that decodes back to it."""
    try:
        name = decode_mutf7(data)
    except ValueError:
        assert not is_valid_mutf7(data)
    else:
        assert encode_mutf7(name) == data
    text = data.decode("utf-8", "replace")
    encoded = encode_mutf7(text)
    assert all(0x20 <= b <= 0x7E for b in encoded)
    assert decode_mutf7(encoded) == text


# -- SASL: PLAIN, LOGIN, SCRAM-SHA-256 ---------------------------------------------


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never really waits (scripted challenges),
    without the cost of an event loop per input."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise AssertionError("the exchange waited on something")


class _Script:
    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers

    async def __call__(self, challenge: bytes) -> bytes:
        return self.answers.pop(0) if self.answers else b"*"


_SALTED = bytes(range(32))
_CREDENTIALS = scram.credentials_from_salted_password(b"salt", 4096, _SALTED)


class _OneUser:
    """SCRAM authenticator with one account, ``user``."""

    async def scram_lookup(self, username: str) -> ScramLookup:
        if username == "user":
            return ScramLookup(username, _CREDENTIALS, Account(username, Path("/m")))
        return ScramLookup(username, scram.fake_credentials(b"k", username, 4096), None)

    async def scram_outcome(
        self, lookup: ScramLookup, proof_valid: bool, peer_host: str
    ) -> Account | None:
        return lookup.account if proof_valid else None


def _scram_final(first: bytes, server_first: bytes, tweak: bytes) -> bytes:
    """A correct client-final-message for user ``user`` (RFC 5802 section 3),
    then spliced with ``tweak`` when it is not empty."""
    import hashlib
    import hmac

    attrs = dict(item.split(b"=", 1) for item in server_first.split(b","))
    client_key = hmac.new(_SALTED, b"Client Key", hashlib.sha256).digest()
    gs2, _, bare = first.partition(b",,")
    without_proof = b"c=" + base64.b64encode(gs2 + b",,") + b",r=" + attrs[b"r"]
    auth_message = bare + b"," + server_first + b"," + without_proof
    stored = hashlib.sha256(client_key).digest()
    signature = hmac.new(stored, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    final = without_proof + b",p=" + base64.b64encode(proof)
    if tweak:
        at = tweak[0] % (len(final) + 1)
        final = final[:at] + tweak[1:] + final[at + len(tweak) - 1 :]
    return final


def sasl_exchange(data: bytes) -> None:
    """Client responses to AUTHENTICATE / AUTH: only the neutral SASL
    errors ever escape, and SCRAM succeeds exactly for a correct proof."""
    source = Source(data)
    mode = source.byte() % 4
    rest = source.rest()
    lines = rest.split(b"\n")
    if mode < 2:
        mechanism = sasl.MECHANISMS[mode]
        initial = lines.pop(0) if lines and lines[0][:1] != b"!" else None
        try:
            user, password = _run(sasl.exchange(mechanism, initial, _Script(lines)))
        except sasl.SaslError as error:
            _safe_text(str(error))
        else:
            assert isinstance(user, str) and isinstance(password, str)
        return
    if mode == 2:
        # Raw client lines, base64 or not.
        answers = lines[1:]
        try:
            _run(scram_exchange.exchange(lines[0], _Script(answers), _OneUser(), "h"))
        except sasl.SaslError as error:
            _safe_text(str(error))
        else:
            raise AssertionError("SCRAM succeeded without a proof")
        return
    # A real client-first (the user's name or the fuzz bytes), then a
    # correct client-final, perhaps spliced.
    name, _, tweak = rest.partition(b"\n")
    first = b"n,,n=" + (name or b"user") + b",r=fuzznonce"
    server_firsts: list[bytes] = []

    async def challenge(server_data: bytes) -> bytes:
        if not server_firsts:
            server_firsts.append(server_data)
            return base64.b64encode(_scram_final(first, server_data, tweak))
        return b""

    exchange = scram_exchange.exchange(
        base64.b64encode(first), challenge, _OneUser(), "h"
    )
    # A fixed server nonce keeps every input reproducible.
    random_nonce, scram_exchange.server_nonce = scram_exchange.server_nonce, _nonce
    try:
        account = _run(exchange)
    except sasl.SaslError as error:
        _safe_text(str(error))
        assert tweak or name not in (b"", b"user")
    else:
        assert account.username == "user"
    finally:
        scram_exchange.server_nonce = random_nonce


def _nonce() -> str:
    return "fuzzserver"


# -- MH .mh_sequences ---------------------------------------------------------------


def mh_sequences(data: bytes) -> None:
    """Any file content parses (it is decoded as the store reads it); what
    we write for the parsed sequences parses back to the same sequences,
    and the flags derived from it are consistent."""
    text = data.decode("utf-8", "replace")
    parsed = sequences.parse(text)
    unseen = ("unseen",)
    kept = sequences.preserved_lines(parsed, unseen)
    ours = sequences.interpreted(parsed, unseen)
    written = sequences.format_file(ours, kept)
    again = sequences.parse(written)
    non_empty = {name: nums for name, nums in parsed.sequences.items() if nums}
    for name in kept:
        non_empty.setdefault(name, parsed.sequences[name])
    assert {n: s for n, s in again.sequences.items() if s or n in kept} == non_empty
    assert sequences.format_file(sequences.interpreted(again, unseen), kept) == written
    flags = sequences.flags_by_number(parsed, unseen)
    # As the store asks: about the message numbers on disk only.
    for number in (*range(12), 99, 1000, 10**6):
        file_flags = flags.get(number)
        sequences.settle_seen(file_flags)
        if file_flags is not None:
            names = {n for n, s in parsed.sequences.items() if number in s}
            assert file_flags.in_seen == ("Seen" in names)


TARGETS: dict[str, Target] = {
    "imap_command": imap_command,
    "pop3_command": pop3_command,
    "encoder": encoder,
    "message": message,
    "mutf7": mutf7,
    "sasl": sasl_exchange,
    "mh_sequences": mh_sequences,
}


def corpus_files(name: str) -> list[Path]:
    """The seed corpus of target ``name``, sorted."""
    directory = CORPUS_ROOT / name
    return (
        sorted(p for p in directory.iterdir() if p.is_file())
        if directory.is_dir()
        else []
    )
