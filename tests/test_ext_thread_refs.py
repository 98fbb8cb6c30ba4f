"""THREAD=REFS (draft-ietf-morg-inthread): the algorithm on edge cases,
on the wire, and side by side with Dovecot 2.3.19.1.

REFS is REFERENCES (RFC 5256 section 3) without subject merging, with the
threads ordered by their newest message.  The expected answers of
:data:`CASES` are what Dovecot, which implements the draft, answered for
the same messages; :func:`test_same_answers_as_dovecot` re-checks them
against a live private Dovecot, together with 300 corpus messages, so a
Dovecot upgrade that changes its mind shows up here.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from asimap.imap.session.handlers_sort import gc_paused
from asimap.imap.sorting import SortItem
from asimap.imap.threading import Node, format_threads, references, refs, release
from asimap.store.memory import MemoryStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.asimap_server import AsimapServer
from bench.dovecot import DovecotServer
from bench.imapload.client import ImapClient
from bench.imapload.runner import Credentials
from bench.mh_large_data import corpus_messages

from conftest import require_tool
from transcript import World, run_transcript

#: INTERNALDATE of every crafted message (only seen when Date: is unusable).
ARRIVAL = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

Msg = dict[str, str]


def _m(mid: str | None, subject: str, date: str | None, **more: str) -> Msg:
    out = {"subject": subject, **more}
    if mid is not None:
        out["mid"] = mid
    if date is not None:
        out["date"] = date if " " in date else f"Mon, 1 Jan 2024 {date} +0000"
    return out


#: name -> (messages in UID order, Dovecot's ``UID THREAD REFS`` answer).
CASES: dict[str, tuple[list[Msg], str]] = {
    # Threads by their newest message: (1 3) is newest at 12:00.
    "order": (
        [
            _m("1", "a", "10:00:00"),
            _m("2", "b", "11:00:00"),
            _m("3", "Re: a", "12:00:00", refs="<1@x>"),
            _m("4", "c", "09:00:00"),
        ],
        "(4)(2)(1 3)",
    ),
    # No subject merging (REFERENCES gives ((1)(2)(3))).
    "subjects": (
        [
            _m("1", "same", "10:00:00"),
            _m("2", "same", "11:00:00"),
            _m("3", "Re: same", "12:00:00"),
        ],
        "(1)(2)(3)",
    ),
    # Children by their own date, not their subtree's newest.
    "children": (
        [
            _m("1", "a", "10:00:00"),
            _m("2", "r", "13:00:00", refs="<1@x>"),
            _m("3", "r", "11:00:00", refs="<1@x>"),
            _m("4", "r", "15:00:00", refs="<1@x> <3@x>"),
            _m("5", "z", "14:00:00"),
        ],
        "(5)(1 (3 4)(2))",
    ),
    # A missing parent: dummy kept for two children, dropped for one.
    "dummy": (
        [
            _m("2", "r", "13:00:00", refs="<1@x>"),
            _m("3", "r", "11:00:00", refs="<1@x>"),
            _m("5", "z", "12:00:00"),
            _m("6", "q", "10:00:00", refs="<9@x>"),
        ],
        "(4)(3)((2)(1))",
    ),
    # The newest message anywhere in the thread counts, however deep.
    "deep": (
        [
            _m("1", "a", "10:00:00"),
            _m("2", "r", "14:00:00", refs="<1@x>"),
            _m("3", "r", "12:00:00", refs="<1@x> <2@x>"),
            _m("4", "d", "13:00:00"),
        ],
        "(4)(1 2 3)",
    ),
    # Equal dates: the root's sequence number decides, not the newest's.
    "ties": (
        [
            _m("1", "a", "10:00:00"),
            _m("2", "b", "10:00:00"),
            _m("3", "r", "10:00:00", refs="<2@x>"),
            _m("4", "r", "10:00:00", refs="<1@x>"),
        ],
        "(1 4)(2 3)",
    ),
    "root-seq": (
        [
            _m("2", "r", "12:00:00", refs="<1@x>"),
            _m("5", "x", "12:00:00"),
            _m("1", "a", "10:00:00"),
        ],
        "(2)(3 1)",
    ),
    "dummy-tie": (
        [
            _m("2", "r", "10:00:00", refs="<1@x>"),
            _m("5", "x", "12:00:00"),
            _m("3", "r", "12:00:00", refs="<1@x>"),
        ],
        "((1)(3))(2)",
    ),
    # A duplicate Message-ID gets a unique one; its replies go to the first.
    "duplicate-id": (
        [
            _m("1", "a", "10:00:00"),
            _m("1", "a2", "11:00:00"),
            _m("2", "r", "12:00:00", refs="<1@x>"),
        ],
        "(2)(1 3)",
    ),
    # Reference loops are never made; a self-reference is ignored.
    "loop": (
        [
            _m("1", "a", "10:00:00", refs="<2@x>"),
            _m("2", "b", "11:00:00", refs="<1@x>"),
            _m("3", "c", "12:00:00", refs="<3@x>"),
        ],
        "(2 1)(3)",
    ),
    # No Message-ID at all; In-Reply-To to a message nobody can find.
    "no-id": (
        [
            _m(None, "a", "10:00:00"),
            _m(None, "a", "11:00:00"),
            _m("3", "c", "09:00:00", irt="<1@x>"),
        ],
        "(3)(1)(2)",
    ),
    # No or a broken Date: INTERNALDATE stands in (RFC 5256 section 2.2).
    "no-date": (
        [
            _m("1", "a", "Mon, 1 Jan 2035 10:00:00 +0000"),
            _m("2", "b", None),
            _m("3", "c", "Mon, 1 Jan 2001 10:00:00 +0000"),
            _m("4", "d", "garbage"),
        ],
        "(3)(2)(4)(1)",
    ),
    # Dates compare in UTC.
    "zones": (
        [
            _m("1", "a", "Mon, 1 Jan 2024 10:00:00 +0500"),
            _m("2", "b", "06:00:00"),
        ],
        "(1)(2)",
    ),
    # Children arrive before their parents.
    "reversed": (
        [
            _m("3", "r", "12:00:00", refs="<1@x> <2@x>"),
            _m("2", "r", "11:00:00", refs="<1@x>"),
            _m("1", "a", "10:00:00"),
        ],
        "(3 2 1)",
    ),
}


def _raw(msg: Msg) -> bytes:
    lines = []
    if "date" in msg:
        lines.append(f"Date: {msg['date']}")
    lines += ["From: a@example.org", f"Subject: {msg['subject']}"]
    if "mid" in msg:
        lines.append(f"Message-ID: <{msg['mid']}@x>")
    if "refs" in msg:
        lines.append(f"References: {msg['refs']}")
    if "irt" in msg:
        lines.append(f"In-Reply-To: {msg['irt']}")
    return ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode()


def _items(messages: list[Msg]) -> list[SortItem]:
    items = []
    for seq, msg in enumerate(messages, 1):
        headers = {"subject": (msg["subject"],)}
        for field, name in (
            ("mid", "message-id"),
            ("refs", "references"),
            ("irt", "in-reply-to"),
            ("date", "date"),
        ):
            if field in msg:
                value = f"<{msg[field]}@x>" if field == "mid" else msg[field]
                headers[name] = (value,)
        arrival = ARRIVAL + timedelta(seconds=seq)
        items.append(SortItem(seq, seq, 1, 0, arrival, headers))
    return items


@pytest.mark.parametrize("name", sorted(CASES))
def test_refs_edge_cases(name: str) -> None:
    messages, expected = CASES[name]
    assert format_threads(refs(_items(messages)), lambda i: i.uid) == expected


def test_refs_differs_from_references() -> None:
    """Same links, but no subject gathering and newest-last thread order."""
    items = _items(CASES["subjects"][0])
    assert format_threads(references(items), lambda i: i.uid) == "((1)(2)(3))"
    assert format_threads(refs([]), lambda i: i.uid) == ""


def test_refs_deep_chain_does_not_recurse() -> None:
    chain = [_m("1", "deep", "10:00:00")]
    chain += [_m(str(n), "r", "10:00:00", irt=f"<{n - 1}@x>") for n in range(2, 5001)]
    wire = format_threads(refs(_items(chain)), lambda i: i.uid)
    assert wire == "(" + " ".join(str(n) for n in range(1, 5001)) + ")"


async def _fill(world: World) -> None:
    store = world.stores.setdefault("alice", MemoryStore.for_new_account())
    box = await store.mailbox("INBOX")
    for msg in CASES["children"][0]:
        await box.append(_raw(msg), [])


async def test_refs_on_the_wire() -> None:
    """Advertised; THREAD numbers by sequence, UID THREAD by UID, the search
    key narrows first (RFC 5256 section 3), bad algorithm/charset refused."""
    await run_transcript(
        """
        C1 c CAPABILITY
        S1 * CAPABILITY %* THREAD=REFERENCES THREAD=REFS %*
        S1 c OK %*
        C1 a LOGIN alice secret-a
        S1 a OK %*
        C1 s SELECT INBOX
        S1 * %*
        S1 * %*
        S1 * 5 EXISTS
        S1 * 5 RECENT
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * %*
        S1 s OK %*
        C1 t THREAD REFS UTF-8 ALL
        S1 * THREAD (5)(1 (3 4)(2))
        S1 t OK Thread completed
        C1 u UID THREAD refs US-ASCII NOT 4
        S1 * THREAD (1 (3)(2))(5)
        S1 u OK Thread completed
        C1 v UID THREAD REFS UTF-8 SUBJECT nothing-matches
        S1 * THREAD
        S1 v OK Thread completed
        C1 w THREAD REFS KOI8-R ALL
        S1 w NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset
        C1 x THREAD REFSX UTF-8 ALL
        S1 x BAD Unsupported threading algorithm REFSX
        """,
        before=_fill,
    )


# -- side by side with Dovecot -------------------------------------------------

PASSWORD = "secret"

#: Asked of every mailbox (the first) or of the corpus mailbox (all): SORT
#: shares the collation and summary fields with THREAD.
COMPARED = (
    b"UID THREAD REFS UTF-8 ALL",
    b"UID THREAD REFERENCES UTF-8 ALL",
    b"UID SORT (SUBJECT) UTF-8 ALL",
    b"UID SORT (FROM) UTF-8 ALL",
    b"UID SORT (DATE) UTF-8 ALL",
)


def _date(when: datetime) -> str:
    return when.strftime("%d-%b-%Y %H:%M:%S +0000")


async def _threads(port: int, boxes: dict[str, list[bytes]]) -> dict[str, bytes]:
    """APPEND every mailbox (fixed INTERNALDATEs) and thread each one."""
    client = ImapClient(timeout=60)
    await client.connect("127.0.0.1", port, security="starttls")
    assert (await client.login("u", PASSWORD)).ok
    out: dict[str, bytes] = {}
    for name, messages in boxes.items():
        assert (await client.command(f"CREATE {name}".encode())).ok
        for number, data in enumerate(messages):
            arrival = _date(ARRIVAL + timedelta(seconds=number))
            head = f'APPEND {name} "{arrival}" {{{len(data)}+}}\r\n'.encode()
            result = await client.command(head + data)
            assert result.ok, result.text
        assert (await client.command(f"SELECT {name}".encode())).ok
        for command in COMPARED if name == "corpus" else COMPARED[:1]:
            result = await client.command(command)
            assert result.ok, result.text
            lines = [r.text for r in result.untagged if r.text.startswith(b"* ")]
            out[name if command == COMPARED[0] else f"{name} {command!r}"] = lines[0]
    await client.logout()
    return out


#: Messages where a naive collation or address parse goes wrong: "_"
#: sorts after letters under i;unicode-casemap (RFC 5051: titlecase), and a
#: decoded encoded-word display name may hold a comma.
COLLATION = [
    b"From: =?utf-8?q?Skorstad=2CJ=C3=B8rn_via_list?= <zz-list@x>\r\n"
    b"Subject: [list] RFNOC_OOT_SRCS cleared\r\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n",
    b"From: Anna <aa-anna@x>\r\nSubject: [list] rfnocmodtool Problem\r\n"
    b"Date: Mon, 1 Jan 2024 11:00:00 +0000\r\n\r\nbody\r\n",
    b"From: =?utf-8?q?=C3=89mile?= <\xc3\xa9mile@x>\r\n"
    b"Subject: =?utf-8?q?=C3=A9t=C3=A9?=\r\n"
    b"Date: Mon, 1 Jan 2024 12:00:00 +0000\r\n\r\nbody\r\n",
]


def test_same_answers_as_dovecot() -> None:
    """``UID THREAD REFS UTF-8 ALL`` over every crafted case and 300 corpus
    messages (and REFERENCES and SORT by SUBJECT, FROM and DATE over the
    corpus): asimap (MH store, real sockets) answers byte for byte what a
    private Dovecot answers."""
    require_tool("dovecot")
    boxes = {
        f"case{n}": [_raw(m) for m in CASES[name][0]]
        for n, name in enumerate(sorted(CASES))
    }
    boxes["corpus"] = [m.replace(b"\n", b"\r\n") for m in corpus_messages()[:300]]
    boxes["corpus"] += COLLATION
    users = [Credentials("u", PASSWORD)]
    with DovecotServer(users) as dovecot:
        theirs = asyncio.run(_threads(dovecot.port, boxes))
    with AsimapServer(users, store="mh", hash_iterations=1000) as asimap:
        ours = asyncio.run(_threads(asimap.port, boxes))
    for n, name in enumerate(sorted(CASES)):
        expected = f"* THREAD {CASES[name][1]}".encode()
        assert theirs[f"case{n}"] == expected, name
    assert ours == theirs
    assert theirs["corpus"].count(b"(") > 100  # real threads, not one blob


def test_release_leaves_no_cycles_and_gc_is_restored() -> None:
    """THREAD unlinks its tree (freed by reference counting) and pauses
    the collector only while it computes, restoring the previous state."""
    roots = refs(_items(CASES["children"][0]))
    release(roots)
    stack: list[Node] = list(roots)
    while stack:
        node = stack.pop()
        assert node.parent is None
        stack.extend(node.children)
    assert format_threads(roots, lambda i: i.uid) == "(5)(1 (3 4)(2))"
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
