"""THREAD (RFC 5256 section 3): ORDEREDSUBJECT and REFERENCES as pure
functions (RFC cases, dummies, loops, subject merging, properties) and
on the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from asimap.imap.sorting import SortItem
from asimap.imap.threading import (
    Node,
    format_threads,
    message_ids,
    ordered_subject,
    references,
)
from asimap.store.memory import MemoryStore
from transcript import World, run_transcript

BASE = datetime(2000, 3, 5, tzinfo=UTC)


def _item(
    seq: int,
    subject: str = "",
    mid: str | None = None,
    refs: str = "",
    irt: str = "",
    minutes: int | None = None,
) -> SortItem:
    headers: dict[str, tuple[str, ...]] = {"subject": (subject,)}
    if mid is not None:
        headers["message-id"] = (f"<{mid}@x>",)
    if refs:
        headers["references"] = (" ".join(f"<{r}@x>" for r in refs.split()),)
    if irt:
        headers["in-reply-to"] = (f"<{irt}@x>",)
    when = BASE + timedelta(minutes=seq if minutes is None else minutes)
    headers["date"] = (when.strftime("%a, %d %b %Y %H:%M:%S +0000"),)
    return SortItem(seq, seq * 10, 1, 0, BASE, headers)


def _wire(roots: list[Node]) -> str:
    return format_threads(roots, lambda item: item.seq)


def test_ordered_subject() -> None:
    """Grouped by base subject, threads by date of their first message,
    later messages children of the first: ``(1 (3)(4))`` and ``(2 5)``."""
    items = [
        _item(1, "hello"),
        _item(2, "other"),
        _item(3, "Re: hello"),
        _item(4, "Fwd: Hello"),
        _item(5, "re: other"),
        _item(6, "alone"),
        _item(7, "first", minutes=-5),
    ]
    assert _wire(ordered_subject(items)) == "(7)(1 (3)(4))(2 5)(6)"
    assert _wire(ordered_subject([])) == ""


def test_references_chain_and_siblings() -> None:
    items = [
        _item(1, "a", "m1"),
        _item(2, "Re: a", "m2", refs="m1"),
        _item(3, "Re: a", "m3", refs="m1 m2"),
        _item(4, "Re: a", "m4", refs="m1"),
        _item(5, "b", "m5"),
    ]
    assert _wire(references(items)) == "(1 (2 3)(4))(5)"


def test_references_dummies() -> None:
    """A missing parent with several replies is a dummy at the root, one
    with a single reply is dropped (step 3)."""
    items = [
        _item(1, "x", "a1", refs="gone"),
        _item(2, "y", "a2", refs="gone"),
        _item(3, "z", "a3", refs="lost"),
    ]
    assert _wire(references(items)) == "((1)(2))(3)"


def test_references_in_reply_to_duplicates_and_loops() -> None:
    """In-Reply-To is used without References; a duplicate Message-ID
    counts only for the first message; loops are never created."""
    items = [
        _item(1, "p", "m1", refs="m2"),
        _item(2, "q", "m2", refs="m1"),
        _item(3, "r", "m1", irt="m2"),
        _item(4, "s", "m4", irt="m3"),
    ]
    # 1 makes dummy m2 its parent; 2 fills m2 and must not become 1's
    # child (a loop); 3 is a second "m1", so only its In-Reply-To counts;
    # 4's missing parent is a dummy with one child, dropped.
    assert _wire(references(items)) == "(2 (1)(3))(4)"


def test_references_subject_merging() -> None:
    """Step 5: a reply whose parent is unknown joins the thread of the
    same base subject; two non-replies become siblings under a dummy."""
    items = [
        _item(1, "topic", "t1"),
        _item(2, "Re: topic", "t2"),
        _item(3, "news", "n1"),
        _item(4, "news", "n2"),
    ]
    assert _wire(references(items)) == "(1 2)((3)(4))"


def test_message_id_normalisation() -> None:
    assert message_ids('<"01KF8JCEOCBS0045PS"@xxx.yyy.com>') == message_ids(
        "<01KF8JCEOCBS0045PS@xxx.yyy.com>"
    )
    assert message_ids("junk <a@b> <nohost> <c@d>") == ["a@b", "c@d"]


def test_deep_chain_does_not_recurse() -> None:
    """A 5,000-message References chain threads without a RecursionError."""
    items = [_item(1, "deep", "d1")]
    for n in range(2, 5001):
        items.append(_item(n, "Re: deep", f"d{n}", irt=f"d{n - 1}"))
    wire = _wire(references(items))
    assert wire == "(" + " ".join(str(n) for n in range(1, 5001)) + ")"


def _seqs(roots: list[Node]) -> list[int]:
    out: list[int] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node.item is not None:
            out.append(node.item.seq)
        stack.extend(node.children)
    return out


_messages = st.lists(
    st.tuples(
        st.sampled_from(["a", "Re: a", "b", "Fwd: b", "", "[l] c"]),
        st.integers(0, 8),  # message-id number (duplicates allowed)
        st.lists(st.integers(0, 10), max_size=4),  # references
        st.integers(-50, 50),  # minutes
    ),
    max_size=25,
)


def _build(spec: list[tuple[str, int, list[int], int]]) -> list[SortItem]:
    return [
        _item(
            seq,
            subject,
            f"m{mid}",
            refs=" ".join(f"m{r}" for r in refs),
            minutes=minutes,
        )
        for seq, (subject, mid, refs, minutes) in enumerate(spec, 1)
    ]


@settings(max_examples=150, deadline=None)
@given(_messages)
def test_every_message_exactly_once(
    spec: list[tuple[str, int, list[int], int]],
) -> None:
    items = _build(spec)
    expected = sorted(i.seq for i in items)
    for threader in (ordered_subject, references):
        roots = threader(items)
        assert sorted(_seqs(roots)) == expected
        wire = _wire(roots)
        assert wire.count("(") == wire.count(")")
        for node in roots:
            assert node.parent is None


@settings(max_examples=100, deadline=None)
@given(_messages)
def test_without_references_groups_like_ordered_subject(
    spec: list[tuple[str, int, list[int], int]],
) -> None:
    """With no references at all, REFERENCES puts together exactly the
    messages that share a (non-empty) base subject, as ORDEREDSUBJECT."""
    items = _build([(s, n + 100 * i, [], m) for i, (s, n, _, m) in enumerate(spec)])

    def groups(roots: list[Node]) -> set[frozenset[int]]:
        return {frozenset(_seqs([root])) for root in roots}

    by_subject = groups(ordered_subject(items))
    by_refs = groups(references(items))
    empty = {i.seq for i in items if i.header("subject") in ("", "Re:")}
    assert {g for g in by_refs if not g & empty} == {
        g for g in by_subject if not g & empty
    }


async def _mailbox(world: World) -> None:
    store = world.stores.setdefault("alice", MemoryStore.for_new_account())
    box = await store.mailbox("INBOX")
    for n, (subject, extra) in enumerate(
        [
            ("hello", ""),
            ("Re: hello", "In-Reply-To: <m1@x>\r\n"),
            ("other", ""),
            ("Re: hello", "References: <m1@x> <m2@x>\r\n"),
        ],
        1,
    ):
        data = (
            f"From: a@x\r\nSubject: {subject}\r\nMessage-ID: <m{n}@x>\r\n{extra}"
            f"Date: Mon, {n} Jan 2001 10:00:00 +0000\r\n\r\nbody\r\n"
        ).encode()
        await box.append(data)


async def test_thread_transcript() -> None:
    await run_transcript(
        """
        C1 c CAPABILITY
        S1 * CAPABILITY %* THREAD=ORDEREDSUBJECT THREAD=REFERENCES %*
        S1 c OK %*
        C1 a LOGIN alice secret-a
        S1 a OK %*
        C1 s SELECT INBOX
        S1 * %*
        S1 * %*
        S1 * 4 EXISTS
        S1 * 4 RECENT
        S1 * %*
        S1 * %*
        S1 * %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 s OK %*
        C1 t THREAD REFERENCES UTF-8 ALL
        S1 * THREAD (1 2 4)(3)
        S1 t OK Thread completed
        C1 u THREAD ORDEREDSUBJECT US-ASCII ALL
        S1 * THREAD (1 (2)(4))(3)
        S1 u OK Thread completed
        C1 v UID THREAD REFERENCES UTF-8 NOT 2
        S1 * THREAD (1 4)(3)
        S1 v OK Thread completed
        C1 A284 THREAD ORDEREDSUBJECT US-ASCII TEXT "gewp"
        S1 * THREAD
        S1 A284 OK Thread completed
        C1 w THREAD BOGUS UTF-8 ALL
        S1 w BAD %*
        C1 x THREAD REFERENCES KOI8-R ALL
        S1 x NO [BADCHARSET (US-ASCII UTF-8)] %*
        """,
        before=_mailbox,
    )
