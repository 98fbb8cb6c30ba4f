"""The mail both servers are loaded with: corpus messages and edge cases.

Each message goes in over IMAP (``APPEND`` with flags and INTERNALDATE), so
both stores hold the same octets, flags and arrival times, whatever their
on-disk formats.  Flags and dates are a pure function of the message's
position, so every run loads the same data.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "usrp-users.mbox.gz"
_FROM_LINE = re.compile(rb"^From .*\r?\n", re.M)
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.M)

#: First arrival; later messages arrive an hour and some minutes apart.
_EPOCH = datetime(2023, 3, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Message:
    """One message to APPEND, with the flags and date it gets."""

    name: str
    raw: bytes
    flags: tuple[str, ...]
    internaldate: str  # RFC 9051 date-time, "dd-Mon-yyyy hh:mm:ss +zzzz"


def load_corpus(limit: int | None = None) -> list[bytes]:
    """The mbox split on its ``From`` lines, CRLF line ends (as APPENDed)."""
    data = gzip.decompress(CORPUS.read_bytes())
    starts = list(_FROM_LINE.finditer(data))
    out: list[bytes] = []
    for index, match in enumerate(starts[:limit] if limit else starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(data)
        body = _QUOTED_FROM.sub(rb"\1", data[match.end() : end])
        out.append(re.sub(rb"\r?\n", b"\r\n", body))
    return out


def flags_for(position: int) -> tuple[str, ...]:
    """A spread of system flags and keywords (RFC 9051 section 2.3.2)."""
    flags: list[str] = []
    for modulus, flag in (
        (2, "\\Seen"),
        (5, "\\Flagged"),
        (7, "\\Answered"),
        (11, "\\Draft"),
        (13, "$Label1"),
        (17, "\\Deleted"),
        (19, "todo"),
    ):
        if position % modulus == 0:
            flags.append(flag)
    return tuple(flags)


def date_for(position: int) -> str:
    """INTERNALDATE with a few zones, so the zone is carried too."""
    zones = (0, -5 * 60, 5 * 60 + 30, 60)
    offset = timedelta(minutes=zones[position % len(zones)])
    when = (_EPOCH + timedelta(hours=position, minutes=7 * position)).astimezone(
        timezone(offset)
    )
    return when.strftime("%d-%b-%Y %H:%M:%S %z")


def corpus_messages(limit: int | None) -> list[Message]:
    return [
        Message(f"corpus{n}", raw, flags_for(n), date_for(n))
        for n, raw in enumerate(load_corpus(limit), start=1)
    ]


def _crlf(text: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", text)


#: Hand-made messages where parsers disagree.  Name -> raw (LF is made CRLF).
EDGE: dict[str, bytes] = {
    "groups": b"""From: Alice <alice@example.org>
To: undisclosed-recipients:;
Cc: group:;, group2: (foo) ;, friends: bob@example.org, "Carol C" <carol@example.org>;
Subject: groups
Date: Mon, 01 Jan 2024 10:00:00 +0000
Message-ID: <groups@example.org>

groups
""",
    "group-cfws": b"""From: a@example.org
To: group2: (foo) ;
Subject: group with only a comment
Date: Mon, 01 Jan 2024 10:00:01 +0000

x
""",
    "encoded-words": b"""From: =?utf-8?q?=C3=89mile_Zola?= <emile@example.org>
To: =?iso-8859-1?b?Suly9G1l?= <jerome@example.org>, "=?utf-8?q?quoted?=" <q@example.org>
Subject: =?utf-8?b?w6l0w6k=?= and =?utf-8?q?more_text?= =?utf-8?q?_joined?=
Date: Tue, 02 Jan 2024 11:00:00 +0100
Message-ID: <encoded@example.org>
In-Reply-To: <groups@example.org>

body
""",
    "qp-trailing-ws": b"""From: qp@example.org
Subject: qp with trailing whitespace
Date: Wed, 03 Jan 2024 12:00:00 -0500
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

