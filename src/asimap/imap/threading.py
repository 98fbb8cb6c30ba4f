"""THREAD algorithms, pure: ORDEREDSUBJECT and REFERENCES (RFC 5256
section 3) and REFS (draft-ietf-morg-inthread).

Input is the list of :class:`~asimap.imap.sorting.SortItem` a SEARCH
found (header fields from the store's cached summaries); output is a
forest of :class:`Node` and its wire form, ``(1)(2 3 (4)(5))``
(section 4, ``thread-list``).  The numbers written are whatever the caller
picks -- sequence numbers for THREAD, UIDs for UID THREAD.

"Sent date" is the Date: field in UTC, INTERNALDATE when it is missing
(section 2.2); ties go to the lower sequence number.  Everything here is
iterative where a hostile mailbox could make it deep (a References chain
of 100,000 messages must not overflow the stack).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime

from asimap.imap.sorting import SortItem, memoized, sent_datetime, subject_key

ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES", "REFS")


class Node:
    """A message in a thread tree, or a dummy (``item`` None) standing for
    a message that is referenced but was not found."""

    __slots__ = ("children", "item", "parent")

    def __init__(self, item: SortItem | None = None) -> None:
        self.item = item
        self.parent: Node | None = None
        self.children: list[Node] = []

    def adopt(self, child: Node) -> None:
        """Make ``child`` the last child of this node (unlinking it first)."""
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)

    def has_ancestor(self, other: Node) -> bool:
        """Whether ``other`` is this node or one of its ancestors."""
        node: Node | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False


def _date_key(node: Node) -> tuple[datetime, int]:
    """Sort key of a node: its sent date and sequence number; a dummy
    sorts as its first child (section 3 REFERENCES steps 4 and 6)."""
    while node.item is None and node.children:
        node = node.children[0]
    if node.item is None:  # pragma: no cover - dummies without children are pruned
        raise ValueError("empty dummy node")
    return sent_datetime(node.item), node.item.seq


# -- ORDEREDSUBJECT -----------------------------------------------------------


def ordered_subject(items: Sequence[SortItem]) -> list[Node]:
    """Section 3 ORDEREDSUBJECT: group by base subject, sort by sent date;
    every later message of a group is a child of the first."""
    keyed = sorted(items, key=lambda i: (subject_key(i)[0], sent_datetime(i), i.seq))
    threads: list[Node] = []
    last_subject: str | None = None
    for item in keyed:
        subject = subject_key(item)[0]
        node = Node(item)
        if threads and subject == last_subject:
            threads[-1].adopt(node)
        else:
            threads.append(node)
            last_subject = subject
    threads.sort(key=_date_key)
    return threads


# -- REFERENCES -----------------------------------------------------------------

_MSG_ID = re.compile(r"<([^<>]*)>")


def message_ids(value: str) -> list[str]:
    """Normalised msg-ids in a header value: quoting and whitespace removed,
    so ``<"a b"@x>`` and ``<ab@x>`` are the same (section 3 REFERENCES);
    comparisons stay case-sensitive."""
    out: list[str] = []
    for match in _MSG_ID.finditer(value):
        text = re.sub(r'[\s"\\]', "", match.group(1))
        if "@" in text:
            out.append(text)
    return out


def _references(item: SortItem) -> list[str]:
    """References, else the first msg-id of In-Reply-To, else none."""

    def compute(item: SortItem) -> list[str]:
        refs = message_ids(" ".join(item.headers.get("references", ())))
        if refs:
            return refs
        reply = message_ids(item.header("in-reply-to"))
        return reply[:1]

    return memoized(item, "references", compute)


def _message_id(item: SortItem) -> str:
    """The item's normalised Message-ID, "" when it has none."""

    def compute(item: SortItem) -> str:
        ids = message_ids(item.header("message-id"))
        return ids[0] if ids else ""

    return memoized(item, "message-id", compute)


def _link_all(items: Sequence[SortItem]) -> list[Node]:
    """Step 1 (A and B) and step 2: the containers without a parent."""
    table: dict[str, Node] = {}
    for item in sorted(items, key=lambda i: i.seq):
        mid = _message_id(item)
        existing = table.get(mid) if mid else None
        if not mid or (existing is not None and existing.item is not None):
            mid = f"\0{item.seq}"  # missing or duplicate: a unique ID
            existing = None
        node = existing or Node()
        node.item = item
        table[mid] = node
        previous: Node | None = None
        for ref in _references(item):
            ref_node = table.get(ref)
            if ref_node is None:
                ref_node = table[ref] = Node()  # a dummy until found
            if (
                previous is not None
                and ref_node.parent is None
                and not previous.has_ancestor(ref_node)
            ):
                previous.adopt(ref_node)
            previous = ref_node
        # Step 1.B: the last reference is the parent, replacing any link
        # a truncated References line made.
        if node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
        if previous is not None and not previous.has_ancestor(node):
            previous.adopt(node)
    return [node for node in table.values() if node.parent is None]


def _postorder(roots: Sequence[Node]) -> list[Node]:
    """Every node below ``roots``, children before their parent (a
    reversed pre-order; built with a list, not a recursive generator)."""
    order: list[Node] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    order.reverse()
    return order


def _prune(roots: list[Node]) -> list[Node]:
    """Step 3: drop empty dummies; splice a dummy's children into its
    place, except at the root level where only a single child is."""
    for node in _postorder(roots):
        kept: list[Node] = []
        for child in node.children:
            if child.item is None:
                for grandchild in child.children:
                    grandchild.parent = node
                kept.extend(child.children)
            else:
                kept.append(child)
        node.children = kept
    top: list[Node] = []
    for node in roots:
        if node.item is None and len(node.children) <= 1:
            for child in node.children:
                child.parent = None
            top.extend(node.children)
        else:
            top.append(node)
    return top


