"""Parser tests for RFC 5267: RETURN (CONTEXT UPDATE ...) on SEARCH and
SORT, and ``CANCELUPDATE 1*(SP quoted)`` (section 5)."""

from __future__ import annotations

import pytest

from asimap.imap import commands as c
from test_parser_support import bad, ok


def test_return_update_and_context() -> None:
    s = ok(b"A01 UID SEARCH RETURN (CONTEXT UPDATE count) UNDELETED")
    assert isinstance(s, c.Search) and s.uid
    assert s.return_options == ("CONTEXT", "UPDATE", "COUNT")
    p = ok(b"A02 SEARCH RETURN (PARTIAL 1:500 UPDATE) ALL")
    assert isinstance(p, c.Search) and p.return_options == ("PARTIAL", "UPDATE")
    assert p.partial == c.PartialRange(1, 500)
    o = ok(b"B02 UID SORT RETURN (UPDATE COUNT) (DATE) UTF-8 KEYWORD $Junk")
    assert isinstance(o, c.Sort) and o.return_options == ("UPDATE", "COUNT")
    # Section 4.4 (and RFC 9394 3.1): never PARTIAL and ALL together.
    bad(b"A03 SEARCH RETURN (UPDATE PARTIAL 1:5 ALL) ALL", "PARTIAL and ALL")


def test_cancelupdate() -> None:
    one = ok(b'B04 CANCELUPDATE "B01"')
    assert one == c.CancelUpdate("B04", ("B01",))
    many = ok(b'x cancelupdate "B01" "C\\"2" "B01"')
    assert many == c.CancelUpdate("x", ("B01", 'C"2'))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"x CANCELUPDATE", "at least one tag"),
        (b"x CANCELUPDATE B01", "quoted"),
        (b"x CANCELUPDATE {3}\r\nB01", "quoted"),
        (b'x CANCELUPDATE "B01" B02', "quoted"),
        (b'x CANCELUPDATE "B01"  "B02"', "quoted"),
        (b'x CANCELUPDATE "B01', "Unterminated"),
        (b'x UID CANCELUPDATE "B01"', None),
    ],
)
def test_cancelupdate_errors(raw: bytes, message: str | None) -> None:
    bad(raw, message)
