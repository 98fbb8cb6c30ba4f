"""Exact values of ENVELOPE, BODY/BODYSTRUCTURE and sections.

The expected strings are written in IMAP syntax (through the real encoder)
so they read like the RFC 3501 examples they are checked against.
"""

from __future__ import annotations

from asimap.imap.commands import Section, SectionText
from asimap.imap.encoder import encode_value
from asimap.imap.responses import Adjacent
from asimap.message.model import Message


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def wire(value: object) -> str:
    return encode_value(value).decode("utf-8")  # type: ignore[arg-type]


# RFC 3501 section 8 sample: the message behind its ENVELOPE example.
RFC3501_SAMPLE = crlf(
    """Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)
From: Terry Gray <gray@cac.washington.edu>
Subject: IMAP4rev1 WG mtg summary and minutes
To: imap@cac.washington.edu
cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>
Message-Id: <B27397-0100000@cac.washington.edu>
MIME-Version: 1.0
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

Minutes of the meeting.
Second line.
"""
)


def test_rfc3501_envelope_example() -> None:
    message = Message(RFC3501_SAMPLE)
    gray = '(("Terry Gray" NIL "gray" "cac.washington.edu"))'
    assert wire(message.envelope()) == (
        '("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" '
        '"IMAP4rev1 WG mtg summary and minutes" '
        f"{gray} {gray} {gray} "
        '((NIL NIL "imap" "cac.washington.edu")) '
        # RFC 3501 section 9: "(" 1*address ")" -- no SP between addresses
        # (the RFC's example breaks the line there for layout only).
        '((NIL NIL "minutes" "CNRI.Reston.VA.US")'
        '("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        'NIL NIL "<B27397-0100000@cac.washington.edu>")'
    )


def test_rfc3501_body_example() -> None:
    message = Message(RFC3501_SAMPLE)
    size = len(b"Minutes of the meeting.\r\nSecond line.\r\n")
    assert wire(message.bodystructure(False)) == (
        f'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" {size} 2)'
    )
    assert wire(message.bodystructure(True)) == (
        f'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" {size} 2 '
        "NIL NIL NIL NIL)"
    )


RFC3501_MULTIPART = crlf(
    """From: a@example.com
Content-Type: MULTIPART/MIXED; BOUNDARY="cut"

--cut
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

hello
--cut
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff
Content-ID: <960723163407.20117h@cac.washington.edu>
Content-Description: Compiler diff
Content-Transfer-Encoding: BASE64

aGVsbG8gd29ybGQK
ZGlmZgo=
--cut--
"""
)


def test_rfc3501_bodystructure_example() -> None:
    """The shape of RFC 3501 7.4.2's BODYSTRUCTURE example."""
    message = Message(RFC3501_MULTIPART)
    assert wire(message.bodystructure(False)) == (
        # body-type-mpart = 1*body SP media-subtype: parts are adjacent.
        '(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 1)'
        '("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        '"<960723163407.20117h@cac.washington.edu>" "Compiler diff" '
        '"BASE64" 26 2) "MIXED")'
    )
    assert wire(message.bodystructure(True)).endswith(
        ' "MIXED" ("BOUNDARY" "cut") NIL NIL NIL)'
    )
    assert message.binary((2,)) == b"hello world\ndiff\n"
    assert message.binary_size((2,)) == 17
    assert message.section(Section((2,))) == b"aGVsbG8gd29ybGQK\r\nZGlmZgo="


NESTED = crlf(
    """From: outer@example.com
Subject: nested
Content-Type: multipart/mixed; boundary="outer"

This is the preamble.
--outer
Content-Type: text/plain

part one
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

caf=E9 plain
--inner
Content-Type: text/html

<p>alt html</p>
--inner--
--outer
Content-Type: message/rfc822
Content-Disposition: attachment; filename="fwd.eml"

From: Inner Sender <inner@example.org>
Subject: encapsulated
Content-Type: multipart/mixed; boundary=enc

--enc
Content-Type: text/plain

enc one
--enc
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAEC
--enc--
--outer--
This is the epilogue.
"""
)


