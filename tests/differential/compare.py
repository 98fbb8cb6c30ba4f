"""Compare two canonical answers and explain each difference, or not.

A difference is a line only one server gave (after :mod:`normalise`).  It
is *explained* when a :class:`~differential.known.Known` entry that applies
to the command accepts it: by a pattern over the line, or - for a
structure such as BODYSTRUCTURE or ENVELOPE, where one differing number
must not excuse the whole line - by a rule over the one field that
differs.  Whatever no entry accepts is reported with a readable diff.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .known import KNOWN, FieldDiff, Known
from .normalise import Exchange
from .tokens import Group, Node, parse


@dataclass
class Verdict:
    exchange: Exchange
    #: Entries that explained at least one line.
    used: set[str] = field(default_factory=set)
    #: (side, line) pairs nothing explained; side is "asimap"/"dovecot".
    unexplained: list[tuple[str, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.unexplained


def applicable(exchange: Exchange, known: Iterable[Known] = KNOWN) -> list[Known]:
    return [entry for entry in known if entry.applies_to(exchange.label)]


def judge(exchange: Exchange, known: Iterable[Known] = KNOWN) -> Verdict:
    verdict = Verdict(exchange)
    if exchange.same:
        return verdict
    entries = applicable(exchange, known)
    matcher = difflib.SequenceMatcher(
        a=exchange.theirs, b=exchange.ours, autojunk=False
    )
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        theirs = exchange.theirs[i1:i2]
        ours = exchange.ours[j1:j2]
        if op == "replace" and len(theirs) == len(ours):
            leftover_t, leftover_o = [], []
            for t_line, o_line in zip(theirs, ours, strict=True):
                names = _explain_fields(entries, exchange, o_line, t_line)
                if names is not None:
                    verdict.used.update(names)
                else:
                    leftover_t.append(t_line)
                    leftover_o.append(o_line)
            theirs, ours = leftover_t, leftover_o
        for line in theirs:
            _explain_line(entries, exchange, "dovecot", line, verdict)
        for line in ours:
            _explain_line(entries, exchange, "asimap", line, verdict)
    return verdict


def _explain_line(
    entries: list[Known], exchange: Exchange, side: str, line: str, verdict: Verdict
) -> None:
    for entry in entries:
        if entry.accepts_line(exchange, side, line):
            verdict.used.add(entry.key)
            return
    verdict.unexplained.append((side, line))


def _explain_fields(
    entries: list[Known], exchange: Exchange, ours: str, theirs: str
) -> set[str] | None:
    """Entries explaining every differing field of one line pair, or None
    when some field is explained by no entry (or the lines differ in
    shape: then the line rules decide)."""
    rules = [entry for entry in entries if entry.field_rule is not None]
    if not rules:
        return None
    diffs = list(
        field_diffs(parse(ours.encode("latin-1")), parse(theirs.encode("latin-1")))
    )
    if not diffs:
        return None
    used: set[str] = set()
    for diff in diffs:
        for entry in rules:
            assert entry.field_rule is not None
            if entry.field_rule(diff):
                used.add(entry.key)
                break
        else:
            return None
    return used


def field_diffs(
    ours: tuple[Node, ...], theirs: tuple[Node, ...], path: tuple[Node, ...] = ()
) -> Iterator[FieldDiff]:
    """Walk two token trees side by side; yield each place they differ,
    with the enclosing groups (outermost first) for context."""
    if len(ours) != len(theirs):
        yield FieldDiff(path, -1, Group(ours), Group(theirs))
        return
    for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
        if mine == other:
            continue
        if (
            isinstance(mine, Group)
            and isinstance(other, Group)
            and len(mine.items) == len(other.items)
        ):
            yield from field_diffs(mine.items, other.items, (*path, Group(ours)))
            continue
        yield FieldDiff((*path, Group(ours)), index, mine, other)


def render_diff(verdict: Verdict) -> str:
    """The unified diff of one exchange (dovecot first), then what is
    unexplained."""
    exchange = verdict.exchange
    lines = [f"== {exchange.label}"]
    lines.extend(
        difflib.unified_diff(
            exchange.theirs, exchange.ours, "dovecot", "asimap", lineterm="", n=1
        )
    )
    if verdict.unexplained:
        lines.append("-- not explained by any known difference:")
        lines.extend(f"   {side}: {line[:400]}" for side, line in verdict.unexplained)
    return "\n".join(lines)