line with spaces   \t
soft break =\x20
caf=C3=A9 and a very long line that is folded with a soft line break=
 here
""",
    "binary-part": b"""From: bin@example.org
Subject: binary part
Date: Thu, 04 Jan 2024 13:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain

text part
--b1
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
--b1
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

caf\xe9 cr\xe8me
--b1--
""",
    "malformed-mime": b"""From: broken@example.org
Subject: malformed mime
Date: Fri, 05 Jan 2024 14:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="never-closed"

preamble
--never-closed
Content-Type: text/plain; charset="us-ascii"; format=flowed

first part
--never-closed
Content-Type: text/html;;; charset=
Content-Transfer-Encoding: x-unknown

<p>second</p>
""",
    "no-boundary": b"""From: nob@example.org
Subject: multipart without boundary
Content-Type: multipart/alternative

just text
""",
    "missing-headers": b"""X-Only: nothing useful

body without From, Date or Subject
""",
    "8bit-headers": b"""From: J\xc3\xb6rg <joerg@example.org>
To: M\xfcller <mueller@example.org>
Subject: caf\xc3\xa9 cr\xc3\xa8me
Date: Sat, 06 Jan 2024 15:00:00 +0000

body
""",
    "nested-rfc822": b"""From: outer@example.org
Subject: forwarded
Date: Sun, 07 Jan 2024 16:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

see attached
--outer
Content-Type: message/rfc822
Content-Disposition: attachment; filename="fwd.eml"

From: inner@example.org
To: someone@example.org
Subject: inner message
Date: Sun, 07 Jan 2024 15:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=us-ascii

plain
--inner
Content-Type: text/html; charset=us-ascii
Content-Language: en, de
Content-Location: http://example.org/x

<b>html</b>
--inner--
--outer--
""",
    "odd-addresses": b"""From: <user-from (comment)@ (comment) domain.org>
Sender: "Quoted \\"name\\"" <sender@example.org>
Reply-To: no-angle@example.org (Comment Name)
To: "Last, First" <lf@example.org>, bare@example.org, <@route,@r2:routed@example.org>
Bcc: invalid address without at
Subject: odd addresses
Date: 8 Jan 2024 17:00 GMT

x
""",
    "params": b"""From: params@example.org
Subject: =?utf-8?q?parameters?=
Date: Tue, 09 Jan 2024 18:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=simple
Content-ID: <cid@example.org>

--simple
Content-Type: application/pdf; name*=utf-8''r%C3%A9sum%C3%A9.pdf
Content-Disposition: attachment; filename*0="long"; filename*1="name.pdf"; size=42
Content-Description: =?utf-8?q?d=C3=A9scription?=
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--simple
Content-Type: TEXT/Plain; CharSet="UTF-8"; Format=Flowed; DelSp=Yes
Content-Transfer-Encoding: Quoted-Printable

soft=
 break=3D
--simple--
""",
    "no-body": b"""From: nobody@example.org
Subject: headers only
Date: Wed, 10 Jan 2024 19:00:00 +0000
""",
    "long-folded": b"""From: folded@example.org
Subject: a subject that is folded
 over two lines
	and a tab
References: <a@x>
 <b@x>	<c@x>
Date: Thu, 11 Jan 2024
 20:00:00 +0000

body
""",
}


# Added last, so the UIDs above stay as known.py names them.
EDGE["group-sort-1"] = b"""From: zz@example.org
Cc: user2: blah@domain1.org;
To: empty:;
Subject: sort by group
Date: Fri, 12 Jan 2024 10:00:00 +0000

x
"""
EDGE["group-sort-2"] = b"""From: =?utf-8?q?Aaron?= <zz-second@example.org>
Cc: mmm@example.org
To: "Bob" <bob@example.org>
Subject: sort by group 2
Date: Fri, 12 Jan 2024 11:00:00 +0000

x
"""


def edge_messages() -> list[Message]:
    return [
        Message(name, _crlf(raw), flags_for(n), date_for(n))
        for n, (name, raw) in enumerate(EDGE.items(), start=1)
    ]
