"""Properties of the whole parser: total, precise errors, literal-agnostic.

``parse_unchecked`` is the parser without its last-resort exception guard,
so a bug that raises fails these tests instead of being hidden.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asimap.imap.commands import ParseError
from asimap.imap.limits import Limits
from asimap.imap.parser import describe_pending
from asimap.imap.parser.command import parse_unchecked
from test_parser_support import frame, ok

# Valid commands with a quoted string in every astring / string position.
VALID = [
    b'a LOGIN "bob" "s e\\"cret"',
    b'a SELECT "INBOX" (CONDSTORE)',
    b'a EXAMINE "a b" (QRESYNC (1 2 1:5 (1,3 5,7)))',
    b'a CREATE "Sent" (USE (\\Sent))',
    b'a DELETE "x"',
    b'a RENAME "old" "new"',
    b'a SUBSCRIBE "x"',
    b'a UNSUBSCRIBE "x"',
    b'a LIST "" "%"',
    b'a LIST (SUBSCRIBED) "ref" ("a*" "b%") RETURN (CHILDREN STATUS (MESSAGES))',
    b'a LSUB "" "*"',
    b'a STATUS "INBOX" (MESSAGES UNSEEN)',
    b'a APPEND "INBOX" (\\Seen) " 1-Jan-2020 00:00:00 +0000" {5}\r\nhello',
    b'a ID ("name" "x" "os" NIL)',
    b'a COPY 1:* "Trash"',
    b'a UID MOVE 1,2 "Trash"',
    b'a SEARCH CHARSET "UTF-8" OR FROM "a" (TO "b" NOT CC "c") HEADER "X" "y"',
    b'a UID SEARCH RETURN (MIN) BODY "x" TEXT "y" BCC "z" SUBJECT "w" '
    b'SINCE "1-Feb-2020"',
    b'a SEARCH MODSEQ "/flags/\\\\Seen" all 5',
    b'a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS ("From" "To")]<0.10>)',
    b"a UID FETCH 1 (BINARY[1]<0.5> MODSEQ) (CHANGEDSINCE 3 VANISHED)",
    b"a UID STORE 1:5 (UNCHANGEDSINCE 9) -FLAGS.SILENT (\\Seen $Junk)",
    b'a SORT (REVERSE DATE) "UTF-8" FROM "x"',
    b'a THREAD REFERENCES "UTF-8" SUBJECT "x"',
    b"a AUTHENTICATE PLAIN AGJvYgBwdw==",
    b"a ENABLE CONDSTORE",
    b"a UID EXPUNGE 1:3",
    b"a COMPRESS DEFLATE",
    b"a NOOP",
]

_QUOTED_RE = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_UNESCAPE_RE = re.compile(rb"\\(.)")


def _as_literal(m: re.Match[bytes], plus: bytes) -> bytes:
    body = _UNESCAPE_RE.sub(rb"\1", m.group(1))
    return b"{%d%s}\r\n%s" % (len(body), plus, body)


@pytest.mark.parametrize("raw", VALID)
def test_valid_commands_parse(raw: bytes) -> None:
    ok(raw)


@pytest.mark.parametrize("raw", [v for v in VALID if b'"' in v])
@pytest.mark.parametrize("plus", [b"", b"+"])
def test_literal_in_every_string_position(raw: bytes, plus: bytes) -> None:
    """Each quoted string, replaced by a literal, gives the same command.

    The grammar's quoted-only positions are skipped: ``date-time``, the
    ``charset`` (atom / quoted) and RFC 7162 ``entry-flag-name``; tests
    below check that a literal there is refused.
    """
    expected = ok(raw)
    for m in _QUOTED_RE.finditer(raw):
        value = m.group(1)
        if value == b"UTF-8" or value.startswith(b"/flags/"):
            continue
        if re.fullmatch(rb" ?[0-9]{1,2}-[A-Za-z]{3}-[0-9]{4}.*", value):
            continue
        changed = raw[: m.start()] + _as_literal(m, plus) + raw[m.end() :]
        assert ok(changed) == expected, changed


def _check(result: object) -> None:
    if isinstance(result, ParseError):
        assert result.message.isascii() and result.message.isprintable()
        assert result.tag is None or result.tag.isascii()


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=4), st.data())
def test_never_raises_on_random_bytes(lines: list[bytes], data: st.DataObject) -> None:
    literals = data.draw(
        st.lists(
            st.binary(max_size=20), min_size=len(lines) - 1, max_size=len(lines) - 1
        )
    )
    _check(parse_unchecked(lines, literals))
    _check(parse_unchecked(lines, literals, Limits(max_depth=3, max_items=3)))
    pending = describe_pending(lines, literals[:-1] if literals else literals)
    assert pending.literal_index == max(len(literals) - 1, 0)


_alphabet = st.sampled_from(
    list(b' ()[]<>{}"\\*%$:,.+-~0123456789AZaz\x00\x80\xff\r\n')
)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 3), _alphabet), max_size=4),
)
def test_never_raises_on_mutated_commands(
    raw: bytes, edits: list[tuple[int, int, int]]
) -> None:
    mutated = bytearray(raw)
    for position, action, byte in edits:
        at = position % (len(mutated) + 1)
        if action == 0:
            mutated.insert(at, byte)
        elif action == 1 and at < len(mutated):
            del mutated[at]
        elif at < len(mutated):
            mutated[at] = byte
    lines, literals = frame(bytes(mutated))
    result = parse_unchecked(lines, literals)
    _check(result)
    if not edits:
        assert not isinstance(result, ParseError)


def test_eight_bit_garbage_and_unterminated_quotes() -> None:
    for raw in (
        b"\xff\xfe NOOP",
        b"a \xc3\xa9TAT",
        b"a SELECT \xff",
        b'a SELECT "INBOX',
        b'a SEARCH TEXT "abc',
        b"a FETCH 1 (\xff)",
        b"a LOGIN " + b"\x80" * 100 + b" x",
    ):
        result = parse_unchecked(*frame(raw))
        assert isinstance(result, ParseError), raw
        _check(result)
    # 8-bit inside quoted strings is UTF-8 text, allowed (RFC 9051).
    assert ok(b'a SELECT "\xe6\x97\xa5\xe6\x9c\xac"')


def test_literals_refused_in_quoted_only_positions() -> None:
    for raw in (
        b"a SEARCH CHARSET {5}\r\nUTF-8 ALL",
        b"a SEARCH MODSEQ {12}\r\n/flags/\\Seen all 5",
    ):
        result = parse_unchecked(*frame(raw))
        assert isinstance(result, ParseError), raw
        assert result.tag == "a"