def test_nested_sections() -> None:
    m = Message(NESTED)
    assert m.section(Section((1,))) == b"part one"
    assert m.section(Section((2, 1))) == b"caf=E9 plain"
    assert m.section(Section((2, 1), SectionText.MIME)) == (
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    assert m.section(Section((2, 2))) == b"<p>alt html</p>"
    assert m.section(Section((2,))).startswith(b"--inner\r\n")
    assert m.section(Section((2,))).endswith(b"--inner--")
    encapsulated = m.section(Section((3,)))
    assert encapsulated.startswith(b"From: Inner Sender")
    assert encapsulated.endswith(b"--enc--")
    assert m.section(Section((3,), SectionText.HEADER)) == crlf(
        """From: Inner Sender <inner@example.org>
Subject: encapsulated
Content-Type: multipart/mixed; boundary=enc

"""
    )
    assert m.section(Section((3,), SectionText.TEXT)).startswith(b"--enc\r\n")
    assert m.section(Section((3,), SectionText.MIME)) == crlf(
        """Content-Type: message/rfc822
Content-Disposition: attachment; filename="fwd.eml"

"""
    )
    assert m.section(Section((3, 1))) == b"enc one"
    assert m.section(Section((3, 2))) == b"AAEC"
    assert m.binary((3, 2)) == b"\x00\x01\x02"
    assert m.section(Section((3,), SectionText.HEADER_FIELDS, ("subject",))) == (
        b"Subject: encapsulated\r\n\r\n"
    )
    # Nonexistent parts are empty, not errors.
    assert m.section(Section((4,))) == b""
    assert m.section(Section((3, 3))) == b""
    assert m.section(Section((1,), SectionText.HEADER)) == b""
    assert m.section(Section((0,))) == b""


def test_nested_bodystructure() -> None:
    m = Message(NESTED)
    size3 = len(m.section(Section((3,))))
    inner = '(("Inner Sender" NIL "inner" "example.org"))'
    assert wire(m.bodystructure(False)) == (
        '(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 8 1)'
        '(("TEXT" "PLAIN" ("CHARSET" "iso-8859-1") NIL NIL '
        '"QUOTED-PRINTABLE" 12 1)'
        '("TEXT" "HTML" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 15 1) "ALTERNATIVE")'
        f'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" {size3} '
        f'(NIL "encapsulated" {inner} {inner} {inner} NIL NIL NIL NIL NIL) '
        '(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 7 1)'
        '("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 4) "MIXED") 14) '
        '"MIXED")'
    )
    full = wire(m.bodystructure(True))
    # RFC 3501 body-ext-1part: md5, disposition with its parameters, lang, loc.
    assert ' 14 NIL ("ATTACHMENT" ("FILENAME" "fwd.eml")) NIL NIL) ' in full
    assert full.endswith(' "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)')


def test_text_search_and_preview_of_nested() -> None:
    m = Message(NESTED)
    text = m.body_text()
    assert "café plain" in text  # QP and iso-8859-1 undone
    assert "alt html" in text
    assert "enc one" in text
    assert "Subject: encapsulated" in text  # the attached message's header
    assert "preamble" not in text
    assert m.preview() == "part one"
    assert m.subject() == "nested"


def test_header_fields_verbatim_with_continuations() -> None:
    raw = crlf(
        """Received: from a
\tby b
Subject: first
X-Other: x
subject: second
  folded
To: t@example.com

body
"""
    )
    m = Message(raw)
    fields = m.section(Section((), SectionText.HEADER_FIELDS, ("SUBJECT", "to")))
    assert fields == crlf(
        "Subject: first\nsubject: second\n  folded\nTo: t@example.com\n\n"
    )
    others = m.section(Section((), SectionText.HEADER_FIELDS_NOT, ("Subject", "To")))
    assert others == crlf("Received: from a\n\tby b\nX-Other: x\n\n")
    nothing = m.section(Section((), SectionText.HEADER_FIELDS, ("Absent",)))
    assert nothing == b"\r\n"
    assert m.header_values("SUBJECT") == ["first", "second  folded"]
    assert m.section(Section((1,))) == b"body\r\n"  # part 1 of a single part


def test_header_fields_of_a_message_without_blank_line_add_none() -> None:
    """RFC 9051 section 6.4.5: the blank line is included in all header
    fetches "except in the case of a message that has no body and no
    blank line" - a subset must not invent one (found by the differential
    test against Dovecot)."""
    m = Message(b"From: a@example.org\r\nSubject: headers only\r\n")
    assert m.section(Section((), SectionText.HEADER)) == m.raw
    fields = m.section(Section((), SectionText.HEADER_FIELDS, ("Subject",)))
    assert fields == b"Subject: headers only\r\n"
    others = m.section(Section((), SectionText.HEADER_FIELDS_NOT, ("Subject",)))
    assert others == b"From: a@example.org\r\n"
    empty = Message(b"\r\nbody only\r\n")
    assert empty.section(Section((), SectionText.HEADER_FIELDS, ("X",))) == b"\r\n"


def test_group_syntax_and_hard_names() -> None:
    raw = crlf(
        r"""From: "Doe, John \"JD\" \\ Jr." <john.doe@example.com>
To: Friends: alice@example.com, Bob <bob@example.net>;, carol@example.org
Cc: undisclosed-recipients:;
Bcc: dave@example.com (Dave Comment), <@route.example:eve@example.com>
Reply-To:
Sender: MAILER-DAEMON
In-Reply-To: <parent@example.com>
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=

x
"""
    )
    m = Message(raw)
    env = m.envelope()
    assert isinstance(env, tuple)
    from_ = [(b'Doe, John "JD" \\ Jr.', None, b"john.doe", b"example.com")]
    assert addrs(env[2]) == from_
    assert addrs(env[3]) == [(None, None, b"MAILER-DAEMON", b"MISSING_DOMAIN")]
    assert addrs(env[4]) == from_  # empty Reply-To defaults to From
    assert addrs(env[5]) == [
        (None, None, b"Friends", None),
        (None, None, b"alice", b"example.com"),
        (b"Bob", None, b"bob", b"example.net"),
        (None, None, None, None),
        (None, None, b"carol", b"example.org"),
    ]
    assert addrs(env[6]) == [(None, None, b"undisclosed-recipients", None), (None,) * 4]
    assert addrs(env[7]) == [
        (b"Dave Comment", None, b"dave", b"example.com"),
        (None, b"@route.example", b"eve", b"example.com"),
    ]
    assert env[8] == b"<parent@example.com>"
    assert env[1] == b"=?utf-8?q?Gr=C3=BC=C3=9Fe?="  # not decoded: client does it
    assert m.subject() == "Grüße"
    assert wire(env[2]) == r'(("Doe, John \"JD\" \\ Jr." NIL "john.doe" "example.com"))'


def test_words_without_at_are_a_display_name() -> None:
    """``Bcc: invalid address without at`` names nobody's mailbox: keep the
    words as the display name with MISSING_MAILBOX/MISSING_DOMAIN, as
    Dovecot does, rather than gluing them into a local part "invalid
    addresswithoutat" (found by the differential test)."""
    raw = crlf(
        """From: invalid address without at
To: MAILER-DAEMON, first . last, "quoted words"

x
"""
    )
    env = Message(raw).envelope()
    assert isinstance(env, tuple)
    assert addrs(env[2]) == [
        (b"invalid address without at", None, b"MISSING_MAILBOX", b"MISSING_DOMAIN")
    ]
    assert addrs(env[5]) == [
        (None, None, b"MAILER-DAEMON", b"MISSING_DOMAIN"),
        (None, None, b"first.last", b"MISSING_DOMAIN"),
        (None, None, b'"quoted words"', b"MISSING_DOMAIN"),
    ]


def addrs(value: object) -> list[object]:
    """The addresses of an envelope address list ``[Adjacent(...)]``."""
    assert isinstance(value, list) and len(value) == 1
    assert isinstance(value[0], Adjacent)
    return list(value[0].values)


def test_missing_headers_give_nil() -> None:
    m = Message(b"\r\njust a body\r\n")
    assert m.envelope() == (None,) * 10
    assert wire(m.bodystructure(False)) == (
        '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 13 1)'
    )
    assert m.section(Section((), SectionText.HEADER)) == b"\r\n"
    assert m.section(Section((), SectionText.TEXT)) == b"just a body\r\n"
    assert m.sent_date() is None
    assert m.message_id() is None
    assert m.subject() == ""


def test_bare_lf_message() -> None:
    raw = (
        b"From: a@b\nSubject: lf\nContent-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\none\n--b\n\ntwo\n--b--\n"
    )
    m = Message(raw)
    assert m.section(Section((1,))) == b"one"
    assert m.section(Section((2,))) == b"two"
    assert m.section(Section((), SectionText.HEADER)).endswith(
        b"multipart/mixed; boundary=b\n\n"
    )
    assert m.header_values("subject") == ["lf"]


def test_eight_bit_headers_kept_as_bytes() -> None:
    raw = "From: Jörg <jörg@example.com>\r\nSubject: Ünïcödé\r\n\r\nx".encode()
    m = Message(raw)
    env = m.envelope()
    assert isinstance(env, tuple)
    assert env[1] == "Ünïcödé".encode()
    assert addrs(env[2]) == [("Jörg".encode(), None, "jörg".encode(), b"example.com")]
    assert m.subject() == "Ünïcödé"
    latin = Message(b"Subject: caf\xe9\r\n\r\nx")
    assert latin.subject() == "café"
    encode_value(latin.envelope())  # 8-bit becomes a literal, never invalid


def test_no_separator_boundary_whitespace_and_missing_close() -> None:
    assert (
        Message(b"Subject: only header\r\n").section(Section((), SectionText.TEXT))
        == b""
    )
    raw = crlf(
        """Content-Type: multipart/mixed; boundary="b b"

--b b \t\x20
Content-Type: text/plain

one
--b b\t

two"""
    )
    m = Message(raw)
    assert m.section(Section((1,))) == b"one"
    assert m.section(Section((2,))) == b"two"  # no close-delimiter: tolerated


def test_multipart_without_parts_is_text_plain() -> None:
    m = Message(b"Content-Type: multipart/mixed; boundary=zz\r\n\r\nno parts\r\n")
    assert wire(m.bodystructure(False)) == (
        '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 1)'
    )
    assert m.section(Section((1,))) == b"no parts\r\n"
    assert "no parts" in m.body_text()


def test_top_level_message_rfc822() -> None:
    raw = crlf("Content-Type: message/rfc822\n\nSubject: inner\n\ninner text")
    m = Message(raw)
    assert m.section(Section((1,))) == crlf("Subject: inner\n\ninner text")
    assert m.section(Section((1, 1))) == b"inner text"
    assert m.section(Section((1,), SectionText.HEADER)) == crlf("Subject: inner\n\n")


def test_absurd_nesting_is_capped() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\n" * 500 + b"Subject: deep\r\n\r\nx"
    m = Message(raw)
    encode_value(m.bodystructure())
    encode_value(m.envelope())
    m.body_text()
    assert m.section(Section((1,) * 50)) != b""


def test_binary_errors() -> None:
    import pytest

    from asimap.message.model import PartNotFound, UnknownTransferEncoding

    m = Message(b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n")
    with pytest.raises(UnknownTransferEncoding):
        m.binary((1,))
    with pytest.raises(PartNotFound):
        m.binary((2,))
    assert m.binary(()) == m.raw
    qp = Message(b"Content-Transfer-Encoding: Quoted-Printable\r\n\r\na=3Db=\r\nc")
    assert qp.binary((1,)) == b"a=bc"


def test_dates_and_ids() -> None:
    raw = crlf(
        """Date: Sun, 31 Dec 2023 23:30:00 -1100
Message-ID: <id1@example.com>
References: <a@x> <b@x>
 <c@x>
In-Reply-To: <c@x> (comment)

x"""
    )
    m = Message(raw)
    assert str(m.sent_date()) == "2023-12-31"  # the sender's own date
    assert m.message_id() == "<id1@example.com>"
    assert m.references() == ["<a@x>", "<b@x>", "<c@x>"]
    assert m.in_reply_to() == "<c@x>"
    loose = Message(b"Date: 5 Jan 24\r\n\r\n")
    assert str(loose.sent_date()) == "2024-01-05"


def test_preview_prefers_plain_and_strips_html() -> None:
    html = Message(
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><style>p {}</style></head><body><p>Hello&amp;\r\n"
        b"   world</p></body></html>"
    )
    assert html.preview() == "Hello& world"
    long = Message(b"\r\n" + b"word " * 100)
    assert len(long.preview()) == 256  # RFC 8970 section 3.1


def test_header_text_and_8bit_body_fallback() -> None:
    m = Message(
        b"Subject: =?iso-8859-1?q?caf=E9?=\r\nContent-Type: text/plain\r\n\r\n"
        b"na\xefve latin-1 body"
    )
    assert "Subject: café" in m.header_text()
    assert "naïve" in m.body_text()


def test_digest_parts_default_to_message_rfc822() -> None:
    """RFC 2046 5.1.5: a digest part without Content-Type is a message."""
    m = Message(
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
        b"--d\r\n\r\nSubject: in digest\r\n\r\nhi\r\n--d--\r\n"
    )
    assert wire(m.bodystructure(False)) == (
        '(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 24 '
        '(NIL "in digest" NIL NIL NIL NIL NIL NIL NIL NIL) '
        '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 2 1) 3) "DIGEST")'
    )
    assert m.section(Section((1, 1))) == b"hi"
    assert m.section(Section((1,), SectionText.HEADER)) == b"Subject: in digest\r\n\r\n"
