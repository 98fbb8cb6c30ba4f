"""What a rescan reads of ``.mh_sequences`` for the files on disk.

:meth:`FlagsByNumber.of_numbers` inverts the sequences once per scan (a
pass over each sequence) where a lookup per number used to test every
sequence; it must say exactly what the per-number lookup says, for any
file and any numbers, including numbers the file does not name.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asimap.store.mh import sequences

_NAMES = ("unseen", "Seen", "flagged", "replied", "deleted", "Work", "work", "cur")
_UNSEEN_CHOICES: tuple[tuple[str, ...], ...] = ((), ("unseen",), ("unseen", "new"))


def _line(name: str, ranges: list[tuple[int, int]]) -> str:
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in ranges]
    return f"{name}: {' '.join(parts)}\n"


_ranges = st.lists(
    st.tuples(st.integers(1, 60), st.integers(0, 8)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=5,
)
_files = st.lists(
    st.tuples(st.sampled_from((*_NAMES, "new")), _ranges), max_size=8
).map(lambda lines: "".join(_line(name, ranges) for name, ranges in lines))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_files,
    numbers=st.sets(st.integers(1, 80), max_size=60),
    unseen=st.sampled_from(_UNSEEN_CHOICES),
)
def test_of_numbers_says_what_each_lookup_says(
    text: str, numbers: set[int], unseen: tuple[str, ...]
) -> None:
    found = sequences.flags_by_number(sequences.parse(text), unseen)
    inverted = found.of_numbers(numbers)
    assert set(inverted) <= numbers
    for number in numbers:
        assert inverted.get(number) == found.get(number), (text, number)


def test_numbers_alike_share_one_value() -> None:
    """What lets a rescan work each distinct value out once."""
    text = "flagged: 2-4\nunseen: 3-9\n"
    found = sequences.flags_by_number(sequences.parse(text), ("unseen",))
    inverted = found.of_numbers(range(1, 12))
    assert inverted[3] is inverted[4]
    assert inverted[5] is inverted[9]
    assert 1 not in inverted and 10 not in inverted


def test_a_huge_range_costs_only_the_numbers_asked() -> None:
    text = "unseen: 1-1999999\n"
    found = sequences.flags_by_number(sequences.parse(text), ("unseen",))
    inverted = found.of_numbers([5, 7])
    assert set(inverted) == {5, 7}
    assert inverted[5].in_unseen
