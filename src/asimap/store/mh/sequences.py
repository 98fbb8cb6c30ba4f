"""``.mh_sequences``: nmh's per-folder sequence file, and IMAP flags.

Format (nmh ``mh-sequence(5)``): one ``name: ranges`` line per public
sequence, ranges being message numbers or ``a-b`` runs separated by
spaces.  nmh reads the file with its header-field reader, so a line that
starts with whitespace continues the previous sequence; we accept that too.

Flags map onto sequences as asimap 2.x did (design.md section 2):

=============  ==========================================================
IMAP           MH sequence
=============  ==========================================================
``\\Seen``      ``Seen``, and the message leaves the unseen sequence(s)
``\\Answered``  ``replied``
``\\Flagged``   ``flagged``
``\\Deleted``   ``Deleted``
``\\Draft``     ``Draft``
``\\Recent``    ``Recent`` (messages no session has claimed yet)
keyword foo    ``foo``
=============  ==========================================================

``cur`` (nmh's current message) and sequences whose names cannot be IMAP
keywords are never interpreted: their lines are written back byte for byte.
Reading and writing the file next to running nmh tools is
:mod:`asimap.store.mh.seqfile`'s job.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

SEQUENCES_FILE = ".mh_sequences"

#: System flag -> sequence name (design.md section 2).
FLAG_TO_SEQUENCE: Mapping[str, str] = {
    "\\Seen": "Seen",
    "\\Answered": "replied",
    "\\Flagged": "flagged",
    "\\Deleted": "Deleted",
    "\\Draft": "Draft",
}
SEQUENCE_TO_FLAG: Mapping[str, str] = {v: k for k, v in FLAG_TO_SEQUENCE.items()}

RECENT_SEQUENCE = "Recent"
CURRENT_SEQUENCE = "cur"

#: Names a keyword may not take (case-insensitively): writing keyword
#: ``flagged`` to sequence ``flagged`` would read back as ``\\Flagged``.
_RESERVED_FOLDED = frozenset(
    name.casefold()
    for name in (*FLAG_TO_SEQUENCE.values(), RECENT_SEQUENCE, CURRENT_SEQUENCE)
)

#: A sequence name we can treat as an IMAP keyword: an IMAP ``atom``
#: (RFC 3501 section 9) that also survives the ``name:`` file format.
_KEYWORD_NAME = re.compile(r"[!#$&'+\-.0-9;<=>?@A-Z^_`a-z|}~\[]+")


class SequenceError(ValueError):
    """A keyword that cannot be kept as an MH sequence."""


def is_keyword_name(name: str, unseen_names: Iterable[str] = ()) -> bool:
    """True when sequence ``name`` is read as an IMAP keyword."""
    folded = name.casefold()
    if folded in _RESERVED_FOLDED:
        return False
    if folded in {u.casefold() for u in unseen_names}:
        return False
    return _KEYWORD_NAME.fullmatch(name) is not None


def check_keyword(keyword: str, unseen_names: Iterable[str]) -> None:
    """Refuse a keyword the sequence file cannot hold faithfully."""
    if not is_keyword_name(keyword, unseen_names):
        raise SequenceError(f"Keyword {keyword} cannot be stored in an MH folder")


# -- parsing and formatting ---------------------------------------------------


#: Most message numbers one file may name in all (ranges beyond are
#: skipped): a garbage file must not exhaust memory, as every number costs
#: a set entry in each copy the store makes (``unseen: 1-9999999``, 19
#: bytes, cost a 2-message folder 2 GB and 10 s with ten million).  Seen
#: and unseen are complementary, so a real folder names each message about
#: once, plus its other flags: this serves folders of over a million.
MAX_NUMBERS = 2_000_000


def _is_number(text: str) -> bool:
    # ASCII only: str.isdigit() is also true for "²", which int() refuses.
    return text.isascii() and text.isdigit()


def parse_ranges(text: str, budget: list[int] | None = None) -> set[int]:
    """``"1-3 5"`` -> ``{1, 2, 3, 5}``; malformed tokens are skipped (nmh
    itself complains but we must keep serving the folder), and so are
    ranges beyond what is left of ``budget[0]`` numbers (spent here)."""
    left = budget if budget is not None else [MAX_NUMBERS]
    numbers: set[int] = set()
    for token in text.split():
        low, dash, high = token.partition("-")
        if not _is_number(low) or (dash and not _is_number(high)):
            continue
        start = int(low)
        end = int(high) if dash else start
        if end < start or end - start >= left[0]:
            continue
        left[0] -= end - start + 1
        numbers.update(range(start, end + 1))
    return numbers


def format_ranges(numbers: Iterable[int]) -> str:
    """``{1, 2, 3, 5}`` -> ``"1-3 5"`` (the compact form nmh writes)."""
    ordered = sorted(set(numbers))
    if not ordered:
        return ""
    if ordered[-1] - ordered[0] == len(ordered) - 1:
        # One run (the unseen sequence of a folder being filled): no walk.
        return _run(ordered[0], ordered[-1])
    # Where a run ends: the number after it is not one more.  One pass in
    # a comprehension (the APPEND to a big folder formats every sequence).
    ends = [i for i, (a, b) in enumerate(itertools.pairwise(ordered)) if b != a + 1]
    parts: list[str] = []
    start = 0
    for end in (*ends, len(ordered) - 1):
        parts.append(_run(ordered[start], ordered[end]))
        start = end + 1
    return " ".join(parts)


def _run(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


@dataclass
class SequenceFile:
    """The parsed file: sequences by name, plus the raw text of each line
    so that sequences we do not interpret are written back unchanged."""

    sequences: dict[str, set[int]] = field(default_factory=dict)
    raw_lines: dict[str, str] = field(default_factory=dict)


def parse(text: str) -> SequenceFile:
    """Parse ``.mh_sequences`` text (continuation lines included)."""
    result = SequenceFile()
    current: str | None = None
    budget = [MAX_NUMBERS]
    for line in text.splitlines():
        if not line.strip():
            current = None
            continue
        if line[0] in " \t" and current is not None:
            # Continuation of the previous sequence (nmh m_getfld folding).
            result.sequences[current] |= parse_ranges(line, budget)
            result.raw_lines[current] += "\n" + line
            continue
        name, colon, rest = line.partition(":")
        name = name.strip()
        if not colon or not name:
            current = None
            continue
        current = name
        result.sequences.setdefault(name, set()).update(parse_ranges(rest, budget))
        # A name on several lines keeps every line, so that a sequence we
        # write back verbatim keeps all the numbers we read; leading blanks
        # go, or the line would continue whatever precedes it when written.
        line = line.lstrip(" \t")
        previous = result.raw_lines.get(name)
        result.raw_lines[name] = line if previous is None else previous + "\n" + line
    return result


def format_file(
    sequences: Mapping[str, Iterable[int]], preserved: Mapping[str, str]
) -> str:
    """File text: preserved raw lines first, then our sequences, sorted.

    Empty sequences are omitted, as nmh does.
    """
    lines = [preserved[name] for name in sorted(preserved)]
    for name in sorted(sequences):
        if name in preserved:
            continue
        ranges = format_ranges(sequences[name])
        if ranges:
            lines.append(f"{name}: {ranges}")
    return "".join(line + "\n" for line in lines)


# -- flags <-> sequences -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileFlags:
    """What the file says about one message, before Seen/unseen is settled."""

    flags: frozenset[str]  # without \\Seen
    in_seen: bool
    in_unseen: bool


class FlagsByNumber(Mapping[int, FileFlags]):
    """What the file says about each message number, worked out on lookup.

    The callers ask only about the messages on disk, so a file naming
    millions of numbers ("unseen: 1-9999999" is 19 bytes) costs no more
    than its parsed sets; building one entry per named number took
    gigabytes and minutes for such a file.
    """

    def __init__(
        self,
        by_flag: list[tuple[str, set[int]]],
        seen: set[int],
        unseen: list[set[int]],
        has_unseen: bool = True,
    ) -> None:
        self._by_flag = by_flag
        self._seen = seen
        self._unseen = unseen
        self._has_unseen = has_unseen

    def __getitem__(self, number: int) -> FileFlags:
        flags = frozenset(flag for flag, numbers in self._by_flag if number in numbers)
        in_seen = number in self._seen
        if not (flags or in_seen or any(number in n for n in self._unseen)):
            raise KeyError(number)
        if self._has_unseen:
            in_unseen = any(number in numbers for numbers in self._unseen)
        else:
            in_unseen = not in_seen  # no unseen sequence: Seen decides
        return FileFlags(flags=flags, in_seen=in_seen, in_unseen=in_unseen)

    def of_numbers(self, numbers: Iterable[int]) -> dict[int, FileFlags]:
        """``{n: self[n]}`` for those of ``numbers`` the file names.

        What a rescan asks for every file on disk: one pass over each
        sequence (intersected with ``numbers``, so a huge range costs no
        more than the files) instead of a lookup in every sequence per
        number.  Numbers alike share one :class:`FileFlags`, so callers
        can work a result out once per distinct value.
        """
        wanted = set(numbers)
        names: dict[int, list[str]] = {}
        for flag, listed in self._by_flag:
            for number in wanted & listed:
                names.setdefault(number, []).append(flag)
        in_seen = wanted & self._seen
        in_unseen: set[int] = set().union(*(wanted & n for n in self._unseen))
        shared: dict[tuple[tuple[str, ...], bool, bool], FileFlags] = {}
        result: dict[int, FileFlags] = {}
        for number in set().union(names, in_seen, in_unseen):
            seen = number in in_seen
            unseen = number in in_unseen if self._has_unseen else not seen
            key = (tuple(names.get(number, ())), seen, unseen)
            found = shared.get(key)
            if found is None:
                found = shared[key] = FileFlags(frozenset(key[0]), seen, unseen)
            result[number] = found
        return result

    def _numbers(self) -> set[int]:
        return set().union(self._seen, *self._unseen, *(n for _, n in self._by_flag))

    def __iter__(self) -> Iterator[int]:
        return iter(self._numbers())

    def __len__(self) -> int:
        return len(self._numbers())


def flags_by_number(
    parsed: SequenceFile, unseen_names: tuple[str, ...]
) -> FlagsByNumber:
    """Per message number, the flags the sequences give it.

    Keywords that differ only in case (``Work`` and ``work`` written by
    different tools) are merged under the first spelling in sorted order.
    """
    unseen_folded = {name.casefold() for name in unseen_names}
    by_flag: list[tuple[str, set[int]]] = []
    seen: set[int] = set()
    unseen: list[set[int]] = []
    spelling: dict[str, str] = {}
    for name in sorted(parsed.sequences):
        numbers = parsed.sequences[name]
        if name == "Seen":
            seen = numbers
            continue
        if name.casefold() in unseen_folded:
            unseen.append(numbers)
            continue
        flag = SEQUENCE_TO_FLAG.get(name)
        if flag is None:
            if not is_keyword_name(name, unseen_names):
                continue
            flag = spelling.setdefault(name.casefold(), name)
        by_flag.append((flag, numbers))
    return FlagsByNumber(by_flag, seen, unseen, bool(unseen_names))


def settle_seen(file_flags: FileFlags | None) -> bool:
    """Decide ``\\Seen`` from the sequence file, as nmh reads it: a
    message is seen exactly when it is not in the unseen sequence(s).

    nmh and asimap 2.x agree (``show`` and ``mark -sequence unseen
    -delete`` take a message out of ``unseen`` and never touch ``Seen``),
    so an nmh user's read archive stays read (issue 10 point 11), and
    new mail looks new because ``inc`` and ``rcvstore`` put it in
    ``unseen``.  Our ``Seen`` sequence is a mirror we keep for asimap 2.x
    and never the deciding side: only nmh tools write the file besides
    us, and none of them reads or means ``Seen``.

    Deciding from the *change* of the two sequences instead ("a tool
    changed only one of them, so the flag flipped") lost nmh's "mark as
    read" (issue 10 point 12): ``inc`` writes its message files first and
    adds them to ``unseen`` only when it gets the lock on the sequence
    file, a second later if we held it.  A rescan in between imports them
    as read (in no unseen sequence) and writes them into ``Seen``; inc
    then *clears* every sequence of the numbers it delivered
    (``clear_msg_flags``, nmh ``uip/inc.c``) and adds them to ``unseen``,
    and nmh's ``mark -sequence unseen -delete`` takes one out again -- all
    before our next rescan, which found it in neither sequence where we
    had left it in ``Seen``, took that for a one-sided removal from
    ``Seen``, flipped it to unseen and wrote it back into ``unseen``.

    Without any unseen sequence configured (:func:`flags_by_number` is
    given none), ``in_unseen`` is the complement of ``Seen``, which then
    decides.
    """
    return not file_flags.in_unseen if file_flags else True


def build_sequences(
    messages: Iterable[tuple[int, frozenset[str], bool]],
    unseen_names: tuple[str, ...],
) -> dict[str, set[int]]:
    """Sequences for ``(number, flags, recent)`` triples (the table above)."""
    sequences: dict[str, set[int]] = {}
    for number, flags, recent in messages:
        if "\\Seen" not in flags:
            for name in unseen_names:
                sequences.setdefault(name, set()).add(number)
        if recent:
            sequences.setdefault(RECENT_SEQUENCE, set()).add(number)
        for flag in flags:
            name = FLAG_TO_SEQUENCE.get(flag, flag)
            sequences.setdefault(name, set()).add(number)
    return sequences


def build_grouped(
    groups: Mapping[tuple[frozenset[str], bool], set[int]],
    unseen_names: tuple[str, ...],
) -> dict[str, set[int]]:
    """:func:`build_sequences` for message numbers grouped by ``(flags,
    recent)``."""
    sequences: dict[str, set[int]] = {}
    for (flags, recent), numbers in groups.items():
        names = [FLAG_TO_SEQUENCE.get(flag, flag) for flag in flags]
        if "\\Seen" not in flags:
            names.extend(unseen_names)
        if recent:
            names.append(RECENT_SEQUENCE)
        for name in names:
            sequences.setdefault(name, set()).update(numbers)
    return sequences


def merge_sequences(
    base: Mapping[str, set[int]],
    theirs: Mapping[str, set[int]],
    ours: Mapping[str, set[int]],
    unseen_names: tuple[str, ...] = (),
) -> dict[str, set[int]]:
    """Three-way merge of interpreted sequences, number by number.

    ``base`` is the file as we last synchronised with it, ``theirs`` the
    file as an nmh tool left it since (``mark``, ``inc``, ``rmm``), and
    ``ours`` what the database wants now.  Where the tool changed a
    membership (``theirs`` differs from ``base``), the tool wins; everywhere
    else our state does.  So neither side's update is lost when both wrote
    between two of our scans -- the next rescan brings the tool's changes
    into the database.

    ``\\Seen`` is one flag kept in two sequences, ``Seen`` and the unseen
    ones (``unseen_names``), and is merged as that one flag: see
    :func:`_merge_seen`.
    """
    merged: dict[str, set[int]] = {}
    for name in set(base) | set(theirs) | set(ours):
        b, t, o = base.get(name, set()), theirs.get(name, set()), ours.get(name, set())
        numbers = (o - (b - t)) | (t - b)
        if numbers:
            merged[name] = numbers
    if unseen_names:
        _merge_seen(base, theirs, ours, merged, unseen_names)
    return merged


def _merge_seen(
    base: Mapping[str, set[int]],
    theirs: Mapping[str, set[int]],
    ours: Mapping[str, set[int]],
    merged: dict[str, set[int]],
    unseen_names: tuple[str, ...],
) -> None:
    """Settle ``\\Seen`` of every message the database has, in ``merged``.

    Merged sequence by sequence, nmh's "mark as read" (``show``, or
    ``mark -sequence unseen -delete``: the message leaves ``unseen`` and
    never joins ``Seen``) gives a message in *neither* sequence; the
    rescan that imports the merge then finds the file equal to its base
    (the merge result) and keeps the old state -- the tool's change was
    undone by our next write (issue 10 point 12: lost most of the time
    while IMAP clients wrote).  Here the flag is merged as one value:
    untouched by the tool (neither sequence changed for the message),
    ours stands; touched, the tool's unseen membership decides -- nmh's
    own reading (:func:`settle_seen`), also when the tool changed only
    ``Seen`` (``inc`` clears every sequence of the numbers it delivers,
    our ``Seen`` among them, before adding them to ``unseen``).  The two
    sequences leave the merge complementary, so the rescan that follows
    reads the tool's answer.
    """

    def split(side: Mapping[str, set[int]]) -> tuple[set[int], set[int]]:
        unseen: set[int] = set()
        for name in unseen_names:
            unseen |= side.get(name, set())
        return set(side.get("Seen", ())), unseen

    seen_b, unseen_b = split(base)
    seen_t, unseen_t = split(theirs)
    seen_o, unseen_o = split(ours)
    known = seen_o | unseen_o  # every message of the database
    # Set algebra, not a loop: a merge may cover a 100,000-message folder.
    by_tool = ((unseen_t ^ unseen_b) | (seen_t ^ seen_b)) & known
    seen_now = (seen_o - by_tool) | (by_tool - unseen_t)
    for name, wanted in (
        ("Seen", seen_now),
        *((name, known - seen_now) for name in unseen_names),
    ):
        numbers = (merged.get(name, set()) - known) | wanted
        if numbers:
            merged[name] = numbers
        else:
            merged.pop(name, None)


def keep_strangers(
    merged: Mapping[str, set[int]],
    theirs: Mapping[str, set[int]],
    strangers: set[int],
) -> dict[str, set[int]]:
    """``merged`` with the memberships of ``strangers`` -- numbers the
    database has no row for but whose files exist -- as ``theirs`` (the
    file) has them.

    Such a number is a message a tool (``inc``) created after our folder
    listing: its file appeared, then the tool added it to ``unseen``, and
    our rescan read that file.  Written from the database alone, the
    number would leave every sequence, and the mail would look read to
    nmh and, once imported, to IMAP (issue 10 point 12: one of the lost
    "mark as read"s was such a message: nmh then found it not in
    ``unseen`` and its mark changed nothing).
    """
    result: dict[str, set[int]] = {}
    for name in set(merged) | set(theirs):
        numbers = (merged.get(name, set()) - strangers) | (
            theirs.get(name, set()) & strangers
        )
        if numbers:
            result[name] = numbers
    return result


def interpreted(
    parsed: SequenceFile, unseen_names: tuple[str, ...]
) -> dict[str, set[int]]:
    """The sequences of ``parsed`` that carry IMAP meaning (not preserved)."""
    kept = preserved_lines(parsed, unseen_names)
    return {n: s for n, s in parsed.sequences.items() if n not in kept}


def preserved_lines(
    parsed: SequenceFile, unseen_names: tuple[str, ...]
) -> dict[str, str]:
    """Raw lines of sequences that carry no IMAP meaning (``cur``, names
    that are not keywords): written back as they were."""
    ours = {
        *FLAG_TO_SEQUENCE.values(),
        RECENT_SEQUENCE,
        *(name for name in unseen_names),
    }
    return {
        name: line
        for name, line in parsed.raw_lines.items()
        if name not in ours and not is_keyword_name(name, unseen_names)
    }


def restore_unseen_by_tool(
    base: SequenceFile, theirs: SequenceFile, young: Iterable[int]
) -> SequenceFile:
    """``theirs`` with the numbers a tool dropped only because it never
    saw their messages put back as ``base`` had them.

    nmh reads the folder (``getdents``) *before* it locks and reads
    ``.mh_sequences``, and its ``seq_save`` writes only numbers up to the
    highest message of that scan (seen with strace and a held lock on nmh
    1.8: ``mark`` run while we added message 4 wrote the file back
    without 4 in any sequence).  A message we created in between -- an
    APPEND or COPY whose flags we had written -- thus silently leaves
    every sequence.  Such a drop is recognisable: the numbers are above
    every number of ``base`` the tool kept, they vanished from *every*
    sequence at once, and their files are new (``young``: created shortly
    before the tool's write).  Only those are restored; a tool's
    deliberate removal of an older message, or of some of a message's
    sequences, stands.

    The ceiling counts only numbers ``base`` already had: numbers new in
    ``theirs`` prove nothing about what an earlier tool saw.  With
    locking, a tool that met our lock retries a second later *without*
    listing the folder again, and several tools may write between two of
    our reads: a stale ``mark`` drops our newest messages, then an
    ``inc`` (which lists the folder again, but reads the file the mark
    left) adds its own higher numbers -- seen in the 60 s concurrency
    test, where the old ceiling (every number written) kept the drop.
    """
    before = set().union(*base.sequences.values()) if base.sequences else set()
    after = set().union(*theirs.sequences.values()) if theirs.sequences else set()
    ceiling = max(before & after, default=0)
    unknown = {n for n in before - after if n > ceiling} & set(young)
    if not unknown:
        return theirs
    restored = SequenceFile(
        sequences={name: set(nums) for name, nums in theirs.sequences.items()},
        raw_lines=dict(theirs.raw_lines),
    )
    for name, numbers in base.sequences.items():
        back = numbers & unknown
        if back:
            restored.sequences.setdefault(name, set()).update(back)
    return restored


def restore_cleared_by_inc(
    base: SequenceFile,
    theirs: SequenceFile,
    unlisted: Iterable[int],
    unseen_names: tuple[str, ...],
) -> SequenceFile:
    """``theirs`` with the sequences nmh ``inc`` cleared of the numbers it
    delivered put back as ``base`` had them.

    inc writes its message files first and lists them in ``unseen`` last,
    once it has the lock on ``.mh_sequences`` (a second later if we held
    it); in between we import them and may write sequences for them (an
    IMAP client's flag).  inc then clears *every* sequence of those
    numbers (``clear_msg_flags``, nmh ``uip/inc.c``) and adds them to the
    unseen sequence(s) -- a flag the client was told it had stored would
    silently go.  That write has a shape no deliberate change has: a
    number we imported while it was in no unseen sequence (``unlisted``)
    is now in the unseen sequence(s) and in nothing else, and it was in
    others.  Those others come back; ``Seen`` does not (inc says the
    message is new, and nmh reads it so), nor ``Recent`` (ours, kept in
    the database).
    """
    if not unseen_names:
        return theirs
    ignore = {"Seen", RECENT_SEQUENCE, CURRENT_SEQUENCE, *unseen_names}
    unseen_b: set[int] = set().union(*(base.sequences.get(u, ()) for u in unseen_names))
    unseen_t: set[int] = set().union(
        *(theirs.sequences.get(u, ()) for u in unseen_names)
    )
    back: dict[str, set[int]] = {}
    for num in set(unlisted) & unseen_t:
        if num in unseen_b:
            continue  # inc listed it before: whatever changed since is meant
        if any(
            num in nums for name, nums in theirs.sequences.items() if name not in ignore
        ):
            continue  # in another sequence too: not inc's clearing
        for name, nums in base.sequences.items():
            if name not in ignore and num in nums:
                back.setdefault(name, set()).add(num)
    if not back:
        return theirs
    restored = SequenceFile(
        sequences={name: set(nums) for name, nums in theirs.sequences.items()},
        raw_lines=dict(theirs.raw_lines),
    )
    for name, nums in back.items():
        restored.sequences.setdefault(name, set()).update(nums)
    return restored