def _thread_subject(node: Node) -> tuple[str, bool]:
    """Step 5.B.i: the base subject (folded) of a root or its first child,
    and whether that message is a reply or forward."""
    target = node.children[0] if node.item is None else node
    if target.item is None:  # pragma: no cover - pruned dummies have children
        return "", False
    return subject_key(target.item)


def _is_reply(node: Node) -> bool:
    return node.item is not None and subject_key(node.item)[1]


def _merge_subjects(roots: list[Node]) -> list[Node]:
    """Step 5: gather root threads that share a base subject."""
    table: dict[str, Node] = {}
    for node in roots:  # 5.B
        subject = _thread_subject(node)[0]
        if not subject:
            continue
        held = table.get(subject)
        if held is None or (
            held.item is not None
            and (node.item is None or (_is_reply(held) and not _is_reply(node)))
        ):
            table[subject] = node
    slots: list[Node | None] = list(roots)
    position = {id(node): index for index, node in enumerate(roots)}
    for index, node in enumerate(roots):  # 5.C
        subject = _thread_subject(node)[0]
        held = table.get(subject) if subject else None
        if held is None or held is node:
            continue
        slots[index] = None  # the current message leaves the root
        if held.item is None and node.item is None:
            for child in list(node.children):
                held.adopt(child)
        elif held.item is None or (_is_reply(node) and not _is_reply(held)):
            held.adopt(node)
        else:
            dummy = Node()
            place = position[id(held)]
            slots[place] = dummy
            position[id(dummy)] = place
            dummy.adopt(held)
            dummy.adopt(node)
            table[subject] = dummy
    out = [node for node in slots if node is not None]
    for node in out:
        node.parent = None
    return out


def _sort_siblings(roots: list[Node]) -> None:
    """Step 6: every sibling set by sent date, youngest sets first."""
    for node in _postorder(roots):
        node.children.sort(key=_date_key)
    roots.sort(key=_date_key)


def references(items: Sequence[SortItem]) -> list[Node]:
    """Section 3 REFERENCES, steps 1-6."""
    roots = _prune(_link_all(items))
    for node in roots:  # step 4: a dummy's children first, then the roots
        if node.item is None:
            node.children.sort(key=_date_key)
    roots.sort(key=_date_key)
    roots = _merge_subjects(roots)
    _sort_siblings(roots)
    return roots


# -- REFS ---------------------------------------------------------------------


def _newest(root: Node) -> datetime:
    """The latest sent date of any message in the thread under ``root``."""
    stack = [root]
    newest: datetime | None = None
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.item is not None:
            sent = sent_datetime(node.item)
            if newest is None or sent > newest:
                newest = sent
    if newest is None:  # pragma: no cover - pruned dummies have children
        raise ValueError("empty thread")
    return newest


def refs(items: Sequence[SortItem]) -> list[Node]:
    """THREAD=REFS (draft-ietf-morg-inthread, the REFS algorithm section):
    REFERENCES without its subject step, threads ordered by their newest
    message.

    * Steps 1-3 of RFC 5256 REFERENCES link and prune exactly as there
      (missing or duplicate Message-IDs get unique IDs, loops are refused,
      a dummy root keeps several children and gives way to a single one).
    * Step 5, gathering threads by base subject, is not done: REFS threads
      only by references, so unrelated "Hello" messages stay apart.
    * Step 6 sorts every sibling set by sent date (ties: sequence number),
      but the top-level threads by the sent date of the *newest* message
      anywhere in the thread, so the thread with the latest activity comes
      last.  Threads whose newest messages tie keep the order of their
      roots (a root's sequence number; a dummy's first child's).

    Checked against Dovecot 2.3.19.1, which implements the draft, on
    crafted edge cases (tests/test_ext_thread_refs.py) and the corpus:
    sent date is Date: in UTC with INTERNALDATE standing in for a missing
    or unparsable one (RFC 5256 section 2.2), as for REFERENCES.
    """
    roots = _prune(_link_all(items))
    for node in _postorder(roots):
        node.children.sort(key=_date_key)
    roots.sort(key=lambda root: (_newest(root), _date_key(root)[1]))
    return roots


THREADERS: dict[str, Callable[[Sequence[SortItem]], list[Node]]] = {
    "ORDEREDSUBJECT": ordered_subject,
    "REFERENCES": references,
    "REFS": refs,
}


def release(roots: Sequence[Node]) -> None:
    """Unlink the parent pointers of a forest, so that it is freed by
    reference counting alone (no cycles left for the garbage collector)."""
    for node in _postorder(roots):
        node.parent = None


# -- wire form (section 4) ------------------------------------------------------


def format_threads(roots: Sequence[Node], number: Callable[[SortItem], int]) -> str:
    """``(1)(2 3 (4)(5))``: a chain of only children is written flat, a
    node with several children ends with one parenthesised list each."""
    out: list[str] = []
    # Work items: a node to open as "(...)", or a literal string to emit.
    stack: list[Node | str] = []
    for root in reversed(roots):
        stack.extend([")", root, "("])
    while stack:
        top = stack.pop()
        if isinstance(top, str):
            out.append(top)
            continue
        node: Node = top
        parts: list[str] = []
        while True:
            if node.item is not None:
                parts.append(str(number(node.item)))
            if len(node.children) == 1:
                node = node.children[0]
                continue
            break
        out.append(" ".join(parts))
        if len(node.children) > 1:
            if parts:
                out.append(" ")
            for child in reversed(node.children):
                stack.extend([")", child, "("])
    return "".join(out)
